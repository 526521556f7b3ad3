//! A slow, then blackholed, link between one node and Redis (the testkit's fault proxy on node
//! b's publisher and subscriber; node a connects directly), and a node killed while another
//! waits for a callback from one of its sockets. The shared Redis is never restarted.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sockeye::{AckError, SocketIo};
use sockeye_pybus::{PyBusConfig, PyBusError, PyBusFactory};
use sockeye_testkit::contract::{WAIT, serve};
use sockeye_testkit::sio::{Received, SioClient};
use sockeye_testkit::{Direction, Fault, FaultProxy};

const REDIS: &str = "redis://127.0.0.1:6379/0";

fn channel(label: &str) -> String {
    use rand::Rng as _;
    format!("sockeye-{label}-{:08x}", rand::rng().random::<u32>())
}

async fn factory(config: PyBusConfig) -> PyBusFactory {
    PyBusFactory::connect(config)
        .await
        .unwrap_or_else(|e| panic!("the broker (Redis 6379 or RabbitMQ 5672) is needed: {e}"))
}

async fn node(bus: &PyBusFactory) -> (SocketIo, SocketAddr) {
    let io = SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
        .adapter(bus.clone())
        .build();
    io.ns("/", || async {});
    let (addr, _server) = serve(&io).await;
    (io, addr)
}

async fn client(addr: SocketAddr) -> SioClient {
    SioClient::connected(addr, "/", None, WAIT)
        .await
        .unwrap_or_else(|e| panic!("client could not connect: {e}"))
}

/// The arguments of every `event` that arrives before a `quiet` gap.
async fn drain(c: &mut SioClient, event: &str, quiet: Duration) -> Vec<Value> {
    let mut got = Vec::new();
    while let Some(args) = c.event(event, quiet).await {
        got.push(args[0].clone());
    }
    got
}

/// The next event with an ack id, within [`WAIT`].
async fn asked(c: &mut SioClient, event: &str) -> (Vec<Value>, u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.next(left).await {
            Some(Received::Event {
                name,
                args,
                ack: Some(id),
            }) if name == event => return (args, id),
            Some(Received::Closed) | None => panic!("no `{event}` with an ack id came"),
            Some(_) => {}
        }
    }
}

/// `io` asks socket `sid` (on another node) for an ack; the client answers `answer`.
async fn remote_callback(io: &SocketIo, sid: &str, c: &mut SioClient, answer: i64) {
    let ask = {
        let io = io.clone();
        let sid = sid.to_owned();
        tokio::spawn(async move {
            let stream = io
                .to(sid)
                .timeout(Duration::from_secs(3))
                .emit_with_ack("ask", &answer)
                .await
                .unwrap();
            stream.collect_all().await
        })
    };
    let (args, id) = asked(c, "ask").await;
    assert_eq!(args, vec![json!(answer)]);
    c.ack(id, &[json!(answer * 10)]).await.unwrap();
    let results = tokio::time::timeout(WAIT, ask).await.unwrap().unwrap();
    assert_eq!(results.len(), 1, "one answer: {results:?}");
    assert_eq!(results[0].0.as_str(), sid, "from the asked socket");
    let args = results[0].1.as_ref().expect("answered");
    assert_eq!(args.first::<Value>().unwrap(), json!(answer * 10));
}

/// With 150 ms added each way on b's link to Redis, broadcasts cross both ways once each and
/// in order, and remote callbacks both ways are answered within their timeout. Blackholed
/// (bytes swallowed, no reset), b's emits reach b's own client and fail to the caller with
/// `NotPublished` after `command_timeout`, each counted in `publish_failed`; a callback a asks
/// of b's socket ends empty at its timeout and its wait is freed. Healed, b publishes again at
/// once (on a new connection) and hears a again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_then_blackholed_redis() {
    slow_then_blackholed("redis", 6379, REDIS.to_owned(), |proxy| {
        format!("redis://{proxy}/0")
    })
    .await;
}

/// [`slow_then_blackholed_redis`] over RabbitMQ (the shared broker at 127.0.0.1:5672).
#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_then_blackholed_amqp() {
    slow_then_blackholed(
        "amqp",
        5672,
        "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
        |proxy| format!("amqp://guest:guest@{proxy}/%2f"),
    )
    .await;
}

