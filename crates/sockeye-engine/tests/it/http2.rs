//! WebSocket over HTTP/2 (RFC 8441): the server advertises SETTINGS_ENABLE_CONNECT_PROTOCOL,
//! extended CONNECT opens a session over one stream, many sessions share one connection (h2c
//! and TLS with ALPN), heartbeats and back-pressure work per stream, and a client that
//! misbehaves at the HTTP/2 level (streams that never end, resets mid-message, more streams
//! than allowed, malformed extended CONNECT) only affects its own connection.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper::client::conn::http2::SendRequest;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sockeye_engine::CloseReason;
use sockeye_testkit::h2raw::{self, RawH2};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::protocol::Role;

type H2Ws = WebSocketStream<TokioIo<Upgraded>>;

/// One HTTP/2 connection: h2c prior knowledge, or TLS with ALPN `h2` trusting `cert`.
async fn h2_connect(
    server: &TestServer,
    cert: Option<&rustls::pki_types::CertificateDer<'static>>,
) -> SendRequest<Empty<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let exec = TokioExecutor::new();
    match cert {
        None => {
            let (send, conn) = hyper::client::conn::http2::handshake(exec, TokioIo::new(tcp))
                .await
                .unwrap();
            tokio::spawn(conn);
            send
        }
        Some(cert) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(cert.clone()).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"h2".to_vec()];
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = connector.connect(name, tcp).await.unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
            let (send, conn) = hyper::client::conn::http2::handshake(exec, TokioIo::new(tls))
                .await
                .unwrap();
            tokio::spawn(conn);
            send
        }
    }
}

/// A WebSocket session over an extended CONNECT stream of `send`; the OPEN packet is read.
async fn ws_over_h2(send: &mut SendRequest<Empty<Bytes>>, scheme: &str) -> (H2Ws, String) {
    let mut req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(format!(
            "{scheme}://localhost/engine.io/?EIO=4&transport=websocket"
        ))
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    send.ready().await.unwrap();
    let res = tokio::time::timeout(WAIT, send.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.status(), 200, "{res:?}");
    let upgraded = hyper::upgrade::on(res).await.unwrap();
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    let open = next_h2_text(&mut ws).await;
    let json: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
    (ws, json["sid"].as_str().unwrap().to_owned())
}

/// The next data message, answering the server's Engine.IO PINGs on the way.
async fn next_h2_message(ws: &mut H2Ws) -> Ws {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no message in time")
            .expect("stream ended")
            .unwrap();
        match msg {
            Ws::Text(t) if t.as_str() == "2" => ws.send(Ws::text("3")).await.unwrap(),
            Ws::Text(_) | Ws::Binary(_) => return msg,
            _ => {}
        }
    }
}

