//! The wire format of `@socket.io/redis-adapter` 8.3 (classic `createAdapter`, not the sharded
//! one) and `@socket.io/redis-emitter` 5.1, both on `socket.io-adapter` 2.5.
//!
//! Channels, with `key` the prefix (default `socket.io`) and `ns` the namespace name:
//! - `key#ns#` and `key#ns#room#`: broadcasts, msgpack `[uid, packet, opts]` where `packet` is
//!   `{type: 2, data: [event, ...args], nsp}` and `opts` is `{rooms, except, flags}`; the room
//!   channel is used when exactly one room is targeted. Subscribed with the pattern `key#ns#*`.
//! - `key-request#ns#`: requests, JSON objects `{uid, requestId, type, ...}` except BROADCAST
//!   (type 7, msgpack because its packet may hold binary).
//! - `key-response#ns#` (and `key-response#ns#uid#`): responses, JSON, except BROADCAST_ACK
//!   (type 9, msgpack).
//!
//! Everything received is untrusted: it is size-checked before decoding, decoded with a depth
//! limit into a value tree, then checked field by field; anything else is an error the caller
//! counts and drops.

use rmpv::Value;
use sockeye::Args;

/// Request and response types (`RequestType` of the JS adapter).
pub(crate) mod kind {
    pub(crate) const SOCKETS: u64 = 0;
    pub(crate) const ALL_ROOMS: u64 = 1;
    pub(crate) const REMOTE_JOIN: u64 = 2;
    pub(crate) const REMOTE_LEAVE: u64 = 3;
    pub(crate) const REMOTE_DISCONNECT: u64 = 4;
    pub(crate) const REMOTE_FETCH: u64 = 5;
    pub(crate) const SERVER_SIDE_EMIT: u64 = 6;
    pub(crate) const BROADCAST: u64 = 7;
    pub(crate) const BROADCAST_CLIENT_COUNT: u64 = 8;
    pub(crate) const BROADCAST_ACK: u64 = 9;
}

/// Socket.IO packet types a broadcast may carry (EVENT and BINARY_EVENT).
const EVENT: u64 = 2;
const BINARY_EVENT: u64 = 5;

/// The channels of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Channels {
    pub(crate) broadcast: String,
    pub(crate) request: String,
    pub(crate) response: String,
    pub(crate) specific_response: String,
}

impl Channels {
    pub(crate) fn new(key: &str, ns: &str, uid: &str) -> Channels {
        let response = format!("{key}-response#{ns}#");
        Channels {
            broadcast: format!("{key}#{ns}#"),
            request: format!("{key}-request#{ns}#"),
            specific_response: format!("{response}{uid}#"),
            response,
        }
    }

    /// The pattern covering the plain and every room-specific broadcast channel; glob
    /// characters of the prefix are escaped so they match only themselves.
    pub(crate) fn broadcast_pattern(&self) -> String {
        let mut out = String::with_capacity(self.broadcast.len() + 2);
        for c in self.broadcast.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('*');
        out
    }

    /// The channel a broadcast to `rooms` is published on.
    pub(crate) fn broadcast_for(&self, rooms: &[String]) -> String {
        match rooms {
            [room] => format!("{}{room}#", self.broadcast),
            _ => self.broadcast.clone(),
        }
    }
}

/// Why a broker message was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("undecodable message: {0}")]
    Decode(String),
    #[error("unexpected message shape: {0}")]
    Schema(&'static str),
}

/// Decodes a request or response: JSON when it starts with `{`, msgpack otherwise.
pub(crate) fn decode(
    payload: &[u8],
    max_size: usize,
    max_depth: usize,
) -> Result<Value, WireError> {
    if payload.len() > max_size {
        return Err(WireError::TooLarge(payload.len()));
    }
    if payload.first() == Some(&b'{') {
        let json: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| WireError::Decode(e.to_string()))?;
        if depth_json(&json) > max_depth {
            return Err(WireError::Schema("nested too deeply"));
        }
        Ok(json_to_value(json))
    } else {
        decode_msgpack(payload, max_size, max_depth)
    }
}

/// Decodes a msgpack message; trailing bytes are refused.
pub(crate) fn decode_msgpack(
    payload: &[u8],
    max_size: usize,
    max_depth: usize,
) -> Result<Value, WireError> {
    if payload.len() > max_size {
        return Err(WireError::TooLarge(payload.len()));
    }
    let mut rd = payload;
    let value = rmpv::decode::read_value_with_max_depth(&mut rd, max_depth)
        .map_err(|e| WireError::Decode(e.to_string()))?;
    if !rd.is_empty() {
        return Err(WireError::Decode(format!("{} trailing bytes", rd.len())));
    }
    Ok(value)
}

