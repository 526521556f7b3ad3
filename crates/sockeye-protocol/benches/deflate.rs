//! permessage-deflate codec cost per message: compressing an outgoing message (the thread's
//! compressor, reset per message: no context takeover) and reading a compressed incoming one
//! through the frame transformer (collect, inflate, re-frame), for chat-like JSON events.
//! `cargo bench -p sockeye-protocol --features deflate --bench deflate`
#![allow(missing_docs, clippy::cast_possible_truncation, clippy::unwrap_used)]

use divan::Bencher;
use sockeye_protocol::deflate::{
    DeflateConfig, Deflater, InflateStream, Inflater, Negotiated, Role,
};

fn main() {
    divan::main();
}

const AGREED: Negotiated = Negotiated {
    server_no_context_takeover: true,
    client_no_context_takeover: true,
};

/// A chat-like Socket.IO event of about `size` bytes: words of a 40-word vocabulary in
/// pseudo-random order (the messages of `scripts/bench-protocol-reach.sh` are built the same
/// way).
fn event(size: usize) -> Vec<u8> {
    let words: Vec<&str> = "the quick brown fox jumps over lazy dog socket engine server client \
        message room user hello world latency packet binary upgrade polling websocket stream \
        frame deflate compress proxy cookie session heartbeat ping pong namespace event \
        broadcast acknowledge"
        .split_whitespace()
        .collect();
    let mut x: u32 = 2_654_435_761;
    let mut text = String::new();
    while text.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        text.push_str(words[x as usize % words.len()]);
        text.push(' ');
    }
    format!(
        r#"42["chat",{{"user":"user-42","room":"general","ts":1700000000000,"text":"{text}"}}]"#
    )
    .into_bytes()
}

/// A masked client frame carrying `payload` as a compressed text message.
fn compressed_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0xc1];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

#[divan::bench(args = [1024, 16384], consts = [1, 6])]
fn compress<const LEVEL: u32>(bencher: Bencher, size: usize) {
    let message = event(size);
    let config = DeflateConfig {
        threshold: 0,
        level: LEVEL,
        ..DeflateConfig::default()
    };
    let mut deflater = Deflater::new(Role::Server, AGREED, &config);
    bencher.bench_local(|| deflater.compress(divan::black_box(&message)));
}

#[divan::bench(args = [1024, 16384])]
fn inflate(bencher: Bencher, size: usize) {
    let message = event(size);
    let config = DeflateConfig {
        threshold: 0,
        ..DeflateConfig::default()
    };
    let packed = Deflater::new(Role::Client, AGREED, &config)
        .compress(&message)
        .unwrap_or_default();
    let frame = compressed_frame(&packed);
    let mut reader = InflateStream::new(Role::Server, Inflater::new(Role::Server, AGREED, 1 << 20));
    let mut out = Vec::with_capacity(size * 2);
    bencher.bench_local(|| {
        out.clear();
        reader.feed(divan::black_box(&frame), &mut out)
    });
}
