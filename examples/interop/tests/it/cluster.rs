//! Cluster mode (interop-app.md §4): a mixed cluster of one sockeye interop node and one
//! official Node `socket.io` server (`tests/interop/reference-server.js` with the official
//! adapter package pinned in `tests/package-lock.json`) on the Redis at 127.0.0.1:6379 (on
//! `redis-sharded`: a Redis Cluster the test starts; on `postgres`: the PostgreSQL at
//! 127.0.0.1:5432, database `test`), each
//! test on a channel of its own, driven by the official `socket.io-client`
//! (`tests/interop/cluster-client.js`): broadcasts reach the clients of both nodes exactly
//! once, `to-room`, `cluster-sockets`, `cluster-join`, `server-count`, `broadcast-ask`,
//! `room-of`, `ask-sid`, `close-room`, `disconnect-sid` and `cluster-disconnect` across the
//! nodes, asked from both nodes; on `redis-streams` with connection-state recovery, a client of
//! one node restored by the other, with the message it missed. On the python buses, two sockeye nodes: the same script, with
//! `cluster-sockets` and `server-count` answering for the asking node only (§4). On `nats`
//! (our own format), two sockeye nodes with recovery through JetStream.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::harness::{Server, require_node, run, workspace_root};

/// The whole script, with its waits for messages that must not come.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// Fails (never skips) without the broker the cluster needs.
fn require_broker(what: &str, port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok(),
        "no {what} on 127.0.0.1:{port}: the cluster-mode tests need one"
    );
}

/// Deletes the stream a `redis-streams` cluster wrote under its channel when the test ends,
/// passed or not, so that test runs leave nothing in the shared Redis (sessions expire).
struct DropStream(String);

impl Drop for DropStream {
    fn drop(&mut self) {
        let key = self.0.clone();
        let deleted = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                rt.block_on(async {
                    let client = redis::Client::open("redis://127.0.0.1:6379/0")?;
                    let mut conn = client.get_multiplexed_async_connection().await?;
                    redis::cmd("DEL")
                        .arg(&key)
                        .query_async::<i64>(&mut conn)
                        .await
                })
                .map_err(|e| e.to_string())
            });
        if let Err(e) = deleted {
            eprintln!("stream {key} not deleted from Redis: {e}");
        }
    }
}

/// Deletes the JetStream streams (log and sessions) a `nats` cluster with recovery made under
/// its channel when the test ends, passed or not.
struct DropNatsStreams(String);

impl Drop for DropNatsStreams {
    fn drop(&mut self) {
        let name = self.0.replace('.', "_");
        let deleted = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                rt.block_on(async {
                    let client = async_nats::connect("nats://127.0.0.1:4222")
                        .await
                        .map_err(|e| e.to_string())?;
                    let js = async_nats::jetstream::new(client);
                    for stream in [name.clone(), format!("{name}-sessions")] {
                        js.delete_stream(&stream).await.map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
            });
        if let Err(e) = deleted {
            eprintln!("JetStream streams of {name} not deleted: {e}");
        }
    }
}

/// The other node of the cluster.
#[derive(Clone, Copy)]
enum Other {
    /// The official Node server, `tests/interop/reference-server.js`, as node B.
    NodeServer,
    /// The official Node server as node A, sockeye as node B (recovery goes from A to B).
    NodeServerFirst,
    /// A second sockeye interop node.
    Sockeye,
}

/// `INTEROP_RECOVERY_MS` of the recovering clusters: long enough for a loaded machine.
const RECOVERY_MS: &str = "10000";

/// A channel no other test run uses, so that concurrent clusters never see each other.
fn unique_channel(mode: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("interop-it-{mode}-{}-{nanos}", std::process::id())
}

/// The pause `cluster-client.js` takes between joining rooms and sending to them.
fn settle_ms(mode: &str) -> &'static str {
    if mode == "redis-sharded" { "500" } else { "0" }
}

/// Runs `cluster-client.js` on a cluster of a sockeye node and `other`; with `recovery`, the
/// nodes recover connection state and a client of node A is restored by node B.
fn cluster(mode: &str, other: Other, recovery: bool) {
    cluster_on(mode, other, recovery, None);
}

