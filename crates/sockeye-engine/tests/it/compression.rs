//! HTTP compression of polling answers (`http_compression`, on by default with a 1 KiB
//! threshold): the coding follows `Accept-Encoding`, small answers and clients that accept
//! none go out as they are, and the option turns it off.

use crate::common;

use std::io::Read;

use common::*;

/// A client that leaves `Content-Encoding` to the test.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .no_gzip()
        .build()
        .unwrap()
}

fn inflate(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => flate2::read::GzDecoder::new(body).read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(body).read_to_end(&mut out),
        "br" => brotli::Decompressor::new(body, 4096).read_to_end(&mut out),
        other => panic!("unexpected coding {other}"),
    }
    .unwrap();
    out
}

/// Opens a session, queues one 64 KiB text frame and a short one, and returns the answers
/// of the GET carrying the big one (status, `Content-Encoding`, `Vary`, body as sent).
async fn poll_big(
    server: &TestServer,
    accept: Option<&str>,
    message: &str,
) -> (Option<String>, Option<String>, Vec<u8>) {
    let client = raw_client();
    let sid = handshake(server, &client).await;
    let url = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    let (status, _) = post(&client, &url, format!("4{message}")).await;
    assert_eq!(status, 200);
    let mut req = client.get(&url);
    if let Some(accept) = accept {
        req = req.header("accept-encoding", accept);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (coding, vary) = (header("content-encoding"), header("vary"));
    (coding, vary, res.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn large_answers_are_compressed_with_the_coding_the_client_prefers() {
    let server = serve(fast_config().build()).await;
    let expected = format!("4{}", "b".repeat(64 * 1024));
    for (accept, coding) in [
        ("gzip, deflate, br, zstd", "gzip"),
        ("br", "br"),
        ("deflate", "deflate"),
        ("gzip;q=0.2, br;q=0.9", "br"),
    ] {
        let (got, vary, body) = poll_big(&server, Some(accept), "blob:1").await;
        assert_eq!(got.as_deref(), Some(coding), "{accept}");
        assert_eq!(vary.as_deref(), Some("Accept-Encoding"));
        assert!(body.len() < 2048, "{coding}: {} bytes", body.len());
        assert_eq!(inflate(coding, &body), expected.as_bytes(), "{coding}");
    }
}

#[tokio::test]
async fn small_answers_and_clients_without_accept_encoding_get_identity() {
    let server = serve(fast_config().build()).await;
    let (coding, _, body) = poll_big(&server, Some("gzip"), "short").await;
    assert_eq!(coding, None);
    assert_eq!(body, b"4short");
    let (coding, _, body) = poll_big(&server, None, "blob:1").await;
    assert_eq!(coding, None);
    assert_eq!(body.len(), 64 * 1024 + 1);
    let (coding, _, _) = poll_big(&server, Some("identity, zstd"), "blob:1").await;
    assert_eq!(coding, None);
}

#[tokio::test]
async fn compression_can_be_turned_off_or_its_threshold_moved() {
    let server = serve(fast_config().http_compression(None).build()).await;
    let (coding, vary, body) = poll_big(&server, Some("gzip"), "blob:1").await;
    assert_eq!((coding, vary), (None, None));
    assert_eq!(body.len(), 64 * 1024 + 1);
    let server = serve(fast_config().http_compression(Some(4)).build()).await;
    let (coding, _, body) = poll_big(&server, Some("gzip"), "short").await;
    assert_eq!(coding.as_deref(), Some("gzip"));
    assert_eq!(inflate("gzip", &body), b"4short");
}

/// A real HTTP client decodes every coding: Node's `fetch` (undici) sends each
/// `Accept-Encoding` in turn, decodes the answers and checks the echoes of 16 KiB messages
/// (tests/engine/bench-polling.js, also the load of scripts/bench-protocol-reach.sh).
#[tokio::test]
async fn node_fetch_decodes_every_coding() {
    let server = serve(
        fast_config()
            .ping_interval(std::time::Duration::from_secs(5))
            .build(),
    )
    .await;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/engine/bench-polling.js");
    for coding in ["gzip", "br", "deflate", "identity"] {
        let output = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            tokio::process::Command::new("node")
                .arg(&script)
                .arg(server.addr.port().to_string())
                .arg("2")
                .arg("16384")
                .arg(coding)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("node did not finish")
        .unwrap_or_else(|e| panic!("cannot run `node` (is Node.js installed?): {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{coding}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        let expected = if coding == "identity" {
            serde_json::Value::Null
        } else {
            serde_json::Value::from(coding)
        };
        assert_eq!(result["encoding"], expected, "{coding}: {result}");
    }
}
