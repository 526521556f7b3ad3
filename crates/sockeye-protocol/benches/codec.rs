//! Encode/decode cost per packet: a small event, a 4 KiB event and a binary event.
//! Run with `cargo bench -p sockeye-protocol --all-features --bench codec`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use divan::{Bencher, black_box};
use sockeye_protocol::engine::{Frame, Message};
use sockeye_protocol::socketio::{Args, Decoder, Limits, Packet, PacketData, ParserKind};

fn main() {
    divan::main();
}

fn small() -> Packet {
    Packet::event("/", "chat", Args::from_value(&"hello world").unwrap())
}

fn large() -> Packet {
    let text = "x".repeat(4096);
    Packet::event_with_ack("/", "bulk", Args::from_value(&text).unwrap(), 7)
}

fn binary() -> Packet {
    let mut b = Args::builder();
    b.push(&"meta")
        .unwrap()
        .push_binary(Bytes::from(vec![7u8; 1024]));
    Packet::event("/", "file", b.build())
}

fn packet(name: &str) -> Packet {
    match name {
        "small" => small(),
        "4KiB" => large(),
        _ => binary(),
    }
}

const CASES: [&str; 3] = ["small", "4KiB", "binary"];

#[divan::bench(args = CASES)]
fn encode_json(bencher: Bencher, case: &str) {
    let p = packet(case);
    bencher.bench(|| black_box(&p).encode(ParserKind::Json).unwrap());
}

#[divan::bench(args = CASES)]
fn encode_msgpack(bencher: Bencher, case: &str) {
    // Arguments already in msgpack form, as a msgpack server forwarding them would have.
    let wire = packet(case).encode(ParserKind::MsgPack).unwrap();
    let p = decode(ParserKind::MsgPack, wire.frames());
    bencher.bench(|| black_box(&p).encode(ParserKind::MsgPack).unwrap());
}

fn decode(kind: ParserKind, frames: &[Frame]) -> Packet {
    let mut d = Decoder::new(kind, Limits::default());
    let mut last = None;
    for f in frames {
        last = match f {
            Frame::Text(t) => d.decode(Message::Text(t.slice(1..))),
            Frame::Binary(b) => d.decode(Message::Binary(b.clone())),
        }
        .unwrap();
    }
    last.unwrap()
}

#[divan::bench(args = CASES)]
fn decode_json(bencher: Bencher, case: &str) {
    let frames = packet(case).encode(ParserKind::Json).unwrap().into_vec();
    bencher.bench(|| decode(ParserKind::Json, black_box(&frames)));
}

#[divan::bench(args = CASES)]
fn decode_msgpack(bencher: Bencher, case: &str) {
    let frames = packet(case).encode(ParserKind::MsgPack).unwrap().into_vec();
    bencher.bench(|| decode(ParserKind::MsgPack, black_box(&frames)));
}

/// Decode plus reading the first argument: what a handler pays end to end.
#[divan::bench(args = CASES)]
fn decode_json_and_read(bencher: Bencher, case: &str) {
    let frames = packet(case).encode(ParserKind::Json).unwrap().into_vec();
    bencher.bench(|| {
        let p = decode(ParserKind::Json, black_box(&frames));
        match p.data {
            PacketData::Event { args, .. } => args.first::<String>().unwrap(),
            _ => unreachable!(),
        }
    });
}
