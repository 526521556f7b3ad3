//! The format of `createShardedAdapter` (`@socket.io/redis-adapter` 8.3): the cluster
//! messages of `socket.io-adapter` 2.5 (`{uid, nsp, type, data}`, the message types of
//! [`crate::streams::wire::kind`]), each one sharded pub/sub payload: JSON text, or msgpack
//! when `data` holds binary (the JS adapter's choice for the types that may carry it). A
//! reader tells them apart by the first byte (`{`).
//!
//! Channels, with `prefix` the key (JS `channelPrefix`, default `socket.io`):
//! - `prefix#ns#`: every message of namespace `ns` (requests and broadcasts),
//! - `prefix#ns#uid#`: the responses to node `uid`'s requests,
//! - `prefix#ns#room#`: broadcasts without ack to the single room `room`, in the dynamic modes.

use rmpv::Value;

use crate::streams::wire::{Limits, Message};
use crate::wire::{self as classic, WireError, field, field_str, field_u64, value_to_json};

/// A received payload as a message; the caller checks `data` per type.
pub(crate) fn decode(payload: &[u8], limits: Limits) -> Result<Message, WireError> {
    let v = classic::decode(payload, limits.max_size, limits.max_depth)?;
    if !v.is_map() {
        return Err(WireError::Schema("message is not a map"));
    }
    let uid = field_str(&v, "uid")
        .ok_or(WireError::Schema("message has no uid"))?
        .to_owned();
    let nsp = field_str(&v, "nsp")
        .ok_or(WireError::Schema("message has no nsp"))?
        .to_owned();
    let kind = field_u64(&v, "type").ok_or(WireError::Schema("message has no type"))?;
    let data = field(&v, "data").cloned().unwrap_or(Value::Nil);
    Ok(Message {
        uid,
        nsp,
        kind,
        data,
    })
}

/// The payload of a message: JSON unless `data` holds binary, then msgpack (what the JS
/// adapter sends; it reads both for every type).
pub(crate) fn encode(uid: &str, nsp: &str, kind: u64, data: Value) -> Result<Vec<u8>, String> {
    let message = Value::Map(vec![
        (Value::from("type"), Value::from(kind)),
        (Value::from("data"), data),
        (Value::from("uid"), Value::from(uid)),
        (Value::from("nsp"), Value::from(nsp)),
    ]);
    if has_binary(&message) {
        classic::encode_msgpack(&message)
    } else {
        serde_json::to_vec(&value_to_json(&message)).map_err(|e| e.to_string())
    }
}

fn has_binary(v: &Value) -> bool {
    match v {
        Value::Binary(_) => true,
        Value::Array(items) => items.iter().any(has_binary),
        Value::Map(entries) => entries.iter().any(|(_, v)| has_binary(v)),
        _ => false,
    }
}

/// JS `looksLikeASocketId`: a room of exactly 20 characters (UTF-16 units in JS; socket ids
/// are ASCII) stays on the namespace channel in the dynamic mode.
pub(crate) fn looks_like_socket_id(room: &str) -> bool {
    room.encode_utf16().count() == 20
}

/// What a channel of namespace `ns` is, from the part after `prefix#ns#`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ChannelKind<'a> {
    /// `prefix#ns#`.
    Namespace,
    /// `prefix#ns#<this node's uid>#`.
    Response,
    /// `prefix#ns#room#`.
    Room(&'a str),
}

