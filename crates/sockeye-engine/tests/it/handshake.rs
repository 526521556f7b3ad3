//! The WebSocket handshake request checked field by field as RFC 6455 §4.2.1 requires of a
//! server (one test per rule; the HTTP/2 form, RFC 8441 §4-5, is in `http2.rs`): a faulty
//! request gets 400 `{"code":3,...}` (a wrong version 426 with the supported version), a
//! valid one 101 with the right `Sec-WebSocket-Accept`.

use crate::common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATH: &str = "/engine.io/?EIO=4&transport=websocket";

/// Sends `request` as is and returns the response head.
async fn raw(server: &TestServer, request: String) -> String {
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut byte))
            .await
            .expect("no answer in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before the head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A handshake request with `lines` as its header lines (after the request line).
fn request(method: &str, version: &str, lines: &[&str]) -> String {
    let mut out = format!("{method} {PATH} {version}\r\n");
    for line in lines {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out
}

/// The valid header lines, minus those whose name starts with `without`, plus `with`.
fn lines<'a>(without: &[&str], with: &[&'a str]) -> Vec<&'a str> {
    let all = [
        "Host: localhost",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ];
    all.iter()
        .copied()
        .filter(|line| !without.iter().any(|w| line.starts_with(w)))
        .chain(with.iter().copied())
        .collect()
}

async fn status_of(request: String) -> (u16, String) {
    let server = serve(fast_config().build()).await;
    let head = raw(&server, request).await;
    let status = head[9..12].parse().unwrap();
    (status, head)
}

#[tokio::test]
async fn a_valid_request_is_switched_with_the_rfc_accept_value() {
    let (status, head) = status_of(request("GET", "HTTP/1.1", &lines(&[], &[]))).await;
    assert_eq!(status, 101, "{head}");
    // RFC 6455 §1.3's example key and answer.
    assert!(
        head.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{head}"
    );
}

#[tokio::test]
async fn rule_1_the_method_must_be_get() {
    let (status, head) = status_of(request("POST", "HTTP/1.1", &lines(&[], &[]))).await;
    assert_eq!(status, 400, "{head}");
}

#[tokio::test]
async fn rule_1_the_version_must_be_http_1_1_or_later() {
    let (status, head) = status_of(request("GET", "HTTP/1.0", &lines(&[], &[]))).await;
    assert_eq!(status, 400, "{head}");
}

#[tokio::test]
async fn rule_2_a_host_header_is_required() {
    let (status, head) = status_of(request("GET", "HTTP/1.1", &lines(&["Host"], &[]))).await;
    assert_eq!(status, 400, "{head}");
}

#[tokio::test]
async fn rule_3_upgrade_must_be_websocket_in_any_case() {
    let (status, head) = status_of(request(
        "GET",
        "HTTP/1.1",
        &lines(&["Upgrade"], &["Upgrade: h2c"]),
    ))
    .await;
    assert_eq!(status, 400, "{head}");
    let (status, head) = status_of(request(
        "GET",
        "HTTP/1.1",
        &lines(&["Upgrade"], &["Upgrade: WebSocket"]),
    ))
    .await;
    assert_eq!(status, 101, "{head}");
}

#[tokio::test]
async fn rule_4_connection_must_include_the_upgrade_token() {
    let (status, head) = status_of(request(
        "GET",
        "HTTP/1.1",
        &lines(&["Connection"], &["Connection: keep-alive"]),
    ))
    .await;
    assert_eq!(status, 400, "{head}");
    let (status, head) = status_of(request(
        "GET",
        "HTTP/1.1",
        &lines(&["Connection"], &["Connection: keep-alive, upgrade"]),
    ))
    .await;
    assert_eq!(status, 101, "{head}");
}

#[tokio::test]
async fn rule_5_the_key_must_be_base64_of_16_bytes() {
    for bad in [
        vec![],
        vec!["Sec-WebSocket-Key: not base64!"],
        // 15 bytes.
        vec!["Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"],
        // 17 bytes.
        vec!["Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA="],
        vec![
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        ],
    ] {
        let (status, head) = status_of(request(
            "GET",
            "HTTP/1.1",
            &lines(&["Sec-WebSocket-Key"], &bad),
        ))
        .await;
        assert_eq!(status, 400, "{bad:?}: {head}");
    }
}

#[tokio::test]
async fn rule_6_the_version_must_be_13() {
    let (status, head) = status_of(request(
        "GET",
        "HTTP/1.1",
        &lines(&["Sec-WebSocket-Version"], &[]),
    ))
    .await;
    assert_eq!(status, 400, "{head}");
    let (status, head) = status_of(request(
        "GET",
        "HTTP/1.1",
        &lines(&["Sec-WebSocket-Version"], &["Sec-WebSocket-Version: 8"]),
    ))
    .await;
    assert_eq!(status, 426, "{head}");
    assert!(head.contains("sec-websocket-version: 13"), "{head}");
}

#[tokio::test]
async fn rules_7_to_10_optional_fields_do_not_change_the_answer() {
    let (status, head) = status_of(request(
        "GET",
        "HTTP/1.1",
        &lines(
            &[],
            &[
                "Origin: http://localhost",
                "Sec-WebSocket-Protocol: chat",
                "Sec-WebSocket-Extensions: x-unknown",
                "X-Anything: 1",
            ],
        ),
    ))
    .await;
    assert_eq!(status, 101, "{head}");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "{head}"
    );
}
