//! Hostile and malformed input: each case gets the reference server's HTTP error or a close
//! of that session only, and never disturbs another session.

use crate::common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use sockeye_engine::{CloseReason, EngineConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as Ws;

/// A healthy bystander session must still echo after each hostile case.
async fn bystander_still_echoes(server: &TestServer, client: &reqwest::Client, sid: &str) {
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    assert_eq!(post(client, &q, "4still-here").await, (200, "ok".into()));
    let (status, body) = get(client, &q).await;
    assert_eq!(status, 200);
    assert!(body.contains("4still-here"), "{body}");
}

async fn error_json(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
) -> (u16, serde_json::Value) {
    let res = client.request(method, url).send().await.unwrap();
    let status = res.status().as_u16();
    assert_eq!(res.headers()["content-type"], "application/json");
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn every_error_code_is_worded_like_the_reference_server() {
    let server = serve(
        fast_config()
            .allow_request(|p| p.headers.get("x-deny").is_none())
            .build(),
    )
    .await;
    let client = http();
    let get = reqwest::Method::GET;
    let cases = [
        (
            "EIO=4&transport=carrier-pigeon",
            reqwest::Method::GET,
            400,
            0,
            "Transport unknown",
        ),
        (
            "EIO=4&transport=polling&sid=forged",
            get.clone(),
            400,
            1,
            "Session ID unknown",
        ),
        (
            "EIO=4&transport=polling",
            reqwest::Method::POST,
            400,
            2,
            "Bad handshake method",
        ),
        (
            "EIO=4&transport=websocket",
            get.clone(),
            400,
            3,
            "Bad request",
        ),
        (
            "EIO=3&transport=polling",
            get.clone(),
            400,
            5,
            "Unsupported protocol version",
        ),
    ];
    for (query, method, status, code, message) in cases {
        let (s, json) = error_json(&client, method, &server.url(query)).await;
        assert_eq!(s, status, "{query}");
        assert_eq!(
            json,
            serde_json::json!({"code": code, "message": message}),
            "{query}"
        );
    }
    let res = client
        .get(server.url("EIO=4&transport=polling"))
        .header("x-deny", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"code": 4, "message": "Forbidden"})
    );
}

#[tokio::test]
async fn malformed_query_strings_are_refused() {
    let server = serve(fast_config().build()).await;
    let client = http();
    for query in [
        "",
        "&&&",
        "==",
        "EIO",
        "EIO=4&transport",
        "EIO=4&transport=",
        "EIO=4&transport=POLLING",
    ] {
        let (status, _) = get(&client, &server.url(query)).await;
        assert_eq!(status, 400, "{query:?}");
    }
    // An empty or oversized forged sid is just unknown.
    let long = "a".repeat(4000);
    for sid in ["", "%00", long.as_str()] {
        let (status, body) = get(
            &client,
            &server.url(&format!("EIO=4&transport=polling&sid={sid}")),
        )
        .await;
        assert_eq!(status, 400);
        assert!(body.contains("\"code\":1"), "{body}");
    }
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test]
async fn wrong_methods_on_a_session_are_refused() {
    let server = serve(fast_config().build()).await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let res = client.request(method.clone(), &q).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 400, "{method}");
    }
    bystander_still_echoes(&server, &client, &sid).await;
}

#[tokio::test]
async fn garbage_and_truncated_payloads_close_only_their_session() {
    let server = serve(fast_config().build()).await;
    let client = http();
    let bystander = handshake(&server, &client).await;
    let bodies: [&[u8]; 8] = [
        b"",
        b"abc",
        b"4hello\x1e",
        b"b!!!",
        b"bAQ",
        b"4\xff\xfe",
        b"\x1e\x1e",
        b"1junk",
    ];
    for body in bodies {
        let sid = handshake(&server, &client).await;
        let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
        let (status, _) = post(&client, &q, body.to_vec()).await;
        assert_eq!(status, 400, "body {body:?}");
        assert_eq!(
            server.rec.wait_close(&sid).await,
            CloseReason::ParseError,
            "body {body:?}"
        );
        assert_eq!(
            get(&client, &q).await.0,
            400,
            "session must be gone after {body:?}"
        );
    }
    bystander_still_echoes(&server, &client, &bystander).await;
}

