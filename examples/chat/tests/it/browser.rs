//! Starts the `chat` binary and drives the page in headless Chromium (tests/browser/chat.js),
//! which loads the Socket.IO client that `npm ci` installed in `examples/chat`.
//! Skipped with a message when `chromium` (or, for the two-node test, Redis) is missing, unless
//! `CI=true` (then it fails).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

/// The shared Redis of the test machines.
const REDIS_ADDR: &str = "127.0.0.1:6379";

/// Two headless browsers at once are too much for the shared 2-core machine: one at a time.
static BROWSER: Mutex<()> = Mutex::new(());

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

/// Chromium, or `None` after printing why the test is skipped (a panic under `CI=true`).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        !ci(),
        "chromium is missing: install it with `apt-get install -y chromium` (scripts/test does)"
    );
    eprintln!("SKIPPED: chromium is missing (apt-get install -y chromium)");
    None
}

/// True if Redis answers PING at `REDIS_ADDR`; a panic under `CI=true` when it does not.
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
            "Redis is not reachable at {REDIS_ADDR}; the two-node chat test needs it (CI=true)"
        );
        eprintln!("SKIPPED: Redis is not reachable at {REDIS_ADDR} (CI=true makes this a failure)");
    }
    ok
}

/// Starts the chat binary on an ephemeral port with `env`; returns it and its URL.
fn start_chat(env: &[(&str, &str)]) -> (Server, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat"));
    cmd.env("PORT", "0")
        .env("RUST_LOG", "warn")
        .env_remove("REDIS_URL")
        .env_remove("REDIS_KEY")
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("cannot start the chat binary");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("chat listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the chat binary did not print its address within 30 s (see its stderr)");
    (server, url)
}

/// Runs tests/browser/chat.js: alice's tab on `urls[0]`, bob's on the last URL.
fn run_browser(chromium: &Path, urls: &[&str], shot_name: &str) {
    let root = root();
    assert!(
        root.join("tests/node_modules/playwright-core").is_dir(),
        "tests/node_modules/playwright-core is missing: run `npm ci` in tests/ (scripts/test does)"
    );
    // The page must get the client from the chat server (npm's copy): the browser reaches
    // nothing but loopback, so its CDN fallback cannot load.
    assert!(
        chat::client_js_path().is_file(),
        "{} is missing: run `npm ci` in examples/chat (scripts/test does)",
        chat::client_js_path().display()
    );
    let _one_browser = BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let shot = root.join("target/browser").join(shot_name);
    let _ = std::fs::remove_file(&shot);
    let mut node = Command::new("node");
    node.arg(root.join("tests/browser/chat.js"))
        .arg(urls[0])
        .arg(&shot)
        .args(&urls[1..])
        .env("CHROMIUM", chromium);
    let mut node = node
        .spawn()
        .expect("cannot run node: is Node.js installed?");
    // The script bounds each wait at 20 s; this bounds the whole run.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = node.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = node.kill();
            let _ = node.wait();
            panic!("the browser test did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "browser test failed: {status}");
    assert!(shot.exists(), "no screenshot at {}", shot.display());
}

#[test]
fn two_tabs_chat_in_headless_chromium() {
    let Some(chromium) = chromium() else { return };
    let (server, url) = start_chat(&[]);
    run_browser(&chromium, &[&url], "chat.png");
    drop(server);
}

/// Issue 7: two chat processes sharing Redis are one chat. alice's tab is served by node A,
/// bob's by node B; bob's join and alice's message cross nodes through Redis.
#[test]
fn two_nodes_share_the_chat_through_redis() {
    let Some(chromium) = chromium() else { return };
    if !redis_available() {
        return;
    }
    // A prefix of our own: other runs and other tests on the shared Redis never hear us.
    let key = format!(
        "sockeye-chat-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let redis_url = format!("redis://{REDIS_ADDR}");
    let env = [
        ("REDIS_URL", redis_url.as_str()),
        ("REDIS_KEY", key.as_str()),
    ];
    let (node_a, url_a) = start_chat(&env);
    let (node_b, url_b) = start_chat(&env);
    assert_ne!(url_a, url_b, "the two nodes must listen on two ports");
    run_browser(&chromium, &[&url_a, &url_b], "chat-two-nodes.png");
    drop((node_a, node_b));
}
