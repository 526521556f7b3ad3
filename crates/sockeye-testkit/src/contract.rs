//! The adapter contract suite: what every [`sockeye::adapter::Adapter`] must do, checked end to
//! end with real servers and WebSocket clients on loopback. `docs/architecture.md` states the
//! contract in words; this is the same contract as tests.
//!
//! An adapter crate runs it with [`adapter_contract!`](crate::adapter_contract), given an async
//! function that returns its [`Cluster`]:
//!
//! ```ignore
//! async fn memory() -> sockeye_testkit::contract::Single { Single }
//! sockeye_testkit::adapter_contract!(memory);
//! ```
//!
//! Each check starts its own nodes (as many as the cluster allows, at most two), so the checks
//! are independent and can run in parallel.

// A check fails by panicking, like any test: indexing the nodes and answers it just made is fine.
#![allow(clippy::indexing_slicing)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use sockeye::adapter::{
    AckStream, Adapter, AdapterFactory, BoxFuture, BroadcastOptions, BroadcastPacket,
    LocalNamespace, MemoryAdapterFactory, PersistedSession, Room, SocketInfo,
};
use sockeye::{AckError, AdapterError, RecoveryConfig, SocketIo, SocketIoBuilder};
use tower::ServiceExt as _;

use crate::sio::{Received, SioClient};

/// Generous: the machine is shared and loaded.
pub const WAIT: Duration = Duration::from_secs(10);

/// A boxed future, as [`Cluster`]'s methods return.
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The adapter under test, as the suite sees it.
pub trait Cluster: Send + Sync {
    /// The adapter factory of one more node of this cluster (nodes whose factories come from
    /// one `Cluster` value share one cluster).
    fn node_factory(&self) -> Fut<'_, Arc<dyn AdapterFactory>>;

    /// How many nodes one cluster can have (1 for a single-node adapter).
    fn max_nodes(&self) -> usize;

    /// Waits until what any node made so far publishes reaches all the others (a broker
    /// adapter: every subscription is in place).
    fn settle(&self) -> Fut<'_, ()> {
        Box::pin(std::future::ready(()))
    }

    /// True when the adapter implements connection-state recovery (the suite then requires
    /// it to work; otherwise it requires recovery to stay off).
    fn supports_recovery(&self) -> bool;

    /// True when a session kept by one node can be recovered on another.
    fn recovers_across_nodes(&self) -> bool {
        false
    }

    /// False when the adapter's backend cannot answer cluster queries (`fetch_sockets`,
    /// `server_count`, server-side emits), as python-socketio's bus: the suite then requires
    /// each of them to fail, never to answer for one node only.
    fn supports_cluster_queries(&self) -> bool {
        true
    }
}

/// The single-node cluster of the embedded in-memory adapter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Single;

impl Cluster for Single {
    fn node_factory(&self) -> Fut<'_, Arc<dyn AdapterFactory>> {
        Box::pin(std::future::ready(
            Arc::new(MemoryAdapterFactory) as Arc<dyn AdapterFactory>
        ))
    }

    fn max_nodes(&self) -> usize {
        1
    }

    fn supports_recovery(&self) -> bool {
        true
    }
}

/// A factory handed out as `Arc<dyn AdapterFactory>`.
struct Shared(Arc<dyn AdapterFactory>);

impl AdapterFactory for Shared {
    fn create(&self, local: LocalNamespace) -> Arc<dyn Adapter> {
        self.0.create(local)
    }
}

/// One node of a test cluster, served on loopback.
pub struct Node {
    /// The server.
    pub io: SocketIo,
    /// Where it listens.
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Serves `io` on an ephemeral loopback port until the returned handle is aborted.
pub async fn serve(io: &SocketIo) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("cannot listen on loopback: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"));
    let svc = io.service();
    let server = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let svc = svc.clone();
            connections.spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        svc.clone().oneshot(req)
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (addr, server)
}

/// The builder every check starts from: long pings (no PING interleaves with the checks).
fn builder() -> SocketIoBuilder {
    SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
}

