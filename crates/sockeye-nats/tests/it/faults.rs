//! Bad input and faults: poisoned broker messages, the connection to NATS cut and restored
//! (through the testkit's fault proxy), a node killed, a JetStream node dying with a client.
use std::time::Duration;

use rmpv::Value;
use serde_json::json;
use sockeye::SocketIo;
use sockeye_nats::{NatsAdapterFactory, NatsConfig, StatsSnapshot};
use sockeye_testkit::FaultProxy;
use sockeye_testkit::contract::{WAIT, serve};
use sockeye_testkit::sio::SioClient;

use crate::common::{NATS, config, init_tracing, settle, unique};

async fn connect(config: NatsConfig) -> NatsAdapterFactory {
    NatsAdapterFactory::connect(config)
        .await
        .unwrap_or_else(|e| panic!("the NATS server at {NATS} is needed: {e}"))
}

/// A node serving `/` (sockets join the rooms their auth names).
async fn node(factory: &NatsAdapterFactory, recovery: bool) -> (SocketIo, std::net::SocketAddr) {
    use sockeye::prelude::*;
    let mut builder = SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
        .adapter(factory.clone());
    if recovery {
        builder = builder.connection_state_recovery(sockeye::RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(30),
            ..sockeye::RecoveryConfig::default()
        });
    }
    let io = builder.build();
    io.ns("/", |socket: SocketRef| async move {
        if !socket.recovered() {
            socket.join("r");
        }
    })
    .on("whoami", |socket: SocketRef| {
        Json(json!({"rooms": socket.rooms(), "recovered": socket.recovered()}))
    });
    let (addr, _server) = serve(&io).await;
    (io, addr)
}

async fn client(addr: std::net::SocketAddr, auth: Option<serde_json::Value>) -> SioClient {
    SioClient::connected(addr, "/", auth, WAIT)
        .await
        .unwrap_or_else(|e| panic!("client could not connect: {e}"))
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn message(uid: &str, nsp: &str, kind: u64, seq: Option<u64>, data: Value) -> Vec<u8> {
    let mut entries = vec![
        (Value::from("v"), Value::from(1)),
        (Value::from("uid"), Value::from(uid)),
        (Value::from("nsp"), Value::from(nsp)),
        (Value::from("type"), Value::from(kind)),
    ];
    if let Some(seq) = seq {
        entries.push((Value::from("seq"), Value::from(seq)));
    }
    entries.push((Value::from("data"), data));
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &Value::Map(entries)).unwrap();
    out
}

