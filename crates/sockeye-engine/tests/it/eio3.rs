//! Engine.IO v3 clients (`allow_eio3`, feature `eio3`): the official `engine.io-client` 3.x
//! (npm alias `engine.io-client-v3`, pinned in tests/package.json) over polling (XHR2 binary
//! and base64), WebSocket and the upgrade, and the v3 details on the wire: the handshake and
//! payload framing, the client-driven heartbeat, the heartbeat direction, JSONP.

use crate::common;

use std::time::Duration;

use common::*;
use sockeye_engine::{CloseReason, Protocol};

fn v3_config() -> sockeye_engine::EngineConfigBuilder {
    fast_config().allow_eio3(true)
}

/// `len:0{json}` of a v3 polling handshake: the sid.
fn v3_sid(body: &str) -> String {
    let (len, rest) = body.split_once(':').unwrap();
    let open = &rest[..len.parse::<usize>().unwrap()];
    let json: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
    json["sid"].as_str().unwrap().to_owned()
}

async fn v3_handshake(server: &TestServer, client: &reqwest::Client, query: &str) -> String {
    let (status, body) = get(
        client,
        &server.url(&format!("EIO=3&transport=polling{query}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    v3_sid(&body)
}

#[tokio::test]
async fn v3_is_refused_unless_allowed() {
    let server = serve(fast_config().build()).await;
    let (status, body) = get(&http(), &server.url("EIO=3&transport=polling")).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        r#"{"code":5,"message":"Unsupported protocol version"}"#
    );
    // Allowed: only EIO=3 selects v3, a missing EIO is still refused.
    let server = serve(v3_config().build()).await;
    let (status, _) = get(&http(), &server.url("transport=polling")).await;
    assert_eq!(status, 400);
    let (status, _) = get(&http(), &server.url("EIO=3&transport=polling")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn polling_payloads_count_utf16_units_and_the_client_pings() {
    let server = serve(v3_config().build()).await;
    let client = http();
    let sid = v3_handshake(&server, &client, "").await;
    assert_eq!(
        server.engine.session(&sid).unwrap().protocol(),
        Protocol::V3
    );
    let url = server.url(&format!("EIO=3&transport=polling&sid={sid}"));
    // "4é🚀" is 4 UTF-16 units; a PING is answered with a PONG, before the echo.
    let (status, body) = post(&client, &url, "4:4é🚀1:2").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = get(&client, &url).await;
    assert_eq!((status, body.as_str()), (200, "1:34:4é🚀"));
    // No PING from the server, ever: the session ends interval + timeout after the last
    // client PING (300 + 200 ms here).
    let reason = server.rec.wait_close(&sid).await;
    assert_eq!(reason, CloseReason::PingTimeout);
}

#[tokio::test]
async fn a_pong_from_a_v3_client_is_the_wrong_heartbeat_direction() {
    let server = serve(v3_config().build()).await;
    let client = http();
    let sid = v3_handshake(&server, &client, "").await;
    let url = server.url(&format!("EIO=3&transport=polling&sid={sid}"));
    post(&client, &url, "1:3").await;
    assert_eq!(
        server.rec.wait_close(&sid).await,
        CloseReason::TransportError
    );
}

#[tokio::test]
async fn binary_goes_out_as_xhr2_payloads_or_base64() {
    let server = serve(v3_config().build()).await;
    let client = http();
    // Without b64: an XHR2 binary payload (octet-stream) as soon as it holds binary.
    let sid = v3_handshake(&server, &client, "").await;
    let url = server.url(&format!("EIO=3&transport=polling&sid={sid}"));
    let xhr2 = [&[1u8, 4, 0xff, 4][..], &[7, 8, 9]].concat();
    let res = client
        .post(&url)
        .header("content-type", "application/octet-stream")
        .body(xhr2.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = client.get(&url).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    assert_eq!(res.bytes().await.unwrap().as_ref(), xhr2.as_slice());
    // With b64=1: `b4` + base64 in a text payload.
    let sid = v3_handshake(&server, &client, "&b64=1").await;
    let url = server.url(&format!("EIO=3&transport=polling&sid={sid}"));
    post(&client, &url, "6:b4BwgJ").await;
    let (_, body) = get(&client, &url).await;
    assert_eq!(body, "6:b4BwgJ");
}

#[tokio::test]
async fn bad_v3_payloads_close_the_session() {
    let server = serve(v3_config().build()).await;
    let client = http();
    for bad in ["5:4abc", "2:4🚀", "1e1:4abcdefghi", "x"] {
        let sid = v3_handshake(&server, &client, "").await;
        let url = server.url(&format!("EIO=3&transport=polling&sid={sid}"));
        let (status, _) = post(&client, &url, bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(
            server.rec.wait_close(&sid).await,
            CloseReason::ParseError,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn jsonp_polling() {
    let server = serve(v3_config().build()).await;
    let client = http();
    let (status, body) = get(&client, &server.url("EIO=3&transport=polling&j=4&b64=1")).await;
    assert_eq!(status, 200);
    let json = body
        .strip_prefix("___eio[4](")
        .and_then(|b| b.strip_suffix(");"))
        .unwrap_or_else(|| panic!("not a JSONP answer: {body}"));
    let payload: String = serde_json::from_str(json).unwrap();
    let sid = v3_sid(&payload);
    let url = server.url(&format!("EIO=3&transport=polling&sid={sid}&j=4"));
    // The client escapes newlines as `\n` in the form field.
    let res = client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("d=5%3A4a%5Cnb%E2%80%A8")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "ok");
    let (_, body) = get(&client, &url).await;
    assert_eq!(body, "___eio[4](\"5:4a\\nb\\u2028\");");
}

#[tokio::test]
async fn jsonp_is_not_offered_to_v4_clients() {
    let server = serve(v3_config().build()).await;
    let (status, body) = get(&http(), &server.url("EIO=4&transport=polling&j=0")).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("0{"), "{body}");
}

#[tokio::test]
async fn websocket_binary_frames_carry_the_type_byte_and_the_client_pings() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as Ws;
    let server = serve(v3_config().build()).await;
    let mut ws = ws_connect(&server.ws_url("EIO=3&transport=websocket")).await;
    let open = next_text(&mut ws).await;
    assert!(open.starts_with("0{"), "{open}");
    ws.send(Ws::Binary(vec![4, 1, 2].into())).await.unwrap();
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Ws::Binary(data))) => assert_eq!(data.as_ref(), &[4, 1, 2]),
        other => panic!("expected the binary echo, got {other:?}"),
    }
    ws.send(Ws::text("2")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "3");
    // A binary frame of another type is not a v3 message.
    ws.send(Ws::Binary(vec![2, 1].into())).await.unwrap();
    assert_eq!(wait_ws_close(&mut ws).await, Some(1008));
}

async fn official(mode: &str, b64: &str, open: &str, last: &str) {
    let server = serve(v3_config().build()).await;
    let result = run_node("client-v3.js", "engine.io-client-v3", &server, &[mode, b64]).await;
    assert_eq!(result["openTransport"], open, "{result}");
    assert_eq!(result["transport"], last, "{result}");
    assert_eq!(result["text"], "hello ü 🦀");
    assert_eq!(result["binary"], serde_json::json!([1, 2, 3, 4]));
    assert_eq!(result["later"], "still here");
    // 1.3 s at a 300 ms interval: the client pinged and got its pongs.
    assert!(result["pongs"].as_u64().unwrap() >= 3, "{result}");
    let closes = server.rec.closes();
    assert!(
        closes.iter().all(|(_, r)| *r != CloseReason::PingTimeout),
        "{closes:?}"
    );
}

#[tokio::test]
async fn official_v3_client_polling_xhr2() {
    official("polling", "0", "polling", "polling").await;
}

#[tokio::test]
async fn official_v3_client_polling_base64() {
    official("polling", "1", "polling", "polling").await;
}

#[tokio::test]
async fn official_v3_client_websocket() {
    official("websocket", "0", "websocket", "websocket").await;
}

#[tokio::test]
async fn official_v3_client_upgrade() {
    official("upgrade", "0", "polling", "websocket").await;
}

#[tokio::test]
async fn v3_session_survives_idle_intervals_only_with_client_pings() {
    // Same timings as above, a WebSocket client that never pings: closed as PingTimeout
    // about interval + timeout after the handshake.
    let server = serve(v3_config().build()).await;
    let mut ws = ws_connect(&server.ws_url("EIO=3&transport=websocket")).await;
    let open = next_text(&mut ws).await;
    let json: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
    let sid = json["sid"].as_str().unwrap().to_owned();
    let started = tokio::time::Instant::now();
    assert_eq!(server.rec.wait_close(&sid).await, CloseReason::PingTimeout);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
}
