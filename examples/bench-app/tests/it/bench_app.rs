//! The bench app as a process: its handshake carries the environment overrides, and the
//! official Node client checks the sio-bench contract (echo, binary echo, broadcast + ack).

use crate::harness;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A loaded 2-core machine: generous, and only ever a bound, never an expectation.
const WAIT: Duration = Duration::from_secs(30);

/// The bench app started with `env`, killed on drop.
struct App {
    child: Child,
    port: u16,
}

impl App {
    fn start(env: &[(&str, &str)]) -> App {
        let bin = env!("CARGO_BIN_EXE_bench-app");
        let mut child = Command::new(bin)
            .arg("0")
            .env_remove("PING_INTERVAL")
            .env_remove("PING_TIMEOUT")
            .env_remove("CONNECT_TIMEOUT")
            .env_remove("MAX_PAYLOAD")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let Some(stdout) = child.stdout.take() else {
            panic!("stdout of {bin} was not piped")
        };
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{bin} did not print `listening on 127.0.0.1:PORT` within {WAIT:?}");
            };
            if let Some(port) = line
                .strip_prefix("listening on 127.0.0.1:")
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                break port;
            }
        };
        App { child, port }
    }

    /// One HTTP/1.1 GET on a fresh connection; the whole response as text.
    fn get(&self, path_and_query: &str) -> String {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut tcp = TcpStream::connect_timeout(&addr, WAIT)
            .unwrap_or_else(|e| panic!("cannot connect to the bench app on {addr}: {e}"));
        tcp.set_read_timeout(Some(WAIT)).ok();
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        );
        tcp.write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("cannot send the request: {e}"));
        let mut response = String::new();
        tcp.read_to_string(&mut response)
            .unwrap_or_else(|e| panic!("no complete response to GET {path_and_query}: {e}"));
        response
    }

    /// The Engine.IO open packet of a new polling session.
    fn handshake(&self) -> String {
        let response = self.get("/socket.io/?EIO=4&transport=polling");
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "handshake refused:\n{response}"
        );
        let Some((_, body)) = response.split_once("\r\n\r\n") else {
            panic!("handshake response without a body:\n{response}")
        };
        body.to_owned()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sid_of(open_packet: &str) -> &str {
    let Some(rest) = open_packet.split_once("\"sid\":\"").map(|(_, r)| r) else {
        panic!("no sid in {open_packet}")
    };
    rest.split('"').next().unwrap_or_default()
}

#[test]
fn defaults_are_sockeye_timers_and_a_ten_megabyte_payload() {
    let app = App::start(&[]);
    let open = app.handshake();
    assert!(open.starts_with("0{"), "not an open packet: {open}");
    assert!(open.contains("\"pingInterval\":25000"), "{open}");
    assert!(open.contains("\"pingTimeout\":20000"), "{open}");
    assert!(open.contains("\"maxPayload\":10000000"), "{open}");
}

#[test]
fn environment_overrides_reach_the_handshake() {
    let app = App::start(&[
        ("PING_INTERVAL", "1234"),
        ("PING_TIMEOUT", "5678"),
        ("MAX_PAYLOAD", "4321"),
    ]);
    let open = app.handshake();
    assert!(open.contains("\"pingInterval\":1234"), "{open}");
    assert!(open.contains("\"pingTimeout\":5678"), "{open}");
    assert!(open.contains("\"maxPayload\":4321"), "{open}");
}

#[test]
fn connect_timeout_closes_a_session_that_joins_no_namespace() {
    // Pings far apart, so only the connect timeout can end the session early.
    let app = App::start(&[("CONNECT_TIMEOUT", "200"), ("PING_INTERVAL", "60000")]);
    let sid = sid_of(&app.handshake()).to_owned();
    let deadline = Instant::now() + WAIT;
    loop {
        // A poll either carries the close packet or is refused once the session is gone.
        let response = app.get(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}"));
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        if !response.starts_with("HTTP/1.1 200") || body.contains('1') {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "session {sid} still open {WAIT:?} after a 200 ms connect timeout"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn official_node_client_runs_the_bench_contract() {
    let node = harness::require_node();
    let app = App::start(&[]);
    let script = harness::workspace_root().join("examples/bench-app/tests/bench-client.js");
    let script = script.to_string_lossy().into_owned();
    let port = app.port.to_string();
    let out = harness::run(&node, &[script.as_str(), port.as_str()], &[], WAIT * 2);
    assert!(
        out.status.success() && out.stdout.contains("\"failed\":0"),
        "bench-client.js failed ({}):\n--- stderr:\n{}\n--- stdout:\n{}",
        out.status,
        out.stderr,
        out.stdout
    );
}
