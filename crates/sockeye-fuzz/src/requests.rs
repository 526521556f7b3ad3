//! Request-level targets: the engine's and the Socket.IO server's handling of whole HTTP
//! requests, on a paused-clock runtime.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use sockeye::prelude::*;
use sockeye_engine::{CloseReason, Engine, EngineConfig, EngineHandler, Frame, Message, Session};

/// Echoes every message back, text and binary.
struct Echo;

impl EngineHandler for Echo {
    type Data = ();

    fn on_open(&self, _session: &Arc<Session<()>>) {}

    async fn on_message(&self, session: &Arc<Session<()>>, message: Message) {
        let frame = match message {
            Message::Text(text) => {
                let mut packet = Vec::with_capacity(text.len() + 1);
                packet.push(b'4');
                packet.extend_from_slice(&text);
                Frame::Text(packet.into())
            }
            Message::Binary(data) => Frame::Binary(data),
        };
        let _ = session.send(frame);
    }

    fn on_close(&self, _session: &Arc<Session<()>>, _reason: CloseReason) {}
}

const PATH: &str = "/engine.io/";
/// Virtual time: a request not answered within it is a hang.
const ANSWER_WITHIN: Duration = Duration::from_secs(120);

fn request(
    method: Method,
    query: &str,
    body: Bytes,
    headers: &[(&str, &[u8])],
) -> Option<Request<Full<Bytes>>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("{PATH}?{query}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(body)).ok()
}

/// The sid in a handshake answer `0{"sid":"...",...}`.
fn sid_of(body: &[u8]) -> Option<String> {
    let json = body.strip_prefix(b"0")?;
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    Some(value.get("sid")?.as_str()?.to_owned())
}

/// The engine's request handling: a sequence of polling requests (handshake, POST bodies, GETs,
/// arbitrary queries, methods and headers) built from the input goes through `Engine::handle`
/// on a paused-clock runtime. Nothing may panic, every request must be answered (the clock is
/// virtual, so long-poll holds and timers cost nothing), and every answer must be a status the
/// engine documents.
pub fn engine_requests(data: &[u8]) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    else {
        return;
    };
    rt.block_on(async {
        let config = EngineConfig::builder()
            .path(PATH)
            .max_payload(4096)
            .max_queued_frames(16)
            .build();
        let engine = Engine::new(Echo, config);
        let mut sid = String::new();
        for op in data.split(|b| *b == 0).take(24) {
            let Some((&kind, rest)) = op.split_first() else {
                continue;
            };
            let rest_bytes = Bytes::copy_from_slice(rest);
            let rest_str = String::from_utf8_lossy(rest);
            let req = match kind % 8 {
                0 => request(Method::GET, "EIO=4&transport=polling", Bytes::new(), &[]),
                1 => request(
                    Method::POST,
                    &format!("EIO=4&transport=polling&sid={sid}"),
                    rest_bytes,
                    &[("content-type", b"text/plain;charset=UTF-8")],
                ),
                2 => request(
                    Method::GET,
                    &format!("EIO=4&transport=polling&sid={sid}"),
                    Bytes::new(),
                    &[],
                ),
                3 => request(Method::GET, &rest_str, Bytes::new(), &[]),
                4 => request(
                    Method::POST,
                    &format!("EIO=4&transport=polling&sid={sid}"),
                    rest_bytes,
                    &[("content-type", b"application/octet-stream")],
                ),
                5 => request(
                    Method::GET,
                    &format!("EIO=4&transport=websocket&sid={sid}"),
                    Bytes::new(),
                    &[
                        ("connection", b"Upgrade"),
                        ("upgrade", b"websocket"),
                        ("sec-websocket-version", b"13"),
                        ("sec-websocket-key", rest),
                    ],
                ),
                6 => {
                    let (method, query) = rest_str.split_once(' ').unwrap_or(("PUT", &rest_str));
                    Method::from_bytes(method.as_bytes())
                        .ok()
                        .and_then(|m| request(m, query, Bytes::new(), &[]))
                }
                _ => request(
                    Method::POST,
                    &format!("EIO=4&transport=polling&sid={sid}&{rest_str}"),
                    rest_bytes,
                    &[],
                ),
            };
            let Some(req) = req else { continue };
            let answer = tokio::time::timeout(ANSWER_WITHIN, async {
                let response = engine.handle(req).await;
                let status = response.status().as_u16();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(http_body_util::Collected::to_bytes);
                (status, body)
            })
            .await;
            let Ok((status, body)) = answer else {
                panic!("request {kind} not answered within {ANSWER_WITHIN:?} of virtual time");
            };
            assert!(
                matches!(status, 101 | 200 | 400 | 403 | 404 | 413 | 503),
                "undocumented status {status}"
            );
            if let (0, 200, Ok(body)) = (kind % 8, status, &body) {
                sid = sid_of(body).unwrap_or_default();
            }
        }
        tokio::time::timeout(Duration::from_secs(30), engine.close())
            .await
            .ok();
    });
}