#[tokio::test]
async fn non_utf8_text_frame_closes_the_websocket_with_1007() {
    let server = serve(fast_config().build()).await;
    let client = http();
    let bystander = handshake(&server, &client).await;
    let (mut ws, sid) = ws_session(&server).await;
    // A raw text frame with invalid UTF-8, written below tungstenite's own checks.
    let frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
        vec![b'4', 0xff, 0xfe],
        tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
            tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    ws.send(Ws::Frame(frame)).await.unwrap();
    assert_eq!(wait_ws_close(&mut ws).await, Some(1007));
    assert_eq!(
        server.rec.wait_close(&sid).await,
        CloseReason::TransportError
    );
    bystander_still_echoes(&server, &client, &bystander).await;
}

#[tokio::test]
async fn binary_where_text_is_expected_is_refused() {
    let server = serve(fast_config().build()).await;
    let client = http();
    // Over polling the body is text: raw binary bytes are not a packet.
    let sid = handshake(&server, &client).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    let res = client
        .post(&q)
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 1, 2, 3, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(server.rec.wait_close(&sid).await, CloseReason::ParseError);
    // Over WebSocket, a binary frame is a binary message and is echoed as one.
    let (mut ws, _) = ws_session(&server).await;
    ws.send(Ws::binary(vec![9u8, 8, 7])).await.unwrap();
    use futures_util::StreamExt;
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Ws::Binary(b))) => assert_eq!(&b[..], &[9, 8, 7]),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn oversized_post_is_413_and_closes_only_that_session() {
    let server = serve(fast_config().max_payload(1000).build()).await;
    let client = http();
    let bystander = handshake(&server, &client).await;
    let sid = handshake(&server, &client).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    let body = format!("4{}", "x".repeat(1000));
    assert_eq!(post(&client, &q, body).await.0, 413);
    assert_eq!(
        server.rec.wait_close(&sid).await,
        CloseReason::PayloadTooLarge
    );
    // Exactly at the limit is fine.
    let body = format!("4{}", "x".repeat(999));
    bystander_still_echoes(&server, &client, &bystander).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={bystander}"));
    assert_eq!(post(&client, &q, body).await, (200, "ok".into()));
}

/// The pending GET is never answered with CLOSE when the POST gets 413, so a client sees the
/// POST's failure (`transport error`), not a clean close: it gets NOOP, and the next request
/// 400 (`tests/max_payload.rs` checks what official clients report, against the reference).
#[tokio::test]
async fn oversized_post_answers_the_pending_get_with_noop() {
    // A ping interval long enough that no PING answers the GET before the POST.
    let config = fast_config()
        .ping_interval(Duration::from_secs(2))
        .max_payload(1000);
    let server = serve(config.build()).await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    let pending = tokio::spawn({
        let (client, q) = (client.clone(), q.clone());
        async move { get(&client, &q).await }
    });
    // The GET is parked before the POST arrives: the engine closes on the POST, not the GET.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let body = format!("4{}", "x".repeat(1000));
    assert_eq!(post(&client, &q, body).await.0, 413);
    assert_eq!(
        server.rec.wait_close(&sid).await,
        CloseReason::PayloadTooLarge
    );
    let answer = tokio::time::timeout(WAIT, pending).await.unwrap().unwrap();
    assert_eq!(answer, (200, "6".to_owned()));
    assert_eq!(get(&client, &q).await.0, 400, "the session is gone");
}

#[tokio::test]
async fn oversized_chunked_post_is_cut_while_streaming() {
    let server = serve(fast_config().max_payload(1000).build()).await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    // Keep streaming chunks: the server must answer 413 without waiting for the end.
    let chunk = format!("400\r\n{}\r\n", "4".repeat(0x400));
    let writer = async {
        for _ in 0..64 {
            if tcp.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), writer).await;
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(
        server.rec.wait_close(&sid).await,
        CloseReason::PayloadTooLarge
    );
}

