//! Shared harness of the interop tests: start an example server binary on an ephemeral port,
//! run a Node or Python peer script against it with a timeout, stop the server by its PID.
//!
//! Included by the example crates' integration tests with
//! `#[path = "../../../tests/interop/harness.rs"] mod harness;` (from `tests/it/main.rs`, one
//! level deeper: `../../../../tests/interop/harness.rs`), so `env!("CARGO_MANIFEST_DIR")` is the
//! including example crate and the workspace root is two levels up. Std only: the tests build
//! nothing but the example binary.

#![allow(dead_code)] // each including test uses a subset

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a server binary may take to announce its port (a loaded 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (two levels above the example crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// A running example server; killed (by its PID) and reaped on drop.
pub struct Server {
    child: Child,
    /// The port the server announced.
    pub port: u16,
    /// Kept so the stdout reader keeps draining: a closed pipe would kill a server that logs.
    _stdout: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `bin 0` and waits for its `listening on 127.0.0.1:PORT` line on stdout, then for
    /// the port to accept a TCP connection.
    pub fn start(bin: &str) -> Server {
        Server::start_with_env(bin, &[])
    }

    /// [`Server::start`] with extra environment variables (`INTEROP_ALLOW_EIO3`, ...).
    pub fn start_with_env(bin: &str, env: &[(&str, &str)]) -> Server {
        Server::start_program(Path::new(bin), &["0"], env)
    }

    /// Starts `program args...` from the workspace root (a Node server script with its port
    /// argument, ...) and waits for its `listening on 127.0.0.1:PORT` line as [`Server::start`].
    pub fn start_program(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let bin = program.display();
        let mut child = Command::new(program)
            .args(args)
            .current_dir(workspace_root())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the server binary {bin}: {e}"));
        let stdout = child.stdout.take().expect("stdout was piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{bin} did not print `listening on 127.0.0.1:PORT` within {START_TIMEOUT:?} ({e})"
                    );
                }
            };
            if let Some(port) = line
                .strip_prefix("listening on 127.0.0.1:")
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                break port;
            }
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{bin} announced port {port} but does not accept connections"
            );
            thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            port,
            _stdout: rx,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a peer script did.
pub struct Outcome {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything it printed on stdout (the JSON summary).
    pub stdout: String,
    /// Everything it printed on stderr (failures in detail).
    pub stderr: String,
}

/// Runs `program args...` from the workspace root with extra environment `env`, killing it
/// after `timeout`.
pub fn run(program: &Path, args: &[&str], env: &[(&str, String)], timeout: Duration) -> Outcome {
    let root = workspace_root();
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} (is it installed?): {e}", program.display()));
    let stdout = drain(child.stdout.take().expect("stdout was piped"));
    let stderr = drain(child.stderr.take().expect("stderr was piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} {args:?} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    program.display(),
                    stdout.join().unwrap_or_default(),
                    stderr.join().unwrap_or_default()
                );
            }
            Err(e) => panic!("waiting for {}: {e}", program.display()),
        }
    };
    Outcome {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut out = String::new();
        let _ = pipe.read_to_string(&mut out);
        out
    })
}

/// Panics with a clear message unless Node and the pinned npm packages are there.
pub fn require_node() -> PathBuf {
    let modules = workspace_root().join("tests/node_modules");
    assert!(
        modules.join("socket.io-client").is_dir() && modules.join("ws").is_dir(),
        "{} lacks socket.io-client / ws: run `npm ci` in tests/ (scripts/test does it)",
        modules.display()
    );
    let ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`node` is not on PATH: install Node.js 18+ to run the interop tests"
    );
    PathBuf::from("node")
}

/// Panics with a clear message unless the Python venv with python-socketio is there.
pub fn require_python() -> PathBuf {
    let python = workspace_root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt",
        python.display()
    );
    let ok = Command::new(&python)
        .args(["-c", "import socketio"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "python-socketio is not installed in .venv: .venv/bin/pip install -r tests/requirements.txt"
    );
    python
}

/// Runs a peer script against `server` and asserts it passed every case.
///
/// `known_failures` names cases that fail because of a known, reported server bug: they still
/// run, their outcome (`xfail` with the error, or `xpass`) is in the summary printed on stderr,
/// but they do not fail the test. Some are races, so one pass does not prove a fix.
pub fn assert_script(
    program: &Path,
    script: &str,
    server: &Server,
    known_failures: &[&str],
    timeout: Duration,
) {
    let script_path = workspace_root().join("tests/interop").join(script);
    assert!(
        script_path.is_file(),
        "missing peer script {}",
        script_path.display()
    );
    let port = server.port.to_string();
    let script_arg = script_path.to_string_lossy().into_owned();
    let env = [("INTEROP_XFAIL", known_failures.join(","))];
    let out = run(
        program,
        &[script_arg.as_str(), port.as_str()],
        &env,
        timeout,
    );
    if !known_failures.is_empty() {
        eprintln!("{script}: known server bugs, not asserted: {known_failures:?}");
        eprintln!("{}", out.stdout.trim());
    }
    assert!(
        out.status.success(),
        "{script} failed ({}) against port {port}\n--- stderr:\n{}\n--- summary:\n{}",
        out.status,
        out.stderr,
        out.stdout
    );
    assert!(
        out.stdout.contains("\"failed\":0") || out.stdout.contains("\"failed\": 0"),
        "{script} exited 0 without a clean summary:\n{}",
        out.stdout
    );
}
