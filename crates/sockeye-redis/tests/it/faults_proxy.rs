//! Redis faults through the testkit's TCP proxy between the nodes and a private Redis: an
//! outage (connections reset, new ones refused) with recovery, and a slow then partitioned
//! Redis. Cross-node traffic is server-side events (`tick` with a sequence number); local
//! delivery is checked with a raw WebSocket client on node `a`.

use crate::common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SHARED_URL, WAIT, config, node, redis_available, unique_key};
use sockeye::Args;
use sockeye_redis::{LocalOutcome, NotPublished, NotPublishedReason};
use sockeye_testkit::ws::{client_frame, handshake, opcode, read_frame};
use sockeye_testkit::{Direction, Fault, FaultProxy};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::{Instant, timeout};

/// A private `redis-server` on a spare port with a fault proxy in front of it; nodes connect
/// through `url`. The server is killed when this is dropped.
struct ProxiedRedis {
    _redis: Child,
    proxy: FaultProxy,
    url: String,
}

async fn proxied_redis() -> ProxiedRedis {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let redis = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot run redis-server: is it installed?");
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "private redis-server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let proxy = FaultProxy::start(([127, 0, 0, 1], port).into())
        .await
        .unwrap();
    let url = format!("redis://{}", proxy.addr());
    ProxiedRedis {
        _redis: redis,
        proxy,
        url,
    }
}

/// The `tick` numbers node `b` received from other nodes.
fn ticks_of(b: &common::Node) -> Arc<Mutex<Vec<u64>>> {
    let got: Arc<Mutex<Vec<u64>>> = Arc::default();
    let sink = got.clone();
    b.io.on_server_event("/", move |ev| {
        if ev.event == "tick"
            && let Ok(n) = ev.args.first::<u64>()
        {
            sink.lock().unwrap().push(n);
        }
    })
    .expect("namespace / exists");
    got
}

fn tick(a: &common::Node, n: u64) -> bool {
    a.redis
        .server_side_emit("/", "tick", &Args::from_value(&n).unwrap())
        .is_ok()
}

/// Sends ticks from `a` until `b` sees one at or above `from`; returns how long it took and
/// the next tick number (every tick below it was sent).
async fn until_ticks_cross(
    a: &common::Node,
    got: &Arc<Mutex<Vec<u64>>>,
    from: u64,
) -> (Duration, u64) {
    let started = Instant::now();
    let mut n = from;
    loop {
        tick(a, n);
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if got.lock().unwrap().iter().any(|&t| t >= from) {
            return (started.elapsed(), n);
        }
        assert!(
            started.elapsed() < WAIT,
            "no tick crossed from a to b within {WAIT:?}"
        );
    }
}

/// A raw WebSocket client connected to namespace `/` of a node.
pub(crate) struct LocalClient(TcpStream);

impl LocalClient {
    pub(crate) async fn connect(addr: std::net::SocketAddr) -> LocalClient {
        let (mut tcp, head) = handshake(addr, "/socket.io/?EIO=4&transport=websocket", &[])
            .await
            .unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let (_, _, open) = read_frame(&mut tcp, 4096).await.unwrap();
        assert!(open.starts_with(b"0{"));
        tcp.write_all(&client_frame(true, opcode::TEXT, b"40"))
            .await
            .unwrap();
        let (_, _, ok) = read_frame(&mut tcp, 4096).await.unwrap();
        assert!(ok.starts_with(b"40{"), "{}", String::from_utf8_lossy(&ok));
        LocalClient(tcp)
    }

    /// The next `42` event text, within the wait.
    pub(crate) async fn next_event(&mut self) -> String {
        self.event_within(WAIT)
            .await
            .expect("no local event within the wait")
    }

    /// The next `42` event text, or `None` if none arrives within `d`.
    pub(crate) async fn event_within(&mut self, d: Duration) -> Option<String> {
        let deadline = Instant::now() + d;
        loop {
            let (_, op, data) = tokio::time::timeout_at(deadline, read_frame(&mut self.0, 1 << 20))
                .await
                .ok()?
                .unwrap();
            if op == opcode::TEXT && data.starts_with(b"42") {
                return Some(String::from_utf8(data).unwrap());
            }
        }
    }
}

