//! The engine's request handling: a sequence of polling requests (handshake, POST bodies, GETs,
//! arbitrary queries, methods and headers) built from the input goes through `Engine::handle`
//! on a paused-clock runtime. Nothing may panic, every request must be answered (the clock is
//! virtual, so long-poll holds and timers cost nothing), and every answer must be a status the
//! engine documents.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
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

fn request(method: Method, query: &str, body: Bytes, headers: &[(&str, &[u8])]) -> Option<Request<Full<Bytes>>> {
    let mut builder = Request::builder().method(method).uri(format!("{PATH}?{query}"));
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

fuzz_target!(|data: &[u8]| {
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
            let Some((&kind, rest)) = op.split_first() else { continue };
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
                2 => request(Method::GET, &format!("EIO=4&transport=polling&sid={sid}"), Bytes::new(), &[]),
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
                let body = response.into_body().collect().await.map(|b| b.to_bytes());
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
        tokio::time::timeout(Duration::from_secs(30), engine.close()).await.ok();
    });
});
