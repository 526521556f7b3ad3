//! A slow, then blackholed, link between one node and PostgreSQL (the testkit's fault proxy on
//! node b's connections, listener and publisher alike; node a connects directly).

use std::time::{Duration, Instant};

use serde_json::json;
use sockeye_postgres::PostgresConfig;
use sockeye_testkit::sio::SioClient;
use sockeye_testkit::{Direction, Fault, FaultProxy};

use crate::common::{self, WAIT};

/// Every cluster request of this test ends within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

fn tune(config: PostgresConfig) -> PostgresConfig {
    // No heartbeat falls inside the test (only the initial one), so that `publish_failed`
    // counts the application's emits and nothing else.
    config
        .request_timeout(REQUEST_TIMEOUT)
        .heartbeat_interval(Duration::from_secs(120))
        .heartbeat_timeout(Duration::from_secs(240))
}

async fn sio(addr: std::net::SocketAddr) -> SioClient {
    SioClient::connected(addr, "/", None, WAIT)
        .await
        .unwrap_or_else(|e| panic!("client could not connect: {e}"))
}

/// The arguments of every `event` that arrives before a `quiet` gap.
async fn drain(c: &mut SioClient, event: &str, quiet: Duration) -> Vec<serde_json::Value> {
    let mut got = Vec::new();
    while let Some(args) = c.event(event, quiet).await {
        got.push(args[0].clone());
    }
    got
}

/// With 150 ms added each way, broadcasts cross both ways once each and in order, and
/// `fetch_sockets` / `server_count` answer within their timeout. Blackholed (bytes swallowed,
/// no reset), b's emits reach b's own client and fail to the caller after `request_timeout`,
/// each counted in `publish_failed`, and a's `fetch_sockets` ends at its timeout. Healed, b
/// publishes again at once (on a new connection) and hears a again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_then_blackholed_database() {
    let prefix = common::prefix();
    let proxy = FaultProxy::start(([127, 0, 0, 1], 5432).into())
        .await
        .unwrap();
    let a = common::node(tune(common::config(&prefix)), "a").await;
    let b_conn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=test",
        proxy.addr().port()
    );
    let b_config = tune(
        PostgresConfig::new(b_conn)
            .channel_prefix(&prefix)
            .table_name(common::TABLE)
            .reconnect_delay(Duration::from_millis(300)),
    );
    let b = common::node(b_config, "b").await;
    common::until(WAIT, "both nodes count each other", || {
        a.pg.server_count("/") == Some(2) && b.pg.server_count("/") == Some(2)
    })
    .await;
    let mut on_a = sio(a.addr).await;
    let mut on_b = sio(b.addr).await;

    // Slow.
    proxy.set(Direction::Both, Fault::Delay(Duration::from_millis(150)));
    for i in 0..20 {
        a.io.emit("from-a", &i).await.unwrap();
    }
    let want: Vec<_> = (0..20).map(|i| json!(i)).collect();
    assert_eq!(
        drain(&mut on_b, "from-a", Duration::from_secs(2)).await,
        want,
        "a's broadcasts reach b once each, in order"
    );
    for i in 0..8 {
        let t = Instant::now();
        b.io.emit("from-b", &i).await.unwrap();
        // b's emit returns once PostgreSQL took the NOTIFY: one delayed round trip at least.
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
    for (name, node) in [("a", &a), ("b", &b)] {
        let t = Instant::now();
        let sockets = node.io.of("/").unwrap().fetch_sockets().await.unwrap();
        assert_eq!(sockets.len(), 2, "{name}: both sockets over the slow link");
        assert!(t.elapsed() < REQUEST_TIMEOUT, "{name}: {:?}", t.elapsed());
        assert_eq!(node.io.server_count("/").await.unwrap(), 2, "{name}");
    }
    let slow = b.pg.stats();
    assert_eq!(slow.publish_failed, 0, "{slow:?}");

    // Blackholed.
    proxy.set(Direction::Both, Fault::Blackhole);
    let mut errors = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        let err = b.io.emit("lost", &i).await.unwrap_err().to_string();
        let took = t.elapsed();
        assert!(
            took >= REQUEST_TIMEOUT - Duration::from_millis(100) && took < WAIT,
            "the publish failed after {took:?}"
        );
        assert!(err.contains("not published"), "{err}");
        assert_eq!(
            on_b.event("lost", WAIT).await,
            Some(vec![json!(i)]),
            "b's own client still gets it"
        );
        errors.push(err);
    }
    let blackholed = b.pg.stats();
    assert_eq!(
        blackholed.publish_failed - slow.publish_failed,
        3,
        "{blackholed:?}"
    );
    let t = Instant::now();
    let fetched = a.io.of("/").unwrap().fetch_sockets().await;
    let took = t.elapsed();
    assert!(fetched.is_err(), "b cannot answer: {fetched:?}");
    assert!(
        took >= REQUEST_TIMEOUT - Duration::from_millis(100) && took < REQUEST_TIMEOUT * 2,
        "fetch_sockets ended after {took:?}"
    );
    a.io.emit("unheard", &0).await.unwrap();
    assert_eq!(on_a.event("lost", Duration::from_millis(300)).await, None);

    // Healed: the publisher gave up its connection at the first unanswered request (an
    // answer would have been taken for a later request's), so b's next emit goes on a new
    // one and is published.
    proxy.heal();
    b.io.emit("back", &0).await.unwrap();
    assert_eq!(on_a.event("back", WAIT).await, Some(vec![json!(0)]));
    let healed = b.pg.stats();
    assert_eq!(
        healed.publish_failed, blackholed.publish_failed,
        "{healed:?}"
    );
    a.io.emit("after", &1).await.unwrap();
    assert_eq!(on_b.event("after", WAIT).await, Some(vec![json!(1)]));
    assert_eq!(on_a.event("lost", Duration::from_millis(300)).await, None);
    eprintln!(
        "postgres slow 150 ms each way: 20 + 8 broadcasts in order; blackholed: 3 emits failed \
         ({}); fetch ended after {took:?}; healed: the next emit published",
        errors[0]
    );
}
