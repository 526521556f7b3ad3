//! A rough figure, not a pass/fail check: how many broadcasts per second cross from one node to
//! another through the shared Redis. Run with
//! `cargo test -p sockeye-redis --test it -- throughput:: --ignored --nocapture`.

use crate::common;

use std::time::{Duration, Instant};

use common::{SHARED_URL, config, node, redis_available, unique_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run explicitly"]
async fn broadcasts_per_second_between_two_nodes() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let key = unique_key("throughput");
    let a = node(config(SHARED_URL, &key), "a").await;
    let b = node(config(SHARED_URL, &key), "b").await;
    let n: u64 = 20_000;
    let payload =
        serde_json::json!({"user": "someone", "text": "a chat message of ordinary length", "n": 1});
    let start = Instant::now();
    for i in 0..n {
        // The publish queue is bounded: back off briefly when it is full.
        while a.io.emit("msg", &payload).await.is_err() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if i % 1000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let sent = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.redis.stats().received < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} arrived",
            b.redis.stats().received
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = start.elapsed();
    println!(
        "{n} broadcasts: queued in {sent:?}, all received by the other node after {total:?} = {:.0}/s; stats a={:?} b={:?}",
        n as f64 / total.as_secs_f64(),
        a.redis.stats(),
        b.redis.stats()
    );
    assert_eq!(b.redis.stats().malformed, 0);
}