fn depth_json(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(depth_json).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(depth_json).max().unwrap_or(0),
        _ => 0,
    }
}

/// A JSON tree as a msgpack tree (numbers keep their integer-ness).
pub(crate) fn json_to_value(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(a) => Value::Array(a.into_iter().map(json_to_value).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.into_iter()
                .map(|(k, v)| (Value::from(k), json_to_value(v)))
                .collect(),
        ),
    }
}

/// A msgpack tree as JSON: binary becomes an array of numbers, extension types (notepack's
/// `undefined`, dates) become null, non-string keys their text.
pub(crate) fn value_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil | Value::Ext(..) => serde_json::Value::Null,
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Integer(i) => i
            .as_u64()
            .map(serde_json::Value::from)
            .or_else(|| i.as_i64().map(serde_json::Value::from))
            .unwrap_or(serde_json::Value::Null),
        Value::F32(f) => serde_json::Value::from(f64::from(*f)),
        Value::F64(f) => serde_json::Value::from(*f),
        Value::String(s) => serde_json::Value::String(s.as_str().unwrap_or_default().to_owned()),
        Value::Binary(b) => serde_json::Value::from(b.clone()),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(value_to_json).collect()),
        Value::Map(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (key_text(k), value_to_json(v)))
                .collect(),
        ),
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.as_str().unwrap_or_default().to_owned(),
        other => value_to_json(other).to_string(),
    }
}