/// Pass: Redis unreachable for 5 s (every connection reset, new ones refused at the proxy)
/// then back. Nothing crashes; local delivery on node `a` goes on (every local emit of the
/// outage reaches its client, each within 1 s). Loss is accounted per message id: every tick
/// `a` sent during the outage is either refused to the caller (`QueueFull`), or published and
/// then delivered to `b` exactly once, or counted in `stats().publish_failed` (the only report
/// of a publish that failed after it was queued); never two of these, never none: the ticks
/// neither delivered nor refused are exactly as many as the failures counted. Then every
/// kind of traffic crosses again, in full: 200 ticks each way and 100 broadcasts to a client
/// of the other node, each once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_through_the_proxy_is_reported_and_recovers() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    // `_redis` (not `_`) keeps the server alive until the end of the test.
    let ProxiedRedis { _redis, proxy, url } = proxied_redis().await;
    let cfg = config(&url, &unique_key("outage"))
        .publish_queue(64)
        .command_timeout(Duration::from_millis(500));
    let a = node(cfg.clone(), "a").await;
    let b = node(cfg, "b").await;
    let got = ticks_of(&b);
    let next = until_ticks_cross(&a, &got, 0).await.1;
    // The last tick sent so far crossed (ticks keep their order): nothing of `a`'s is in
    // flight when Redis goes.
    crossed(&got, next - 1).await;
    let mut local = LocalClient::connect(a.addr).await;
    let before = a.redis.stats();

    proxy.refuse_new(true);
    proxy.reset_all();
    let outage = Instant::now();
    let ids = 1_000_000u64..;
    let mut ids = ids.into_iter();
    let mut sent = Vec::new();
    let mut refused = std::collections::BTreeSet::new();
    let mut local_sent = 0;
    while outage.elapsed() < Duration::from_secs(5) {
        for _ in 0..10 {
            let n = ids.next().unwrap();
            sent.push(n);
            if !tick(&a, n) {
                refused.insert(n);
            }
        }
        // Local only: its delivery is checked here, and it publishes nothing, so
        // `publish_failed` counts ticks alone.
        a.io.of("/")
            .unwrap()
            .local()
            .emit("local", &local_sent)
            .await
            .unwrap();
        let t = Instant::now();
        let ev = local.next_event().await;
        assert_eq!(ev, format!(r#"42["local",{local_sent}]"#));
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "local delivery took {:?}",
            t.elapsed()
        );
        local_sent += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let accepted = (sent.len() - refused.len()) as u64;
    // Each accepted tick is settled once it was published or counted failed. Redis stays
    // unreachable until then: a tick still queued when it returns would be published at
    // once, possibly before `b` resubscribed, and reach no one unreported (Redis pub/sub
    // keeps nothing; docs/guarantees.md §8 names this window).
    let deadline = Instant::now() + WAIT;
    let settle = loop {
        let s = a.redis.stats();
        let done = (s.published - before.published) + (s.publish_failed - before.publish_failed);
        if done >= accepted {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "{accepted} accepted ticks, only {done} published or counted failed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    proxy.refuse_new(false);
    let published = settle.published - before.published;
    let failed = settle.publish_failed - before.publish_failed;
    assert_eq!(published, 0, "published while Redis was unreachable");
    assert_eq!(
        published + failed,
        accepted,
        "a tick published or failed twice"
    );
    assert_eq!(
        settle.queue_full - before.queue_full,
        refused.len() as u64,
        "every refusal returned to the caller is counted"
    );

    // After the outage, all traffic crosses again, not one message.
    let (recovered_in, next) = until_ticks_cross(&a, &got, 2_000_000).await;
    crossed(&got, next - 1).await;
    assert!(b.redis.stats().reconnects >= 1 && a.redis.stats().reconnects >= 1);
    // In bursts of 50, within the publish queue of 64.
    for burst in (3_000_000..3_000_200).step_by(50) {
        for n in burst..burst + 50 {
            assert!(tick(&a, n), "tick {n} refused after the recovery");
        }
        crossed(&got, burst + 49).await;
    }
    settled(&got, 3_000_000..3_000_200, "200 ticks a -> b").await;
    let back = ticks_of(&a);
    for burst in (0..200).step_by(50) {
        for n in burst..burst + 50 {
            assert!(tick(&b, n), "tick {n} refused after the recovery");
        }
        crossed(&back, burst + 49).await;
    }
    settled(&back, 0..200, "200 ticks b -> a").await;
    // Per id, once the later traffic crossed (an outage tick, had any gone out, would have
    // arrived before it).
    let (first, last) = (sent[0], *sent.last().unwrap());
    let delivered: Vec<u64> = got
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|t| (first..=last).contains(t))
        .collect();
    let mut once = std::collections::BTreeSet::new();
    for t in &delivered {
        assert!(once.insert(*t), "tick {t} delivered twice");
        assert!(
            !refused.contains(t),
            "tick {t} refused to the caller and delivered"
        );
    }
    let neither: Vec<u64> = sent
        .iter()
        .copied()
        .filter(|t| !once.contains(t) && !refused.contains(t))
        .collect();
    assert_eq!(
        once.len() as u64,
        published,
        "published ticks that never arrived (or arrived unpublished)"
    );
    assert_eq!(
        neither.len() as u64,
        failed,
        "{} outage ticks: {} delivered, {} refused, {failed} counted failed, {} neither \
         delivered nor refused: the difference was lost silently",
        sent.len(),
        once.len(),
        refused.len(),
        neither.len()
    );
    let mut remote = LocalClient::connect(b.addr).await;
    for burst in (0..100).step_by(50) {
        for i in burst..burst + 50 {
            a.io.emit("after", &i).await.unwrap();
        }
        for i in burst..burst + 50 {
            assert_eq!(remote.next_event().await, format!(r#"42["after",{i}]"#));
        }
    }
    eprintln!(
        "redis outage 5 s: {} cross-node emits: {} refused (queue 64), {published} published \
         and delivered once after recovery, {failed} failed and counted, none silently lost; \
         {local_sent} local emits all delivered; recovered {recovered_in:?} after Redis came \
         back; then 200 + 200 ticks and 100 broadcasts crossed in full",
        sent.len(),
        refused.len()
    );
}

/// Waits until tick `n` crossed.
async fn crossed(got: &Arc<Mutex<Vec<u64>>>, n: u64) {
    let deadline = Instant::now() + WAIT;
    while !got.lock().unwrap().contains(&n) {
        assert!(Instant::now() < deadline, "tick {n} did not cross");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `got` holds exactly the ticks of `range`, each once and in order.
async fn settled(got: &Arc<Mutex<Vec<u64>>>, range: std::ops::Range<u64>, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let seen: Vec<u64> = got
            .lock()
            .unwrap()
            .iter()
            .copied()
            .filter(|t| range.contains(t))
            .collect();
        if seen.len() as u64 >= range.end - range.start {
            let want: Vec<u64> = range.clone().collect();
            assert_eq!(seen, want, "{what}: each once, in order");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {} crossed within {WAIT:?}",
            seen.len(),
            range.end - range.start
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pass: with 2 s of added latency each way, local delivery on node `a` stays under 500 ms and
/// a cluster request with a 1 s timeout fails within 3 s instead of waiting; with Redis then
/// blackholed (bytes swallowed, no reset) local delivery still works, cross-node emits are
/// refused once the bounded queue is full, requests still time out; once the network heals
/// (no reset) ticks cross again within the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_slow_then_blackholed_keeps_local_traffic_and_bounds_requests() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    // `_redis` (not `_`) keeps the server alive until the end of the test.
    let ProxiedRedis { _redis, proxy, url } = proxied_redis().await;
    let cfg = config(&url, &unique_key("slow"))
        .publish_queue(64)
        .request_timeout(Duration::from_secs(1))
        .command_timeout(Duration::from_millis(500));
    let a = node(cfg.clone(), "a").await;
    let b = node(cfg, "b").await;
    let got = ticks_of(&b);
    until_ticks_cross(&a, &got, 0).await;
    let mut local = LocalClient::connect(a.addr).await;

    proxy.set(Direction::Both, Fault::Delay(Duration::from_secs(2)));
    for i in 0..3 {
        let t = Instant::now();
        a.io.emit("local", &i).await.unwrap();
        assert_eq!(local.next_event().await, format!(r#"42["local",{i}]"#));
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "slow Redis: local took {:?}",
            t.elapsed()
        );
    }
    let t = Instant::now();
    let fetched = a.io.of("/").unwrap().fetch_sockets().await;
    let fetch_took = t.elapsed();
    // Either the request times out, or (documented in docs/redis.md) `PUBSUB NUMSUB` itself
    // timed out and the fetch degraded to this node's sockets; never a wait on the slow link.
    assert!(
        fetch_took < Duration::from_secs(3),
        "fetch took {fetch_took:?}"
    );
    let fetch_outcome = match &fetched {
        Err(e) => format!("error ({e})"),
        Ok(sockets) => {
            assert!(
                sockets.iter().all(|s| s.local),
                "a remote answer crossed a 2 s link within 1 s"
            );
            format!("degraded to {} local socket(s)", sockets.len())
        }
    };

    proxy.set(Direction::Both, Fault::Blackhole);
    let before = a.redis.stats();
    let mut refused = 0;
    for n in 1_000_000..1_000_500u64 {
        if !tick(&a, n) {
            refused += 1;
        }
    }
    let mut emit_errors = 0;
    for i in 3..6 {
        let t = Instant::now();
        // The broadcast reaches local clients; its cross-node half is refused (full queue),
        // and the caller is told so.
        if a.io.emit("local", &i).await.is_err() {
            emit_errors += 1;
        }
        assert_eq!(local.next_event().await, format!(r#"42["local",{i}]"#));
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "blackholed Redis: local took {:?}",
            t.elapsed()
        );
    }
    let t = Instant::now();
    let fetched = a.io.of("/").unwrap().fetch_sockets().await;
    let blackhole_fetch = t.elapsed();
    assert!(fetched.is_err() || fetched.as_ref().is_ok_and(|s| s.iter().all(|s| s.local)));
    assert!(
        blackhole_fetch < Duration::from_secs(3),
        "fetch took {blackhole_fetch:?}"
    );
    let during = a.redis.stats();
    assert!(
        refused >= 500 - 64 - 128,
        "only {refused} of 500 refused by a 64-message queue"
    );
    assert_eq!(during.queue_full - before.queue_full, refused + emit_errors);
    assert_eq!(
        emit_errors, 3,
        "the lost cross-node half of each broadcast is reported"
    );

    proxy.heal();
    let recovered_in = until_ticks_cross(&a, &got, 2_000_000).await.0;
    eprintln!(
        "redis slow 2 s: local delivery < 500 ms, fetch {fetch_outcome} after {fetch_took:?}; blackholed: \
         {refused}/500 cross-node emits refused, fetch failed after {blackhole_fetch:?}; \
         healed: ticks cross again after {recovered_in:?}"
    );
}

/// Pass: with Redis blackholed and a publish queue of 4, each of 20 `io.emit` calls on node `a`
/// reaches a's client once; every emit the queue refused returns an error that is a
/// [`NotPublished`] saying the packet was delivered to 1 local socket and the queue (4) is
/// full, and the refusals equal the `queue_full` counter. After the heal,
/// `publish_again` of each refused broadcast reaches b's client exactly once, and a's client
/// gets nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_publish_queue_reports_local_delivery_and_publish_again_reaches_the_others() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    // `_redis` (not `_`) keeps the server alive until the end of the test.
    let ProxiedRedis { _redis, proxy, url } = proxied_redis().await;
    let cfg = config(&url, &unique_key("queue"))
        .publish_queue(4)
        .request_timeout(Duration::from_secs(1))
        .command_timeout(Duration::from_millis(500));
    let a = node(cfg.clone(), "a").await;
    let b = node(cfg, "b").await;
    let mut on_a = LocalClient::connect(a.addr).await;
    let mut on_b = LocalClient::connect(b.addr).await;
    a.io.emit("ev", &0).await.unwrap();
    assert_eq!(on_a.next_event().await, r#"42["ev",0]"#);
    assert_eq!(on_b.next_event().await, r#"42["ev",0]"#);

    proxy.set(Direction::Both, Fault::Blackhole);
    let before = a.redis.stats();
    let mut refused = Vec::new();
    for i in 1..=20u64 {
        if let Err(e) = a.io.emit("ev", &i).await {
            let np = NotPublished::in_emit_error(&e)
                .unwrap_or_else(|| panic!("emit {i}: untyped error {e}"));
            assert_eq!(np.local, LocalOutcome::Delivered { recipients: 1 }, "{e}");
            assert_eq!(np.reason, NotPublishedReason::QueueFull { capacity: 4 });
            assert!(e.to_string().contains("delivered to 1 local socket"), "{e}");
            refused.push((i, np.clone()));
        }
    }
    for i in 1..=20u64 {
        assert_eq!(on_a.next_event().await, format!(r#"42["ev",{i}]"#));
    }
    let queue_full = a.redis.stats().queue_full - before.queue_full;
    assert!(
        // At most 4 wait in the queue, and the publishing task, stuck 500 ms on the
        // blackholed link per batch, takes a batch of at most 4 (two on a very slow run).
        refused.len() >= 20 - 4 - 2 * 4,
        "only {} of 20 refused by a 4-message queue",
        refused.len()
    );
    assert_eq!(queue_full, refused.len() as u64);

    proxy.heal();
    // Republish until the first one crosses (the publisher reconnects on its own), then the rest.
    let deadline = Instant::now() + WAIT;
    let mut crossed = Vec::new();
    let (first, _) = &refused[0];
    'first: loop {
        let _ = a.redis.publish_again(&refused[0].1);
        let wait = timeout(Duration::from_millis(700), on_b.next_event()).await;
        if let Ok(text) = wait {
            crossed.push(text.clone());
            if text == format!(r#"42["ev",{first}]"#) {
                break 'first;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no republished broadcast crossed"
        );
    }
    // The queue holds 4: a retry refused again (the same typed error) is retried later.
    for (i, np) in &refused[1..] {
        while let Err(e) = a.redis.publish_again(np) {
            assert!(NotPublished::in_adapter_error(&e).is_some(), "{e}");
            assert!(Instant::now() < deadline, "ev {i} could not be republished");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    while !refused
        .iter()
        .all(|(i, _)| crossed.contains(&format!(r#"42["ev",{i}]"#)))
    {
        crossed.push(on_b.next_event().await);
    }
    // Broadcasts queued before the blackhole may also arrive late or be lost (counted as
    // failed); none arrives twice, except the first one, republished until it crossed.
    for i in 1..=20u64 {
        let n = crossed
            .iter()
            .filter(|t| **t == format!(r#"42["ev",{i}]"#))
            .count();
        assert!(
            n <= 1 || i == *first,
            "ev {i} crossed {n} times: {crossed:?}"
        );
    }
    // Node a's client got nothing more: a marker from b arrives next.
    b.io.emit("end", &()).await.unwrap();
    assert_eq!(on_a.next_event().await, r#"42["end",null]"#);
    eprintln!(
        "publish queue 4, Redis blackholed: 20/20 emits delivered locally, {} refused with NotPublished (queue_full +{queue_full}); \
         after the heal {} republished, all reached node b once",
        refused.len(),
        refused.len()
    );
}
