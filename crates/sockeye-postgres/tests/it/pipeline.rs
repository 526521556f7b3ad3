//! Several emitters at once on one node: the publisher pipelines their messages on its one
//! connection, and each emitter's broadcasts still reach the other node once each, in order.

use std::time::{Duration, Instant};

use serde_json::json;
use sockeye_testkit::sio::{Received, SioClient};

use crate::common::{self, WAIT};

async fn run(tasks: usize, per_task: usize) -> Duration {
    let prefix = common::prefix();
    let a = common::node(common::config(&prefix), "a").await;
    let b = common::node(common::config(&prefix), "b").await;
    common::until(WAIT, "both nodes count each other", || {
        a.pg.server_count("/") == Some(2) && b.pg.server_count("/") == Some(2)
    })
    .await;
    let mut on_b = SioClient::connected(b.addr, "/", None, WAIT).await.unwrap();
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let io = a.io.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                io.emit("n", &json!([t, i])).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let mut next = vec![0usize; tasks];
    let total = tasks * per_task;
    for got in 0..total {
        match on_b.next(WAIT).await {
            Some(Received::Event { name, args, .. }) if name == "n" => {
                let pair = args[0].as_array().unwrap();
                let (t, i) = (
                    usize::try_from(pair[0].as_u64().unwrap()).unwrap(),
                    usize::try_from(pair[1].as_u64().unwrap()).unwrap(),
                );
                assert_eq!(i, next[t], "emitter {t}: out of order or repeated");
                next[t] += 1;
            }
            other => panic!("after {got} of {total}: {other:?}"),
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(
        on_b.next(Duration::from_millis(300)).await,
        None,
        "nothing more"
    );
    assert_eq!(next, vec![per_task; tasks]);
    assert_eq!(a.pg.stats().publish_failed, 0);
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_emitters_keep_their_own_order() {
    run(8, 150).await;
}

/// A figure for docs/postgres.md: `cargo test -p sockeye-postgres --test it --
/// pipeline::broadcasts_per_second_with_concurrent_emitters --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it by name with --ignored --nocapture"]
async fn broadcasts_per_second_with_concurrent_emitters() {
    let (tasks, per_task) = (16, 625);
    let elapsed = run(tasks, per_task).await;
    println!(
        "{} broadcasts from {tasks} concurrent emitters, all received in order on the other node in {elapsed:?}: {:.0} broadcasts/s",
        tasks * per_task,
        (tasks * per_task) as f64 / elapsed.as_secs_f64()
    );
}
