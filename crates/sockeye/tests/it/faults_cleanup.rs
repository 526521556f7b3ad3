//! Every close path leaves nothing behind: Engine.IO sessions, namespace sockets, room
//! memberships, pending acks (an awaited `call` ends with `Disconnected`) and partial binary
//! packets are all released, whichever way the client went away.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Ws, eventually, serve};
use futures_util::SinkExt;
use serde_json::Value;
use sockeye::extract::Auth;
use sockeye::{AckError, ConnectionRefusedError, Event, SocketIo, SocketRef};
use tokio_tungstenite::tungstenite::Message as WsMsg;

#[derive(Default)]
struct Counts {
    holds: AtomicUsize,
    released: AtomicUsize,
}

fn app(counts: Arc<Counts>) -> SocketIo {
    let io = SocketIo::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(600))
        .attachment_timeout(Duration::from_millis(600))
        .build();
    register(&io, counts);
    io
}

/// `/` with the handlers every close-path test uses.
fn register(io: &SocketIo, counts: Arc<Counts>) {
    io.ns("/", |_s: SocketRef, auth: Option<Auth<Value>>| async move {
        if auth.as_ref().and_then(|Auth(a)| a.get("refuse")).is_some() {
            return Err(ConnectionRefusedError::new("refused"));
        }
        Ok(())
    })
    // Joins a room and waits for an ack the client never sends: a pending ack.
    .on("hold", move |socket: SocketRef, event: Event| {
        let counts = counts.clone();
        async move {
            let room: String = event.args.first().unwrap();
            socket.join(room);
            counts.holds.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let r = socket
                    .call::<Value, _>("q", &1, Duration::from_secs(60))
                    .await;
                if matches!(r, Err(AckError::Disconnected)) {
                    counts.released.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    })
    .on("kick", |socket: SocketRef, _e: Event| async move {
        socket.disconnect();
    })
    .on("boom", |_s: SocketRef, _e: Event| async move {
        if std::hint::black_box(true) {
            panic!("a handler panic, contained to its ack");
        }
    });
}

/// A client on `/` that joined `room` and left a pending ack on the server.
async fn holding(addr: std::net::SocketAddr, room: &str) -> Ws {
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send(&format!(r#"42["hold","{room}"]"#)).await;
    match ws.recv().await {
        common::F::T(t) if t.starts_with(r#"420["q""#) || t.contains(r#"["q",1]"#) => {}
        other => panic!("expected the server's call, got {other:?}"),
    }
    ws
}

/// Pass: ten ways of leaving (clean WebSocket close, TCP drop, ping timeout, invalid packet,
/// server-side disconnect, namespace DISCONNECT then drop, a handler panic then drop, a
/// partial binary packet abandoned, a refused connect, a session that never connects) each
/// release the session, the socket, its room and its pending ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_close_path_releases_sessions_sockets_rooms_and_acks() {
    let counts = Arc::new(Counts::default());
    let io = app(counts.clone());
    let addr = serve(&io).await;
    let mut parked = Vec::new();

    // 1. clean WebSocket close
    let mut ws = holding(addr, "clean").await;
    ws.ws.close(None).await.unwrap();
    // 2. TCP drop without close
    drop(holding(addr, "drop").await);
    // 3. ping timeout: the client keeps the socket and never reads (so never pongs)
    parked.push(holding(addr, "silent").await);
    // 4. invalid packet
    let mut ws = holding(addr, "garbage").await;
    ws.send("4abc").await;
    ws.expect_closed().await;
    // 5. server-side disconnect of the socket, then the client leaves
    let mut ws = holding(addr, "kicked").await;
    ws.send(r#"42["kick"]"#).await;
    drop(ws);
    // 6. namespace DISCONNECT, then drop
    let mut ws = holding(addr, "left").await;
    ws.send("41").await;
    drop(ws);
    // 7. a handler panic, then drop
    let mut ws = holding(addr, "panic").await;
    ws.send(r#"421["boom"]"#).await;
    drop(ws);
    // 8. a partial binary packet, abandoned
    let mut ws = holding(addr, "partial").await;
    ws.send(r#"452-["hold",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    ws.ws.send(WsMsg::binary(vec![1u8])).await.unwrap();
    parked.push(ws);
    // 9. a refused connect on an open session
    let mut ws = Ws::open(addr).await;
    ws.send(r#"40{"refuse":true}"#).await;
    assert!(ws.recv_text().await.starts_with("44"));
    parked.push(ws);
    // 10. a session that never connects a namespace
    parked.push(Ws::open(addr).await);

    let holds = 8;
    eventually("every session to be released", || {
        io.engine().session_count() == 0
    })
    .await;
    eventually("every socket to leave the namespace", || {
        io.of("/").unwrap().sockets().is_empty()
    })
    .await;
    for room in [
        "clean", "drop", "silent", "garbage", "kicked", "left", "panic", "partial",
    ] {
        let members = io.of("/").unwrap().to(room).sockets();
        assert!(members.is_empty(), "room {room} still has members");
    }
    assert_eq!(counts.holds.load(Ordering::SeqCst), holds);
    eventually("every pending ack to end with Disconnected", || {
        counts.released.load(Ordering::SeqCst) == holds
    })
    .await;
    drop(parked);
}

/// Each close path alone, with a heartbeat that cannot be what cleans: pings every 60 s, so a
/// path that forgot its own cleanup leaves the session, socket, room or pending ack in place
/// far beyond the bound these tests allow (`BOUND`).
mod isolated {
    use super::*;

    /// What a close path is given to clean up; the heartbeat would take 120 s.
    const BOUND: Duration = Duration::from_secs(3);

    /// An app of `app`'s handlers, with pings 60 s apart; the connect and attachment timers
    /// are `connect` and `attachments` (60 s unless the path under test is that timer).
    fn slow_heartbeat_app(
        counts: Arc<Counts>,
        connect: Duration,
        attachments: Duration,
    ) -> SocketIo {
        let io = SocketIo::builder()
            .ping_interval(Duration::from_secs(60))
            .ping_timeout(Duration::from_secs(60))
            .connect_timeout(connect)
            .attachment_timeout(attachments)
            .max_payload(16 * 1024)
            .build();
        register(&io, counts);
        io
    }

    fn default_app(counts: Arc<Counts>) -> SocketIo {
        slow_heartbeat_app(counts, Duration::from_secs(60), Duration::from_secs(60))
    }

    /// Waits at most `BOUND` for `f`.
    async fn within_bound(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + BOUND;
        while !f() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not released within {BOUND:?} (the heartbeat is 60 s away): {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The socket that held `room` left the namespace and the room, and its pending ack
    /// ended with `Disconnected`; `sessions` engine sessions remain.
    async fn released(io: &SocketIo, counts: &Counts, room: &str, sessions: usize) {
        within_bound("the socket's pending ack", || {
            counts.released.load(Ordering::SeqCst) == 1
        })
        .await;
        within_bound("the namespace's socket", || {
            io.of("/").unwrap().sockets().is_empty()
        })
        .await;
        assert!(
            io.of("/").unwrap().to(room.to_owned()).sockets().is_empty(),
            "room {room} still has members"
        );
        within_bound("the engine session", || {
            io.engine().session_count() == sessions
        })
        .await;
    }

    async fn setup() -> (SocketIo, Arc<Counts>, std::net::SocketAddr) {
        let counts = Arc::new(Counts::default());
        let io = default_app(counts.clone());
        let addr = serve(&io).await;
        (io, counts, addr)
    }

    #[tokio::test]
    async fn clean_websocket_close() {
        let (io, counts, addr) = setup().await;
        let mut ws = holding(addr, "r").await;
        ws.ws.close(None).await.unwrap();
        released(&io, &counts, "r", 0).await;
    }

    #[tokio::test]
    async fn tcp_drop() {
        let (io, counts, addr) = setup().await;
        drop(holding(addr, "r").await);
        released(&io, &counts, "r", 0).await;
    }

    #[tokio::test]
    async fn engine_close_packet() {
        let (io, counts, addr) = setup().await;
        let mut ws = holding(addr, "r").await;
        ws.send("1").await;
        released(&io, &counts, "r", 0).await;
        drop(ws);
    }

    #[tokio::test]
    async fn invalid_packet() {
        let (io, counts, addr) = setup().await;
        let mut ws = holding(addr, "r").await;
        ws.send("4abc").await;
        released(&io, &counts, "r", 0).await;
        drop(ws);
    }

    /// A message over `max_payload` (16 KiB here): the engine closes the transport with 1009.
    #[tokio::test]
    async fn transport_error() {
        let (io, counts, addr) = setup().await;
        let mut ws = holding(addr, "r").await;
        let big = format!(r#"42["x","{}"]"#, "y".repeat(32 * 1024));
        let _ = ws.ws.send(WsMsg::text(big)).await;
        released(&io, &counts, "r", 0).await;
        drop(ws);
    }

    /// A server-side `disconnect()`: the socket leaves, the client's Engine.IO session stays
    /// (as in the Node server) with its TCP connection open.
    #[tokio::test]
    async fn kick() {
        let (io, counts, addr) = setup().await;
        let mut ws = holding(addr, "r").await;
        ws.send(r#"42["kick"]"#).await;
        released(&io, &counts, "r", 1).await;
        drop(ws);
    }

    /// A namespace DISCONNECT from the client, the connection kept open.
    #[tokio::test]
    async fn namespace_disconnect() {
        let (io, counts, addr) = setup().await;
        let mut ws = holding(addr, "r").await;
        ws.send("41").await;
        released(&io, &counts, "r", 1).await;
        drop(ws);
    }

    /// A panicking event handler: its socket is disconnected, the session stays.
    #[tokio::test]
    async fn handler_panic() {
        let (io, counts, addr) = setup().await;
        let mut ws = holding(addr, "r").await;
        ws.send(r#"421["boom"]"#).await;
        released(&io, &counts, "r", 1).await;
        drop(ws);
    }

    /// A binary packet whose second attachment never comes: the attachment timer (300 ms)
    /// closes the session, the client still connected and silent.
    #[tokio::test]
    async fn attachment_timer() {
        let counts = Arc::new(Counts::default());
        let io = slow_heartbeat_app(
            counts.clone(),
            Duration::from_secs(60),
            Duration::from_millis(300),
        );
        let addr = serve(&io).await;
        let mut ws = holding(addr, "r").await;
        ws.send(r#"452-["hold",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
            .await;
        ws.ws.send(WsMsg::binary(vec![1u8])).await.unwrap();
        released(&io, &counts, "r", 0).await;
        drop(ws);
    }

    /// Graceful shutdown: `SocketIo::close` ends every session, socket and pending ack.
    #[tokio::test]
    async fn shutdown() {
        let (io, counts, addr) = setup().await;
        let ws = holding(addr, "r").await;
        let closing = io.clone();
        tokio::time::timeout(BOUND, closing.close())
            .await
            .expect("close within the bound");
        within_bound("the socket's pending ack", || {
            counts.released.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(io.engine().session_count(), 0);
        drop(ws);
    }

    /// A refused CONNECT and a session that never connects: the connect timer (300 ms) closes
    /// both, the clients still connected and silent.
    #[tokio::test]
    async fn connect_timer() {
        let counts = Arc::new(Counts::default());
        let io = slow_heartbeat_app(
            counts.clone(),
            Duration::from_millis(300),
            Duration::from_secs(60),
        );
        let addr = serve(&io).await;
        let mut refused = Ws::open(addr).await;
        refused.send(r#"40{"refuse":true}"#).await;
        assert!(refused.recv_text().await.starts_with("44"));
        let never = Ws::open(addr).await;
        assert_eq!(io.engine().session_count(), 2);
        within_bound("the sessions without a namespace", || {
            io.engine().session_count() == 0
        })
        .await;
        drop((refused, never));
    }
}
