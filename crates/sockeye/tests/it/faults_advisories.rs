//! Every single-client trigger of `shared/reference/reliability.md` §1 (advisories of
//! socket.io, engine.io, ws, python-engineio/-socketio and socketioxide) against one sockeye
//! server. Each test names its advisory and asserts what the server does with the input; after
//! each, a bystander connected beforehand must still be echoed (the process lives, other
//! sessions are untouched). Every test runs under a `PanicWatch`: a panic on the data path
//! that the engine caught (closing the connection, as a refusal would) fails it, and a closed
//! socket's reason must be `parse error`, never the `transport error` of a caught panic.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Reasons, WAIT, Ws, builder, serve};
use sockeye::{DisconnectReason, Event, SocketRef};
use sockeye_testkit::panics::PanicWatch;
use sockeye_testkit::ws::{client_frame, handshake, opcode, read_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// `/` echoing `echo` by ack; the official servers' most ordinary handler.
async fn server() -> SocketAddr {
    server_with_reasons().await.0
}

async fn server_with_reasons() -> (SocketAddr, Reasons) {
    let io = builder().build();
    let reasons = Reasons::default();
    reasons.record(io.ns("/", |_s: SocketRef| async {})).on(
        "echo",
        |_s: SocketRef, event: Event| async move { event.args },
    );
    (serve(&io).await, reasons)
}

async fn bystander_echoes(ws: &mut Ws) {
    ws.send(r#"4299["echo","alive"]"#).await;
    ws.expect(r#"4399["alive"]"#).await;
}

/// Sends `text` then `binary` frames on a fresh connected session; asserts the session is
/// closed as `parse error` with no panic and a bystander still served.
async fn closes(text: &[&str], binary: &[&[u8]]) {
    let watch = PanicWatch::start();
    let (addr, reasons) = server_with_reasons().await;
    let (mut other, _) = Ws::open_connected(addr).await;
    let (mut ws, sid) = Ws::open_connected(addr).await;
    for t in text {
        ws.send(t).await;
    }
    for b in binary {
        // The server may already have closed: a failed send is part of the outcome.
        let _ = futures_util::SinkExt::send(
            &mut ws.ws,
            tokio_tungstenite::tungstenite::Message::binary(b.to_vec()),
        )
        .await;
    }
    ws.expect_closed().await;
    assert_eq!(reasons.of(&sid).await, DisconnectReason::ParseError);
    bystander_echoes(&mut other).await;
    watch.assert_none();
}

async fn raw_http(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = timeout(WAIT, tcp.read(&mut buf))
        .await
        .expect("no answer in time")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// CVE-2020-36049: a packet with a very long run of digits in the ack id field.
#[tokio::test]
async fn cve_2020_36049_long_digit_run_closes() {
    let digits = "9".repeat(500_000);
    closes(&[&format!(r#"42{digits}["echo",1]"#)], &[]).await;
    closes(&[&format!(r#"45{digits}-["echo",1]"#)], &[]).await;
}

/// CVE-2022-21676: a frame with RSV2/RSV3 set on a fresh WebSocket.
#[tokio::test]
async fn cve_2022_21676_rsv_bits_on_a_fresh_websocket() {
    let watch = PanicWatch::start();
    let addr = server().await;
    let (mut other, _) = Ws::open_connected(addr).await;
    let (mut tcp, head) = handshake(addr, "/socket.io/?EIO=4&transport=websocket", &[])
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 101"));
    let mut frame = client_frame(true, opcode::TEXT, b"40");
    frame[0] |= 0x30;
    tcp.write_all(&frame).await.unwrap();
    // The server ends the connection (close frame or plain close); it does not echo "40".
    let mut ended = false;
    for _ in 0..4 {
        match timeout(WAIT, read_frame(&mut tcp, 1 << 16)).await.unwrap() {
            Ok((_, opcode::CLOSE, _)) | Err(_) => {
                ended = true;
                break;
            }
            Ok((_, _, data)) => assert!(!data.starts_with(b"40"), "RSV frame was processed"),
        }
    }
    assert!(ended);
    bystander_echoes(&mut other).await;
    watch.assert_none();
}

/// CVE-2022-2421: a placeholder whose `num` is not an integer (`"splice"`), or out of range.
#[tokio::test]
async fn cve_2022_2421_placeholder_index_must_be_an_integer_in_range() {
    closes(
        &[r#"451-["echo",{"_placeholder":true,"num":"splice"}]"#],
        &[&[1]],
    )
    .await;
    closes(&[r#"451-["echo",{"_placeholder":true,"num":-1}]"#], &[&[1]]).await;
    closes(
        &[r#"451-["echo",{"_placeholder":true,"num":1.5}]"#],
        &[&[1]],
    )
    .await;
}

/// CVE-2022-41940: an HTTP Upgrade that is not WebSocket (`h2c`), then a reset.
#[tokio::test]
async fn cve_2022_41940_non_websocket_upgrade_then_reset() {
    let watch = PanicWatch::start();
    let addr = server().await;
    let (mut other, _) = Ws::open_connected(addr).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    tcp.set_zero_linger().unwrap();
    drop(tcp);
    tokio::time::sleep(Duration::from_millis(300)).await;
    bystander_echoes(&mut other).await;
    watch.assert_none();
}

/// CVE-2023-31125: a WebSocket upgrade on an unknown transport name.
#[tokio::test]
async fn cve_2023_31125_websocket_upgrade_on_unknown_transport_is_400() {
    let watch = PanicWatch::start();
    let addr = server().await;
    let (_, head) = handshake(addr, "/socket.io/?EIO=4&transport=%3Cunknown%3E", &[])
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let (_, head) = handshake(addr, "/socket.io/?EIO=4&transport=", &[])
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let (mut other, _) = Ws::open_connected(addr).await;
    bystander_echoes(&mut other).await;
    watch.assert_none();
}

/// CVE-2023-32695: an event whose name is not a string.
#[tokio::test]
async fn cve_2023_32695_non_string_event_name_closes() {
    closes(&[r#"42[{"toString":"foo"}]"#], &[]).await;
}

/// CVE-2024-38355: a client event named `error` (reserved for the server's own use in Node,
/// where an unhandled one crashed the process). In sockeye it is an event like any other with
/// no handler: ignored, no ack sent (no handler answers it), the session stays open and the
/// sender itself is still served.
#[tokio::test]
async fn cve_2024_38355_error_event_from_a_client() {
    let watch = PanicWatch::start();
    let (addr, reasons) = server_with_reasons().await;
    let (mut other, _) = Ws::open_connected(addr).await;
    let (mut ws, sid) = Ws::open_connected(addr).await;
    ws.send(r#"42["error"]"#).await;
    ws.send(r#"421["error",{"x":1}]"#).await;
    ws.expect_silence(Duration::from_millis(300)).await;
    bystander_echoes(&mut ws).await;
    bystander_echoes(&mut other).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(50), reasons.of(&sid))
            .await
            .is_err(),
        "the sender was disconnected"
    );
    watch.assert_none();
}

/// CVE-2026-33151: a binary packet declaring a huge attachment count, then binary frames.
#[tokio::test]
async fn cve_2026_33151_huge_attachment_count_closes() {
    closes(
        &[r#"455999999999-["echo",{"_placeholder":true,"num":0}]"#],
        &[&[1], &[2], &[3]],
    )
    .await;
    closes(&[r#"4511-["echo",{"_placeholder":true,"num":0}]"#], &[&[1]]).await;
}

/// CVE-2026-69185: a binary packet declaring zero attachments, then binary frames.
#[tokio::test]
async fn cve_2026_69185_zero_attachments_closes() {
    closes(&[r#"450-["echo"]"#], &[&[1], &[2]]).await;
}

/// engine.io 6.6.7 (GHSA-r635-g3xr-vw7x): a polling POST with
/// `Content-Type: application/octet-stream` must be answered, not left hanging.
#[tokio::test]
async fn engine_io_667_octet_stream_polling_post_is_answered() {
    let watch = PanicWatch::start();
    let addr = server().await;
    let polling = common::Polling::open(addr).await;
    let res = timeout(
        WAIT,
        polling
            .http
            .post(format!("{}&sid={}", polling.base, polling.sid))
            .header("content-type", "application/octet-stream")
            .body("40")
            .send(),
    )
    .await
    .expect("octet-stream POST left unanswered")
    .unwrap();
    // Engine.IO v4 has no binary polling payload: sockeye reads a v4 body as a text payload
    // whatever its Content-Type (engine.io 6.6.7 answers 400 instead; both answer at once,
    // which is what the advisory is about). So: 200 "ok", and the CONNECT in it was handled.
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    let (status, body) = polling.get().await;
    assert_eq!(status, 200);
    assert!(body.starts_with(r#"40{"sid":""#), "{body}");
    watch.assert_none();
}

/// ws CVE-2021-32640 / CVE-2024-37890: a `Sec-WebSocket-Protocol` of many spaces, and more
/// headers than a server should parse: both answered at once, the server unharmed.
#[tokio::test]
async fn ws_protocol_header_of_spaces_and_header_flood_are_answered() {
    let watch = PanicWatch::start();
    let addr = server().await;
    let (mut other, _) = Ws::open_connected(addr).await;
    let spaces = format!("Sec-WebSocket-Protocol: a{}b", " ".repeat(60_000));
    let started = tokio::time::Instant::now();
    let answer = timeout(
        WAIT,
        handshake(addr, "/socket.io/?EIO=4&transport=websocket", &[&spaces]),
    )
    .await
    .expect("header of spaces not answered")
    .expect("header of spaces: no HTTP answer");
    // Socket.IO names no subprotocol: the header is ignored and the upgrade accepted without
    // choosing one.
    let head = answer.1.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(!head.contains("sec-websocket-protocol"), "{head}");
    let mut flood = String::from("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n");
    for i in 0..2_000 {
        flood.push_str(&format!("X-H{i}: v\r\n"));
    }
    flood.push_str("\r\n");
    let head = raw_http(addr, &flood).await;
    // hyper parses at most 100 headers: 431, at once.
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    assert!(started.elapsed() < Duration::from_secs(5));
    bystander_echoes(&mut other).await;
    watch.assert_none();
}

/// socketioxide #357: a BINARY packet without the `-` separator (`45`) must not spin.
#[tokio::test]
async fn socketioxide_357_binary_packet_without_separator_closes() {
    closes(&["45"], &[]).await;
    closes(&[r#"451["echo"]"#], &[]).await;
}

/// engineioxide #809: a malformed `sid` must not open a new session.
#[tokio::test]
async fn engineioxide_809_malformed_sid_is_400_code_1() {
    let watch = PanicWatch::start();
    let addr = server().await;
    for sid in ["..%2F..", "%00", "x", &"a".repeat(10_000)] {
        let head = raw_http(
            addr,
            &format!("GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 400"), "sid {sid:.20}: {head}");
        assert!(
            head.contains(r#"{"code":1,"message":"Session ID unknown"}"#),
            "{head}"
        );
    }
    watch.assert_none();
}

/// python-socketio: `42[]` (an event with no name).
#[tokio::test]
async fn python_socketio_empty_event_closes() {
    closes(&["42[]"], &[]).await;
}

/// reliability.md §1.1: an ack id beyond 2^53 is refused rather than re-encoded in float
/// notation, as the Node server does.
#[tokio::test]
async fn ack_id_beyond_u64_closes() {
    closes(&[r#"4210000000000000000000000000["echo",1]"#], &[]).await;
}
