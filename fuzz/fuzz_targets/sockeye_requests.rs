//! The Socket.IO server behind the engine: polling requests whose bodies are Socket.IO
//! packets (CONNECT to known, dynamic and unknown namespaces, events, acks, binary headers
//! and attachments, DISCONNECT) from the input, on a paused-clock runtime, against handlers
//! that echo, broadcast, join rooms and await client acks. Nothing may panic (libFuzzer's
//! panic hook aborts even on a panic the engine would contain, so handlers here never panic),
//! and every request must be answered.
#![no_main]

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use sockeye::prelude::*;

const ANSWER_WITHIN: Duration = Duration::from_secs(120);

fn server() -> SocketIo {
    let io = SocketIo::builder()
        .max_payload(8192)
        .attachment_timeout(Duration::from_secs(5))
        .build();
    io.ns("/", |_s: SocketRef, _a: Option<Auth<serde_json::Value>>| async {})
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
            let _ = socket.call_args("question", event.args, Duration::from_secs(1)).await;
        })
        .on("all", |socket: SocketRef, event: Event| async move {
            let _ = socket.broadcast().emit_args("all", event.args).await;
        });
    let _ = io.dyn_ns("/room-{id}", |_s: SocketRef, _a: Option<Auth<serde_json::Value>>| async {});
    io
}

fn request(method: Method, query: &str, body: Bytes) -> Option<Request<Full<Bytes>>> {
    Request::builder()
        .method(method)
        .uri(format!("/socket.io/?{query}"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Full::new(body))
        .ok()
}

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
        let io = server();
        let mut sid = String::new();
        for op in data.split(|b| *b == 0).take(24) {
            let Some((&kind, rest)) = op.split_first() else { continue };
            let polling = format!("EIO=4&transport=polling&sid={sid}");
            let req = match kind % 4 {
                0 => request(Method::GET, "EIO=4&transport=polling", Bytes::new()),
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
                    request(Method::POST, &polling, body.into())
                }
                2 => request(Method::GET, &polling, Bytes::new()),
                // Raw Engine.IO payload (binary attachments as `b<base64>`, pongs, closes).
                _ => request(Method::POST, &polling, Bytes::copy_from_slice(rest)),
            };
            let Some(req) = req else { continue };
            let answer = tokio::time::timeout(ANSWER_WITHIN, async {
                let response = io.engine().handle(req).await;
                let status = response.status().as_u16();
                let body = response.into_body().collect().await.map(|b| b.to_bytes());
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
                sid = sid_of(body).unwrap_or_default();
            }
        }
        tokio::time::timeout(Duration::from_secs(30), io.close()).await.ok();
    });
});
