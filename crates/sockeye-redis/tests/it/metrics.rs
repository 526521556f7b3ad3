//! The adapter's metrics (crate feature `metrics`), read back with metrics-util's debugging
//! recorder: the publish lag of a message Redis took, the lost publishes of a full queue (also
//! counted by sockeye as a failed adapter operation) and of a Redis that went away.

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use sockeye::SocketIo;
use sockeye::prelude::*;
use sockeye_redis::RedisAdapterFactory;

use crate::common::{SHARED_URL, WAIT, config, redis_available, unique_key};
use crate::faults::{private_redis, spare_port};

/// Every metric as `name{label=value,...}`, summed over the snapshots taken (the recorder
/// resets counters when read); a histogram as its sample count.
#[derive(Default)]
struct Seen(HashMap<String, f64>);

impl Seen {
    fn take(&mut self, snapshotter: &Snapshotter) {
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            let n = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(samples) => samples.len() as f64,
            };
            *self.0.entry(name).or_default() += n;
        }
    }

    fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(0.0)
    }

    /// Takes snapshots until `name` is at least `min` (or fails after [`WAIT`]).
    async fn wait_for(&mut self, snapshotter: &Snapshotter, name: &str, min: f64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.take(snapshotter);
            if self.get(name) >= min {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} stayed below {min}: {:?}",
                self.0
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// One thread: a burst of emits runs without the publisher task draining the queue meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn publish_lag_and_lost_publishes_are_measured() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("no other recorder in this test binary");
    let port = spare_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut redis = private_redis(port).await;
    let cfg = config(&url, &unique_key("metrics"))
        .publish_queue(1)
        .command_timeout(Duration::from_secs(1));
    let factory = RedisAdapterFactory::connect(cfg)
        .await
        .expect("adapter connects");
    let io = SocketIo::builder()
        .metrics(true)
        .adapter(factory.clone())
        .build();
    io.ns("/", async |_: SocketRef| {});
    assert!(factory.ready(WAIT).await, "subscriptions not ready");
    let mut seen = Seen::default();

    // Redis takes it: one lag sample.
    io.emit("tick", &1).await.unwrap();
    seen.wait_for(&snapshotter, "socketio_redis_publish_lag_seconds{}", 1.0)
        .await;

    // A burst the one-message queue cannot hold: the publisher never runs in between.
    let mut refused = 0;
    for i in 0..10 {
        if io.emit("burst", &i).await.is_err() {
            refused += 1;
        }
    }
    assert!(refused >= 1, "a one-message queue took ten emits");
    seen.take(&snapshotter);
    assert_eq!(
        seen.get("socketio_adapter_errors_total{ns=/,operation=broadcast}"),
        f64::from(refused)
    );
    assert_eq!(
        seen.get("socketio_redis_publish_failures_total{reason=queue_full}"),
        f64::from(refused)
    );

    // Redis goes away: what the publisher had is lost, and counted.
    redis.kill().await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let _ = io.emit("during", &2).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        seen.take(&snapshotter);
        if seen.get("socketio_redis_publish_failures_total{reason=redis_error}") >= 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no publish failure counted with Redis down: {:?}",
            seen.0
        );
    }
}
