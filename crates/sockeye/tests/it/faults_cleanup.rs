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
    io
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