/// Replaces what JSON cannot carry (extension types) so the tree can become [`Args`].
fn sanitize(v: Value) -> Value {
    match v {
        Value::Ext(..) => Value::Nil,
        Value::Array(a) => Value::Array(a.into_iter().map(sanitize).collect()),
        Value::Map(m) => Value::Map(
            m.into_iter()
                .map(|(k, v)| (Value::from(key_text(&k)), sanitize(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Event arguments from msgpack values; binary values become attachments.
pub(crate) fn values_to_args(values: Vec<Value>) -> Result<Args, WireError> {
    let mut builder = Args::builder();
    for v in values {
        builder
            .push(&sanitize(v))
            .map_err(|e| WireError::Decode(e.to_string()))?;
    }
    Ok(builder.build())
}

/// Event arguments as msgpack values; attachments become inline binary.
pub(crate) fn args_to_values(args: &Args) -> Result<Vec<Value>, String> {
    args.deserialize::<Vec<Value>>().map_err(|e| e.to_string())
}

/// A field of a map value.
pub(crate) fn field<'a>(map: &'a Value, name: &str) -> Option<&'a Value> {
    match map {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

pub(crate) fn field_str<'a>(map: &'a Value, name: &str) -> Option<&'a str> {
    field(map, name).and_then(Value::as_str)
}

pub(crate) fn field_u64(map: &Value, name: &str) -> Option<u64> {
    match field(map, name)? {
        Value::Integer(i) => i.as_u64(),
        // JSON numbers decoded by JS may arrive as floats (`1.0`).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        // Checked just before: a non-negative integer below 2^53, exactly representable.
        Value::F64(f) if f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15 => Some(*f as u64),
        _ => None,
    }
}

/// A room list: strings, or numbers (JS allows numeric rooms) as their text. Absent is empty.
pub(crate) fn rooms(v: Option<&Value>) -> Result<Vec<String>, WireError> {
    match v {
        None | Some(Value::Nil) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s
                    .as_str()
                    .map(str::to_owned)
                    .ok_or(WireError::Schema("room is not UTF-8")),
                Value::Integer(i) => Ok(i.to_string()),
                Value::F64(f) => Ok(f.to_string()),
                _ => Err(WireError::Schema("room is not a string")),
            })
            .collect(),
        Some(_) => Err(WireError::Schema("rooms is not an array")),
    }
}

/// Targeting options: `{rooms, except, flags}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Opts {
    pub(crate) rooms: Vec<String>,
    pub(crate) except: Vec<String>,
    pub(crate) volatile: bool,
    pub(crate) timeout_ms: Option<u64>,
}

impl Opts {
    pub(crate) fn parse(v: Option<&Value>) -> Result<Opts, WireError> {
        let Some(v) = v else {
            return Ok(Opts::default());
        };
        if !v.is_map() {
            return Err(WireError::Schema("opts is not a map"));
        }
        let flags = field(v, "flags");
        Ok(Opts {
            rooms: rooms(field(v, "rooms"))?,
            except: rooms(field(v, "except"))?,
            volatile: flags
                .and_then(|f| field(f, "volatile"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            timeout_ms: flags.and_then(|f| field_u64(f, "timeout")),
        })
    }

    pub(crate) fn to_value(&self, with_flags: bool) -> Value {
        let list = |rooms: &[String]| {
            Value::Array(rooms.iter().map(|r| Value::from(r.as_str())).collect())
        };
        let mut entries = vec![
            (Value::from("rooms"), list(&self.rooms)),
            (Value::from("except"), list(&self.except)),
        ];
        if with_flags {
            let mut flags = Vec::new();
            if self.volatile {
                flags.push((Value::from("volatile"), Value::from(true)));
            }
            if let Some(ms) = self.timeout_ms {
                flags.push((Value::from("timeout"), Value::from(ms)));
            }
            entries.push((Value::from("flags"), Value::Map(flags)));
        }
        Value::Map(entries)
    }
}

/// An event packet: namespace, event name, arguments.
#[derive(Debug, Clone)]
pub(crate) struct EventPacket {
    pub(crate) nsp: String,
    pub(crate) event: String,
    pub(crate) args: Args,
}

/// `{type: 2, data: [event, ...args], nsp}`.
pub(crate) fn packet_value(nsp: &str, event: &str, args: &Args) -> Result<Value, String> {
    let mut data = vec![Value::from(event)];
    data.extend(args_to_values(args)?);
    Ok(Value::Map(vec![
        (Value::from("type"), Value::from(EVENT)),
        (Value::from("data"), Value::Array(data)),
        (Value::from("nsp"), Value::from(nsp)),
    ]))
}

/// Reads a broadcast packet; the namespace defaults to `/` as in the JS adapter.
pub(crate) fn parse_packet(v: &Value) -> Result<EventPacket, WireError> {
    match field_u64(v, "type") {
        Some(EVENT | BINARY_EVENT) => {}
        _ => return Err(WireError::Schema("packet type is not EVENT")),
    }
    let nsp = match field(v, "nsp") {
        None | Some(Value::Nil) => "/".to_owned(),
        Some(Value::String(s)) => s
            .as_str()
            .ok_or(WireError::Schema("nsp is not UTF-8"))?
            .to_owned(),
        Some(_) => return Err(WireError::Schema("nsp is not a string")),
    };
    let (event, args) = event_data(field(v, "data"))?;
    Ok(EventPacket { nsp, event, args })
}

/// `[event, ...args]` as the event name and its arguments.
pub(crate) fn event_data(data: Option<&Value>) -> Result<(String, Args), WireError> {
    let Some(Value::Array(items)) = data else {
        return Err(WireError::Schema("data is not an array"));
    };
    let mut items = items.iter().cloned();
    let event = match items.next() {
        Some(Value::String(s)) => s
            .into_str()
            .ok_or(WireError::Schema("event name is not UTF-8"))?,
        _ => return Err(WireError::Schema("data does not start with an event name")),
    };
    Ok((event, values_to_args(items.collect())?))
}

/// A broadcast message: `[uid, packet, opts]`.
pub(crate) struct Broadcast {
    pub(crate) uid: String,
    pub(crate) packet: EventPacket,
    pub(crate) opts: Opts,
}

pub(crate) fn parse_broadcast(v: &Value) -> Result<Broadcast, WireError> {
    let Value::Array(items) = v else {
        return Err(WireError::Schema("broadcast is not an array"));
    };
    let [uid, packet, opts] = items.as_slice() else {
        return Err(WireError::Schema("broadcast is not [uid, packet, opts]"));
    };
    Ok(Broadcast {
        uid: uid.as_str().unwrap_or_default().to_owned(),
        packet: parse_packet(packet)?,
        opts: Opts::parse(Some(opts))?,
    })
}

/// The uid of a broadcast message without decoding the rest, so a node skips its own messages
/// (it receives them back through its pattern subscription) at almost no cost.
pub(crate) fn peek_uid(payload: &[u8]) -> Option<&str> {
    let mut rd = payload;
    if rmp::decode::read_array_len(&mut rd).ok()? != 3 {
        return None;
    }
    rmp::decode::read_str_from_slice(rd)
        .ok()
        .map(|(uid, _)| uid)
}

pub(crate) fn encode_broadcast(uid: &str, packet: Value, opts: &Opts) -> Result<Vec<u8>, String> {
    encode_msgpack(&Value::Array(vec![
        Value::from(uid),
        packet,
        opts.to_value(true),
    ]))
}

pub(crate) fn encode_msgpack(v: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A JSON request or response from `fields` (every value JSON-representable).
pub(crate) fn encode_json(fields: Vec<(&str, serde_json::Value)>) -> Vec<u8> {
    let map: serde_json::Map<String, serde_json::Value> =
        fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    serde_json::Value::Object(map).to_string().into_bytes()
}

/// A random id of `len` URL-safe characters (node uids and request ids).
pub(crate) fn random_id(len: usize) -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_match_the_js_adapter() {
        let c = Channels::new("socket.io", "/", "abc123");
        assert_eq!(c.broadcast, "socket.io#/#");
        assert_eq!(c.request, "socket.io-request#/#");
        assert_eq!(c.response, "socket.io-response#/#");
        assert_eq!(c.specific_response, "socket.io-response#/#abc123#");
        assert_eq!(c.broadcast_for(&["r1".into()]), "socket.io#/#r1#");
        assert_eq!(c.broadcast_for(&["a".into(), "b".into()]), "socket.io#/#");
        assert_eq!(
            Channels::new("k*", "/", "u").broadcast_pattern(),
            "k\\*#/#*"
        );
    }

    #[test]
    fn broadcast_round_trips_with_binary() {
        let args = values_to_args(vec![Value::from(1), Value::Binary(vec![1, 2, 3])]).unwrap();
        assert!(args.has_binary());
        let packet = packet_value("/chat", "ev", &args).unwrap();
        let opts = Opts {
            rooms: vec!["r".into()],
            except: vec!["x".into()],
            volatile: true,
            timeout_ms: None,
        };
        let bytes = encode_broadcast("uid1", packet, &opts).unwrap();
        let decoded = parse_broadcast(&decode_msgpack(&bytes, 1 << 20, 16).unwrap()).unwrap();
        assert_eq!(decoded.uid, "uid1");
        assert_eq!(decoded.packet.nsp, "/chat");
        assert_eq!(decoded.packet.event, "ev");
        assert_eq!(decoded.packet.args, args);
        assert_eq!(decoded.opts, opts);
        assert_eq!(peek_uid(&bytes), Some("uid1"));
        assert_eq!(peek_uid(&[0x93, 0x01]), None);
        assert_eq!(peek_uid(&[]), None);
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xc1],
            vec![0x93, 0xa1, b'u'],
            encode_msgpack(&Value::Array(vec![
                Value::from(1),
                Value::from(2),
                Value::from(3),
            ]))
            .unwrap(),
            encode_msgpack(&Value::Array(vec![
                Value::from("u"),
                Value::Map(vec![
                    (Value::from("type"), Value::from(2)),
                    (Value::from("data"), Value::Array(vec![Value::from(5)])),
                ]),
                Value::Map(vec![]),
            ]))
            .unwrap(),
            // array header claiming 2^32-1 elements
            vec![0xdd, 0xff, 0xff, 0xff, 0xff],
            // trailing garbage
            vec![0x90, 0x00],
        ];
        for bytes in cases {
            let result =
                decode_msgpack(&bytes, 1 << 20, 16).and_then(|v| parse_broadcast(&v).map(|_| ()));
            assert!(result.is_err(), "{bytes:?} was accepted");
        }
        assert!(matches!(
            decode(&[0x90; 100], 10, 16),
            Err(WireError::TooLarge(100))
        ));
        let deep = format!(
            "{}{}",
            "{\"a\":".repeat(100),
            "1".to_owned() + &"}".repeat(100)
        );
        assert!(decode(deep.as_bytes(), 1 << 20, 16).is_err());
        let nested = [0x91u8; 200];
        assert!(decode_msgpack(&nested, 1 << 20, 16).is_err());
    }

    #[test]
    fn json_requests_become_value_trees() {
        let v = decode(
            br#"{"type":5,"requestId":"r1","opts":{"rooms":["a",7],"except":[]}}"#,
            1000,
            8,
        )
        .unwrap();
        assert_eq!(field_u64(&v, "type"), Some(kind::REMOTE_FETCH));
        assert_eq!(field_str(&v, "requestId"), Some("r1"));
        let opts = Opts::parse(field(&v, "opts")).unwrap();
        assert_eq!(opts.rooms, vec!["a".to_owned(), "7".to_owned()]);
    }
}
