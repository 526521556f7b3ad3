//! Spawns the official Node socket.io test server (tests/client/server.js) for the client
//! tests, and kills it by PID when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running Node socket.io server.
pub struct NodeServer {
    child: Child,
    pub port: u16,
}

impl NodeServer {
    /// Starts the server on an ephemeral port.
    pub fn start() -> NodeServer {
        NodeServer::start_on(0)
    }

    /// Starts the server on `port` (0 for ephemeral) and waits for it to listen.
    pub fn start_on(port: u16) -> NodeServer {
        NodeServer::spawn(port, None)
    }

    /// Starts the server on an ephemeral port with the `socket.io-msgpack-parser` wire format.
    pub fn start_msgpack() -> NodeServer {
        NodeServer::spawn(0, Some("msgpack"))
    }

    /// Starts the server on an ephemeral port with extra environment variables
    /// (`SIO_DEFLATE`, `SIO_STICKY`: see tests/client/server.js).
    pub fn start_with_env(env: &[(&str, &str)]) -> NodeServer {
        NodeServer::spawn_with(0, None, env)
    }

    fn spawn(port: u16, parser: Option<&str>) -> NodeServer {
        NodeServer::spawn_with(port, parser, &[])
    }

    fn spawn_with(port: u16, parser: Option<&str>, env: &[(&str, &str)]) -> NodeServer {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let script = root.join("tests/client/server.js");
        let modules = root.join("tests/node_modules/socket.io");
        assert!(script.exists(), "missing test server {}", script.display());
        assert!(
            modules.exists(),
            "missing {}: run `npm ci` in tests/ (scripts/test does it)",
            modules.display()
        );
        let mut child = Command::new("node")
            .arg(&script)
            .arg(port.to_string())
            .args(parser)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node` (is Node.js installed?): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(port) = line.strip_prefix("PORT ") {
                    let _ = tx.send(port.trim().parse::<u16>().expect("port number"));
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!("the Node test server did not print its port within 20 s");
            }
        };
        NodeServer { child, port }
    }

    /// The URL to give the client.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Generous bound for anything a test waits on.
pub const WAIT: Duration = Duration::from_secs(15);

/// Registers namespace `ns` on `io` with what the client tests call: `echo` acks its
/// arguments; `ask` calls the client's `question` with its arguments (5 s) and emits the
/// answer, or `{"error": ..}`, as `answer`. Returns the handle to register more events.
pub fn echo_and_ask(io: &sockeye::SocketIo, ns: &str) -> sockeye::NsHandle {
    use sockeye::SocketRef;
    io.ns(ns, |_socket: SocketRef| async move {})
        .on(
            "echo",
            |_socket: SocketRef, event: sockeye::Event| async move { event.args },
        )
        .on(
            "ask",
            |socket: SocketRef, event: sockeye::Event| async move {
                let reply = socket
                    .call_args("question", event.args, Duration::from_secs(5))
                    .await;
                match reply {
                    Ok(args) => socket.emit_args("answer", args),
                    Err(e) => socket.emit("answer", &serde_json::json!({"error": e.to_string()})),
                }
                .unwrap();
            },
        )
}

/// Asserts that `result` is the refusal of namespace `/refuse` (by [`refuse_ns`] or the Node
/// test server) with the message "not authorized" and `data`.
pub fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, sockeye_client::SocketIoError>,
    data: serde_json::Value,
) {
    match result {
        Err(sockeye_client::SocketIoError::ConnectionRefused {
            namespace,
            message,
            data: got,
        }) => {
            assert_eq!(namespace, "/refuse");
            assert_eq!(message, "not authorized");
            assert_eq!(got, Some(data));
        }
        other => panic!("expected ConnectionRefused, got {other:?}"),
    }
}

/// Registers `/refuse` on `io`: every CONNECT is refused with "not authorized" and `{"code":7}`.
pub fn refuse_ns(io: &sockeye::SocketIo) {
    io.ns("/refuse", |_socket: sockeye::SocketRef| async move {
        Err::<(), _>(sockeye::ConnectionRefusedError::with_data(
            "not authorized",
            serde_json::json!({"code": 7}),
        ))
    });
}

/// Serves `layer` on an axum router on an ephemeral loopback port; returns its base URL.
pub async fn serve_layer(layer: sockeye::SocketIoLayer) -> String {
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}
