//! WebSocket permessage-deflate (`ws_deflate`): negotiated with the Node `ws` client (npm,
//! pinned), off by default, fewer bytes on the wire, and the inflated-size limit: a deflate
//! bomb, whole or split over fragments, closes only its own connection with 1009.

use crate::common;

use common::*;
use sockeye_engine::{CloseReason, DeflateConfig};
use sockeye_protocol::deflate::{Deflater, Negotiated, Role};
use sockeye_testkit::ws::{client_frame, client_frame_rsv1, handshake, opcode, read_raw_frame};
use sockeye_testkit::{Direction, FaultProxy};
use tokio::io::AsyncWriteExt;

const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits";

fn with_deflate() -> sockeye_engine::EngineConfigBuilder {
    fast_config()
        .ping_interval(std::time::Duration::from_secs(5))
        .ws_deflate(Some(DeflateConfig::default()))
}

/// What a client compresses (no context takeover, every size).
fn client_deflate(data: &[u8]) -> Vec<u8> {
    let agreed = Negotiated {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
    };
    let config = DeflateConfig {
        threshold: 0,
        ..DeflateConfig::default()
    };
    Deflater::new(Role::Client, agreed, &config)
        .compress(data)
        .unwrap()
}

/// A raw WebSocket session offering permessage-deflate; returns the stream, the response
/// head and the sid.
async fn raw_session(server: &TestServer) -> (tokio::net::TcpStream, String, String) {
    let (mut tcp, head) = handshake(
        server.addr,
        "/engine.io/?EIO=4&transport=websocket",
        &[OFFER],
    )
    .await
    .unwrap();
    let (_, open) = read_raw_frame(&mut tcp, 4096).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&open[1..]).unwrap();
    (tcp, head, json["sid"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn off_by_default() {
    let server = serve(fast_config().build()).await;
    let (_, head) = handshake(
        server.addr,
        "/engine.io/?EIO=4&transport=websocket",
        &[OFFER],
    )
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "{head}"
    );
}

#[tokio::test]
async fn compressed_messages_both_ways() {
    let server = serve(with_deflate().build()).await;
    let (mut tcp, head, _) = raw_session(&server).await;
    assert!(
        head.to_ascii_lowercase().contains(
            "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ),
        "{head}"
    );
    let text = format!("4{}", "compress me ".repeat(500));
    let packed = client_deflate(text.as_bytes());
    // Split over three fragments, the first with RSV1.
    let third = packed.len() / 3;
    tcp.write_all(&client_frame_rsv1(
        false,
        true,
        opcode::TEXT,
        &packed[..third],
    ))
    .await
    .unwrap();
    tcp.write_all(&client_frame(
        false,
        opcode::CONTINUATION,
        &packed[third..2 * third],
    ))
    .await
    .unwrap();
    tcp.write_all(&client_frame(
        true,
        opcode::CONTINUATION,
        &packed[2 * third..],
    ))
    .await
    .unwrap();
    let (first, payload) = read_raw_frame(&mut tcp, 1 << 20).await.unwrap();
    assert_eq!(first & 0x40, 0x40, "the echo is compressed (RSV1)");
    assert!(payload.len() < text.len() / 10);
    let mut inflater = sockeye_protocol::deflate::Inflater::new(
        Role::Client,
        Negotiated {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
        },
        1 << 20,
    );
    assert_eq!(inflater.inflate(&payload).unwrap(), text.as_bytes());
    // Short messages stay plain (under the 1 KiB threshold).
    tcp.write_all(&client_frame(true, opcode::TEXT, b"4hi"))
        .await
        .unwrap();
    let (first, payload) = read_raw_frame(&mut tcp, 1 << 20).await.unwrap();
    assert_eq!((first, payload.as_slice()), (0x81, &b"4hi"[..]));
}

#[tokio::test]
async fn node_ws_client_negotiates_and_saves_bytes() {
    for (deflate, size) in [(true, 16 * 1024), (false, 16 * 1024)] {
        let config = if deflate {
            with_deflate()
        } else {
            fast_config().ping_interval(std::time::Duration::from_secs(5))
        };
        let server = serve(config.build()).await;
        let proxy = FaultProxy::start(server.addr).await.unwrap();
        let port = proxy.addr().port().to_string();
        let size_arg = size.to_string();
        let result = run_node("ws-deflate.js", "ws", &server, &[&size_arg, &port]).await;
        assert_eq!(result["open"], true, "{result}");
        assert_eq!(result["textOk"], true, "{result}");
        assert_eq!(result["binaryOk"], true, "{result}");
        let extensions = result["extensions"].as_str().unwrap_or_default();
        assert_eq!(
            extensions.contains("permessage-deflate"),
            deflate,
            "{result}"
        );
        let up = proxy.bytes(Direction::Up);
        let down = proxy.bytes(Direction::Down);
        if deflate {
            // 16 KiB of repeated text and 16 KiB of one byte value, each way.
            assert!(up < 4096 && down < 4096, "up {up} down {down}");
        } else {
            assert!(up > 32 * 1024 && down > 32 * 1024, "up {up} down {down}");
        }
    }
}

async fn assert_bomb_closes_only_its_connection(fragments: usize) {
    let server = serve(with_deflate().max_payload(100_000).build()).await;
    let (mut bystander, bystander_sid) = ws_session(&server).await;
    let (mut tcp, _, sid) = raw_session(&server).await;
    let bomb = client_deflate(&vec![0u8; 5 << 20]);
    assert!(bomb.len() < 100_000, "the bomb itself is under the limit");
    let step = bomb.len().div_ceil(fragments);
    let parts: Vec<_> = bomb.chunks(step).collect();
    for (i, part) in parts.iter().enumerate() {
        let frame = if i == 0 {
            client_frame_rsv1(parts.len() == 1, true, opcode::BINARY, part)
        } else {
            client_frame(i + 1 == parts.len(), opcode::CONTINUATION, part)
        };
        if tcp.write_all(&frame).await.is_err() {
            break;
        }
    }
    let code = loop {
        match read_raw_frame(&mut tcp, 1 << 20).await {
            Ok((first, payload)) if first & 0x0f == opcode::CLOSE => {
                break u16::from_be_bytes([payload[0], payload[1]]);
            }
            Ok(_) => {}
            Err(e) => panic!("connection ended without a close frame: {e}"),
        }
    };
    assert_eq!(code, 1009);
    assert_eq!(
        server.rec.wait_close(&sid).await,
        CloseReason::PayloadTooLarge
    );
    // The other connection goes on.
    use futures_util::SinkExt;
    bystander
        .send(tokio_tungstenite::tungstenite::Message::text("4still"))
        .await
        .unwrap();
    assert_eq!(next_text(&mut bystander).await, "4still");
    assert!(server.engine.session(&bystander_sid).is_some());
}

#[tokio::test]
async fn a_deflate_bomb_closes_its_connection_with_1009() {
    assert_bomb_closes_only_its_connection(1).await;
}

#[tokio::test]
async fn a_deflate_bomb_split_over_fragments_closes_with_1009() {
    assert_bomb_closes_only_its_connection(500).await;
}

#[tokio::test]
async fn corrupt_deflate_data_closes_with_1007() {
    let server = serve(with_deflate().build()).await;
    let (mut tcp, _, sid) = raw_session(&server).await;
    tcp.write_all(&client_frame_rsv1(true, true, opcode::TEXT, &[0xff; 64]))
        .await
        .unwrap();
    let (first, payload) = read_raw_frame(&mut tcp, 4096).await.unwrap();
    assert_eq!(first & 0x0f, opcode::CLOSE);
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1007);
    assert_eq!(
        server.rec.wait_close(&sid).await,
        CloseReason::TransportError
    );
}
