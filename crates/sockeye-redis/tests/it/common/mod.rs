//! Cluster test harness: Redis availability, sockeye nodes on loopback, the Node peer.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use sockeye::{Event, SocketIo, SocketRef};
use sockeye_redis::{RedisAdapterFactory, RedisConfig};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tower::ServiceExt as _;

/// Generous: the machine is shared and loaded.
pub const WAIT: Duration = Duration::from_secs(20);
/// The shared Redis of the test machines.
pub const SHARED_URL: &str = "redis://127.0.0.1:6379";

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A key prefix no other test uses.
pub fn unique_key(test: &str) -> String {
    use rand::Rng as _;
    format!("sockeye-test-{test}-{:08x}", rand::rng().random::<u32>())
}

/// True if Redis answers at `url`. Missing Redis fails the test under `CI=true`; elsewhere the
/// caller skips with a message.
pub async fn redis_available(url: &str) -> bool {
    let ok = async {
        let client = redis::Client::open(url).ok()?;
        let mut conn = tokio::time::timeout(
            Duration::from_secs(3),
            client.get_multiplexed_async_connection(),
        )
        .await
        .ok()?
        .ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    }
    .await
    .is_some();
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("Redis is not reachable at {url}; the Redis adapter tests need it (CI=true)");
        }
        eprintln!("SKIPPED: Redis is not reachable at {url} (set CI=true to make this a failure)");
    }
    ok
}

pub fn config(url: &str, key: &str) -> RedisConfig {
    RedisConfig::new(url)
        .key(key)
        .request_timeout(Duration::from_secs(3))
        .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500))
}

/// One sockeye node: server, adapter factory, address.
pub struct Node {
    pub io: SocketIo,
    pub redis: RedisAdapterFactory,
    pub addr: SocketAddr,
    pub name: &'static str,
}

/// A node whose `/` namespace has the test handlers: `join` (joins the room, acks "ok") and a
/// server-side handler for `ping-servers` answering the node's name.
pub async fn node(cfg: RedisConfig, name: &'static str) -> Node {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let redis = RedisAdapterFactory::connect(cfg)
        .await
        .expect("adapter connects");
    let io = SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
        .adapter(redis.clone())
        .build();
    io.ns("/", |_s: SocketRef| async {})
        .on("join", |s: SocketRef, e: Event| async move {
            let room: String = e.args.first().unwrap_or_default();
            s.join(room);
            json!("ok")
        });
    io.on_server_event("/", move |ev| {
        if ev.event == "ping-servers"
            && let Some(ack) = ev.ack
        {
            let _ = ack.send(name);
        }
    })
    .expect("namespace / exists");
    assert!(redis.ready(WAIT).await, "{name}: subscriptions not ready");
    let addr = serve(&io).await;
    Node {
        io,
        redis,
        addr,
        name,
    }
}

pub async fn serve(io: &SocketIo) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = io.service();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let svc = svc.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        svc.clone().oneshot(req)
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

/// The Node peer (tests/redis/cluster-peer.js): official server + adapter, clients, emitter.
pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    seq: u64,
    pub port: u16,
}

impl Peer {
    pub async fn start(url: &str, key: &str, with_server: bool) -> Peer {
        let mut args = vec![url, key];
        if !with_server {
            args.push("--no-server");
        }
        Peer::start_script("cluster-peer.js", "@socket.io/redis-adapter", &args).await
    }

    /// Starts `tests/redis/<script>` with `args`; `module` must be installed.
    pub async fn start_script(script: &str, module: &str, args: &[&str]) -> Peer {
        let root = workspace_root();
        let script = root.join("tests/redis").join(script);
        assert!(script.exists(), "missing {}", script.display());
        assert!(
            root.join("tests/node_modules").join(module).exists(),
            "tests/node_modules is missing {module}: run npm ci in tests/"
        );
        let mut cmd = Command::new("node");
        cmd.arg(&script).args(args);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot run `node`: is Node.js installed?");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("node peer did not start in time")
            .unwrap()
            .expect("node peer exited");
        let ready: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(ready["ready"], json!(true), "node peer failed: {first}");
        let port = u16::try_from(ready["port"].as_u64().unwrap()).unwrap();
        Peer {
            child,
            stdin,
            lines,
            seq: 0,
            port,
        }
    }

    /// Runs one command; panics on error or after [`WAIT`].
    pub async fn call(&mut self, mut cmd: Value) -> Value {
        self.seq += 1;
        cmd["seq"] = json!(self.seq);
        let line = format!("{cmd}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("node peer did not answer {cmd}"))
                .unwrap()
                .expect("node peer exited");
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["seq"] == json!(self.seq) {
                assert!(v.get("error").is_none(), "node peer failed {cmd}: {v}");
                return v;
            }
        }
    }

    /// Events received per client name.
    pub async fn received(&mut self) -> Value {
        self.call(json!({"op": "received"})).await["received"].take()
    }

    /// Waits until `check` accepts what the clients received.
    pub async fn wait_for(&mut self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = self.received().await;
            if check(&got) {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; received: {got}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

/// The events (name and first argument) `client` received, in order, markers excluded.
pub fn events(received: &Value, client: &str) -> Vec<(String, Value)> {
    received[client]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|e| {
                    Some((
                        e[0].as_str()?.to_owned(),
                        e.get(1).cloned().unwrap_or(Value::Null),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn count(received: &Value, client: &str, event: &str) -> usize {
    events(received, client)
        .iter()
        .filter(|(e, _)| e == event)
        .count()
}
