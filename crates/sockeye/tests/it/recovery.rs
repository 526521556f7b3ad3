//! Connection-state recovery over a raw WebSocket client: pid and offsets on the wire, what is
//! restored, what is replayed (exactly once, in order), and every way recovery is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

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
    io.ns("/", move |socket: SocketRef, _auth: Option<Value>| {
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
        let _ = socket.emit("poked", &"back");
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

async fn wait_kept(io: &SocketIo, sessions: usize) {
    eventually("the dropped socket is kept for recovery", || {
        io.recovery_stats("/").unwrap().sessions == sessions
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
    io.to("r").unwrap().emit("m", &0).unwrap();
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
    io.to("r").unwrap().emit("m", &1).unwrap();
    io.to("other").unwrap().emit("m", &-1).unwrap();
    io.to("r").unwrap().emit("m", &2).unwrap();
    io.of("/").unwrap().volatile().emit("m", &-2).unwrap();
    io.emit("all", &3).unwrap();
    io.to("r").unwrap().emit("m", &4).unwrap();
    // Addressed to its own-id room while it is away: replayed too.
    io.to(sid.clone()).unwrap().emit("m", &5).unwrap();

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
    io.to("r").unwrap().emit("m", &6).unwrap();
    let (name, args) = event(&mut b).await;
    assert_eq!((name.as_str(), &args[0]), ("m", &json!(6)));
    let stats = io.recovery_stats("/").unwrap();
    assert_eq!((stats.recovered, stats.sessions, stats.failed), (1, 0, 0));
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
    io.to("r").unwrap().emit("m", &1).unwrap();
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
    io.to("r").unwrap().emit("m", &0).unwrap();
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
    let stats = io.recovery_stats("/").unwrap();
    assert_eq!((stats.sessions_expired, stats.recovered), (1, 0));
}

#[tokio::test]
async fn client_namespace_disconnect_is_not_kept() {
    let (io, addr, mut connects, _) = server(Some(RecoveryConfig::default())).await;
    let (mut a, reply) = connect_and_join(addr, "r").await;
    connects.recv().await.unwrap();
    io.to("r").unwrap().emit("m", &0).unwrap();
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
}

#[tokio::test]
async fn missed_packets_dropped_from_the_bounded_log_fail_recovery() {
    let config = RecoveryConfig {
        max_packets: 3,
        ..RecoveryConfig::default()
    };
    let (io, addr, mut connects, _) = server(Some(config)).await;
    let (mut a, reply) = connect_and_join(addr, "r").await;
    connects.recv().await.unwrap();
    io.to("r").unwrap().emit("m", &0).unwrap();
    let offset = last_str(&event(&mut a).await.1);
    drop(a);
    wait_kept(&io, 1).await;
    for n in 1..=5 {
        io.to("r").unwrap().emit("m", &n).unwrap();
    }
    let stats = io.recovery_stats("/").unwrap();
    assert_eq!((stats.packets, stats.packets_dropped), (3, 3));
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
    assert_eq!(io.recovery_stats("/").unwrap().failed, 1);
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
            sender.to("r").unwrap().emit("n", &n).unwrap();
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

#[tokio::test]
async fn an_adapter_without_recovery_keeps_it_off() {
    use sockeye::adapter::{Adapter, LocalNamespace, MemoryAdapter};
    // A factory handing out the bare in-memory adapter, which records no log (as the classic
    // Redis adapter): the server warns at build and sends no pid.
    let io = builder()
        .connection_state_recovery(RecoveryConfig::default())
        .adapter(|local: LocalNamespace| Arc::new(MemoryAdapter::new(local)) as Arc<dyn Adapter>)
        .build();
    io.ns("/", |socket: SocketRef, _auth: Option<Value>| {
        socket.join("r");
        std::future::ready(())
    });
    let addr = serve(&io).await;
    assert!(io.recovery_stats("/").is_none());
    let mut a = Ws::open(addr).await;
    a.send("40").await;
    a.expect_connect("/").await; // exactly {"sid":..}
    eventually("joined", || io.to("r").unwrap().sockets().len() == 1).await;
    io.to("r").unwrap().emit("m", &1).unwrap();
    a.expect(r#"42["m",1]"#).await;
}