async fn next_h2_text(ws: &mut H2Ws) -> String {
    match next_h2_message(ws).await {
        Ws::Text(t) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// Echoes text and binary on `ws`.
async fn echo(ws: &mut H2Ws, tag: &str) {
    ws.send(Ws::text(format!("4{tag}"))).await.unwrap();
    assert_eq!(next_h2_text(ws).await, format!("4{tag}"));
    ws.send(Ws::Binary(Bytes::from(tag.as_bytes().to_vec())))
        .await
        .unwrap();
    match next_h2_message(ws).await {
        Ws::Binary(data) => assert_eq!(data.as_ref(), tag.as_bytes()),
        other => panic!("expected binary, got {other:?}"),
    }
}

async fn many_sessions_on_one_connection(tls: bool) {
    let (options, cert) = if tls {
        let (config, cert) = self_signed();
        (
            ServeOptions {
                tls: Some(config),
                ..ServeOptions::default()
            },
            Some(cert),
        )
    } else {
        (ServeOptions::default(), None)
    };
    let server = serve_with(fast_config().build(), options).await;
    let send = h2_connect(&server, cert.as_ref()).await;
    let scheme = if tls { "https" } else { "http" };
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut send = send.clone();
        let scheme = scheme.to_owned();
        tasks.push(tokio::spawn(async move {
            let (mut ws, sid) = ws_over_h2(&mut send, &scheme).await;
            echo(&mut ws, &format!("session {i}")).await;
            // Four ping intervals: the heartbeat runs over the stream.
            let until = tokio::time::Instant::now() + Duration::from_millis(1300);
            while tokio::time::Instant::now() < until {
                ws.send(Ws::text("4tick")).await.unwrap();
                assert_eq!(next_h2_text(&mut ws).await, "4tick");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            echo(&mut ws, &format!("session {i} again")).await;
            (ws, sid)
        }));
    }
    let mut sessions = Vec::new();
    for task in tasks {
        sessions.push(task.await.unwrap());
    }
    // Eight sessions, one TCP connection (every session saw the same peer address).
    let addrs: std::collections::HashSet<_> = sessions
        .iter()
        .map(|(_, sid)| server.engine.session(sid).unwrap().remote_addr().unwrap())
        .collect();
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    assert_eq!(server.engine.session_count(), 8);
    assert!(server.rec.closes().is_empty(), "{:?}", server.rec.closes());
    for (mut ws, sid) in sessions {
        ws.close(None).await.unwrap();
        assert_eq!(
            server.rec.wait_close(&sid).await,
            CloseReason::TransportClose
        );
    }
}

#[tokio::test]
async fn eight_sessions_share_one_h2c_connection() {
    many_sessions_on_one_connection(false).await;
}

#[tokio::test]
async fn eight_sessions_share_one_tls_h2_connection() {
    many_sessions_on_one_connection(true).await;
}

#[tokio::test]
async fn a_stream_that_does_not_read_is_a_slow_reader_and_its_neighbours_go_on() {
    let server = serve(
        fast_config()
            .ping_interval(Duration::from_secs(10))
            .slow_reader_timeout(Duration::from_secs(1))
            .build(),
    )
    .await;
    let mut send = h2_connect(&server, None).await;
    let (mut stalled, stalled_sid) = ws_over_h2(&mut send, "http").await;
    let (mut busy, _) = ws_over_h2(&mut send, "http").await;
    // 200 frames of 64 KiB for a stream whose reader never reads.
    stalled.send(Ws::text("4blob:200")).await.unwrap();
    for i in 0..20 {
        echo(&mut busy, &format!("{i}")).await;
    }
    assert_eq!(
        server.rec.wait_close(&stalled_sid).await,
        CloseReason::SlowReader
    );
    echo(&mut busy, "after").await;
}

#[tokio::test]
async fn the_server_advertises_extended_connect_and_checks_rfc_8441_fields() {
    let server = serve(fast_config().build()).await;
    let mut raw = RawH2::connect(server.addr).await.unwrap();
    let settings = raw
        .wait_for(|f| f.kind == h2raw::frame::SETTINGS && f.flags & h2raw::flag::ACK == 0)
        .await
        .unwrap();
    assert_eq!(
        settings.setting(h2raw::SETTINGS_ENABLE_CONNECT_PROTOCOL),
        Some(1)
    );
    let path = "/engine.io/?EIO=4&transport=websocket";
    let ok = |stream| {
        move |f: &h2raw::Frame| {
            f.stream == stream && matches!(f.kind, h2raw::frame::HEADERS | h2raw::frame::RST_STREAM)
        }
    };
    // A valid request: 200.
    raw.websocket_connect(1, path, &[]).await.unwrap();
    assert!(raw.wait_for(ok(1)).await.unwrap().is_status_200());
    // Each missing or wrong field: not 200 (an error status, or the stream reset).
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "no :protocol (a plain CONNECT)",
            vec![(":method", "CONNECT"), (":authority", "localhost")],
        ),
        (
            ":protocol is not websocket",
            vec![
                (":method", "CONNECT"),
                (":protocol", "webtransport"),
                (":scheme", "http"),
                (":path", path),
                (":authority", "localhost"),
                ("sec-websocket-version", "13"),
            ],
        ),
        (
            "no :path",
            vec![
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "http"),
                (":authority", "localhost"),
                ("sec-websocket-version", "13"),
            ],
        ),
        (
            "no :scheme",
            vec![
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":path", path),
                (":authority", "localhost"),
                ("sec-websocket-version", "13"),
            ],
        ),
        (
            "no sec-websocket-version",
            vec![
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "http"),
                (":path", path),
                (":authority", "localhost"),
            ],
        ),
        (
            "sec-websocket-version 12",
            vec![
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "http"),
                (":path", path),
                (":authority", "localhost"),
                ("sec-websocket-version", "12"),
            ],
        ),
    ];
    let mut stream = 3;
    for (why, fields) in cases {
        raw.headers(stream, &fields, false).await.unwrap();
        let answer = raw
            .wait_for(ok(stream))
            .await
            .unwrap_or_else(|| panic!("{why}: the connection ended"));
        assert!(!answer.is_status_200(), "{why}: accepted");
        stream += 2;
    }
    // The connection still works.
    raw.websocket_connect(stream, path, &[]).await.unwrap();
    assert!(raw.wait_for(ok(stream)).await.unwrap().is_status_200());
}

