//! Two `admin` example nodes on Redis and the official Admin UI in headless Chromium
//! (tests/browser/admin.js): the UI logs in to node a, sees both servers and the two test
//! clients (one per node), makes the client on node b join a room and disconnects the client
//! on node a; this test checks the effect on the clients. Screenshots: target/browser/admin-*.png.
//! Skipped with a message when chromium or Redis is missing, unless `CI=true` (then it fails).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;
use sockeye_testkit::sio::{Received, SioClient};

const REDIS_ADDR: &str = "127.0.0.1:6379";
const WAIT: Duration = Duration::from_secs(20);

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    assert!(
        !ci(),
        "chromium is missing: `apt-get install -y chromium` (scripts/test does)"
    );
    eprintln!("SKIPPED: chromium is missing (apt-get install -y chromium)");
    None
}

fn redis_available() -> bool {
    let ping = || -> std::io::Result<bool> {
        let addr: SocketAddr = REDIS_ADDR.parse().expect("constant address");
        let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        tcp.set_read_timeout(Some(Duration::from_secs(3)))?;
        tcp.write_all(b"PING\r\n")?;
        let mut reply = [0u8; 7];
        tcp.read_exact(&mut reply)?;
        Ok(&reply == b"+PONG\r\n")
    };
    let ok = ping().unwrap_or(false);
    if !ok {
        assert!(
            !ci(),
            "Redis is not reachable at {REDIS_ADDR}; the admin browser test needs it (CI=true)"
        );
        eprintln!("SKIPPED: Redis is not reachable at {REDIS_ADDR} (CI=true makes this a failure)");
    }
    ok
}

/// Starts one node; returns it and its address.
fn start_node(id: &str, key: &str) -> (Server, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_admin"))
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .env("SERVER_ID", id)
        .env("REDIS_URL", format!("redis://{REDIS_ADDR}"))
        .env("REDIS_KEY", key)
        .env("ADMIN_USER", "admin")
        .env("ADMIN_PASSWORD", "browser-test")
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot start the admin example");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("admin listening on http://") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the admin example did not print its address within 30 s (see its stderr)");
    (server, addr.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_ui_sees_and_acts_on_a_two_node_cluster() {
    let Some(chromium) = chromium() else { return };
    if !redis_available() {
        return;
    }
    let root = root();
    assert!(
        root.join("tests/node_modules/playwright-core").is_dir(),
        "tests/node_modules/playwright-core is missing: run `npm ci` in tests/ (scripts/test does)"
    );
    assert!(
        admin::default_ui_dir().join("index.html").is_file(),
        "the Admin UI is missing: run `npm ci` in examples/admin (scripts/test does)"
    );
    let key = format!("sockeye-admin-browser-{}", std::process::id());
    let (_a, addr_a) = start_node("node-a", &key);
    let (_b, addr_b) = start_node("node-b", &key);

    let mut c1 = SioClient::connected(addr_a, "/", Some(json!({ "name": "alice" })), WAIT)
        .await
        .unwrap();
    let mut c2 = SioClient::connected(addr_b, "/", Some(json!({ "name": "bob" })), WAIT)
        .await
        .unwrap();

    let shots = root.join("target/browser");
    let script = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/admin.js"))
        .arg(format!("http://{addr_a}"))
        .arg(&shots)
        .arg(&c1.sid)
        .arg(&c2.sid)
        .arg("admin")
        .arg("browser-test")
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .status();
    // c1 is read meanwhile (its pings answered): the UI disconnects it.
    let (status, c1_saw) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(120), script),
        async {
            loop {
                match c1.next(Duration::from_secs(120)).await {
                    Some(Received::Disconnect) => return true,
                    Some(Received::Closed) | None => return false,
                    Some(_) => continue,
                }
            }
        }
    );
    let status = status
        .expect("the browser test did not finish within 120 s")
        .expect("cannot run node");
    assert!(
        status.success(),
        "browser test failed: {status} (see target/browser/admin-failure.png)"
    );
    assert!(
        c1_saw,
        "the client on node a was not disconnected by the UI"
    );

    // The client on node b is in the room the UI made it join.
    let id = c2.emit_with_ack("rooms", &[]).await.unwrap();
    let rooms = loop {
        match c2.next(WAIT).await {
            Some(Received::Ack { id: got, args }) if got == id => break args,
            Some(Received::Closed) | None => panic!("no answer from node b"),
            _ => continue,
        }
    };
    assert!(
        rooms[0].as_array().unwrap().contains(&json!("ui-room")),
        "{rooms:?}"
    );
    for name in [
        "admin-servers.png",
        "admin-sockets.png",
        "admin-join.png",
        "admin-disconnect.png",
    ] {
        assert!(shots.join(name).is_file(), "no screenshot {name}");
    }
}
