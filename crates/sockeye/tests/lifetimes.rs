//! Dropping the last handle frees the whole server: its namespaces and handlers, its states,
//! its adapters and its engine, with no task left behind. Checked 1 000 times in one process,
//! each time after serving a real client, with drop counters and the process's RSS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sockeye::adapter::{Adapter, AdapterFactory, LocalNamespace, MemoryAdapter};
use sockeye::prelude::*;
use sockeye_testkit::contract::serve;
use sockeye_testkit::sio::SioClient;

const ROUNDS: usize = 1_000;
const WAIT: Duration = Duration::from_secs(10);

/// Counts its drops (when its last clone goes).
#[derive(Clone)]
struct Tracked {
    _counted: Arc<Counted>,
}

impl Tracked {
    fn new(counter: &Arc<AtomicUsize>) -> Tracked {
        Tracked {
            _counted: Arc::new(Counted(counter.clone())),
        }
    }
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// An in-memory adapter that counts its drops.
struct CountedAdapter {
    inner: MemoryAdapter,
    _drop: Counted,
}

impl std::ops::Deref for CountedAdapter {
    type Target = MemoryAdapter;
    fn deref(&self) -> &MemoryAdapter {
        &self.inner
    }
}

struct CountingFactory(Arc<AtomicUsize>);

impl AdapterFactory for CountingFactory {
    fn create(&self, local: LocalNamespace) -> Arc<dyn Adapter> {
        Arc::new(Forward(CountedAdapter {
            inner: MemoryAdapter::new(local),
            _drop: Counted(self.0.clone()),
        }))
    }
}

/// Delegates every adapter method to the counted in-memory adapter.
struct Forward(CountedAdapter);

macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $(fn $name(&self, $($arg: $ty),*) -> $ret { self.0.$name($($arg),*) })*
    };
}

impl Adapter for Forward {
    forward! {
        broadcast(packet: sockeye::adapter::BroadcastPacket, opts: sockeye::adapter::BroadcastOptions) -> sockeye::adapter::BoxFuture<'_, Result<(), sockeye::AdapterError>>;
        broadcast_with_ack(packet: sockeye::adapter::BroadcastPacket, opts: sockeye::adapter::BroadcastOptions, timeout: Duration) -> sockeye::adapter::BoxFuture<'_, Result<sockeye::adapter::AckStream, sockeye::AdapterError>>;
        fetch_sockets(opts: sockeye::adapter::BroadcastOptions) -> sockeye::adapter::BoxFuture<'_, Result<Vec<sockeye::adapter::SocketInfo>, sockeye::AdapterError>>;
        add_sockets(opts: sockeye::adapter::BroadcastOptions, rooms: Vec<String>) -> sockeye::adapter::BoxFuture<'_, Result<(), sockeye::AdapterError>>;
        del_sockets(opts: sockeye::adapter::BroadcastOptions, rooms: Vec<String>) -> sockeye::adapter::BoxFuture<'_, Result<(), sockeye::AdapterError>>;
        disconnect_sockets(opts: sockeye::adapter::BroadcastOptions, close: bool) -> sockeye::adapter::BoxFuture<'_, Result<(), sockeye::AdapterError>>;
        server_side_emit(packet: sockeye::adapter::BroadcastPacket) -> sockeye::adapter::BoxFuture<'_, Result<(), sockeye::AdapterError>>;
        server_side_emit_with_ack(packet: sockeye::adapter::BroadcastPacket, timeout: Duration) -> sockeye::adapter::BoxFuture<'_, Result<sockeye::adapter::AckStream, sockeye::AdapterError>>;
    }
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One round: build, register, serve, connect a client that emits and gets its ack, drop the
/// client, stop serving, drop every handle.
async fn round(
    states: &Arc<AtomicUsize>,
    adapters: &Arc<AtomicUsize>,
    handlers: &Arc<AtomicUsize>,
) {
    let (layer, io) = SocketIo::builder()
        .with_state(Tracked::new(states))
        .adapter(CountingFactory(adapters.clone()))
        .build_layer();
    let guard = Tracked::new(handlers);
    io.ns(
        "/",
        |socket: SocketRef, State(_state): State<Tracked>| async move {
            socket.join("lobby");
        },
    )
    .on("hi", move |io: SocketIo, Data(n): Data<u32>| {
        let _keep = &guard;
        async move {
            io.to("lobby").emit("seen", &n).await.unwrap();
            Json(n + 1)
        }
    });
    io.ns("/other", || ());
    let (addr, server) = serve(&io).await;
    let mut client = SioClient::connected(addr, "/", None, WAIT).await.unwrap();
    let id = client
        .emit_with_ack("hi", &[serde_json::json!(1)])
        .await
        .unwrap();
    loop {
        match client.next(WAIT).await {
            Some(sockeye_testkit::sio::Received::Ack { id: got, args }) if got == id => {
                assert_eq!(args, vec![serde_json::json!(2)]);
                break;
            }
            Some(sockeye_testkit::sio::Received::Event { .. }) => continue,
            other => panic!("expected the ack, got {other:?}"),
        }
    }
    drop(client);
    // The session ends when the server sees the connection go.
    eventually("the session closes", || io.engine().session_count() == 0).await;
    server.abort();
    let _ = server.await;
    drop(layer);
    drop(io);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_frees_the_server_each_time() {
    let states = Arc::new(AtomicUsize::new(0));
    let adapters = Arc::new(AtomicUsize::new(0));
    let handlers = Arc::new(AtomicUsize::new(0));
    let mut rss_after_warmup = 0;
    for n in 1..=ROUNDS {
        round(&states, &adapters, &handlers).await;
        // Everything is freed by the time the last handle is dropped, or very soon after
        // (a task that saw the session close may still be finishing).
        eventually("the state is dropped", || {
            states.load(Ordering::SeqCst) == n
        })
        .await;
        eventually("the handlers are dropped", || {
            handlers.load(Ordering::SeqCst) == n
        })
        .await;
        eventually("both namespaces' adapters are dropped", || {
            adapters.load(Ordering::SeqCst) == 2 * n
        })
        .await;
        if n == 100 {
            rss_after_warmup = rss_kib();
        }
    }
    let grown = rss_kib().saturating_sub(rss_after_warmup);
    assert!(
        grown < 2 * 1024,
        "RSS grew by {grown} KiB over {} rounds after warm-up",
        ROUNDS - 100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_frees_a_server_whose_handler_holds_its_handle() {
    let states = Arc::new(AtomicUsize::new(0));
    let io = SocketIo::builder()
        .with_state(Tracked::new(&states))
        .build();
    // A handler that captures the handle: a cycle only `close` can break.
    let captured = io.clone();
    io.ns("/", move |socket: SocketRef| {
        let io = captured.clone();
        async move {
            let _ = io.to(socket.id()).emit("hi", &1).await;
        }
    });
    let weak_probe = io.clone();
    drop(io);
    assert_eq!(states.load(Ordering::SeqCst), 0, "the cycle keeps it alive");
    weak_probe.close().await;
    drop(weak_probe);
    eventually("close broke the cycle", || {
        states.load(Ordering::SeqCst) == 1
    })
    .await;
}