#[tokio::test]
async fn oversized_websocket_message_closes_with_1009() {
    let server = serve(fast_config().max_payload(1000).build()).await;
    let client = http();
    let bystander = handshake(&server, &client).await;
    let (mut ws, sid) = ws_session(&server).await;
    ws.send(Ws::text(format!("4{}", "y".repeat(2000))))
        .await
        .unwrap();
    assert_eq!(wait_ws_close(&mut ws).await, Some(1009));
    assert_eq!(
        server.rec.wait_close(&sid).await,
        CloseReason::PayloadTooLarge
    );
    let (mut ws, _) = ws_session(&server).await;
    ws.send(Ws::binary(vec![0u8; 1001])).await.unwrap();
    assert_eq!(wait_ws_close(&mut ws).await, Some(1009));
    bystander_still_echoes(&server, &client, &bystander).await;
}

/// A raw client frame (tungstenite masks it), below the client's own message assembly.
fn raw_frame(opcode: u8, fin: bool, payload: &[u8]) -> Ws {
    use tokio_tungstenite::tungstenite::protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    };
    let opcode = match opcode {
        0 => OpCode::Data(Data::Continue),
        1 => OpCode::Data(Data::Text),
        _ => OpCode::Data(Data::Binary),
    };
    Ws::Frame(Frame::message(payload.to_vec(), opcode, fin))
}

