//! Micro-benchmarks of the server's hot path (divan):
//!
//! - `decode_event`: one inbound `42<id>["echo","<64 B or 4 KiB>"]` message into a Socket.IO
//!   packet;
//! - `encode_broadcast`: one `broadcast` event with a 64 B argument into its engine frame;
//! - `route_broadcast`: `io.of("/").emit_args(..)` (polled once) to 1 000 / 10 000 connected sockets held
//!   in memory (in-process polling sessions, no sockets), i.e. routing plus one queue push per
//!   receiver, the part of a broadcast that grows with the number of receivers.
//!
//! Run: `cargo bench -p sockeye --bench hot_path` (release profile).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use divan::{Bencher, black_box};
use futures_util::FutureExt as _;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use sockeye::{Args, Event, SocketIo, SocketIoService, SocketRef};
use sockeye_protocol::engine::Message;
use sockeye_protocol::socketio::{Decoder, Limits, Packet, ParserKind};
use tower::{Service, ServiceExt};

fn main() {
    divan::main();
}

/// The 64-character payload sio-bench sends at `-s 64`.
fn payload() -> String {
    "x".repeat(64)
}

#[divan::bench(args = [64, 4096])]
fn decode_event(bencher: Bencher, size: usize) {
    let text = Bytes::from(format!("2123[\"echo\",\"{}\"]", "x".repeat(size)));
    let mut decoder = Decoder::new(ParserKind::Json, Limits::default());
    bencher.bench_local(|| {
        let packet = decoder
            .decode(Message::Text(black_box(text.clone())))
            .expect("a valid event");
        black_box(packet)
    });
}

#[divan::bench]
fn encode_broadcast(bencher: Bencher) {
    let args = Args::from_value(&payload()).expect("a string serialises");
    bencher.bench_local(|| {
        let packet = Packet::event("/", "broadcast", black_box(args.clone()));
        black_box(packet.encode(ParserKind::Json).expect("encodable"))
    });
}

/// Samples of `route_broadcast`, one emit each; every receiver's queue must hold them all
/// (nothing drains it).
const SAMPLES: u32 = 40;

#[divan::bench(args = [1_000, 10_000], sample_count = SAMPLES, sample_size = 1)]
fn route_broadcast(bencher: Bencher, receivers: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let io = SocketIo::builder()
        // No pings and no polling deadline while the benchmark runs.
        .ping_interval(Duration::from_secs(600))
        .ping_timeout(Duration::from_secs(600))
        // divan's calibration runs a few extra emits: leave room for all of them.
        .engine(|e| e.max_queued_frames(SAMPLES as usize * 4 + 64))
        .build();
    io.ns("/", |_s: SocketRef| async move {})
        .on("noop", |_s: SocketRef, _e: Event| async move {});
    let mut service = io.service();
    runtime.block_on(async {
        for _ in 0..receivers {
            connect_polling(&mut service).await;
        }
    });
    let args = Args::from_value(&payload()).expect("a string serialises");
    // Inside the runtime: the engine may wake writer tasks of the receivers.
    let _guard = runtime.enter();
    bencher.bench_local(|| {
        // The in-memory adapter delivers when first polled: one poll is the whole broadcast.
        io.of("/")
            .expect("namespace / exists")
            .emit_args("broadcast", black_box(args.clone()))
            .now_or_never()
            .expect("the in-memory adapter completes at once")
            .expect("every queue has room");
    });
}

/// Opens a polling session and connects it to `/`, through the service, in process.
async fn connect_polling(service: &mut SocketIoService) {
    let open = call(service, Method::GET, "", Bytes::new()).await;
    let sid = open
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an open packet with a sid")
        .to_owned();
    call(service, Method::POST, &sid, Bytes::from_static(b"40")).await;
    let connected = call(service, Method::GET, &sid, Bytes::new()).await;
    assert!(connected.starts_with("40{"), "not connected: {connected}");
}

async fn call(service: &mut SocketIoService, method: Method, sid: &str, body: Bytes) -> String {
    let sid = if sid.is_empty() {
        String::new()
    } else {
        format!("&sid={sid}")
    };
    let request = Request::builder()
        .method(method)
        .uri(format!("/socket.io/?EIO=4&transport=polling{sid}"))
        .body(Full::new(body))
        .expect("a valid request");
    let response = ServiceExt::<Request<Full<Bytes>>>::ready(service)
        .await
        .expect("service ready")
        .call(request)
        .await
        .expect("a response");
    let body = response.into_body().collect().await.expect("a body");
    String::from_utf8_lossy(&body.to_bytes()).into_owned()
}