/// Splits a channel name into its namespace and kind; `None` for a channel of another prefix
/// or shape. Namespace names never contain `#` (nor do they in the JS adapter, whose channel
/// names would be ambiguous otherwise).
pub(crate) fn parse_channel<'a>(
    prefix: &str,
    uid: &str,
    channel: &'a str,
) -> Option<(&'a str, ChannelKind<'a>)> {
    let rest = channel.strip_prefix(prefix)?.strip_prefix('#')?;
    let (ns, tail) = rest.split_once('#')?;
    if tail.is_empty() {
        return Some((ns, ChannelKind::Namespace));
    }
    let name = tail.strip_suffix('#')?;
    if name == uid {
        Some((ns, ChannelKind::Response))
    } else {
        Some((ns, ChannelKind::Room(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::wire::kind;

    const LIMITS: Limits = Limits {
        max_size: 1 << 20,
        max_depth: 32,
    };

    #[test]
    fn json_unless_binary_and_both_decode() {
        let data = Value::Map(vec![(
            Value::from("rooms"),
            Value::Array(vec![Value::from("r")]),
        )]);
        let text = encode("u1", "/", kind::SOCKETS_JOIN, data.clone()).unwrap();
        assert_eq!(text.first(), Some(&b'{'));
        let m = decode(&text, LIMITS).unwrap();
        assert_eq!((m.uid.as_str(), m.nsp.as_str(), m.kind), ("u1", "/", 4));
        assert_eq!(m.data, data);
        let bin = Value::Map(vec![(Value::from("b"), Value::Binary(vec![1, 2]))]);
        let packed = encode("u1", "/chat", kind::BROADCAST, bin.clone()).unwrap();
        assert_ne!(packed.first(), Some(&b'{'));
        let m = decode(&packed, LIMITS).unwrap();
        assert_eq!((m.nsp.as_str(), m.kind, m.data), ("/chat", 3, bin));
    }

    #[test]
    fn what_the_js_adapter_sends_is_read() {
        // JSON.stringify of a ClusterAdapter message, as `createShardedAdapter` publishes it.
        let js = br#"{"type":3,"data":{"packet":{"type":2,"data":["ev",1],"nsp":"/"},"opts":{"rooms":["r"],"except":[],"flags":{}}},"uid":"6f1c2d3e4a5b6c7d","nsp":"/"}"#;
        let m = decode(js, LIMITS).unwrap();
        assert_eq!(m.uid, "6f1c2d3e4a5b6c7d");
        let b = crate::streams::wire::parse_broadcast(&m.data).unwrap();
        assert_eq!(b.opts.rooms, ["r"]);
        assert_eq!(b.packet.event, "ev");
    }

    #[test]
    fn malformed_payloads_are_errors() {
        for bad in [
            &b""[..],
            b"{",
            b"[1,2]",
            b"{\"uid\":1,\"nsp\":\"/\",\"type\":3}",
            b"{\"uid\":\"u\",\"type\":3}",
            b"{\"uid\":\"u\",\"nsp\":\"/\",\"type\":\"3\"}",
            &[0xc1],
            &[0x93, 0x01],
        ] {
            assert!(decode(bad, LIMITS).is_err(), "{bad:?} accepted");
        }
        let small = Limits {
            max_size: 8,
            max_depth: 32,
        };
        assert!(matches!(
            decode(br#"{"uid":"u","nsp":"/","type":3}"#, small),
            Err(WireError::TooLarge(_))
        ));
    }

    #[test]
    fn channels_are_split_as_the_js_adapter_names_them() {
        let p = |c| parse_channel("socket.io", "me", c);
        assert_eq!(p("socket.io#/#"), Some(("/", ChannelKind::Namespace)));
        assert_eq!(
            p("socket.io#/chat#me#"),
            Some(("/chat", ChannelKind::Response))
        );
        assert_eq!(p("socket.io#/#red#"), Some(("/", ChannelKind::Room("red"))));
        assert_eq!(p("socket.io#/#a#b#"), Some(("/", ChannelKind::Room("a#b"))));
        assert_eq!(p("other#/#"), None);
        assert_eq!(p("socket.io#/#red"), None);
        assert_eq!(p("socket.io-request#/#"), None);
        assert!(looks_like_socket_id("abcdefghij0123456789"));
        assert!(!looks_like_socket_id("room"));
    }
}
