//! One binary message for the msgpack parser: decoding never panics; a decoded packet's
//! arguments can be read, and it re-encodes to bytes that decode to the same packet.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sockeye_protocol::engine::{Frame, Message};
use sockeye_protocol::socketio::{Decoder, Limits, PacketData, ParserKind};

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(ParserKind::MsgPack, Limits::default());
    let Ok(Some(packet)) = decoder.decode(Message::Binary(Bytes::copy_from_slice(data))) else {
        return;
    };
    if let PacketData::Event { args, .. } | PacketData::Ack { args, .. } = &packet.data {
        let _ = args.deserialize::<serde_json::Value>();
    }
    let encoded = packet
        .encode(ParserKind::MsgPack)
        .expect("decoded packet must encode");
    let [Frame::Binary(bytes)] = encoded.frames() else {
        panic!("msgpack packets are one binary frame");
    };
    let again = Decoder::new(ParserKind::MsgPack, Limits::default())
        .decode(Message::Binary(bytes.clone()))
        .expect("re-encoded packet must decode");
    assert_eq!(again.as_ref(), Some(&packet));
    let _ = packet.encode(ParserKind::Json);
});
