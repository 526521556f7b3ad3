//! Every case of the official Engine.IO test suite (socketio/engine.io-protocol, test-suite),
//! in our words, against the conformance example on an ephemeral port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;

const WAIT: Duration = Duration::from_secs(5);

struct Server {
    base: String,
    ws: String,
    http: reqwest::Client,
}

async fn server() -> Server {
    let (addr, _engine) = engine_conformance::spawn(0).await.unwrap();
    Server {
        base: format!("http://{addr}/engine.io/"),
        ws: format!("ws://{addr}/engine.io/"),
        http: reqwest::Client::new(),
    }
}

impl Server {
    async fn get(&self, query: &str) -> (u16, String) {
        let res =
            tokio::time::timeout(WAIT, self.http.get(format!("{}?{query}", self.base)).send())
                .await
                .expect("GET timed out")
                .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    async fn post(&self, query: &str, body: &'static str) -> (u16, String) {
        let res = tokio::time::timeout(
            WAIT,
            self.http
                .post(format!("{}?{query}", self.base))
                .body(body)
                .send(),
        )
        .await
        .expect("POST timed out")
        .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// Polling handshake; returns the sid.
    async fn handshake(&self) -> String {
        let (status, body) = self.get("EIO=4&transport=polling").await;
        assert_eq!(status, 200);
        let json: serde_json_like::Value = serde_json_like::parse(&body[1..]);
        json.sid
    }

    async fn ws(
        &self,
        query: &str,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async(format!("{}?{query}", self.ws)),
        )
        .await
        .expect("ws connect timed out")
        .unwrap();
        ws
    }
}

/// Minimal JSON reading for the handshake, so the test checks the exact key set.
mod serde_json_like {
    pub struct Value {
        pub sid: String,
        pub keys: Vec<String>,
        pub raw: String,
    }