/// Pass: every fragment counts toward `ws_max_fragments`, zero-length continuations
/// included: a message of exactly the limit is echoed, one frame more closes with 1009 and
/// `PayloadTooLarge`.
#[tokio::test]
async fn websocket_fragment_count_includes_empty_continuations() {
    let server = serve(fast_config().ws_max_fragments(64).build()).await;
    let (mut ws, _) = ws_session(&server).await;
    // 1 text frame + 62 empty continuations + the final one: 64 frames.
    ws.feed(raw_frame(1, false, b"4")).await.unwrap();
    for _ in 0..62 {
        ws.feed(raw_frame(0, false, b"")).await.unwrap();
    }
    ws.send(raw_frame(0, true, b"x")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4x");

    let (mut ws, sid) = ws_session(&server).await;
    ws.feed(raw_frame(1, false, b"4")).await.unwrap();
    for _ in 0..63 {
        ws.feed(raw_frame(0, false, b"")).await.unwrap();
    }
    ws.send(raw_frame(0, true, b"x")).await.unwrap();
    assert_eq!(wait_ws_close(&mut ws).await, Some(1009));
    assert_eq!(
        server.rec.wait_close(&sid).await,
        CloseReason::PayloadTooLarge
    );
    assert_eq!(
        server
            .rec
            .messages
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

/// Pass: a client that sends empty continuation frames without end (never FIN) is closed
/// with 1009 and `PayloadTooLarge` under the default limit, long before the writer's cap,
/// and a bystander is not disturbed.
#[tokio::test]
async fn endless_empty_continuation_frames_are_closed() {
    use futures_util::StreamExt;
    let server = serve(fast_config().build()).await;
    let client = http();
    let bystander = handshake(&server, &client).await;
    let (ws, sid) = ws_session(&server).await;
    let (mut sink, mut stream) = ws.split();
    const CAP: usize = 1_000_000;
    let writer = tokio::spawn(async move {
        let mut sent = 0usize;
        if sink.feed(raw_frame(1, false, b"4")).await.is_err() {
            return sent;
        }
        while sent < CAP {
            for _ in 0..1000 {
                if sink.feed(raw_frame(0, false, b"")).await.is_err() {
                    return sent;
                }
                sent += 1;
            }
            if sink.flush().await.is_err() {
                return sent;
            }
        }
        sent
    });
    let code = loop {
        match tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("flooding client not closed in time")
        {
            Some(Ok(Ws::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            None | Some(Err(_)) => break None,
            Some(Ok(_)) => {}
        }
    };
    assert_eq!(code, Some(1009));
    assert_eq!(
        server.rec.wait_close(&sid).await,
        CloseReason::PayloadTooLarge
    );
    let sent = tokio::time::timeout(WAIT, writer)
        .await
        .expect("writer did not stop")
        .unwrap();
    assert!(
        sent < CAP,
        "the server never stopped the flood ({sent} frames)"
    );
    assert!(sent >= 16_383, "closed before the limit: {sent} frames");
    bystander_still_echoes(&server, &client, &bystander).await;
}

#[tokio::test]
async fn polling_and_websocket_at_once_on_one_sid() {
    let server = serve(fast_config().build()).await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    let ws_q = server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}"));
    let mut ws = ws_connect(&ws_q).await;
    // A second WebSocket during the pending upgrade is answered, then closed at once.
    let mut second = ws_connect(&ws_q).await;
    assert_eq!(wait_ws_close(&mut second).await, Some(1000));
    // Polling still works until the upgrade completes.
    assert_eq!(post(&client, &q, "4before").await.0, 200);
    assert_eq!(get(&client, &q).await, (200, "4before".into()));
    ws.send(Ws::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "3probe");
    ws.send(Ws::text("5")).await.unwrap();
    ws.send(Ws::text("4after")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4after");
    // Now both polling verbs are refused and the WebSocket is unaffected.
    assert_eq!(get(&client, &q).await.0, 400);
    assert_eq!(post(&client, &q, "4sneaky").await.0, 400);
    ws.send(Ws::text("4again")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4again");
    assert_eq!(
        server
            .rec
            .messages
            .load(std::sync::atomic::Ordering::SeqCst),
        3
    );
}

/// The official Engine.IO suite opens a second WebSocket with the sid of an upgraded session
/// and waits for a plain close: an HTTP 400 makes a client report an error instead.
#[tokio::test]
async fn a_second_websocket_after_the_upgrade_is_accepted_then_closed() {
    // Default heartbeat: no PING may come in between the frames this test reads.
    let server = serve(EngineConfig::builder().build()).await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let ws_q = server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}"));
    let mut ws = ws_connect(&ws_q).await;
    ws.send(Ws::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "3probe");
    ws.send(Ws::text("5")).await.unwrap();
    ws.send(Ws::text("4first")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4first");
    let mut second = ws_connect(&ws_q).await;
    assert_eq!(wait_ws_close(&mut second).await, Some(1000));
    // The session itself is untouched.
    ws.send(Ws::text("4still")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4still");
    assert!(server.rec.closes().is_empty());
}

#[tokio::test]
async fn a_polling_request_on_a_websocket_session_is_refused() {
    let server = serve(fast_config().build()).await;
    let client = http();
    let (mut ws, sid) = ws_session(&server).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    assert_eq!(get(&client, &q).await.0, 400);
    assert_eq!(post(&client, &q, "4x").await.0, 400);
    ws.send(Ws::text("4ok")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4ok");
}

#[tokio::test]
async fn ping_and_pong_floods_change_nothing() {
    let server = serve(fast_config().build()).await;
    let (mut ws, sid) = ws_session(&server).await;
    for _ in 0..5000 {
        ws.feed(Ws::text("2")).await.unwrap();
        ws.feed(Ws::text("3")).await.unwrap();
        ws.feed(Ws::text("2probe")).await.unwrap();
    }
    ws.flush().await.unwrap();
    ws.send(Ws::text("4alive")).await.unwrap();
    loop {
        let text = next_text(&mut ws).await;
        if text == "4alive" {
            break;
        }
        assert_eq!(text, "2", "only heartbeat pings may come before the echo");
    }
    assert!(server.rec.closes().is_empty());
    // Unsolicited pongs did not feed the heartbeat: without real pongs it still times out.
    assert_eq!(server.rec.wait_close(&sid).await, CloseReason::PingTimeout);
}

#[tokio::test]
async fn thousands_of_concurrent_gets_on_one_sid() {
    let server = serve(
        fast_config()
            .ping_interval(Duration::from_secs(20))
            .ping_timeout(Duration::from_secs(20))
            .build(),
    )
    .await;
    let client = http();
    let bystander = handshake(&server, &client).await;
    let sid = handshake(&server, &client).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..2000 {
        let client = client.clone();
        let q = q.clone();
        tasks.spawn(async move { client.get(&q).send().await.map(|r| r.status().as_u16()) });
    }
    let mut ok = 0;
    let mut refused = 0;
    while let Some(res) = tokio::time::timeout(Duration::from_secs(60), tasks.join_next())
        .await
        .expect("GETs hung")
    {
        match res.unwrap() {
            Ok(200) => ok += 1,
            Ok(400) => refused += 1,
            Ok(other) => panic!("unexpected status {other}"),
            // The client side may run out of sockets; the server must still not hang.
            Err(_) => {}
        }
    }
    assert!(ok <= 1, "at most the first GET is answered 200 (got {ok})");
    assert!(refused >= 1800, "the rest are refused (got {refused})");
    assert_eq!(
        server.rec.wait_close(&sid).await,
        CloseReason::TransportError
    );
    bystander_still_echoes(&server, &client, &bystander).await;
}

#[tokio::test]
async fn concurrent_post_is_refused_and_closes() {
    let server = serve(fast_config().build()).await;
    let sid = handshake(&server, &http()).await;
    // First POST: a body that never finishes, holding the POST slot.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n4abc"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    assert_eq!(post(&http(), &q, "4second").await.0, 400);
    assert_eq!(
        server.rec.wait_close(&sid).await,
        CloseReason::TransportError
    );
}

#[tokio::test]
async fn slow_reader_overflow_closes_with_a_reason() {
    let server = serve(
        fast_config()
            .max_queued_frames(16)
            .ping_interval(Duration::from_secs(20))
            .build(),
    )
    .await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    assert_eq!(post(&client, &q, "4flood:100").await.0, 200);
    assert_eq!(server.rec.wait_close(&sid).await, CloseReason::SlowReader);
    let errors = server.rec.send_errors.lock().unwrap().clone();
    assert_eq!(errors, vec![sockeye_engine::SendError::QueueFull(16)]);
    // The client learns it: its next poll gets CLOSE or an unknown-session error.
    let (status, body) = get(&client, &q).await;
    assert!(status == 400 || body == "1", "{status} {body}");
}

#[tokio::test]
async fn echo_burst_is_paced_by_back_pressure_not_dropped() {
    let server = serve(fast_config().max_queued_frames(16).build()).await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    let burst: Vec<String> = (0..200).map(|i| format!("4m{i}")).collect();
    let body = burst.join("\x1e");
    let poster = post(&client, &q, body);
    let reader = async {
        let mut got = Vec::new();
        while got.len() < 200 {
            let (status, payload) = get(&client, &q).await;
            assert_eq!(status, 200, "{payload}");
            for packet in payload.split('\x1e') {
                match packet {
                    "2" => assert_eq!(post(&client, &q, "3").await.0, 200),
                    "6" => {}
                    p => got.push(p.to_owned()),
                }
            }
        }
        got
    };
    let ((status, _), got) = tokio::join!(poster, reader);
    assert_eq!(status, 200);
    assert_eq!(got, burst);
    assert!(server.rec.closes().is_empty());
}

#[tokio::test]
async fn abandoned_sessions_are_freed_by_the_heartbeat() {
    let server = serve(fast_config().build()).await;
    let client = http();
    for _ in 0..20 {
        handshake(&server, &client).await;
    }
    assert_eq!(server.engine.session_count(), 20);
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.engine.session_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.engine.session_count(), 0);
    assert!(
        server
            .rec
            .closes()
            .iter()
            .all(|(_, r)| *r == CloseReason::PingTimeout)
    );
    let _ = EngineConfig::default();
}

#[tokio::test]
async fn a_panicking_handler_closes_only_its_session() {
    let server = serve(fast_config().ping_interval(Duration::from_secs(20)).build()).await;
    server
        .rec
        .panic_expected
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let client = http();
    let bystander = handshake(&server, &client).await;
    let (mut ws, ws_sid) = ws_session(&server).await;
    ws.send(Ws::text("4panic")).await.unwrap();
    wait_ws_close(&mut ws).await;
    assert_eq!(
        server.rec.wait_close(&ws_sid).await,
        CloseReason::HandlerPanic
    );
    let sid = handshake(&server, &client).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    assert_eq!(post(&client, &q, "4panic").await.0, 200);
    assert_eq!(server.rec.wait_close(&sid).await, CloseReason::HandlerPanic);
    bystander_still_echoes(&server, &client, &bystander).await;
}

#[tokio::test]
async fn a_websocket_client_that_stops_reading_is_closed_as_slow_reader() {
    let server = serve(
        fast_config()
            .ping_interval(Duration::from_secs(20))
            .slow_reader_timeout(Duration::from_millis(500))
            .build(),
    )
    .await;
    let client = http();
    let bystander = handshake(&server, &client).await;
    let (mut ws, sid) = ws_session(&server).await;
    // 64 MiB asked for, never read: the socket buffers fill up and the write stalls.
    ws.send(Ws::text("4blob:1000")).await.unwrap();
    assert_eq!(server.rec.wait_close(&sid).await, CloseReason::SlowReader);
    bystander_still_echoes(&server, &client, &bystander).await;
    drop(ws);
}

#[tokio::test]
async fn a_polling_client_that_never_polls_is_closed_as_slow_reader() {
    let server = serve(
        fast_config()
            .ping_interval(Duration::from_secs(20))
            .max_queued_frames(8)
            .slow_reader_timeout(Duration::from_millis(300))
            .build(),
    )
    .await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    let burst = (0..50)
        .map(|i| format!("4m{i}"))
        .collect::<Vec<_>>()
        .join("\x1e");
    // Echo requests, never a GET: reading pauses at half the queue, then the session closes.
    assert_eq!(post(&client, &q, burst).await.0, 200);
    assert_eq!(server.rec.wait_close(&sid).await, CloseReason::SlowReader);
    assert!(
        server
            .rec
            .messages
            .load(std::sync::atomic::Ordering::SeqCst)
            <= 8,
        "reading paused instead of buffering"
    );
    assert!(
        server.rec.send_errors.lock().unwrap().is_empty(),
        "nothing was refused: input was paced"
    );
}

/// The official suite's "closes the session upon cancelled polling request": a client that
/// aborts its pending GET has gone away, so the session ends at once as `TransportClose`
/// (long before the ping timeout) and a later poll on that sid gets 400.
#[tokio::test]
async fn a_cancelled_pending_poll_closes_the_session() {
    let server = serve(EngineConfig::builder().build()).await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let bystander = handshake(&server, &client).await;

    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let path = format!(
        "{}?EIO=4&transport=polling&sid={sid}",
        server.engine.config().path()
    );
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    tcp.write_all(request.as_bytes()).await.unwrap();
    // The GET is now held by the server (nothing queued, ping 25 s away): abort it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(tcp);

    let reason = tokio::time::timeout(Duration::from_secs(3), server.rec.wait_close(&sid))
        .await
        .expect("the session must close well before its 25 s ping interval");
    assert_eq!(reason, CloseReason::TransportClose);
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    assert_eq!(get(&client, &q).await.0, 400);
    bystander_still_echoes(&server, &client, &bystander).await;
}

/// An answered poll is not a cancelled one: sessions whose GETs complete stay open.
#[tokio::test]
async fn answered_polls_keep_the_session() {
    let server = serve(EngineConfig::builder().build()).await;
    let client = http();
    let sid = handshake(&server, &client).await;
    for _ in 0..3 {
        bystander_still_echoes(&server, &client, &sid).await;
    }
    assert!(server.rec.closes().is_empty(), "{:?}", server.rec.closes());
}