async fn slow_then_blackholed(
    kind: &str,
    port: u16,
    direct: String,
    proxied: impl FnOnce(SocketAddr) -> String,
) {
    let channel = channel("slow");
    let proxy = FaultProxy::start(([127, 0, 0, 1], port).into())
        .await
        .unwrap();
    let command_timeout = Duration::from_secs(1);
    let config = |url: String| {
        PyBusConfig::new(url)
            .channel(channel.clone())
            .command_timeout(command_timeout)
    };
    let a = factory(config(direct)).await;
    let b = factory(config(proxied(proxy.addr()))).await;
    let (io_a, addr_a) = node(&a).await;
    let (io_b, addr_b) = node(&b).await;
    let mut on_a = client(addr_a).await;
    let mut on_b = client(addr_b).await;

    // Slow.
    proxy.set(Direction::Both, Fault::Delay(Duration::from_millis(150)));
    for i in 0..20 {
        io_a.emit("from-a", &i).await.unwrap();
    }
    let want: Vec<_> = (0..20).map(|i| json!(i)).collect();
    assert_eq!(
        drain(&mut on_b, "from-a", Duration::from_secs(2)).await,
        want,
        "a's broadcasts reach b once each, in order"
    );
    for i in 0..8 {
        let t = Instant::now();
        io_b.emit("from-b", &i).await.unwrap();
        // The emit returns once Redis took the PUBLISH: one delayed round trip at least.
        assert!(
            t.elapsed() >= Duration::from_millis(290),
            "the link is not slow: emit took {:?}",
            t.elapsed()
        );
    }
    let want: Vec<_> = (0..8).map(|i| json!(i)).collect();
    assert_eq!(
        drain(&mut on_a, "from-b", Duration::from_secs(2)).await,
        want,
        "b's broadcasts reach a once each, in order"
    );
    let sid_a = on_a.sid.clone();
    let sid_b = on_b.sid.clone();
    remote_callback(&io_a, &sid_b, &mut on_b, 1).await;
    remote_callback(&io_b, &sid_a, &mut on_a, 2).await;
    assert_eq!((a.pending_callbacks(), b.pending_callbacks()), (0, 0));
    let slow = b.stats();
    assert_eq!(slow.publish_failed, 0, "{slow:?}");

    // Blackholed.
    proxy.set(Direction::Both, Fault::Blackhole);
    for i in 0..3 {
        let t = Instant::now();
        let err = io_b.emit("lost", &i).await.unwrap_err();
        let took = t.elapsed();
        assert!(
            took >= command_timeout - Duration::from_millis(100) && took < WAIT,
            "the publish failed after {took:?}"
        );
        let sockeye::EmitError::Adapter(err) = err else {
            panic!("expected an adapter error, got {err:?}")
        };
        assert!(
            matches!(
                PyBusError::in_adapter_error(&err),
                Some(PyBusError::NotPublished { .. })
            ),
            "a NotPublished error: {err}"
        );
        assert_eq!(
            on_b.event("lost", WAIT).await,
            Some(vec![json!(i)]),
            "b's own client still gets it"
        );
    }
    let blackholed = b.stats();
    assert_eq!(
        blackholed.publish_failed - slow.publish_failed,
        3,
        "{blackholed:?}"
    );
    // a's callback to b's socket: b never hears it, so nothing answers and nothing reports a
    // count; the stream ends empty at the timeout.
    let t = Instant::now();
    let stream = io_a
        .to(sid_b.clone())
        .timeout(Duration::from_secs(1))
        .emit_with_ack("ask", &3)
        .await
        .unwrap();
    assert_eq!(a.pending_callbacks(), 1);
    let results = stream.collect_all().await;
    let took = t.elapsed();
    assert!(results.is_empty(), "{results:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "the callback ended after {took:?}"
    );
    assert_eq!(a.pending_callbacks(), 0, "the wait is freed");
    assert_eq!(on_a.event("lost", Duration::from_millis(300)).await, None);

    // Healed: the publisher dropped its connection at the first unanswered PUBLISH (an answer
    // would have been taken for a later request's), so b's next emit goes on a new one; b's
    // subscriber, which only reads, hears a again at once.
    proxy.heal();
    io_b.emit("back", &0).await.unwrap();
    assert_eq!(on_a.event("back", WAIT).await, Some(vec![json!(0)]));
    let healed = b.stats();
    assert_eq!(
        healed.publish_failed, blackholed.publish_failed,
        "{healed:?}"
    );
    io_a.emit("after", &1).await.unwrap();
    assert_eq!(on_b.event("after", WAIT).await, Some(vec![json!(1)]));
    assert_eq!(on_a.event("lost", Duration::from_millis(300)).await, None);
    eprintln!(
        "pybus {kind} slow 150 ms each way: 20 + 8 broadcasts in order, callbacks answered; \
         blackholed: 3 emits NotPublished, callback ended empty after {took:?}; healed: the \
         next emit published"
    );
    a.close();
    b.close();
}

