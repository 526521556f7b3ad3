//! Shared helpers: the database, fresh channel prefixes, connected factories.
use std::time::Duration;

use sockeye_postgres::{PostgresAdapterFactory, PostgresConfig};

/// The test database (trust auth, on loopback).
pub(crate) const DB: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// The attachments table the tests share (rows are deleted by age, so sharing is harmless).
pub(crate) const TABLE: &str = "sockeye_test_attachments";

/// A channel prefix of its own for one test, so that parallel tests never hear each other.
pub(crate) fn prefix() -> String {
    use rand::Rng as _;
    format!("sockeye-test-{:08x}", rand::rng().random::<u32>())
}

pub(crate) fn config(prefix: &str) -> PostgresConfig {
    PostgresConfig::new(DB)
        .channel_prefix(prefix)
        .table_name(TABLE)
        .request_timeout(Duration::from_secs(3))
        .reconnect_delay(Duration::from_millis(300))
}

/// A connected factory; the database is required (a test never skips it).
pub(crate) async fn factory(config: PostgresConfig) -> PostgresAdapterFactory {
    PostgresAdapterFactory::connect(config)
        .await
        .unwrap_or_else(|e| {
            panic!("the PostgreSQL at 127.0.0.1:5432 (database test) is needed: {e}")
        })
}

/// A plain client for the tests' own statements.
pub(crate) async fn client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(DB, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("the PostgreSQL at 127.0.0.1:5432 (database test) is needed: {e}")
        });
    tokio::spawn(connection);
    client
}

/// Waits until `f` holds, or panics with `what` after `within`.
pub(crate) async fn until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{Value, json};
use sockeye::{Event, SocketIo, SocketRef};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Generous: the machine is shared.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// The connection string the Node peer uses (node-postgres URL form).
pub(crate) const DB_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A sockeye node on the adapter: `/` whose sockets join rooms on `join` (acked `ok`), and a
/// server-event handler answering `ping-servers` with `name`.
pub(crate) struct Node {
    pub(crate) io: SocketIo,
    pub(crate) pg: PostgresAdapterFactory,
    pub(crate) addr: SocketAddr,
    /// The server-side events this node received: (event, first argument).
    pub(crate) server_events: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub(crate) async fn node(cfg: PostgresConfig, name: &'static str) -> Node {
    let pg = factory(cfg).await;
    let io = SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
        .adapter(pg.clone())
        .build();
    io.ns("/", |_s: SocketRef| async {})
        .on("join", |s: SocketRef, e: Event| async move {
            let room: String = e.args.first().unwrap_or_default();
            s.join(room);
            json!("ok")
        });
    let server_events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = server_events.clone();
    io.on_server_event("/", move |ev| {
        let first: Value = ev.args.first().unwrap_or(Value::Null);
        seen.lock().unwrap().push((ev.event.clone(), first));
        if ev.event == "ping-servers"
            && let Some(ack) = ev.ack
        {
            let _ = ack.send(name);
        }
    })
    .expect("namespace / exists");
    assert!(pg.ready(WAIT).await, "{name}: LISTEN not in place");
    let (addr, server) = sockeye_testkit::contract::serve(&io).await;
    Node {
        io,
        pg,
        addr,
        server_events,
        server,
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The Node peer (tests/postgres/cluster-peer.js): official server + adapter, clients,
/// emitter.
pub(crate) struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    seq: u64,
    pub(crate) port: u16,
}

impl Peer {
    pub(crate) async fn start(prefix: &str, with_server: bool) -> Peer {
        let root = workspace_root();
        let script = root.join("tests/postgres/cluster-peer.js");
        assert!(
            root.join("tests/node_modules/@socket.io/postgres-adapter")
                .exists(),
            "tests/node_modules is missing @socket.io/postgres-adapter: run npm ci in tests/"
        );
        let mut cmd = Command::new("node");
        cmd.arg(&script).args([DB_URL, prefix, TABLE]);
        if !with_server {
            cmd.arg("--no-server");
        }
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
    pub(crate) async fn call(&mut self, mut cmd: Value) -> Value {
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
    pub(crate) async fn received(&mut self) -> Value {
        self.call(json!({"op": "received"})).await["received"].take()
    }

    /// Waits until `check` accepts what the clients received.
    pub(crate) async fn wait_for(&mut self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
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

    pub(crate) async fn stop(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

/// The events (name and first argument) `client` received, in order.
pub(crate) fn events(received: &Value, client: &str) -> Vec<(String, Value)> {
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

/// The whole entry (name and every argument) of `client`'s first `event`.
pub(crate) fn entry(received: &Value, client: &str, event: &str) -> Option<Value> {
    received[client]
        .as_array()?
        .iter()
        .find(|e| e[0] == json!(event))
        .cloned()
}

pub(crate) fn count(received: &Value, client: &str, event: &str) -> usize {
    events(received, client)
        .iter()
        .filter(|(e, _)| e == event)
        .count()
}
