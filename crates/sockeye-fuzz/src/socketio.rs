//! Socket.IO packets, JSON and msgpack parsers.

use bytes::Bytes;
use sockeye_protocol::engine::{Frame, Message};
use sockeye_protocol::socketio::{Args, DecodeError, Decoder, Limits, PacketData, ParserKind};

/// A sequence of Socket.IO messages for the JSON parser (split on 0x1e; a chunk starting with
/// `b` is a binary attachment): decoding never panics; every decoded packet's arguments can be
/// read, and the packet re-encodes to frames that decode to the same packet. Each chunk is
/// also read as an argument array, whose verdict must be serde_json's.
pub fn socketio_json(data: &[u8]) {
    let mut decoder = Decoder::default();
    for chunk in data.split(|&b| b == 0x1e) {
        json_scan_agrees_with_serde_json(chunk);
        let message = match chunk.split_first() {
            Some((b'b', rest)) => Message::Binary(Bytes::copy_from_slice(rest)),
            _ => Message::Text(Bytes::copy_from_slice(chunk)),
        };
        let Ok(Some(packet)) = decoder.decode(message) else {
            continue;
        };
        if let PacketData::Event { args, .. } | PacketData::Ack { args, .. } = &packet.data {
            let _ = args.deserialize::<serde_json::Value>();
            let _ = args.first::<serde_json::Value>();
        }
        let encoded = packet
            .encode(ParserKind::Json)
            .expect("decoded packet must encode");
        let mut again = Decoder::default();
        let mut last = None;
        for frame in encoded.frames() {
            last = match frame {
                Frame::Text(t) => again.decode(Message::Text(t.slice(1..))),
                Frame::Binary(b) => again.decode(Message::Binary(b.clone())),
            }
            .expect("re-encoded packet must decode");
        }
        assert_eq!(last.as_ref(), Some(&packet));
        // Converting to the other parser and back must not panic either.
        let _ = packet.encode(ParserKind::MsgPack);
    }
}

/// The one-pass scan that checks argument arrays says what serde_json says of the same bytes
/// (from the first `[` on, so the packet seeds serve as array seeds too), short of the depth
/// limit, where only the scan refuses.
fn json_scan_agrees_with_serde_json(chunk: &[u8]) {
    let Some(open) = chunk.iter().position(|&b| b == b'[') else {
        return;
    };
    let array = chunk.get(open..).unwrap_or_default();
    let ours = Args::from_json_array(Bytes::copy_from_slice(array), Vec::new(), 64);
    let theirs = serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(array);
    match ours {
        Err(DecodeError::TooDeep { .. }) => {}
        Ok(_) => assert!(
            theirs.is_ok(),
            "scan accepted what serde_json refuses: {theirs:?}"
        ),
        Err(e) => assert!(theirs.is_err(), "scan refused what serde_json accepts: {e}"),
    }
}

/// One binary message for the msgpack parser: decoding never panics; a decoded packet's
/// arguments can be read, and it re-encodes to bytes that decode to the same packet.
pub fn socketio_msgpack(data: &[u8]) {
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
}
