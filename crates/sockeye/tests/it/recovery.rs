//! Connection-state recovery over a raw WebSocket client: pid and offsets on the wire, what is
//! restored, what is replayed (exactly once, in order), and every way recovery is refused.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{F, WAIT, Ws, builder, eventually, serve};
use serde_json::{Value, json};
use sockeye::{Event, RecoveryConfig, SocketIo, SocketRef};
use tokio::sync::mpsc;

/// What the connect handler saw: the socket id and whether it was recovered.
type Connects = mpsc::UnboundedReceiver<(String, bool)>;

/// A server on `/` whose sockets join the room an event `join` names, save a session value
/// with `save`, read it back as the ack of `get`, and get a direct emit back on `poke`.
/// Returns the server, its address, the connect reports and the middleware call count.
async fn server(
    recovery: Option<RecoveryConfig>,
) -> (SocketIo, SocketAddr, Connects, Arc<AtomicUsize>) {
    let mut b = builder();
    if let Some(config) = recovery {
        b = b.connection_state_recovery(config);
    }
    let io = b.build();
    let (tx, rx) = mpsc::unbounded_channel();
    let middleware_calls = Arc::new(AtomicUsize::new(0));
    let calls = middleware_calls.clone();
    io.ns("/", move |socket: SocketRef| {
        let _ = tx.send((socket.id().to_string(), socket.recovered()));
        std::future::ready(())
    })
    .use_connect(move |_socket: SocketRef| {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok::<(), sockeye::ConnectionRefusedError>(()))
    })
    .on("join", |socket: SocketRef, event: Event| async move {
        let room: String = event.args.first().unwrap();
        socket.join(room);
        json!("joined")
    })
    .on("save", |socket: SocketRef, event: Event| async move {
        socket.save_session(event.args.first::<String>().unwrap());
        json!("saved")
    })
    .on("get", |socket: SocketRef, _e: Event| async move {
        json!(socket.get_session::<String>().unwrap_or_default())
    })
    .on("poke", |socket: SocketRef, _e: Event| async move {
        socket.emit("poked", &"back").unwrap();
    });
    let addr = serve(&io).await;
    (io, addr, rx, middleware_calls)
}

/// Reads a CONNECT reply on `/`: its keys as a JSON object.
async fn connect_reply(ws: &mut Ws) -> serde_json::Map<String, Value> {
    match ws.recv().await {
        F::T(t) if t.starts_with("40") => serde_json::from_str::<Value>(&t[2..])
            .unwrap()
            .as_object()
            .unwrap()
            .clone(),
        other => panic!("expected a CONNECT reply, got {other:?}"),
    }
}

/// The next EVENT on `/`: its name and arguments.
async fn event(ws: &mut Ws) -> (String, Vec<Value>) {
    let text = ws.recv_text().await;
    let body = text
        .strip_prefix("42")
        .unwrap_or_else(|| panic!("not an event: {text}"));
    let mut items: Vec<Value> = serde_json::from_str(body).unwrap();
    let name = items.remove(0).as_str().unwrap().to_owned();
    (name, items)
}

/// The ack of `42<id>[..]`: its arguments.
async fn ack(ws: &mut Ws, id: u32) -> Vec<Value> {
    let text = ws.recv_text().await;
    let prefix = format!("43{id}");
    let body = text
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("not ack {id}: {text}"));
    serde_json::from_str(body).unwrap()
}