/// Starts `n` nodes of `cluster` (capped at what it allows), each registering `/` with
/// `setup` before it serves.
pub async fn nodes(
    cluster: &dyn Cluster,
    n: usize,
    configure: impl Fn(SocketIoBuilder) -> SocketIoBuilder,
    setup: impl Fn(&SocketIo),
) -> Vec<Node> {
    let mut out = Vec::new();
    for _ in 0..n.min(cluster.max_nodes()) {
        let factory = cluster.node_factory().await;
        let io = configure(builder()).adapter(Shared(factory)).build();
        setup(&io);
        let (addr, server) = serve(&io).await;
        out.push(Node { io, addr, server });
    }
    cluster.settle().await;
    out
}

async fn client(node: &Node, auth: Option<Value>) -> SioClient {
    SioClient::connected(node.addr, "/", auth, WAIT)
        .await
        .unwrap_or_else(|e| panic!("client could not connect: {e}"))
}

/// A `/` namespace whose sockets join the rooms their auth names (`{"rooms": [...]}`) and
/// answer `ping` with `pong`.
fn rooms_from_auth(io: &SocketIo) {
    use sockeye::prelude::*;
    io.ns(
        "/",
        |socket: SocketRef, auth: Option<Auth<Value>>| async move {
            let rooms = auth
                .and_then(|Auth(a)| a.get("rooms").cloned())
                .and_then(|r| serde_json::from_value::<Vec<String>>(r).ok())
                .unwrap_or_default();
            socket.join_all(rooms);
        },
    )
    .on("ping", || Json("pong"));
}

/// Receives `name` events on `client` until silence, returning their first arguments.
async fn drain(client: &mut SioClient, name: &str, quiet: Duration) -> Vec<Value> {
    let mut got = Vec::new();
    while let Some(mut args) = client.event(name, quiet).await {
        got.push(if args.is_empty() {
            Value::Null
        } else {
            args.remove(0)
        });
    }
    got
}

/// Emits awaited one after the other reach every socket on every node in emit order, each
/// once; so do emits from the other node, and from a socket's own handler.
pub async fn order_and_exactly_once(cluster: &dyn Cluster) {
    const N: i64 = 200;
    let nodes = nodes(cluster, 2, |b| b, rooms_from_auth).await;
    let mut clients = Vec::new();
    for node in &nodes {
        clients.push(client(node, None).await);
        clients.push(client(node, None).await);
    }
    let last = &nodes[nodes.len() - 1].io;
    for i in 0..N {
        nodes[0]
            .io
            .emit("n", &i)
            .await
            .unwrap_or_else(|e| panic!("emit {i} failed: {e}"));
        last.emit("m", &i)
            .await
            .unwrap_or_else(|e| panic!("emit {i} failed: {e}"));
    }
    let expected: Vec<Value> = (0..N).map(|i| json!(i)).collect();
    for (k, c) in clients.iter_mut().enumerate() {
        let mut n = Vec::new();
        let mut m = Vec::new();
        while let Some(packet) = c.next(Duration::from_millis(500)).await {
            match packet {
                Received::Event { name, mut args, .. } if name == "n" => n.push(args.remove(0)),
                Received::Event { name, mut args, .. } if name == "m" => m.push(args.remove(0)),
                other => panic!("client {k}: unexpected {other:?}"),
            }
        }
        assert_eq!(n, expected, "client {k}: node 0's emits, in order, once");
        assert_eq!(
            m, expected,
            "client {k}: the last node's emits, in order, once"
        );
    }
}

/// The same order check through an adapter whose broadcasts wait a little, by a different
/// amount each time, before they do anything: awaiting each emit keeps the order all the same.
pub async fn order_through_a_slow_adapter(cluster: &dyn Cluster) {
    const N: i64 = 100;
    let slow = Slowed(cluster);
    let nodes = nodes(&slow, 1, |b| b, rooms_from_auth).await;
    let mut c = client(&nodes[0], None).await;
    for i in 0..N {
        nodes[0]
            .io
            .emit("n", &i)
            .await
            .unwrap_or_else(|e| panic!("emit {i} failed: {e}"));
    }
    let got = drain(&mut c, "n", Duration::from_millis(500)).await;
    assert_eq!(got, (0..N).map(|i| json!(i)).collect::<Vec<_>>());
}

