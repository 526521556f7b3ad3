//! A polling POST over `max_payload` looks the same to every official client as with the
//! official Node engine.io server: the same script of each client (python-engineio from
//! tests/requirements.txt, engine.io-client from tests/package.json) runs against the Node
//! server (tests/engine/reference-engine-server.js) and against sockeye-engine, and must report
//! the same end of the connection (`transport error`) for both.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use sockeye_engine::{CloseReason, EngineConfig};

fn root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::canonicalize(&root).unwrap_or(root)
}

/// The Node engine.io server on an ephemeral port, killed when dropped.
struct Reference {
    child: std::process::Child,
    port: u16,
}

impl Reference {
    fn start() -> Reference {
        let mut child = Command::new("node")
            .arg(root().join("tests/engine/reference-engine-server.js"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node` (is Node.js installed?): {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the reference server said {line:?}"));
        Reference { child, port }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the python-engineio client script against `base`; the reason it reported.
async fn python_reason(base: &str) -> String {
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: scripts/test creates it (python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt)",
        python.display()
    );
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(root().join("tests/engine/max_payload_client.py"))
        .arg(base)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("python client did not finish")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "python printed nothing; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    value["reason"].as_str().unwrap_or("none").to_owned()
}

#[tokio::test]
async fn an_oversize_polling_post_ends_like_on_the_node_server_for_every_client() {
    let reference = Reference::start();
    let reference_url = format!("http://127.0.0.1:{}", reference.port);
    let ours = serve(
        EngineConfig::builder()
            .ping_interval(Duration::from_millis(1000))
            .ping_timeout(Duration::from_millis(3000))
            .build(),
    )
    .await;
    let ours_url = format!("http://{}", ours.addr);

    let python_reference = python_reason(&reference_url).await;
    let python_ours = python_reason(&ours_url).await;
    assert_eq!(python_reference, "transport error");
    assert_eq!(python_ours, python_reference);

    let js_ours = run_node("oversize.js", "engine.io-client", &ours, &[]).await;
    // The same script against the reference: `run_node` takes a TestServer, so call node
    // directly with the reference URL.
    let js_reference = {
        let output = tokio::process::Command::new("node")
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js/oversize.js"))
            .arg(&reference_url)
            .env("NODE_PATH", root().join("tests/node_modules"))
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        serde_json::from_str::<serde_json::Value>(stdout.lines().last().unwrap()).unwrap()
    };
    assert_eq!(js_reference["reason"], "transport error", "{js_reference}");
    assert_eq!(js_ours["reason"], js_reference["reason"], "{js_ours}");
    // Our side closed each session as PayloadTooLarge.
    let closes = ours.rec.closes();
    assert!(
        closes
            .iter()
            .filter(|(_, r)| *r == CloseReason::PayloadTooLarge)
            .count()
            >= 2,
        "{closes:?}"
    );
}