    pub fn parse(text: &str) -> Value {
        let raw = text.to_owned();
        let inner = text.trim().trim_start_matches('{').trim_end_matches('}');
        let mut keys = Vec::new();
        let mut sid = String::new();
        // The handshake has no nested objects; split on top-level commas outside brackets.
        let mut depth = 0;
        let mut start = 0;
        let bytes = inner.as_bytes();
        let mut parts = Vec::new();
        for (i, b) in bytes.iter().enumerate() {
            match b {
                b'[' => depth += 1,
                b']' => depth -= 1,
                b',' if depth == 0 => {
                    parts.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&inner[start..]);
        for part in parts {
            let (k, v) = part.split_once(':').unwrap();
            let k = k.trim_matches('"').to_owned();
            if k == "sid" {
                sid = v.trim_matches('"').to_owned();
            }
            keys.push(k);
        }
        Value { sid, keys, raw }
    }
}

async fn next_text(
    ws: &mut (impl StreamExt<Item = Result<Ws, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> String {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no frame in time")
        {
            Some(Ok(Ws::Text(t))) => return t.to_string(),
            Some(Ok(Ws::Ping(_) | Ws::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn expect_closed(
    ws: &mut (impl StreamExt<Item = Result<Ws, tokio_tungstenite::tungstenite::Error>> + Unpin),
) {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("socket not closed in time")
        {
            None | Some(Err(_) | Ok(Ws::Close(_))) => return,
            Some(Ok(Ws::Ping(_) | Ws::Pong(_))) => continue,
            Some(Ok(other)) => panic!("expected a close, got {other:?}"),
        }
    }
}

// ---- handshake ----

#[tokio::test]
async fn polling_handshake_has_exactly_the_five_keys() {
    let s = server().await;
    let (status, body) = s.get("EIO=4&transport=polling").await;
    assert_eq!(status, 200);
    assert!(body.starts_with('0'), "{body}");
    let v = serde_json_like::parse(&body[1..]);
    assert_eq!(
        v.keys,
        [
            "sid",
            "upgrades",
            "pingInterval",
            "pingTimeout",
            "maxPayload"
        ],
        "{}",
        v.raw
    );
    assert!(v.raw.contains(r#""upgrades":["websocket"]"#));
    assert!(
        v.raw
            .contains(r#""pingInterval":300,"pingTimeout":200,"maxPayload":1000000"#)
    );
    assert!(!v.sid.is_empty());
}

#[tokio::test]
async fn missing_or_invalid_eio_is_400() {
    let s = server().await;
    assert_eq!(s.get("transport=polling").await.0, 400);
    assert_eq!(s.get("EIO=abc&transport=polling").await.0, 400);
}

#[tokio::test]
async fn missing_or_invalid_transport_is_400() {
    let s = server().await;
    assert_eq!(s.get("EIO=4").await.0, 400);
    assert_eq!(s.get("EIO=4&transport=abc").await.0, 400);
}

#[tokio::test]
async fn post_or_put_handshake_is_400() {
    let s = server().await;
    assert_eq!(s.post("EIO=4&transport=polling", "").await.0, 400);
    let res = s
        .http
        .put(format!("{}?EIO=4&transport=polling", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
}

#[tokio::test]
async fn websocket_handshake_sends_open_without_upgrades() {
    let s = server().await;
    let mut ws = s.ws("EIO=4&transport=websocket").await;
    let open = next_text(&mut ws).await;
    assert!(open.starts_with('0'));
    let v = serde_json_like::parse(&open[1..]);
    assert_eq!(
        v.keys,
        [
            "sid",
            "upgrades",
            "pingInterval",
            "pingTimeout",
            "maxPayload"
        ]
    );
    assert!(v.raw.contains(r#""upgrades":[]"#));
}

#[tokio::test]
async fn websocket_with_invalid_eio_or_transport_is_refused() {
    let s = server().await;
    for query in [
        "EIO=abc&transport=websocket",
        "EIO=4&transport=abc",
        "transport=websocket",
    ] {
        let res = tokio_tungstenite::connect_async(format!("{}?{query}", s.ws)).await;
        assert!(res.is_err(), "{query} must be refused");
    }
}

// ---- messages over polling ----

#[tokio::test]
async fn polling_echoes_a_text_message() {
    let s = server().await;
    let sid = s.handshake().await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    assert_eq!(s.post(&q, "4hello").await, (200, "ok".into()));
    assert_eq!(s.get(&q).await, (200, "4hello".into()));
}

#[tokio::test]
async fn polling_echoes_a_batch_in_one_payload() {
    let s = server().await;
    let sid = s.handshake().await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    assert_eq!(s.post(&q, "4test1\x1e4test2\x1e4test3").await.0, 200);
    assert_eq!(s.get(&q).await, (200, "4test1\x1e4test2\x1e4test3".into()));
}

#[tokio::test]
async fn polling_echoes_binary_as_base64() {
    let s = server().await;
    let sid = s.handshake().await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    assert_eq!(s.post(&q, "4hello\x1ebAQIDBA==").await.0, 200);
    assert_eq!(s.get(&q).await, (200, "4hello\x1ebAQIDBA==".into()));
}

#[tokio::test]
async fn polling_invalid_packet_closes_the_session() {
    let s = server().await;
    let sid = s.handshake().await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    assert_eq!(s.post(&q, "abc").await.0, 400);
    assert_eq!(s.get(&q).await.0, 400);
}

#[tokio::test]
async fn concurrent_gets_close_the_session() {
    let s = server().await;
    let sid = s.handshake().await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let first = s.get(&q);
    let second = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        s.get(&q).await
    };
    let ((s1, b1), (s2, _)) = tokio::join!(first, second);
    assert_eq!((s1, b1.as_str()), (200, "1"));
    assert!(s2 == 400 || s2 == 500, "second GET: {s2}");
    assert_eq!(s.get(&q).await.0, 400);
}

// ---- messages over WebSocket ----

#[tokio::test]
async fn websocket_echoes_text_and_binary_and_closes_on_garbage() {
    let s = server().await;
    let mut ws = s.ws("EIO=4&transport=websocket").await;
    next_text(&mut ws).await;
    ws.send(Ws::text("4hello")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4hello");
    ws.send(Ws::binary(vec![1u8, 2, 3, 4])).await.unwrap();
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Ws::Binary(b))) => assert_eq!(&b[..], &[1, 2, 3, 4]),
        other => panic!("expected the binary echo, got {other:?}"),
    }
    ws.send(Ws::text("abc")).await.unwrap();
    expect_closed(&mut ws).await;
}

// ---- heartbeat ----

#[tokio::test]
async fn polling_heartbeat_three_rounds() {
    let s = server().await;
    let sid = s.handshake().await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    for _ in 0..3 {
        assert_eq!(s.get(&q).await, (200, "2".into()));
        assert_eq!(s.post(&q, "3").await.0, 200);
    }
}

#[tokio::test]
async fn first_ping_comes_one_interval_after_the_handshake() {
    let s = server().await;
    let start = std::time::Instant::now();
    let sid = s.handshake().await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    assert_eq!(s.get(&q).await, (200, "2".into()));
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(290),
        "first ping after {elapsed:?}"
    );
}

#[tokio::test]
async fn polling_session_without_pong_is_closed() {
    let s = server().await;
    let sid = s.handshake().await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    // The suite sleeps exactly 500 ms; we give the timer a margin on a loaded machine.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(s.get(&q).await.0, 400);
}

#[tokio::test]
async fn websocket_heartbeat_three_rounds_then_timeout() {
    let s = server().await;
    let mut ws = s.ws("EIO=4&transport=websocket").await;
    next_text(&mut ws).await;
    for _ in 0..3 {
        assert_eq!(next_text(&mut ws).await, "2");
        ws.send(Ws::text("3")).await.unwrap();
    }
    assert_eq!(next_text(&mut ws).await, "2");
    expect_closed(&mut ws).await;
}

// ---- close ----

#[tokio::test]
async fn polling_client_close_answers_pending_get_with_noop() {
    let s = server().await;
    let sid = s.handshake().await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let pending = s.get(&q);
    let close = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.post(&q, "1").await
    };
    let ((gs, gb), (ps, _)) = tokio::join!(pending, close);
    assert_eq!((gs, gb.as_str()), (200, "6"));
    assert_eq!(ps, 200);
    assert_eq!(s.get(&q).await.0, 400);
}

#[tokio::test]
async fn websocket_client_close_closes_the_socket() {
    let s = server().await;
    let mut ws = s.ws("EIO=4&transport=websocket").await;
    next_text(&mut ws).await;
    ws.send(Ws::text("1")).await.unwrap();
    expect_closed(&mut ws).await;
}

// ---- upgrade ----

#[tokio::test]
async fn upgrade_probe_noop_then_websocket_echo() {
    let s = server().await;
    let sid = s.handshake().await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let mut ws = s.ws(&format!("EIO=4&transport=websocket&sid={sid}")).await;
    ws.send(Ws::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "3probe");
    assert_eq!(s.get(&q).await, (200, "6".into()));
    ws.send(Ws::text("5")).await.unwrap();
    ws.send(Ws::text("4hello")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4hello");
}

#[tokio::test]
async fn after_upgrade_polling_is_refused() {
    let s = server().await;
    let sid = s.handshake().await;
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let mut ws = s.ws(&format!("EIO=4&transport=websocket&sid={sid}")).await;
    ws.send(Ws::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "3probe");
    ws.send(Ws::text("5")).await.unwrap();
    // The UPGRADE packet is processed asynchronously: ask until the switch is visible.
    let mut status = 0;
    for _ in 0..50 {
        status = s.get(&q).await.0;
        if status == 400 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, 400);
    ws.send(Ws::text("4hello")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4hello");
}

#[tokio::test]
async fn second_websocket_for_the_same_sid_is_refused() {
    let s = server().await;
    let sid = s.handshake().await;
    let ws_query = format!("EIO=4&transport=websocket&sid={sid}");
    let mut ws = s.ws(&ws_query).await;
    ws.send(Ws::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "3probe");
    ws.send(Ws::text("5")).await.unwrap();
    ws.send(Ws::text("4one")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4one");
    let second = tokio_tungstenite::connect_async(format!("{}?{ws_query}", s.ws)).await;
    if let Ok((mut second, _)) = second {
        expect_closed(&mut second).await;
    }
    ws.send(Ws::text("4hello")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4hello");
}
