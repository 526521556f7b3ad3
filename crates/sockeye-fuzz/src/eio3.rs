//! Engine.IO v3 payloads: text (lengths in UTF-16 code units), XHR2 binary, JSONP bodies and
//! WebSocket frames.

use bytes::Bytes;
use sockeye_protocol::eio3::{
    PayloadWriter, PollingFormat, decode_binary, decode_binary_payload, decode_jsonp_body,
    decode_payload, decode_text,
};
use sockeye_protocol::engine::{Frame, Packet};

fn frames(packets: &[Packet]) -> impl Iterator<Item = Frame> + '_ {
    packets.iter().map(Frame::from)
}

/// Re-encodes decoded packets as a text payload (binary as `b4` + base64) and checks that it
/// decodes to the same packets.
fn text_round_trip(packets: &[Packet]) {
    let mut writer = PayloadWriter::new(PollingFormat { b64: true }, true);
    for frame in frames(packets) {
        writer.frame(&frame);
    }
    let again = decode_payload(writer.finish()).expect("re-encoded v3 payload must decode");
    assert_eq!(again, packets);
}

/// A v3 text payload, the same bytes as a JSONP POST body (whose `d` field is a text payload
/// again), and as one WebSocket text frame: decoding never panics, and what decodes
/// re-encodes to a payload with the same packets.
pub fn eio3_payload(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(packets) = decode_payload(bytes.clone()) {
        text_round_trip(&packets);
    }
    if let Ok(packets) = decode_jsonp_body(data).and_then(decode_payload) {
        text_round_trip(&packets);
    }
    if let Ok(packet) = decode_text(bytes) {
        text_round_trip(std::slice::from_ref(&packet));
    }
}

/// An XHR2 binary payload and a v3 WebSocket binary frame: decoding never panics, and a
/// decoded payload re-encodes (as a binary payload) to the same packets.
pub fn eio3_binary(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(packets) = decode_binary_payload(bytes.clone()) {
        let mut writer = PayloadWriter::new(PollingFormat { b64: false }, true);
        for frame in frames(&packets) {
            writer.frame(&frame);
        }
        let again = decode_binary_payload(writer.finish())
            .expect("re-encoded v3 binary payload must decode");
        assert_eq!(again, packets);
    }
    if let Ok(Packet::Binary(data)) = decode_binary(bytes) {
        let frame = sockeye_protocol::eio3::websocket_binary(&data);
        assert_eq!(decode_binary(frame).ok(), Some(Packet::Binary(data)));
    }
}
