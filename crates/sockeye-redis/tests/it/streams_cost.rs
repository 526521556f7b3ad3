//! What live sessions cost (a measurement, not a check; ignored in the suite): one sockeye
//! node in streams mode with recovery on, on a private `redis-server` (so that the command
//! counts are this node's alone), N clients connect one after the other, then each joins a
//! room (an awaited ack each); once with live sessions off, once on. Prints the Redis
//! commands and Redis CPU time per connect and per join, and the wall time per operation.
//!
//! `cargo test -p sockeye-redis --test it streams_cost -- --ignored --nocapture`

use std::time::{Duration, Instant};

use serde_json::json;
use sockeye::{Event, RecoveryConfig, SocketIo, SocketRef};
use sockeye_redis::streams::StreamsAdapterFactory;
use sockeye_testkit::sio::{Received, SioClient};

use crate::common;
use crate::streams_contract::unique;

const N: usize = 500;

/// `cmdstat_<name>` calls and usec from `INFO commandstats`.
fn stat(info: &str, name: &str) -> (u64, u64) {
    let Some(line) = info
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
    else {
        return (0, 0);
    };
    let get = |key: &str| {
        line.split(',')
            .find_map(|kv| kv.split_once('=').filter(|(k, _)| k.ends_with(key)))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    };
    (get("calls"), get("usec"))
}

async fn info(url: &str) -> String {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap()
}

async fn reset(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .unwrap();
}

async fn run(url: &str, live: bool) {
    let prefix = unique("streams-cost");
    let cfg = sockeye_redis::streams::StreamsConfig::new(sockeye_redis::RedisConfig::new(url))
        .stream_name(format!("{prefix}-stream"))
        .channel_prefix(prefix.clone())
        .session_key_prefix(format!("{prefix}:session:"))
        .live_sessions(live);
    let adapter = StreamsAdapterFactory::connect(cfg).await.unwrap();
    let io = SocketIo::builder()
        .adapter(adapter.clone())
        .connection_state_recovery(RecoveryConfig::default())
        .build();
    io.ns("/", |_s: SocketRef| async {})
        .on("join", |s: SocketRef, e: Event| async move {
            s.join(e.args.first::<String>().unwrap_or_default());
            json!("ok")
        });
    assert!(adapter.ready(Duration::from_secs(10)).await);
    let addr = common::serve(&io).await;
    // Let the node's own start-up commands settle before counting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    reset(url).await;
    let started = Instant::now();
    let mut clients = Vec::with_capacity(N);
    for _ in 0..N {
        clients.push(
            SioClient::connected(addr, "/", None, Duration::from_secs(10))
                .await
                .unwrap(),
        );
    }
    let connect_wall = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_connect = info(url).await;
    reset(url).await;
    let started = Instant::now();
    for (i, c) in clients.iter_mut().enumerate() {
        let id = c
            .emit_with_ack("join", &[json!(format!("room-{}", i % 10))])
            .await
            .unwrap();
        loop {
            match c.next(Duration::from_secs(10)).await {
                Some(Received::Ack { id: got, .. }) if got == id => break,
                Some(_) => {}
                None => panic!("no ack"),
            }
        }
    }
    let join_wall = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_join = info(url).await;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / N as f64;
    for (what, info, wall) in [
        ("connect", &after_connect, connect_wall),
        ("join", &after_join, join_wall),
    ] {
        let (set, set_us) = stat(info, "set");
        let (exec, exec_us) = stat(info, "exec");
        println!(
            "live_sessions={live} {what}: {N} ops, {:.0} us wall/op; Redis: SET {set} calls ({:.2}/op, {set_us} us), EXEC {exec} ({exec_us} us)",
            per(wall),
            set as f64 / N as f64,
        );
    }
    drop(clients);
    adapter.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand with --ignored --nocapture"]
async fn streams_cost() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = tokio::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server is needed");
    let url = format!("redis://127.0.0.1:{port}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for live in [false, true, false, true] {
        run(&url, live).await;
    }
    let _ = server.start_kill();
}
