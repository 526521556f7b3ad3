//! Entry points for the cargo-fuzz target `redis_wire` (feature `fuzzing`): the decoders and
//! schema checks a node runs on every message of a subscribed channel, with the default limits.
//! Not an API: names and behaviour may change at any time.

// A broken invariant must crash the fuzzer: that is a finding, not a bug of this module.
#![allow(clippy::panic)]
use rmpv::Value;

use crate::wire;

/// `RedisConfig`'s default `max_message_size`.
const MAX_SIZE: usize = 1_000_000;
/// `RedisConfig`'s default `max_depth`.
const MAX_DEPTH: usize = 64;

/// A message of a broadcast channel (`room` for a room channel), as `RedisAdapter::on_broadcast`
/// reads it. A message that passes is encoded again and must read back the same (what a node
/// forwards to its clients is what it understood).
pub fn broadcast(payload: &[u8], room: Option<&str>) -> bool {
    let _ = wire::peek_uid(payload);
    let Ok(value) = wire::decode_msgpack(payload, MAX_SIZE, MAX_DEPTH) else {
        return false;
    };
    let _ = wire::value_to_json(&value);
    let Ok(msg) = wire::parse_broadcast(&value) else {
        return false;
    };
    if let Some(room) = room
        && !msg.opts.rooms.iter().any(|r| r == room)
    {
        return false;
    }
    let packet = wire::packet_value(&msg.packet.nsp, &msg.packet.event, &msg.packet.args)
        .unwrap_or_else(|e| panic!("accepted arguments cannot be encoded again: {e}"));
    let bytes = wire::encode_broadcast(&msg.uid, packet, &msg.opts)
        .unwrap_or_else(|e| panic!("accepted broadcast cannot be encoded again: {e}"));
    let again = wire::decode_msgpack(&bytes, usize::MAX, MAX_DEPTH + 8)
        .and_then(|v| wire::parse_broadcast(&v))
        .unwrap_or_else(|e| panic!("re-encoded broadcast refused: {e}"));
    assert_eq!(again.uid, msg.uid);
    assert_eq!(again.packet.nsp, msg.packet.nsp);
    assert_eq!(again.packet.event, msg.packet.event);
    // Compared as values, not as JSON text: an f32 argument is written with f32 digits
    // ("-3.4330424e-6") the first time and as the f64 it became the second time
    // ("-0.0000034330424"), the same number (a harness finding of the first run).
    assert_eq!(
        wire::args_to_values(&again.packet.args),
        wire::args_to_values(&msg.packet.args)
    );
    assert_eq!(again.opts, msg.opts);
    true
}

/// A message of a request channel, as `RedisAdapter::on_request` reads it.
pub fn request(payload: &[u8]) -> bool {
    let Ok(value) = wire::decode(payload, MAX_SIZE, MAX_DEPTH) else {
        return false;
    };
    let _ = wire::field_str(&value, "uid");
    match wire::parse_request(&value) {
        Ok(wire::Request::Broadcast { packet, .. }) => {
            // What a node delivers for a remote broadcast with ack.
            let _ = wire::packet_value(&packet.nsp, &packet.event, &packet.args)
                .unwrap_or_else(|e| panic!("accepted packet cannot be encoded again: {e}"));
            true
        }
        Ok(_) => true,
        Err(_) => false,
    }
}

/// A message of a response channel, as `RedisAdapter::on_response` and the waits for answers
/// (fetch, all rooms, client counts, acks) read it.
pub fn response(payload: &[u8]) -> bool {
    let Ok(value) = wire::decode(payload, MAX_SIZE, MAX_DEPTH) else {
        return false;
    };
    if wire::response_id(&value).is_err() {
        return false;
    }
    let _ = wire::field_u64(&value, "type");
    let _ = wire::field_u64(&value, "clientCount");
    let _ = wire::fetched_sockets(&value);
    let _ = wire::answered_rooms(&value);
    let _ = wire::answer_args(&value, wire::kind::SERVER_SIDE_EMIT);
    let _ = wire::answer_args(&value, wire::kind::BROADCAST_ACK);
    true
}

/// Any decoded value as JSON (the conversion fetched handshakes go through).
pub fn to_json(payload: &[u8]) {
    if let Ok(value) = wire::decode(payload, MAX_SIZE, MAX_DEPTH) {
        let _: serde_json::Value = wire::value_to_json(&value);
        let _: Value = value;
    }
}
