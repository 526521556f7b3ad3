//! Cluster mode (interop-app.md §4): a mixed cluster of one sockeye interop node and one
//! official Node `socket.io` server (`tests/interop/reference-server.js` with the official
//! adapter package pinned in `tests/package-lock.json`) on the Redis at 127.0.0.1:6379, each
//! test on a channel of its own, driven by the official `socket.io-client`
//! (`tests/interop/cluster-client.js`): broadcasts reach the clients of both nodes exactly
//! once, `to-room`, `cluster-sockets`, `cluster-join`, `server-count`, `broadcast-ask`,
//! `room-of`, `ask-sid`, `close-room`, `disconnect-sid` and `cluster-disconnect` across the
//! nodes, asked from both nodes.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::harness::{Server, require_node, run, workspace_root};

/// The whole script, with its waits for messages that must not come.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// Fails (never skips) without the Redis the cluster needs.
fn require_redis() {
    let addr = SocketAddr::from(([127, 0, 0, 1], 6379));
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok(),
        "no Redis on 127.0.0.1:6379: the cluster-mode tests need one"
    );
}

/// A channel no other test run uses, so that concurrent clusters never see each other.
fn unique_channel(mode: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("interop-it-{mode}-{}-{nanos}", std::process::id())
}

fn mixed_cluster(mode: &str) {
    let node = require_node();
    require_redis();
    let channel = unique_channel(mode);
    let env = |name: &'static str| {
        [
            ("INTEROP_ADAPTER", mode),
            ("INTEROP_BROKER_URL", "redis://127.0.0.1:6379/0"),
            ("INTEROP_CHANNEL", channel.as_str()),
            ("INTEROP_NODE", name),
        ]
    };
    let ours = Server::start_with_env(env!("CARGO_BIN_EXE_interop"), &env("sockeye"));
    let script = workspace_root().join("tests/interop/reference-server.js");
    let script = script.to_string_lossy();
    let theirs = Server::start_program(&node, &[script.as_ref(), "0"], &env("node"));
    let client = workspace_root().join("tests/interop/cluster-client.js");
    let (a, b) = (ours.port.to_string(), theirs.port.to_string());
    let out = run(
        Path::new(&node),
        &[client.to_string_lossy().as_ref(), a.as_str(), b.as_str()],
        &[],
        SCRIPT_TIMEOUT,
    );
    assert!(
        out.status.success() && out.stdout.contains("\"failed\":0"),
        "cluster-client.js failed ({}) on INTEROP_ADAPTER={mode} (sockeye on {a}, Node on {b})\n\
         --- stderr:\n{}\n--- summary:\n{}",
        out.status,
        out.stderr,
        out.stdout
    );
}

/// `@socket.io/redis-adapter` 8.3's classic pub/sub format.
#[test]
fn mixed_cluster_on_redis() {
    mixed_cluster("redis");
}

/// `@socket.io/redis-streams-adapter` 0.3's stream and pub/sub channels.
#[test]
fn mixed_cluster_on_redis_streams() {
    mixed_cluster("redis-streams");
}

/// The modes not implemented yet are refused at start, by name, instead of serving alone.
#[test]
fn unimplemented_modes_are_refused_at_start() {
    for mode in ["redis-sharded", "postgres", "nats"] {
        let out = run(
            Path::new(env!("CARGO_BIN_EXE_interop")),
            &["0"],
            &[("INTEROP_ADAPTER", mode.to_owned())],
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(2), "INTEROP_ADAPTER={mode}");
        assert!(
            out.stderr
                .contains(&format!("INTEROP_ADAPTER={mode} is not implemented")),
            "INTEROP_ADAPTER={mode}: {}",
            out.stderr
        );
        assert!(!out.stdout.contains("listening"), "{}", out.stdout);
    }
}