/// [`cluster`] on the broker at `broker` instead of the shared one.
fn cluster_on(mode: &str, other: Other, recovery: bool, broker: Option<&str>) {
    let node = require_node();
    let (url, python) = if let Some(url) = broker {
        (url, false)
    } else if mode == "python-amqp" {
        require_broker("RabbitMQ", 5672);
        ("amqp://guest:guest@127.0.0.1:5672/", true)
    } else if mode == "postgres" {
        require_broker("PostgreSQL", 5432);
        ("postgres://postgres@127.0.0.1:5432/test", false)
    } else if mode == "nats" {
        require_broker("NATS", 4222);
        ("nats://127.0.0.1:4222", false)
    } else {
        require_broker("Redis", 6379);
        ("redis://127.0.0.1:6379/0", mode == "python-redis")
    };
    let channel = unique_channel(mode);
    let _stream = (mode == "redis-streams").then(|| DropStream(channel.clone()));
    let _nats = (mode == "nats" && recovery).then(|| DropNatsStreams(channel.clone()));
    let env = |name: &'static str| {
        let mut env = vec![
            ("INTEROP_ADAPTER", mode),
            ("INTEROP_BROKER_URL", url),
            ("INTEROP_CHANNEL", channel.as_str()),
            ("INTEROP_NODE", name),
        ];
        if recovery {
            env.push(("INTEROP_RECOVERY_MS", RECOVERY_MS));
        }
        env
    };
    let script = workspace_root().join("tests/interop/reference-server.js");
    let script = script.to_string_lossy();
    let sockeye = |name| Server::start_with_env(env!("CARGO_BIN_EXE_interop"), &env(name));
    let node_server = || Server::start_program(&node, &[script.as_ref(), "0"], &env("node"));
    let (first, second) = match other {
        Other::NodeServer => (sockeye("sockeye"), node_server()),
        Other::NodeServerFirst => (node_server(), sockeye("sockeye")),
        Other::Sockeye => (sockeye("sockeye"), sockeye("sockeye-2")),
    };
    let client = workspace_root().join("tests/interop/cluster-client.js");
    let (a, b) = (first.port.to_string(), second.port.to_string());
    let queries = if python { "local" } else { "cluster" };
    let out = run(
        Path::new(&node),
        &[client.to_string_lossy().as_ref(), a.as_str(), b.as_str()],
        &[
            ("INTEROP_CLUSTER_QUERIES", queries.to_owned()),
            ("INTEROP_CLUSTER_RECOVERY", u8::from(recovery).to_string()),
            // Room channels of the sharded dynamic mode are subscribed after the join's ack
            // (tests/interop/cluster-client.js says more); a loaded CI machine lost the race.
            ("INTEROP_CLUSTER_SETTLE_MS", settle_ms(mode).to_owned()),
        ],
        SCRIPT_TIMEOUT,
    );
    assert!(
        out.status.success() && out.stdout.contains("\"failed\":0"),
        "cluster-client.js failed ({}) on INTEROP_ADAPTER={mode} (node A on {a}, node B on {b})\n\
         --- stderr:\n{}\n--- summary:\n{}",
        out.status,
        out.stderr,
        out.stdout
    );
}

/// `@socket.io/redis-adapter` 8.3's classic pub/sub format.
#[test]
fn mixed_cluster_on_redis() {
    cluster("redis", Other::NodeServer, false);
}

/// `@socket.io/redis-streams-adapter` 0.3's stream and pub/sub channels, with
/// `INTEROP_RECOVERY_MS`: the Node node restores a session of the sockeye node.
#[test]
fn mixed_cluster_on_redis_streams() {
    cluster("redis-streams", Other::NodeServer, true);
}

/// The same with the nodes swapped: the sockeye node restores a session of the Node node.
#[test]
fn mixed_cluster_on_redis_streams_node_first() {
    cluster("redis-streams", Other::NodeServerFirst, true);
}

/// `@socket.io/postgres-adapter` 0.5's LISTEN/NOTIFY channel and attachments table.
#[test]
fn mixed_cluster_on_postgres() {
    cluster("postgres", Other::NodeServer, false);
}

/// The same with the Node node started first (the sockeye node joins a running cluster).
#[test]
fn mixed_cluster_on_postgres_node_first() {
    cluster("postgres", Other::NodeServerFirst, false);
}

/// `createShardedAdapter` of `@socket.io/redis-adapter` 8.3 (`SPUBLISH`/`SSUBSCRIBE`, the
/// default `dynamic` subscription mode) on a 3-master Redis Cluster the test starts and kills.
#[test]
fn mixed_cluster_on_redis_sharded() {
    let redis = sockeye_testkit::redis_cluster::redis_cluster_or_skip(3)
        .expect("redis-server 7 or later is needed for the redis-sharded cluster test");
    cluster_on(
        "redis-sharded",
        Other::NodeServer,
        false,
        Some(&redis.url()),
    );
}

/// python-socketio's Redis bus, two sockeye nodes.
#[test]
fn sockeye_cluster_on_python_redis() {
    cluster("python-redis", Other::Sockeye, false);
}

/// python-socketio's AMQP bus (RabbitMQ, a fanout exchange per channel), two sockeye nodes.
#[test]
fn sockeye_cluster_on_python_amqp() {
    cluster("python-amqp", Other::Sockeye, false);
}

/// Our own NATS format (`docs/nats.md`; there is no reference to mix with), two sockeye
/// nodes, with `INTEROP_RECOVERY_MS`: JetStream recovers a client of node A on node B.
#[test]
fn sockeye_cluster_on_nats() {
    cluster("nats", Other::Sockeye, true);
}

/// Every mode of interop-app.md §4 is implemented; a mode it does not name is refused at
/// start, by name, instead of serving alone.
#[test]
fn unknown_modes_are_refused_at_start() {
    for mode in ["mongo", "kafka"] {
        let out = run(
            Path::new(env!("CARGO_BIN_EXE_interop")),
            &["0"],
            &[("INTEROP_ADAPTER", mode.to_owned())],
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(2), "INTEROP_ADAPTER={mode}");
        assert!(
            out.stderr
                .contains(&format!("INTEROP_ADAPTER={mode:?} is unknown")),
            "INTEROP_ADAPTER={mode}: {}",
            out.stderr
        );
        assert!(!out.stdout.contains("listening"), "{}", out.stdout);
    }
}