fn broadcast_data(event: &str, arg: i64) -> Value {
    Value::Map(vec![
        (
            Value::from("packet"),
            Value::Map(vec![
                (Value::from("type"), Value::from(2)),
                (
                    Value::from("data"),
                    Value::Array(vec![Value::from(event), Value::from(arg)]),
                ),
                (Value::from("nsp"), Value::from("/")),
            ]),
        ),
        (
            Value::from("opts"),
            Value::Map(vec![
                (Value::from("rooms"), Value::Array(vec![])),
                (Value::from("except"), Value::Array(vec![])),
            ]),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoned_messages_are_dropped_and_counted() {
    init_tracing();
    let prefix = unique("poison");
    let factory = connect(config(NATS, &prefix, false).max_message_size(4096)).await;
    let (_io, addr) = node(&factory, false).await;
    settle(std::slice::from_ref(&factory)).await;
    let mut c = client(addr, None).await;
    let raw = async_nats::connect(NATS).await.unwrap();
    let broadcast = format!("{prefix}.~2F.broadcast");
    let request = format!("{prefix}.~2F.request");
    let mut deep = vec![0x91u8; 100];
    deep.push(0xc0);
    let malformed: Vec<(String, Vec<u8>)> = vec![
        (broadcast.clone(), vec![0xc1]),
        (broadcast.clone(), b"{\"json\":true}".to_vec()),
        (broadcast.clone(), deep),
        // no seq on the broadcast subject
        (
            broadcast.clone(),
            message("evil", "/", 3, None, broadcast_data("x", 0)),
        ),
        // another namespace's message on this namespace's subject
        (
            broadcast.clone(),
            message("evil", "/other", 3, Some(1), broadcast_data("x", 0)),
        ),
        // unknown type, fetch without requestId
        (request.clone(), message("evil", "/", 99, None, Value::Nil)),
        (
            request.clone(),
            message("evil", "/", 7, None, Value::Map(vec![])),
        ),
        // a broadcast whose event name is not a string
        (
            broadcast.clone(),
            message(
                "evil2",
                "/",
                3,
                Some(1),
                Value::Map(vec![(
                    Value::from("packet"),
                    Value::Map(vec![
                        (Value::from("type"), Value::from(2)),
                        (Value::from("data"), Value::Array(vec![Value::from(1)])),
                        (Value::from("nsp"), Value::from("/")),
                    ]),
                )]),
            ),
        ),
    ];
    for (subject, payload) in &malformed {
        raw.publish(subject.clone(), payload.clone().into())
            .await
            .unwrap();
    }
    raw.publish(broadcast.clone(), vec![0x90; 5000].into())
        .await
        .unwrap();
    let mut v2 = message("evil", "/", 3, Some(1), broadcast_data("x", 0));
    // "v": 1 is the first entry: fixmap header, fixstr "v", positive fixint 1
    assert_eq!(&v2[1..4], &[0xa1, b'v', 0x01]);
    v2[3] = 0x02;
    raw.publish(broadcast.clone(), v2.into()).await.unwrap();
    // Then well-formed messages: seq 1 delivered, seq 1 again dropped, seq 5 delivered with
    // 3 counted as missed.
    for (seq, arg) in [(1, 1), (1, 1), (5, 5)] {
        raw.publish(
            broadcast.clone(),
            message("sender", "/", 3, Some(seq), broadcast_data("ok", arg)).into(),
        )
        .await
        .unwrap();
    }
    raw.flush().await.unwrap();
    assert_eq!(c.event("ok", WAIT).await, Some(vec![json!(1)]));
    assert_eq!(c.event("ok", WAIT).await, Some(vec![json!(5)]));
    assert_eq!(
        c.event("ok", Duration::from_millis(300)).await,
        None,
        "once each"
    );
    wait_for("the counters", || factory.stats().missed == 3).await;
    let s: StatsSnapshot = factory.stats();
    assert_eq!(s.malformed, malformed.len() as u64, "{s:?}");
    assert_eq!(s.oversized, 1, "{s:?}");
    assert_eq!(s.unknown_version, 1, "{s:?}");
    assert_eq!(s.duplicates, 1, "{s:?}");
    assert_eq!(s.missed, 3, "{s:?}");
    factory.close().await;
}

/// Node B reaches NATS through a fault proxy; node A directly.
struct Pair {
    prefix: String,
    jetstream: bool,
    a: NatsAdapterFactory,
    b: NatsAdapterFactory,
    io_a: SocketIo,
    io_b: SocketIo,
    addr_a: std::net::SocketAddr,
    addr_b: std::net::SocketAddr,
    proxy: FaultProxy,
}

async fn pair(label: &str, jetstream: bool) -> Pair {
    init_tracing();
    let prefix = unique(label);
    let proxy = FaultProxy::start(([127, 0, 0, 1], 4222).into())
        .await
        .unwrap();
    let tune = |c: NatsConfig| {
        c.heartbeat(Duration::from_millis(300), Duration::from_millis(1500))
            .request_timeout(Duration::from_secs(1))
    };
    let a = connect(tune(config(NATS, &prefix, jetstream))).await;
    let b = connect(tune(config(
        &format!("nats://{}", proxy.addr()),
        &prefix,
        jetstream,
    )))
    .await;
    let (io_a, addr_a) = node(&a, jetstream).await;
    let (io_b, addr_b) = node(&b, jetstream).await;
    settle(&[a.clone(), b.clone()]).await;
    Pair {
        prefix,
        jetstream,
        a,
        b,
        io_a,
        io_b,
        addr_a,
        addr_b,
        proxy,
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if self.jetstream {
            crate::common::delete_streams(&self.prefix);
        }
    }
}

fn cut(proxy: &FaultProxy) {
    proxy.refuse_new(true);
    proxy.reset_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_and_restored() {
    let p = pair("cut", false).await;
    let mut ca = client(p.addr_a, None).await;
    let mut cb = client(p.addr_b, None).await;
    p.io_a.emit("m", &0).await.unwrap();
    assert_eq!(cb.event("m", WAIT).await, Some(vec![json!(0)]));
    assert_eq!(ca.event("m", WAIT).await, Some(vec![json!(0)]));

    cut(&p.proxy);
    wait_for("B to notice the cut", || p.b.stats().disconnects >= 1).await;
    // B's emit reaches B's own client and fails for the others, saying so.
    let err = p.io_b.emit("from_b", &1).await.unwrap_err().to_string();
    assert!(err.contains("not published"), "{err}");
    assert!(err.contains("delivered to 1 sockets of this node"), "{err}");
    assert_eq!(cb.event("from_b", WAIT).await, Some(vec![json!(1)]));
    assert_eq!(ca.event("from_b", Duration::from_millis(300)).await, None);
    assert!(p.b.stats().publish_failed >= 1);
    for i in 1..=3 {
        p.io_a.emit("m", &i).await.unwrap();
    }
    assert_eq!(
        cb.event("m", Duration::from_millis(300)).await,
        None,
        "B is cut off"
    );

    p.proxy.refuse_new(false);
    wait_for("B to reconnect", || p.b.stats().reconnects >= 1).await;
    // A keeps emitting until B, resubscribed, gets one: every earlier one is counted missed.
    let mut next = 4;
    let first = loop {
        p.io_a.emit("m", &next).await.unwrap();
        if let Some(args) = cb.event("m", Duration::from_millis(200)).await {
            break args[0].as_i64().unwrap();
        }
        next += 1;
        assert!(next < 200, "B never got A's broadcasts again");
    };
    assert_eq!(
        first, next,
        "the first one after resubscribing, nothing older"
    );
    wait_for("the missed count", || {
        p.b.stats().missed == (first - 1) as u64
    })
    .await;
    p.io_a.emit("after", &1).await.unwrap();
    assert_eq!(cb.event("after", WAIT).await, Some(vec![json!(1)]));
    assert_eq!(
        cb.event("m", Duration::from_millis(300)).await,
        None,
        "nothing twice"
    );
    // B publishes again once it is back.
    p.io_b.emit("from_b", &2).await.unwrap();
    assert_eq!(ca.event("from_b", WAIT).await, Some(vec![json!(2)]));
    p.a.close().await;
    p.b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_requests_time_out() {
    let p = pair("kill", false).await;
    let _ca = client(p.addr_a, None).await;
    let _cb = client(p.addr_b, None).await;
    assert_eq!(p.io_a.server_count("/").await.unwrap(), 2);
    assert_eq!(p.io_a.root().fetch_sockets().await.unwrap().len(), 2);
    // B vanishes without a close notice.
    cut(&p.proxy);
    let start = tokio::time::Instant::now();
    let err = p.io_a.root().fetch_sockets().await.unwrap_err().to_string();
    let took = start.elapsed();
    assert!(err.contains("0 of 1 other nodes answered"), "{err}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // Once B's heartbeats are overdue it no longer counts, and requests answer at once.
    let deadline = tokio::time::Instant::now() + WAIT;
    while p.io_a.server_count("/").await.unwrap() != 1 {
        assert!(tokio::time::Instant::now() < deadline, "B still counts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sockets = p.io_a.root().fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 1);
    assert!(sockets[0].local);
    let _ = &p.io_b;
    p.a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_of_a_dead_node_is_recovered_by_another() {
    let p = pair("jsdead", true).await;
    // The client is on B (whose NATS connection can be cut), in room r.
    let c = client(p.addr_b, None).await;
    p.io_a.to("r").emit("m", &0).await.unwrap();
    let mut c = c;
    assert_eq!(c.event("m", WAIT).await, Some(vec![json!(0)]));
    let (pid, offset, sid) = (
        c.pid.clone().unwrap(),
        c.offset.clone().unwrap(),
        c.sid.clone(),
    );
    // Give B's live-session writer time to store the session with its room.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // B dies: cut from NATS first (it can store nothing more), then its client's transport.
    cut(&p.proxy);
    wait_for("B to notice the cut", || p.b.stats().disconnects >= 1).await;
    c.drop_transport();
    for i in 1..=3 {
        p.io_a.to("r").emit("m", &i).await.unwrap();
    }
    p.io_a.emit("all", &9).await.unwrap();
    let mut back = client(p.addr_a, Some(json!({"pid": pid, "offset": offset}))).await;
    assert_eq!(back.sid, sid, "same socket id");
    let (mut got, mut offsets) = (Vec::new(), Vec::new());
    while let Some(packet) = back.next(Duration::from_millis(500)).await {
        match packet {
            // Each replayed packet carries its offset as a last argument.
            sockeye_testkit::sio::Received::Event { name, args, .. } => {
                offsets.push(args[1].as_str().unwrap().parse::<u64>().unwrap());
                got.push((name, args[0].clone()));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        got,
        vec![
            ("m".to_owned(), json!(1)),
            ("m".to_owned(), json!(2)),
            ("m".to_owned(), json!(3)),
            ("all".to_owned(), json!(9)),
        ],
        "missed packets, once, in order"
    );
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]) && offsets[0] > offset.parse::<u64>().unwrap(),
        "offsets after the client's, increasing: {offsets:?}"
    );
    let id = back.emit_with_ack("whoami", &[]).await.unwrap();
    match back.next(WAIT).await {
        Some(sockeye_testkit::sio::Received::Ack { id: got, args }) if got == id => {
            assert_eq!(args[0]["recovered"], json!(true));
            let mut rooms: Vec<String> = serde_json::from_value(args[0]["rooms"].clone()).unwrap();
            rooms.sort();
            let mut want = vec![sid.clone(), "r".to_owned()];
            want.sort();
            assert_eq!(rooms, want);
        }
        other => panic!("expected whoami's ack, got {other:?}"),
    }
    let _ = &p.io_b;
    p.a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_session_does_not_move_while_its_node_holds_it() {
    let p = pair("jslive", true).await;
    let mut c = client(p.addr_b, None).await;
    p.io_a.to("r").emit("m", &0).await.unwrap();
    assert_eq!(
        c.event("m", WAIT).await.map(|a| a[0].clone()),
        Some(json!(0))
    );
    let (pid, offset, sid) = (
        c.pid.clone().unwrap(),
        c.offset.clone().unwrap(),
        c.sid.clone(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A stolen pid and a real offset presented to A while the socket is still connected to
    // B: B answers the liveness probe, so A gives a fresh socket.
    let thief = client(p.addr_a, Some(json!({"pid": pid, "offset": offset}))).await;
    assert_ne!(thief.sid, sid);
    // The owner is untouched and still live.
    p.io_a.to("r").emit("m", &1).await.unwrap();
    assert_eq!(
        c.event("m", WAIT).await.map(|a| a[0].clone()),
        Some(json!(1))
    );
    drop(c);
    let _ = (&p.io_a, &p.io_b);
    p.a.close().await;
    p.b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_node_catches_up_after_a_cut() {
    let p = pair("jscut", true).await;
    let mut cb = client(p.addr_b, None).await;
    p.io_a.emit("m", &0).await.unwrap();
    assert_eq!(
        cb.event("m", WAIT).await.map(|a| a[0].clone()),
        Some(json!(0))
    );
    cut(&p.proxy);
    wait_for("B to notice the cut", || p.b.stats().disconnects >= 1).await;
    // B cannot append: its emit fails at once and no node delivers it, B's own clients
    // included.
    let start = tokio::time::Instant::now();
    let err = p.io_b.emit("from_b", &1).await.unwrap_err().to_string();
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert!(err.contains("not published"), "{err}");
    assert_eq!(p.b.stats().publish_failed, 1);
    assert_eq!(cb.event("from_b", Duration::from_millis(300)).await, None);
    for i in 1..=3 {
        p.io_a.emit("m", &i).await.unwrap();
    }
    p.proxy.refuse_new(false);
    wait_for("B to reconnect", || p.b.stats().reconnects >= 1).await;
    // What A appended meanwhile is read from the stream: each once, in order.
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while got.len() < 3 && tokio::time::Instant::now() < deadline {
        if let Some(args) = cb.event("m", Duration::from_millis(500)).await {
            got.push(args[0].clone());
        }
    }
    assert_eq!(got, vec![json!(1), json!(2), json!(3)]);
    p.io_a.emit("m", &4).await.unwrap();
    assert_eq!(
        cb.event("m", WAIT).await.map(|a| a[0].clone()),
        Some(json!(4))
    );
    assert_eq!(
        cb.event("m", Duration::from_millis(300)).await,
        None,
        "nothing twice"
    );
    p.a.close().await;
    p.b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_then_blackholed_broker() {
    use sockeye_testkit::{Direction, Fault};
    let p = pair("slow", false).await;
    let mut ca = client(p.addr_a, None).await;
    let mut cb = client(p.addr_b, None).await;
    // Slow: 150 ms more each way on B's link. Order and exactly-once hold; requests answer.
    p.proxy
        .set(Direction::Both, Fault::Delay(Duration::from_millis(150)));
    for i in 0..20 {
        p.io_a.emit("m", &i).await.unwrap();
    }
    let mut got = Vec::new();
    while let Some(args) = cb.event("m", Duration::from_secs(2)).await {
        got.push(args[0].clone());
    }
    assert_eq!(got, (0..20).map(|i| json!(i)).collect::<Vec<_>>());
    assert_eq!(p.io_a.root().fetch_sockets().await.unwrap().len(), 2);

    // Blackholed upstream: B's publishes vanish while its connection looks healthy. Its emits
    // succeed (NATS gives no delivery receipt); A counts the loss once B gets through again.
    p.proxy.heal();
    tokio::time::sleep(Duration::from_millis(500)).await;
    p.proxy.set(Direction::Up, Fault::Blackhole);
    for i in 0..5 {
        p.io_b.emit("lost", &i).await.unwrap();
    }
    assert_eq!(ca.event("lost", Duration::from_millis(500)).await, None);
    let err = p.io_a.root().fetch_sockets().await.unwrap_err().to_string();
    assert!(err.contains("0 of 1 other nodes answered"), "{err}");
    p.proxy.heal();
    p.io_b.emit("back", &1).await.unwrap();
    assert_eq!(ca.event("back", WAIT).await, Some(vec![json!(1)]));
    assert_eq!(ca.event("lost", Duration::from_millis(300)).await, None);
    assert_eq!(p.a.stats().missed, 5, "{:?}", p.a.stats());
    p.a.close().await;
    p.b.close().await;
}