/// Rooms, except, and several target rooms: each socket targeted exactly once, on every node.
pub async fn rooms_and_except(cluster: &dyn Cluster) {
    let nodes = nodes(cluster, 2, |b| b, rooms_from_auth).await;
    let last = nodes.len() - 1;
    let mut red = client(&nodes[0], Some(json!({"rooms": ["red"]}))).await;
    let mut both = client(&nodes[0], Some(json!({"rooms": ["red", "blue"]}))).await;
    let mut remote_red = client(&nodes[last], Some(json!({"rooms": ["red"]}))).await;
    let mut none = client(&nodes[last], None).await;
    let io = &nodes[0].io;
    io.to("red")
        .except("blue")
        .emit("a", &1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    io.to(["red", "blue"])
        .emit("b", &2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    io.except(both.sid.as_str())
        .emit("c", &3)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    io.to(remote_red.sid.as_str())
        .emit("d", &4)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let quiet = Duration::from_millis(500);
    for (label, c, want) in [
        ("red", &mut red, vec!["a", "b", "c"]),
        ("red+blue", &mut both, vec!["b"]),
        ("remote red", &mut remote_red, vec!["a", "b", "c", "d"]),
        ("no room", &mut none, vec!["c"]),
    ] {
        let mut names = Vec::new();
        while let Some(packet) = c.next(quiet).await {
            match packet {
                Received::Event { name, .. } => names.push(name),
                other => panic!("{label}: unexpected {other:?}"),
            }
        }
        assert_eq!(names, want, "{label}: what it got, in order, once each");
    }
}

/// A broadcast with ack yields every recipient's answer, on every node, and a timeout for each
/// recipient that does not answer, then ends.
pub async fn acks_with_timeout(cluster: &dyn Cluster) {
    let nodes = nodes(cluster, 2, |b| b, rooms_from_auth).await;
    let last = nodes.len() - 1;
    let mut answering = [
        client(&nodes[0], Some(json!({"rooms": ["r"]}))).await,
        client(&nodes[last], Some(json!({"rooms": ["r"]}))).await,
    ];
    let mut silent = client(&nodes[last], Some(json!({"rooms": ["r"]}))).await;
    let timeout = Duration::from_millis(800);
    let stream = nodes[0]
        .io
        .to("r")
        .timeout(timeout)
        .emit_with_ack("q", &"?")
        .await
        .unwrap_or_else(|e| panic!("broadcast with ack failed: {e}"));
    let collector = tokio::spawn(stream.collect_all());
    for (k, c) in answering.iter_mut().enumerate() {
        match c.next(WAIT).await {
            Some(Received::Event {
                name,
                args,
                ack: Some(id),
            }) if name == "q" && args == vec![json!("?")] => {
                c.ack(id, &[json!(k)])
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            other => panic!("client {k}: expected the question with an ack id, got {other:?}"),
        }
    }
    match silent.next(WAIT).await {
        Some(Received::Event { ack: Some(_), .. }) => {}
        other => panic!("the silent client should get the question too, got {other:?}"),
    }
    let results = tokio::time::timeout(WAIT, collector)
        .await
        .unwrap_or_else(|_| panic!("the ack stream did not end after its timeout"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut answers: Vec<Value> = Vec::new();
    let mut timeouts = 0;
    for (_, result) in results {
        match result {
            Ok(args) => answers.push(args.first::<Value>().unwrap_or(Value::Null)),
            Err(AckError::Timeout(_)) => timeouts += 1,
            Err(e) => panic!("unexpected ack error: {e}"),
        }
    }
    answers.sort_by_key(Value::to_string);
    let mut expected: Vec<Value> = (0..answering.len()).map(|k| json!(k)).collect();
    expected.sort_by_key(Value::to_string);
    assert_eq!(answers, expected, "every answer, once");
    assert_eq!(timeouts, 1, "one timeout for the silent client");
}

/// Fetching, joining, leaving and disconnecting sockets by room, on every node.
pub async fn remote_fetch_join_leave_disconnect(cluster: &dyn Cluster) {
    let nodes = nodes(cluster, 2, |b| b, rooms_from_auth).await;
    let last = nodes.len() - 1;
    let mut here = client(&nodes[0], Some(json!({"rooms": ["r"]}))).await;
    let mut there = client(&nodes[last], Some(json!({"rooms": ["r", "s"]}))).await;
    let io = &nodes[0].io;
    if cluster.supports_cluster_queries() {
        check_fetch(io, &here, &there, last).await;
    } else {
        assert!(
            io.to("r").fetch_sockets().await.is_err(),
            "an adapter without cluster queries must refuse fetch_sockets"
        );
    }
    io.to("s")
        .join("t")
        .await
        .unwrap_or_else(|e| panic!("join failed: {e}"));
    cluster.settle().await;
    io.to("t")
        .emit("in-t", &1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(there.event("in-t", WAIT).await, Some(vec![json!(1)]));
    io.to("s")
        .leave("r")
        .await
        .unwrap_or_else(|e| panic!("leave failed: {e}"));
    io.to("r")
        .emit("in-r", &2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(here.event("in-r", WAIT).await, Some(vec![json!(2)]));
    assert_eq!(
        there.event("in-r", Duration::from_millis(500)).await,
        None,
        "the socket left r everywhere"
    );
    io.to("t")
        .disconnect()
        .await
        .unwrap_or_else(|e| panic!("disconnect failed: {e}"));
    assert_eq!(there.next(WAIT).await, Some(Received::Disconnect));
    assert_eq!(here.next(Duration::from_millis(300)).await, None);
}

/// The fetch part of [`remote_fetch_join_leave_disconnect`].
async fn check_fetch(io: &SocketIo, here: &SioClient, there: &SioClient, last: usize) {
    let fetched = io
        .to("r")
        .fetch_sockets()
        .await
        .unwrap_or_else(|e| panic!("fetch failed: {e}"));
    let mut ids: Vec<(String, bool, Vec<Room>)> = fetched
        .iter()
        .map(|s: &SocketInfo| (s.id.as_str().to_owned(), s.local, s.rooms.clone()))
        .collect();
    ids.sort();
    let mut want = vec![
        (
            here.sid.clone(),
            true,
            sorted(vec![here.sid.clone(), "r".into()]),
        ),
        (
            there.sid.clone(),
            last == 0,
            sorted(vec![there.sid.clone(), "r".into(), "s".into()]),
        ),
    ];
    want.sort();
    assert_eq!(
        ids, want,
        "every socket of room r, with its rooms, local flag right"
    );
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Server-side emits reach the other nodes' handlers and their answers come back; the server
/// count is the number of nodes.
pub async fn server_side_emit_and_count(cluster: &dyn Cluster) {
    let nodes = nodes(cluster, 2, |b| b, rooms_from_auth).await;
    if !cluster.supports_cluster_queries() {
        let io = &nodes[0].io;
        assert!(
            io.server_count("/").await.is_err(),
            "server_count must fail"
        );
        assert!(
            io.server_side_emit("/", "hello", &1).await.is_err(),
            "server_side_emit must fail"
        );
        assert!(
            io.server_side_emit_with_ack("/", "hello", &1, Duration::from_secs(1))
                .await
                .is_err(),
            "server_side_emit_with_ack must fail"
        );
        return;
    }
    for node in &nodes {
        node.io
            .on_server_event("/", |event: sockeye::ServerEvent| {
                if let Some(ack) = event.ack {
                    let _ = ack.send(&json!({"echo": event.event}));
                }
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let count = nodes[0]
        .io
        .server_count("/")
        .await
        .unwrap_or_else(|e| panic!("server count failed: {e}"));
    assert_eq!(count, nodes.len(), "server count");
    let stream: AckStream = nodes[0]
        .io
        .server_side_emit_with_ack("/", "hello", &1, Duration::from_secs(2))
        .await
        .unwrap_or_else(|e| panic!("server-side emit failed: {e}"));
    let answers: Vec<Value> = stream
        .collect_all()
        .await
        .into_iter()
        .map(|(_, r)| match r {
            Ok(args) => args.first::<Value>().unwrap_or(Value::Null),
            Err(e) => panic!("no answer from a node: {e}"),
        })
        .collect();
    assert_eq!(
        answers,
        vec![json!({"echo": "hello"}); nodes.len() - 1],
        "one answer per other node"
    );
    nodes[0]
        .io
        .server_side_emit("/", "hello", &2)
        .await
        .unwrap_or_else(|e| panic!("server-side emit failed: {e}"));
}

/// Connection-state recovery through the adapter: a client whose transport dropped comes back
/// with its pid and offset and gets its id, rooms and session back, and every packet it
/// missed exactly once, in order; a reused or forged pid, or an offset from the future, gets a
/// fresh session. Adapters without recovery must send no pid.
pub async fn recovery(cluster: &dyn Cluster) {
    use sockeye::prelude::*;
    let enable = |b: SocketIoBuilder| {
        b.connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(30),
            ..RecoveryConfig::default()
        })
    };
    let setup = |io: &SocketIo| {
        io.ns("/", |socket: SocketRef| async move {
            if !socket.recovered() {
                socket.join("r");
                socket.save_session(json!({"n": 7}));
            }
        })
        .on("whoami", |socket: SocketRef| {
            Json(json!({
                "rooms": socket.rooms(),
                "session": socket.get_session::<Value>(),
                "recovered": socket.recovered(),
            }))
        });
    };
    let nodes = nodes(cluster, 2, enable, setup).await;
    let mut c = client(&nodes[0], None).await;
    let Some(pid) = c.pid.clone() else {
        assert!(
            !cluster.supports_recovery(),
            "the adapter supports recovery: the CONNECT reply must carry a pid"
        );
        assert!(
            nodes[0].io.recovery_stats("/").is_none(),
            "an adapter without recovery leaves it off: no pid, no stats"
        );
        return;
    };
    assert!(
        cluster.supports_recovery(),
        "the adapter does not support recovery: the CONNECT reply must carry no pid"
    );
    let io = &nodes[0].io;
    io.to("r")
        .emit("m", &0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.event("m", WAIT).await, Some(vec![json!(0)]));
    let offset = c
        .offset
        .clone()
        .unwrap_or_else(|| panic!("broadcasts carry an offset"));
    let sid = c.sid.clone();
    c.drop_transport();
    // The server keeps the session once it sees the transport gone.
    let deadline = tokio::time::Instant::now() + WAIT;
    while io.recovery_stats("/").map_or(0, |s| s.sessions_persisted) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "session never kept");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 1..=5 {
        io.to("r")
            .emit("m", &i)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let back_to = if cluster.recovers_across_nodes() {
        &nodes[nodes.len() - 1]
    } else {
        &nodes[0]
    };
    let auth = json!({"pid": pid, "offset": offset});
    let mut back = client(back_to, Some(auth.clone())).await;
    assert_eq!(back.sid, sid, "same socket id");
    let missed = drain(&mut back, "m", Duration::from_millis(500)).await;
    assert_eq!(
        missed,
        (1..=5).map(|i| json!(i)).collect::<Vec<_>>(),
        "missed, once, in order"
    );
    let id = back
        .emit_with_ack("whoami", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    match back.next(WAIT).await {
        Some(Received::Ack { id: got, args }) if got == id => {
            let me = &args[0];
            assert_eq!(me["recovered"], json!(true));
            assert_eq!(me["session"], json!({"n": 7}));
            assert_eq!(me["rooms"], json!(sorted(vec![sid.clone(), "r".into()])));
        }
        other => panic!("expected whoami's ack, got {other:?}"),
    }
    io.to("r")
        .emit("m", &6)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        back.event("m", WAIT).await,
        Some(vec![json!(6)]),
        "live again"
    );

    // A used pid, a forged one, and an offset from the future: fresh sessions.
    for (label, auth) in [
        ("reused pid", auth),
        (
            "forged pid",
            json!({"pid": "0123456789abcdef0123456789abcdef", "offset": offset}),
        ),
    ] {
        let fresh = client(&nodes[0], Some(auth)).await;
        assert_ne!(fresh.sid, sid, "{label}: a fresh socket");
    }
    let future = client(&nodes[0], None).await;
    let (fpid, fsid) = (future.pid.clone(), future.sid.clone());
    future.drop_transport();
    let deadline = tokio::time::Instant::now() + WAIT;
    while io.recovery_stats("/").map_or(0, |s| s.sessions_persisted) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "session never kept");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let from_future = client(
        &nodes[0],
        Some(json!({"pid": fpid, "offset": "999999999999999999"})),
    )
    .await;
    assert_ne!(
        from_future.sid, fsid,
        "an offset from the future: a fresh socket"
    );
}

/// Closing a node closes its adapter; the other nodes go on, and the closed node's server
/// count disappears from theirs.
pub async fn close(cluster: &dyn Cluster) {
    let mut nodes = nodes(cluster, 2, |b| b, rooms_from_auth).await;
    let mut c = client(&nodes[0], None).await;
    let first = nodes.remove(0);
    tokio::time::timeout(WAIT, first.io.close())
        .await
        .unwrap_or_else(|_| panic!("close did not finish in time"));
    assert!(
        matches!(
            c.next(WAIT).await,
            Some(Received::Closed | Received::Disconnect)
        ),
        "the node's clients are closed"
    );
    if let Some(other) = nodes.first() {
        let deadline = tokio::time::Instant::now() + WAIT;
        while cluster.supports_cluster_queries() {
            let count = other
                .io
                .server_count("/")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            if count == 1 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the closed node still counts: {count}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut d = client(other, None).await;
        other
            .io
            .emit("still", &1)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.event("still", WAIT).await, Some(vec![json!(1)]));
    }
}

/// A cluster whose adapters' broadcasts first wait a little (0 to 3 ms, varying) before doing
/// anything: a future that is pending on its first poll, as a broker's would be.
struct Slowed<'a>(&'a dyn Cluster);

impl Cluster for Slowed<'_> {
    fn node_factory(&self) -> Fut<'_, Arc<dyn AdapterFactory>> {
        Box::pin(async move {
            let inner = self.0.node_factory().await;
            Arc::new(SlowFactory(inner)) as Arc<dyn AdapterFactory>
        })
    }

    fn max_nodes(&self) -> usize {
        self.0.max_nodes()
    }

    fn settle(&self) -> Fut<'_, ()> {
        self.0.settle()
    }

    fn supports_recovery(&self) -> bool {
        self.0.supports_recovery()
    }

    fn supports_cluster_queries(&self) -> bool {
        self.0.supports_cluster_queries()
    }
}

struct SlowFactory(Arc<dyn AdapterFactory>);

impl AdapterFactory for SlowFactory {
    fn create(&self, local: LocalNamespace) -> Arc<dyn Adapter> {
        Arc::new(SlowAdapter {
            inner: self.0.create(local),
            turn: std::sync::atomic::AtomicU64::new(0),
        })
    }
}

/// Delays each broadcast by a different amount, then delegates.
pub struct SlowAdapter {
    inner: Arc<dyn Adapter>,
    turn: std::sync::atomic::AtomicU64,
}

impl SlowAdapter {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Adapter>) -> SlowAdapter {
        SlowAdapter {
            inner,
            turn: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn delay(&self) -> Duration {
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // 3, 0, 2, 1, 3, 0, ... ms: later emits often wait less than earlier ones.
        Duration::from_millis((turn * 7 + 3) % 4)
    }
}

impl Adapter for SlowAdapter {
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let delay = self.delay();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            tokio::task::yield_now().await;
            self.inner.broadcast(packet, opts).await
        })
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        let delay = self.delay();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            self.inner.broadcast_with_ack(packet, opts, timeout).await
        })
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        self.inner.fetch_sockets(opts)
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.add_sockets(opts, rooms)
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.del_sockets(opts, rooms)
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.disconnect_sockets(opts, close)
    }

    fn server_side_emit(&self, packet: BroadcastPacket) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.server_side_emit(packet)
    }

    fn server_side_emit_with_ack(
        &self,
        packet: BroadcastPacket,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        self.inner.server_side_emit_with_ack(packet, timeout)
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        self.inner.server_count()
    }

    fn supports_recovery(&self) -> bool {
        self.inner.supports_recovery()
    }

    fn persist_session(
        &self,
        session: PersistedSession,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.persist_session(session)
    }

    fn session_changed(&self, session: PersistedSession) {
        self.inner.session_changed(session);
    }

    fn session_ended(&self, pid: &str) {
        self.inner.session_ended(pid);
    }

    fn take_session(
        &self,
        pid: &str,
    ) -> BoxFuture<'_, Result<Option<PersistedSession>, AdapterError>> {
        self.inner.take_session(pid)
    }

    fn missed_packets<'a>(
        &'a self,
        session: &'a PersistedSession,
        offset: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<BroadcastPacket>>, AdapterError>> {
        self.inner.missed_packets(session, offset)
    }

    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.close()
    }
}

/// Defines one `#[tokio::test]` per check of the suite, each on a fresh cluster from
/// `$make().await` (an async function returning something that implements [`Cluster`]).
#[macro_export]
macro_rules! adapter_contract {
    ($make:path) => {
        mod contract {
            use super::*;

            macro_rules! check {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let cluster = $make().await;
                        $crate::contract::$name(&cluster).await;
                    }
                };
            }

            check!(order_and_exactly_once);
            check!(order_through_a_slow_adapter);
            check!(rooms_and_except);
            check!(acks_with_timeout);
            check!(remote_fetch_join_leave_disconnect);
            check!(server_side_emit_and_count);
            check!(recovery);
            check!(close);
        }
    };
}