#[tokio::test]
async fn a_reset_mid_message_closes_only_that_session() {
    let server = serve(fast_config().ping_interval(Duration::from_secs(10)).build()).await;
    let mut raw = RawH2::connect(server.addr).await.unwrap();
    let path = "/engine.io/?EIO=4&transport=websocket";
    raw.websocket_connect(1, path, &[]).await.unwrap();
    let headers = raw
        .wait_for(|f| f.stream == 1 && f.kind == h2raw::frame::HEADERS)
        .await
        .unwrap();
    assert!(headers.is_status_200());
    raw.wait_for(|f| f.stream == 1 && f.kind == h2raw::frame::DATA)
        .await
        .unwrap();
    let sid = server.rec.closes().len();
    assert_eq!(sid, 0);
    assert_eq!(server.engine.session_count(), 1);
    // Half of a 100-byte text frame, then RST_STREAM (CANCEL).
    let frame = sockeye_testkit::ws::client_frame(true, 1, &[b'4'; 100]);
    raw.data(1, &frame[..40], false).await.unwrap();
    raw.reset(1, 0x8).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.rec.closes().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "session not closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.rec.closes()[0].1, CloseReason::TransportClose);
    // The same connection opens a new session.
    raw.websocket_connect(3, path, &[]).await.unwrap();
    let headers = raw
        .wait_for(|f| {
            f.stream == 3 && matches!(f.kind, h2raw::frame::HEADERS | h2raw::frame::RST_STREAM)
        })
        .await
        .unwrap();
    assert!(headers.is_status_200());
}

#[tokio::test]
async fn streams_over_the_limit_are_refused_and_the_rest_go_on() {
    let server = serve_with(
        fast_config().ping_interval(Duration::from_secs(10)).build(),
        ServeOptions {
            max_concurrent_streams: Some(4),
            ..ServeOptions::default()
        },
    )
    .await;
    let mut raw = RawH2::connect(server.addr).await.unwrap();
    // Wait for the server's SETTINGS (with the limit), but open six streams regardless.
    let settings = raw
        .wait_for(|f| f.kind == h2raw::frame::SETTINGS && f.flags & h2raw::flag::ACK == 0)
        .await
        .unwrap();
    assert_eq!(
        settings.setting(h2raw::SETTINGS_MAX_CONCURRENT_STREAMS),
        Some(4)
    );
    let path = "/engine.io/?EIO=4&transport=websocket";
    for stream in [1, 3, 5, 7, 9, 11] {
        raw.websocket_connect(stream, path, &[]).await.unwrap();
    }
    let (mut accepted, mut refused) = (0, 0);
    while accepted + refused < 6 {
        let frame = raw
            .wait_for(|f| {
                matches!(
                    f.kind,
                    h2raw::frame::HEADERS | h2raw::frame::RST_STREAM | h2raw::frame::GOAWAY
                )
            })
            .await
            .expect("connection ended");
        assert_ne!(
            frame.kind,
            h2raw::frame::GOAWAY,
            "the whole connection was closed"
        );
        if frame.is_status_200() {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    assert_eq!((accepted, refused), (4, 2));
    // Another client is unaffected.
    let mut send = h2_connect(&server, None).await;
    let (mut ws, _) = ws_over_h2(&mut send, "http").await;
    echo(&mut ws, "neighbour").await;
}

#[tokio::test]
async fn a_polling_body_that_never_ends_is_bounded() {
    let server = serve(
        fast_config()
            .ping_interval(Duration::from_millis(1500))
            .ping_timeout(Duration::from_millis(500))
            .build(),
    )
    .await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let mut raw = RawH2::connect(server.addr).await.unwrap();
    let path = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let other_client = http();
    raw.headers(
        1,
        &[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", &path),
            (":authority", "localhost"),
        ],
        false,
    )
    .await
    .unwrap();
    raw.data(1, b"4hel", false).await.unwrap();
    // Never ends: the engine gives up after ping interval + timeout (2 s here), answers 400
    // and closes that session; an unrelated session stays up.
    // Meanwhile another session is served at once.
    let other = handshake(&server, &other_client).await;
    let (status, _) = post(
        &other_client,
        &server.url(&format!("EIO=4&transport=polling&sid={other}")),
        "4ok",
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = get(
        &other_client,
        &server.url(&format!("EIO=4&transport=polling&sid={other}")),
    )
    .await;
    assert_eq!(body, "4ok");
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        raw.wait_for(|f| {
            f.stream == 1 && matches!(f.kind, h2raw::frame::HEADERS | h2raw::frame::RST_STREAM)
        }),
    )
    .await
    .expect("the hanging POST was not answered")
    .unwrap();
    assert!(!answer.is_status_200());
    // The body's deadline and the session's first PONG deadline are the same instant here:
    // either closes the session.
    let reason = server.rec.wait_close(&sid).await;
    assert!(
        matches!(
            reason,
            CloseReason::TransportError | CloseReason::PingTimeout
        ),
        "{reason:?}"
    );
}
