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

/// Streams mode: the limits `StreamsConfig` uses by default.
const STREAMS_LIMITS: crate::streams::wire::Limits = crate::streams::wire::Limits {
    max_size: MAX_SIZE,
    max_depth: MAX_DEPTH,
};

/// A stream entry as the streams reader and replay read it: `payload` is its fields, each
/// name and value separated by a NUL byte (`uid\0u1\0nsp\0/\0type\03\0data\0{...}`). An accepted
/// broadcast is encoded again as an entry and must read back the same.
pub fn streams_entry(payload: &[u8]) -> bool {
    use crate::streams::wire as sw;
    let parts: Vec<&[u8]> = payload.split(|b| *b == 0).collect();
    let fields: Vec<(Vec<u8>, Vec<u8>)> = parts
        .chunks_exact(2)
        .map(|kv| (kv[0].to_vec(), kv[1].to_vec()))
        .collect();
    let Ok(message) = sw::decode_entry(&fields, STREAMS_LIMITS) else {
        return false;
    };
    if message.kind != sw::kind::BROADCAST {
        let _ = sw::rooms_of(&message.data);
        let _ = wire::Opts::parse(wire::field(&message.data, "opts"));
        return true;
    }
    let Ok(b) = sw::parse_broadcast(&message.data) else {
        return false;
    };
    let packet = wire::packet_value(&b.packet.nsp, &b.packet.event, &b.packet.args)
        .unwrap_or_else(|e| panic!("accepted arguments cannot be encoded again: {e}"));
    let data = sw::map(vec![("packet", packet), ("opts", b.opts.to_value(true))]);
    let fields = sw::encode_entry(&message.uid, &message.nsp, sw::kind::BROADCAST, &data)
        .unwrap_or_else(|e| panic!("accepted entry cannot be encoded again: {e}"));
    let raw: Vec<(Vec<u8>, Vec<u8>)> = fields
        .into_iter()
        .map(|(k, v)| (k.into_bytes(), v.into_bytes()))
        .collect();
    let limits = crate::streams::wire::Limits {
        max_size: usize::MAX,
        max_depth: MAX_DEPTH + 8,
    };
    let again = sw::decode_entry(&raw, limits)
        .and_then(|m| sw::parse_broadcast(&m.data))
        .unwrap_or_else(|e| panic!("re-encoded entry refused: {e}"));
    assert_eq!(again.packet.event, b.packet.event);
    assert_eq!(
        wire::args_to_values(&again.packet.args),
        wire::args_to_values(&b.packet.args)
    );
    assert_eq!(again.opts.rooms, b.opts.rooms);
    assert_eq!(again.opts.except, b.opts.except);
    true
}

/// A pub/sub message of the streams mode (msgpack `{uid, nsp, type, data}`).
pub fn streams_pubsub(payload: &[u8]) -> bool {
    use crate::streams::wire as sw;
    let Ok(message) = sw::decode_pubsub(payload, STREAMS_LIMITS) else {
        return false;
    };
    let _ = sw::request_id(&message.data);
    let _ = sw::parse_broadcast(&message.data);
    let _ = wire::event_data(wire::field(&message.data, "packet"));
    let _ = wire::fetched_sockets(&message.data);
    true
}

/// A stored session blob (base64 msgpack), looked up under the pid it names (or `p`). An
/// accepted one is encoded again and must read back the same.
pub fn streams_session(payload: &[u8]) -> bool {
    use crate::streams::wire as sw;
    use base64::Engine as _;
    let named = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .ok()
        .and_then(|b| wire::decode_msgpack(&b, MAX_SIZE, MAX_DEPTH).ok())
        .and_then(|v| wire::field_str(&v, "pid").map(str::to_owned));
    let pid = named.unwrap_or_else(|| "p".to_owned());
    let Ok((session, live_on)) = sw::decode_session(payload, &pid, "/", STREAMS_LIMITS) else {
        return false;
    };
    let blob = sw::encode_session(&session, live_on.as_deref())
        .unwrap_or_else(|e| panic!("accepted session cannot be encoded again: {e}"));
    let limits = crate::streams::wire::Limits {
        max_size: usize::MAX,
        max_depth: MAX_DEPTH + 8,
    };
    let (again, again_live) = sw::decode_session(blob.as_bytes(), &pid, "/", limits)
        .unwrap_or_else(|e| panic!("re-encoded session refused: {e}"));
    assert_eq!(again.id, session.id);
    assert_eq!(again.rooms, session.rooms);
    assert_eq!(again_live, live_on);
    true
}
