//! How many broadcasts per second one node's adapter carries to another node (a figure for
//! docs/postgres.md, not a pass/fail check): `cargo test -p sockeye-postgres --test it --
//! throughput:: --ignored --nocapture`.

use std::time::{Duration, Instant};

use sockeye_testkit::sio::{Received, SioClient};

use crate::common::{self, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it by name with --ignored --nocapture"]
async fn broadcasts_per_second_between_two_nodes() {
    const N: usize = 5000;
    let prefix = common::prefix();
    let a = common::node(common::config(&prefix), "a").await;
    let b = common::node(common::config(&prefix), "b").await;
    common::until(WAIT, "both nodes count each other", || {
        a.pg.server_count("/") == Some(2) && b.pg.server_count("/") == Some(2)
    })
    .await;
    let mut on_b = SioClient::connected(b.addr, "/", None, WAIT).await.unwrap();
    let message = serde_json::json!({"user": "alice", "text": "hello, everybody in the room"});
    let start = Instant::now();
    for _ in 0..N {
        a.io.emit("chat", &message).await.unwrap();
    }
    let sent = start.elapsed();
    let mut got = 0;
    while got < N {
        match on_b.next(Duration::from_secs(5)).await {
            Some(Received::Event { .. }) => got += 1,
            other => panic!("after {got} of {N}: {other:?}"),
        }
    }
    let all = start.elapsed();
    println!(
        "{N} broadcasts: emitted (each awaited) in {sent:?}, all received on the other node in {all:?}: {:.0} broadcasts/s",
        N as f64 / all.as_secs_f64()
    );
}