fn server() -> SocketIo {
    let io = SocketIo::builder()
        .max_payload(8192)
        .attachment_timeout(Duration::from_secs(5))
        .build();
    io.ns(
        "/",
        |_s: SocketRef, _a: Option<Auth<serde_json::Value>>| async {},
    )
    .on("echo", |socket: SocketRef, event: Event| async move {
        let _ = socket.emit_args("echo", event.args.clone());
        event.args
    })
    .on("join", |socket: SocketRef, event: Event| async move {
        let room: String = event.args.first().unwrap_or_default();
        socket.join(room.clone());
        let _ = socket.to(room).emit_args("joined", event.args).await;
    })
    .on("ask", |socket: SocketRef, event: Event| async move {
        let _ = socket
            .call_args("question", event.args, Duration::from_secs(1))
            .await;
    })
    .on("all", |socket: SocketRef, event: Event| async move {
        let _ = socket.broadcast().emit_args("all", event.args).await;
    });
    let _ = io.dyn_ns(
        "/room-{id}",
        |_s: SocketRef, _a: Option<Auth<serde_json::Value>>| async {},
    );
    io
}

fn sio_request(method: Method, query: &str, body: Bytes) -> Option<Request<Full<Bytes>>> {
    Request::builder()
        .method(method)
        .uri(format!("/socket.io/?{query}"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Full::new(body))
        .ok()
}

fn sio_sid_of(body: &[u8]) -> Option<String> {
    let json = body.strip_prefix(b"0")?;
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    Some(value.get("sid")?.as_str()?.to_owned())
}

/// The Socket.IO server behind the engine: polling requests whose bodies are Socket.IO
/// packets (CONNECT to known, dynamic and unknown namespaces, events, acks, binary headers
/// and attachments, DISCONNECT) from the input, on a paused-clock runtime, against handlers
/// that echo, broadcast, join rooms and await client acks. Nothing may panic (libFuzzer's
/// panic hook aborts even on a panic the engine would contain, so handlers here never panic),
/// and every request must be answered.
pub fn sockeye_requests(data: &[u8]) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    else {
        return;
    };
    rt.block_on(async {
        let io = server();
        let mut sid = String::new();
        for op in data.split(|b| *b == 0).take(24) {
            let Some((&kind, rest)) = op.split_first() else {
                continue;
            };
            let polling = format!("EIO=4&transport=polling&sid={sid}");
            let req = match kind % 4 {
                0 => sio_request(Method::GET, "EIO=4&transport=polling", Bytes::new()),
                // One or more Socket.IO packets as Engine.IO messages: each 0x1e-separated
                // part gets the message type digit.
                1 => {
                    let mut body = Vec::with_capacity(rest.len() + 8);
                    for (i, part) in rest.split(|b| *b == 0x1e).enumerate() {
                        if i > 0 {
                            body.push(0x1e);
                        }
                        body.push(b'4');
                        body.extend_from_slice(part);
                    }
                    sio_request(Method::POST, &polling, body.into())
                }
                2 => sio_request(Method::GET, &polling, Bytes::new()),
                // Raw Engine.IO payload (binary attachments as `b<base64>`, pongs, closes).
                _ => sio_request(Method::POST, &polling, Bytes::copy_from_slice(rest)),
            };
            let Some(req) = req else { continue };
            let answer = tokio::time::timeout(ANSWER_WITHIN, async {
                let response = io.engine().handle(req).await;
                let status = response.status().as_u16();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(http_body_util::Collected::to_bytes);
                (status, body)
            })
            .await;
            let Ok((status, body)) = answer else {
                panic!("request {kind} not answered within {ANSWER_WITHIN:?} of virtual time");
            };
            assert!(
                matches!(status, 200 | 400 | 403 | 413 | 500 | 503),
                "undocumented status {status}"
            );
            if let (0, 200, Ok(body)) = (kind % 4, status, &body) {
                sid = sio_sid_of(body).unwrap_or_default();
            }
        }
        tokio::time::timeout(Duration::from_secs(30), io.close())
            .await
            .ok();
    });
}