/// b is killed (its runtime dropped at once, as a killed process) while a waits for the
/// answer of b's socket: b had reported that it asked one socket, so a's stream ends at its
/// timeout with one `AckError::Timeout`, and the wait is freed. Asked again once b is gone,
/// nobody reports anything: the stream ends empty at its timeout, the wait freed as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_during_a_remote_callback() {
    let channel = channel("kill");
    let config = || PyBusConfig::new(REDIS).channel(channel.clone());
    let a = factory(config()).await;
    let (io_a, _addr_a) = node(&a).await;
    let (kill, killed) = tokio::sync::oneshot::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let b_config = config();
    let b_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let b = factory(b_config).await;
            let (io_b, addr) = node(&b).await;
            started_tx.send(addr).unwrap();
            let _ = killed.await;
            std::mem::forget((b, io_b));
        });
        // Every task of b (server, sessions, publisher, subscriber) ends here, without a word.
        drop(rt);
    });
    let addr_b = started.await.unwrap();
    let mut on_b = client(addr_b).await;
    let sid = on_b.sid.clone();
    remote_callback(&io_a, &sid, &mut on_b, 1).await;
    assert_eq!(a.pending_callbacks(), 0);

    let timeout = Duration::from_secs(2);
    let received = a.stats().received;
    let t = Instant::now();
    let stream = io_a
        .to(sid.clone())
        .timeout(timeout)
        .emit_with_ack("ask", &2)
        .await
        .unwrap();
    let wait = tokio::spawn(stream.collect_all());
    let (_, _id) = asked(&mut on_b, "ask").await;
    // a hears its own message and b's count of asked sockets before b dies.
    let deadline = Instant::now() + WAIT;
    while a.stats().received < received + 2 {
        assert!(Instant::now() < deadline, "b's count never reached a");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(a.pending_callbacks(), 1);
    kill.send(()).unwrap();
    tokio::task::spawn_blocking(move || b_thread.join().unwrap())
        .await
        .unwrap();
    let results = tokio::time::timeout(WAIT, wait).await.unwrap().unwrap();
    let took = t.elapsed();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(
        matches!(results[0].1, Err(AckError::Timeout(d)) if d == timeout),
        "{results:?}"
    );
    assert!(
        took >= timeout - Duration::from_millis(100) && took < timeout * 2,
        "the callback ended after {took:?}"
    );
    assert_eq!(a.pending_callbacks(), 0, "the wait is freed");

    // b is gone: nobody answers and nobody reports a count.
    let t = Instant::now();
    let results = io_a
        .to(sid)
        .timeout(Duration::from_secs(1))
        .emit_with_ack("ask", &3)
        .await
        .unwrap()
        .collect_all()
        .await;
    let took_gone = t.elapsed();
    assert!(results.is_empty(), "{results:?}");
    assert!(
        took_gone >= Duration::from_millis(900) && took_gone < Duration::from_secs(3),
        "ended after {took_gone:?}"
    );
    assert_eq!(a.pending_callbacks(), 0);
    assert_eq!(a.stats().late_answers, 0);
    eprintln!(
        "pybus killed node: callback in flight ended with AckError::Timeout after {took:?}; \
         asked after the kill, ended empty after {took_gone:?}"
    );
    a.close();
}
