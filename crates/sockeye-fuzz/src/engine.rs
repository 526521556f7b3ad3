//! Engine.IO v4 packets and polling payloads.

use bytes::Bytes;
use sockeye_protocol::engine::{Packet, decode_payload, encode_payload};

/// One Engine.IO packet, as a WebSocket text frame and as a polling chunk: decoding never
/// panics, and what decodes re-encodes to something that decodes to the same packet.
pub fn engine_packet(data: &[u8]) {
    let data = Bytes::copy_from_slice(data);
    for packet in [
        Packet::decode_text(data.clone()),
        Packet::decode_polling(data),
    ]
    .into_iter()
    .flatten()
    {
        let again = if packet.is_binary() {
            Packet::Binary(packet.encode())
        } else {
            Packet::decode_text(packet.encode()).expect("re-encoded packet must decode")
        };
        assert_eq!(again, packet);
    }
}

/// A long-polling payload: splitting and decoding never panics, and a fully valid payload
/// re-encodes to a payload with the same packets.
pub fn engine_payload(data: &[u8]) {
    let packets: Result<Vec<_>, _> = decode_payload(Bytes::copy_from_slice(data)).collect();
    if let Ok(packets) = packets {
        let again: Vec<_> = decode_payload(encode_payload(&packets))
            .collect::<Result<_, _>>()
            .expect("re-encoded payload must decode");
        assert_eq!(again, packets);
    }
}
