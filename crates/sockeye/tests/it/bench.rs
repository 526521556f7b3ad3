//! Rough throughput figures, ignored by default. Run with
//! `cargo test -p sockeye --release --test it -- bench:: --ignored --nocapture --test-threads 1`.

use crate::common;

use std::time::{Duration, Instant};

use common::{F, Ws, builder, serve};
use sockeye::{Event, SocketRef};

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "benchmark: run explicitly in release"]
async fn echo_ack_round_trips() {
    let io = builder().build();
    io.ns("/", |_s: SocketRef| async {})
        .on("echo", |_s: SocketRef, e: Event| async move { e.args });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    let payload = "x".repeat(64);
    let mut lat = Vec::new();
    let start = Instant::now();
    let mut id = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        let t = Instant::now();
        ws.send(&format!(r#"42{id}["echo","{payload}"]"#)).await;
        assert!(matches!(ws.recv().await, F::T(_)));
        lat.push(t.elapsed());
        id += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    eprintln!(
        "echo: {} round trips in {secs:.2} s = {:.0}/s, p50 {:?}, p99 {:?}",
        lat.len(),
        lat.len() as f64 / secs,
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
#[ignore = "benchmark: run explicitly in release"]
async fn broadcast_fan_out() {
    let io = builder().engine(|e| e.max_queued_frames(100_000)).build();
    io.ns("/", |_s: SocketRef| async {});
    let addr = serve(&io).await;
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(Ws::open_connected(addr).await.0);
    }
    let messages = 1000;
    let start = Instant::now();
    for i in 0..messages {
        io.emit("tick", &i).await.unwrap();
    }
    let mut readers = Vec::new();
    for mut ws in clients {
        readers.push(tokio::spawn(async move {
            for _ in 0..messages {
                assert!(matches!(ws.recv().await, F::T(_)));
            }
        }));
    }
    for r in readers {
        r.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "broadcast: {} deliveries in {secs:.2} s = {:.0}/s",
        100 * messages,
        f64::from(100 * messages) / secs
    );
}
