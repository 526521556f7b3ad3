//! Redis Sentinel URLs (`redis+sentinel://…`, as python-socketio reads them) on the classic
//! adapter and emitter: a private Redis and a sentinel monitoring it, started (and killed) by
//! the test; two nodes and an emitter find the master through the sentinel and form one
//! cluster.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sockeye::Args;
use sockeye_redis::{Emitter, RedisAdapterFactory, RedisConfig};

use crate::common::{self, WAIT};

/// A Redis master and a sentinel on free loopback ports, killed (by PID) on drop.
struct Sentinel {
    children: Vec<Child>,
    dir: std::path::PathBuf,
    port: u16,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_sentinel(service: &str) -> Option<Sentinel> {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "redis-server is needed for the Sentinel test (CI=true)"
        );
        eprintln!("SKIPPED: redis-server is not installed");
        return None;
    }
    let dir = std::env::temp_dir().join(format!(
        "sockeye-sentinel-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (master, port) = (free_port(), free_port());
    let mut s = Sentinel {
        children: Vec::new(),
        dir: dir.clone(),
        port,
    };
    let quiet = |c: &mut Command| {
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    };
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &master.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.to_string_lossy(),
    ]);
    quiet(&mut cmd);
    s.children.push(cmd.spawn().unwrap());
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {service} 127.0.0.1 {master} 1\n",
            dir.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("redis-server");
    cmd.arg(&conf).arg("--sentinel");
    quiet(&mut cmd);
    s.children.push(cmd.spawn().unwrap());
    Some(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_and_emitter_find_the_master_through_sentinel() {
    let Some(sentinel) = start_sentinel("sockeye-svc") else {
        return;
    };
    let url = format!("redis+sentinel://127.0.0.1:{}/0/sockeye-svc", sentinel.port);
    let key = common::unique_key("sentinel");
    // The sentinel answers once it has looked at its master.
    let deadline = tokio::time::Instant::now() + WAIT;
    let a = loop {
        match RedisAdapterFactory::connect(common::config(&url, &key)).await {
            Ok(f) => break f,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no master through the sentinel: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let b = common::node(common::config(&url, &key), "b").await;
    let io_a = sockeye::SocketIo::builder().adapter(a.clone()).build();
    io_a.ns("/", || ());
    assert!(a.ready(WAIT).await);
    assert_eq!(a.server_count("/").await.unwrap(), 2);
    let answers: Vec<String> = a
        .server_side_emit_with_ack(
            "/",
            "ping-servers",
            Args::from_value(&1).unwrap(),
            Duration::from_secs(5),
        )
        .await
        .unwrap()
        .collect_all()
        .await
        .into_iter()
        .map(|(_, r)| r.unwrap().first::<String>().unwrap())
        .collect();
    assert_eq!(answers, ["b"]);
    // The emitter resolves the same master: its server-side emit reaches node b's handler
    // through the same channels (counted by what b receives).
    let emitter = Emitter::connect(RedisConfig::new(url.clone()).key(&key))
        .await
        .unwrap();
    let before = b.redis.stats().received;
    emitter
        .server_side_emit("hello", &Args::from_value(&1).unwrap())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while b.redis.stats().received == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the emitter's message never came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(b.redis.stats().malformed, 0);
    // A streams adapter refuses the URL by name instead of failing obscurely.
    let err = sockeye_redis::streams::StreamsAdapterFactory::connect(
        sockeye_redis::streams::StreamsConfig::new(RedisConfig::new(url)),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("classic adapter and emitter only"), "{err}");
}