/// Connects with `auth` and joins `room`; returns the session and the CONNECT reply.
async fn connect_and_join(addr: SocketAddr, room: &str) -> (Ws, serde_json::Map<String, Value>) {
    let mut ws = Ws::open(addr).await;
    ws.send("40").await;
    let reply = connect_reply(&mut ws).await;
    ws.send(&format!(r#"421["join","{room}"]"#)).await;
    assert_eq!(ack(&mut ws, 1).await, vec![json!("joined")]);
    (ws, reply)
}

fn last_str(args: &[Value]) -> String {
    args.last().and_then(Value::as_str).unwrap().to_owned()
}

/// Waits until `sessions` sockets in all were handed to the adapter to keep for recovery.
async fn wait_kept(io: &SocketIo, sessions: u64) {
    eventually("the dropped socket is kept for recovery", || {
        io.recovery_stats("/").unwrap().sessions_persisted == sessions
    })
    .await;
}

#[tokio::test]
async fn transport_drop_recovers_id_rooms_session_and_missed_packets_in_order() {
    let (io, addr, mut connects, middleware_calls) = server(Some(RecoveryConfig::default())).await;
    let (mut a, reply) = connect_and_join(addr, "r").await;
    let sid = reply["sid"].as_str().unwrap().to_owned();
    let pid = reply["pid"].as_str().unwrap().to_owned();
    assert_eq!(reply.len(), 2, "CONNECT reply is {{sid, pid}}: {reply:?}");
    assert_ne!(sid, pid);
    assert_eq!(connects.recv().await.unwrap(), (sid.clone(), false));
    a.send(r#"422["save","kept"]"#).await;
    assert_eq!(ack(&mut a, 2).await, vec![json!("saved")]);

    // A broadcast and a direct emit both carry an offset as their last argument.
    io.to("r").emit("m", &0).await.unwrap();
    let (name, args) = event(&mut a).await;
    assert_eq!((name.as_str(), &args[0]), ("m", &json!(0)));
    assert_eq!(args.len(), 2, "{args:?}");
    a.send(r#"42["poke"]"#).await;
    let (name, args) = event(&mut a).await;
    assert_eq!((name.as_str(), args.len()), ("poked", 2), "{args:?}");
    let offset = last_str(&args);

    // The transport goes away without a DISCONNECT: the socket is kept.
    drop(a);
    wait_kept(&io, 1).await;
    assert!(io.get_socket("/", &sid.as_str().into()).is_none());

    // Missed: three to its room and one to everyone; not for it: another room, a volatile one.
    io.to("r").emit("m", &1).await.unwrap();
    io.to("other").emit("m", &-1).await.unwrap();
    io.to("r").emit("m", &2).await.unwrap();
    io.of("/").unwrap().volatile().emit("m", &-2).await.unwrap();
    io.emit("all", &3).await.unwrap();
    io.to("r").emit("m", &4).await.unwrap();
    // Addressed to its own-id room while it is away: replayed too.
    io.to(sid.clone()).emit("m", &5).await.unwrap();

    let mut b = Ws::open(addr).await;
    b.send(&format!(r#"40{{"pid":"{pid}","offset":"{offset}"}}"#))
        .await;
    let reply = connect_reply(&mut b).await;
    assert_eq!(reply["sid"], json!(sid), "same socket id");
    assert_eq!(reply["pid"], json!(pid), "same private id");
    let mut seen = Vec::new();
    let mut offsets = Vec::new();
    for _ in 0..5 {
        let (name, args) = event(&mut b).await;
        offsets.push(last_str(&args));
        seen.push((name, args[0].clone()));
    }
    assert_eq!(
        seen,
        vec![
            ("m".to_owned(), json!(1)),
            ("m".to_owned(), json!(2)),
            ("all".to_owned(), json!(3)),
            ("m".to_owned(), json!(4)),
            ("m".to_owned(), json!(5)),
        ]
    );
    let mut sorted = offsets.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "distinct offsets: {offsets:?}");
    b.expect_silence(Duration::from_millis(200)).await;

    assert_eq!(connects.recv().await.unwrap(), (sid.clone(), true));
    assert_eq!(
        middleware_calls.load(Ordering::SeqCst),
        1,
        "middlewares skipped on recovery"
    );
    // Session value and rooms are back.
    b.send(r#"427["get"]"#).await;
    assert_eq!(ack(&mut b, 7).await, vec![json!("kept")]);
    io.to("r").emit("m", &6).await.unwrap();
    let (name, args) = event(&mut b).await;
    assert_eq!((name.as_str(), &args[0]), ("m", &json!(6)));
    let stats = io.recovery_stats("/").unwrap();
    assert_eq!(
        (stats.sessions_persisted, stats.recovered, stats.unknown_pid),
        (1, 1, 0)
    );
    assert_eq!(
        (stats.failed, stats.errors, stats.persist_errors),
        (0, 0, 0)
    );

    // The kept session was used up by the recovery: the same pid presented again (a replayed
    // CONNECT) finds nothing and gets a fresh socket, with a fresh id and pid.
    let mut c = Ws::open(addr).await;
    c.send(&format!(r#"40{{"pid":"{pid}","offset":"{offset}"}}"#))
        .await;
    let replayed = connect_reply(&mut c).await;
    assert_ne!(replayed["sid"], json!(sid));
    assert_ne!(replayed["pid"], json!(pid));
    assert!(!connects.recv().await.unwrap().1, "not recovered twice");
    c.expect_silence(Duration::from_millis(200)).await;
    let stats = io.recovery_stats("/").unwrap();
    assert_eq!((stats.recovered, stats.unknown_pid), (1, 1));
}

#[tokio::test]
async fn recovery_off_changes_nothing_on_the_wire() {
    let (io, addr, mut connects, _) = server(None).await;
    assert!(io.recovery_stats("/").is_none());
    let mut a = Ws::open(addr).await;
    a.send("40").await;
    let sid = a.expect_connect("/").await; // asserts the reply is exactly {"sid":..}
    a.send(r#"421["join","r"]"#).await;
    a.expect(r#"431["joined"]"#).await;
    io.to("r").emit("m", &1).await.unwrap();
    a.expect(r#"42["m",1]"#).await;
    a.send(r#"42["poke"]"#).await;
    a.expect(r#"42["poked","back"]"#).await;
    assert_eq!(connects.recv().await.unwrap(), (sid.clone(), false));
    drop(a);
    eventually("socket gone", || {
        io.get_socket("/", &sid.as_str().into()).is_none()
    })
    .await;
    // A client presenting a pid and an offset gets a fresh socket.
    let mut b = Ws::open(addr).await;
    b.send(&format!(r#"40{{"pid":"{sid}","offset":"0"}}"#))
        .await;
    let fresh = b.expect_connect("/").await;
    assert_ne!(fresh, sid);
    assert_eq!(connects.recv().await.unwrap(), (fresh, false));
}

#[tokio::test]
async fn expired_session_gives_a_fresh_socket() {
    let config = RecoveryConfig {
        max_disconnection_duration: Duration::from_millis(150),
        ..RecoveryConfig::default()
    };
    let (io, addr, mut connects, middleware_calls) = server(Some(config)).await;
    let (mut a, reply) = connect_and_join(addr, "r").await;
    let (sid, pid) = (reply["sid"].clone(), reply["pid"].clone());
    connects.recv().await.unwrap();
    io.to("r").emit("m", &0).await.unwrap();
    let offset = last_str(&event(&mut a).await.1);
    drop(a);
    wait_kept(&io, 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    let mut b = Ws::open(addr).await;
    b.send(&format!(r#"40{{"pid":{pid},"offset":"{offset}"}}"#))
        .await;
    let reply = connect_reply(&mut b).await;
    assert_ne!(reply["sid"], sid);
    assert_ne!(reply["pid"], pid, "a fresh socket gets a fresh pid");
    assert!(!connects.recv().await.unwrap().1, "not recovered");
    assert_eq!(middleware_calls.load(Ordering::SeqCst), 2);
    // The session was kept (wait_kept above) and is gone once expired: the pid finds nothing.
    let stats = io.recovery_stats("/").unwrap();
    assert_eq!(
        (
            stats.unknown_pid,
            stats.recovered,
            stats.failed,
            stats.errors
        ),
        (1, 0, 0, 0)
    );
}

#[tokio::test]
async fn client_namespace_disconnect_is_not_kept() {
    let (io, addr, mut connects, _) = server(Some(RecoveryConfig::default())).await;
    let (mut a, reply) = connect_and_join(addr, "r").await;
    connects.recv().await.unwrap();
    io.to("r").emit("m", &0).await.unwrap();
    let offset = last_str(&event(&mut a).await.1);
    a.send("41").await;
    let sid = reply["sid"].as_str().unwrap().to_owned();
    eventually("socket gone", || {
        io.get_socket("/", &sid.as_str().into()).is_none()
    })
    .await;
    // Give the disconnect handler's task time to finish: nothing may be kept.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(io.recovery_stats("/").unwrap().sessions_persisted, 0);
    a.send(&format!(
        r#"40{{"pid":{},"offset":"{offset}"}}"#,
        reply["pid"]
    ))
    .await;
    let again = connect_reply(&mut a).await;
    assert_ne!(again["sid"], reply["sid"]);
    assert!(!connects.recv().await.unwrap().1);
    let stats = io.recovery_stats("/").unwrap();
    assert_eq!(
        (stats.sessions_persisted, stats.unknown_pid, stats.recovered),
        (0, 1, 0)
    );
}

/// With a log of 3 packets, six broadcasts leave the last three (m3, m4, m5): a client whose
/// offset is older than what the log still holds gets a fresh socket and no partial replay; one
/// whose next packet is the oldest kept one recovers with exactly the rest.
#[tokio::test]
async fn missed_packets_dropped_from_the_bounded_log_fail_recovery() {
    let config = RecoveryConfig {
        max_packets: 3,
        ..RecoveryConfig::default()
    };
    let (io, addr, mut connects, _) = server(Some(config)).await;
    // a, d and c will drop; e stays and sees every packet with its offset.
    let (mut a, reply_a) = connect_and_join(addr, "r").await;
    let (d, reply_d) = connect_and_join(addr, "r").await;
    let (c, reply_c) = connect_and_join(addr, "r").await;
    let (mut e, _) = connect_and_join(addr, "r").await;
    for _ in 0..4 {
        assert!(!connects.recv().await.unwrap().1);
    }
    io.to("r").emit("m", &0).await.unwrap();
    let mut offsets = vec![last_str(&event(&mut a).await.1)];
    assert_eq!(
        event(&mut e).await,
        ("m".to_owned(), vec![json!(0), json!(offsets[0])])
    );
    drop((a, c, d));
    wait_kept(&io, 3).await;
    for n in 1..=5 {
        io.to("r").emit("m", &n).await.unwrap();
        let (name, args) = event(&mut e).await;
        assert_eq!((name.as_str(), &args[0]), ("m", &json!(n)));
        offsets.push(last_str(&args));
    }

    // a's next packet (m1) and d's (m2) are gone from the log: a fresh socket, nothing replayed.
    for (reply, offset) in [(&reply_a, &offsets[0]), (&reply_d, &offsets[1])] {
        let mut b = Ws::open(addr).await;
        b.send(&format!(
            r#"40{{"pid":{},"offset":"{offset}"}}"#,
            reply["pid"]
        ))
        .await;
        let again = connect_reply(&mut b).await;
        assert_ne!(again["sid"], reply["sid"]);
        assert!(!connects.recv().await.unwrap().1);
        b.expect_silence(Duration::from_millis(200)).await;
    }
    assert_eq!(io.recovery_stats("/").unwrap().failed, 2);

    // c's next packet (m3) is the oldest one kept: recovered, with m3, m4, m5 exactly.
    let mut b = Ws::open(addr).await;
    b.send(&format!(
        r#"40{{"pid":{},"offset":"{}"}}"#,
        reply_c["pid"], offsets[2]
    ))
    .await;
    let again = connect_reply(&mut b).await;
    assert_eq!(again["sid"], reply_c["sid"]);
    for (n, offset) in offsets.iter().enumerate().skip(3) {
        assert_eq!(
            event(&mut b).await,
            ("m".to_owned(), vec![json!(n), json!(offset)])
        );
    }
    b.expect_silence(Duration::from_millis(200)).await;
    assert!(connects.recv().await.unwrap().1);
    let stats = io.recovery_stats("/").unwrap();
    assert_eq!(
        (stats.failed, stats.recovered, stats.unknown_pid),
        (2, 1, 0)
    );
}

#[tokio::test]
async fn broadcasts_during_the_drop_and_the_restore_arrive_exactly_once_in_order() {
    const TOTAL: i64 = 400;
    let (io, addr, mut connects, _) = server(Some(RecoveryConfig::default())).await;
    let (mut a, reply) = connect_and_join(addr, "r").await;
    connects.recv().await.unwrap();
    let sender = io.clone();
    let broadcaster = tokio::spawn(async move {
        for n in 0..TOTAL {
            sender.to("r").emit("n", &n).await.unwrap();
            if n % 4 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    // Take a few, then lose the transport mid-stream.
    let mut last = -1;
    let mut offset = String::new();
    while last < 20 {
        let (_, args) = event(&mut a).await;
        let n = args[0].as_i64().unwrap();
        assert_eq!(n, last + 1);
        last = n;
        offset = last_str(&args);
    }
    drop(a);
    wait_kept(&io, 1).await;
    let mut b = Ws::open(addr).await;
    b.send(&format!(
        r#"40{{"pid":{},"offset":"{offset}"}}"#,
        reply["pid"]
    ))
    .await;
    let again = connect_reply(&mut b).await;
    assert_eq!(again["sid"], reply["sid"]);
    while last < TOTAL - 1 {
        let (_, args) = event(&mut b).await;
        let n = args[0].as_i64().unwrap();
        assert_eq!(n, last + 1, "every broadcast once, in order");
        last = n;
    }
    tokio::time::timeout(WAIT, broadcaster)
        .await
        .unwrap()
        .unwrap();
    b.expect_silence(Duration::from_millis(200)).await;
    assert!(connects.recv().await.unwrap().1);
}

/// A single-node adapter that does not implement recovery (as the classic Redis adapter): every
/// operation is the local one, and `supports_recovery` keeps its default, false.
struct LocalOnly(sockeye::adapter::LocalNamespace);

mod local_only {
    use std::time::Duration;

    use sockeye::AdapterError;
    use sockeye::adapter::{
        AckStream, Adapter, BoxFuture, BroadcastOptions, BroadcastPacket, Room, SocketInfo,
    };

    use super::LocalOnly;

    fn done<T: Send + 'static>(value: T) -> BoxFuture<'static, Result<T, AdapterError>> {
        Box::pin(std::future::ready(Ok(value)))
    }

    impl Adapter for LocalOnly {
        fn broadcast(
            &self,
            packet: BroadcastPacket,
            opts: BroadcastOptions,
        ) -> BoxFuture<'_, Result<(), AdapterError>> {
            self.0.deliver(&packet, &opts);
            done(())
        }

        fn broadcast_with_ack(
            &self,
            packet: BroadcastPacket,
            opts: BroadcastOptions,
            timeout: Duration,
        ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
            done(self.0.deliver_with_ack(&packet, &opts, timeout))
        }

        fn fetch_sockets(
            &self,
            opts: BroadcastOptions,
        ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
            done(self.0.fetch(&opts))
        }

        fn add_sockets(
            &self,
            opts: BroadcastOptions,
            rooms: Vec<Room>,
        ) -> BoxFuture<'_, Result<(), AdapterError>> {
            self.0.add_rooms(&opts, &rooms);
            done(())
        }

        fn del_sockets(
            &self,
            opts: BroadcastOptions,
            rooms: Vec<Room>,
        ) -> BoxFuture<'_, Result<(), AdapterError>> {
            self.0.del_rooms(&opts, &rooms);
            done(())
        }

        fn disconnect_sockets(
            &self,
            opts: BroadcastOptions,
            close: bool,
        ) -> BoxFuture<'_, Result<(), AdapterError>> {
            self.0.disconnect(&opts, close);
            done(())
        }

        fn server_side_emit(
            &self,
            _packet: BroadcastPacket,
        ) -> BoxFuture<'_, Result<(), AdapterError>> {
            done(())
        }

        fn server_side_emit_with_ack(
            &self,
            _packet: BroadcastPacket,
            _timeout: Duration,
        ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
            done(AckStream::empty())
        }
    }
}

#[tokio::test]
async fn an_adapter_without_recovery_keeps_it_off() {
    use sockeye::adapter::{Adapter, LocalNamespace};
    // A factory handing out an adapter that keeps no log and no sessions: the server warns at
    // build and sends no pid, and no packet carries an offset.
    let io = builder()
        .connection_state_recovery(RecoveryConfig::default())
        .adapter(|local: LocalNamespace| Arc::new(LocalOnly(local)) as Arc<dyn Adapter>)
        .build();
    io.ns("/", |socket: SocketRef| {
        socket.join("r");
        std::future::ready(())
    })
    .on("poke", |socket: SocketRef| async move {
        socket.emit("poked", &"back").unwrap();
    });
    let addr = serve(&io).await;
    assert!(io.recovery_stats("/").is_none());
    let mut a = Ws::open(addr).await;
    a.send("40").await;
    a.expect_connect("/").await; // exactly {"sid":..}
    eventually("joined", || io.to("r").sockets().len() == 1).await;
    io.to("r").emit("m", &1).await.unwrap();
    a.expect(r#"42["m",1]"#).await;
    a.send(r#"42["poke"]"#).await;
    a.expect(r#"42["poked","back"]"#).await;
}
