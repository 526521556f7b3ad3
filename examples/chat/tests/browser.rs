//! Starts the `chat` binary and drives the page in headless Chromium (tests/browser/chat.js).
//! Skipped with a message when `chromium` is missing, unless `CI=true` (then it fails).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    path.exists().then_some(path)
}

#[test]
fn two_tabs_chat_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Some(chromium) = chromium() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "chromium is missing: install it with `apt-get install -y chromium` (scripts/test does)"
            );
        }
        eprintln!("SKIPPED: chromium is missing (apt-get install -y chromium)");
        return;
    };
    let script = root.join("tests/browser/chat.js");
    assert!(
        root.join("tests/node_modules/playwright-core").is_dir(),
        "tests/node_modules/playwright-core is missing: run `npm ci` in tests/ (scripts/test does)"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot start the chat binary");
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
        .expect("the chat binary did not print its address within 30 s");

    let shot = root.join("target/browser/chat.png");
    let mut node = Command::new("node")
        .arg(&script)
        .arg(&url)
        .arg(&shot)
        .env("CHROMIUM", &chromium)
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
            panic!("the browser test did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(server);
    assert!(status.success(), "browser test failed: {status}");
    assert!(shot.exists(), "no screenshot at {}", shot.display());
}
