//! The wire format of the NATS adapter, version [`WIRE_VERSION`] (`docs/nats.md`).
//!
//! There is no official NATS adapter to be compatible with, so the format is sockeye's own; it
//! carries the messages of the cluster protocol of `socket.io-adapter` 2.5 (`ClusterAdapter`:
//! the message types and the `data` maps are that protocol's) in one msgpack map:
//!
//! ```text
//! { "v": 1, "uid": <node id>, "nsp": <namespace>, "type": <kind>, "seq": <u64>?, "data": {...} }
//! ```
//!
//! Everything received is untrusted (anyone who can publish on the subjects can send it): the
//! size is checked before decoding, msgpack is decoded with a depth limit, and every field is
//! checked; anything else is a [`WireError`] the caller counts and drops. A message of another
//! version is [`WireError::UnknownVersion`]: ignored and counted apart, so a cluster can be
//! upgraded node by node once a version 2 exists.

use rmpv::Value;
use sockeye::adapter::{BroadcastFlags, BroadcastOptions, PersistedSession, SessionData};
use sockeye::{Args, SocketId};

/// The version this crate writes and reads.
pub(crate) const WIRE_VERSION: u64 = 1;

/// Message types: `socket.io-adapter`'s `MessageType` of its cluster protocol.
pub(crate) mod kind {
    pub(crate) const INITIAL_HEARTBEAT: u64 = 1;
    pub(crate) const HEARTBEAT: u64 = 2;
    pub(crate) const BROADCAST: u64 = 3;
    pub(crate) const SOCKETS_JOIN: u64 = 4;
    pub(crate) const SOCKETS_LEAVE: u64 = 5;
    pub(crate) const DISCONNECT_SOCKETS: u64 = 6;
    pub(crate) const FETCH_SOCKETS: u64 = 7;
    pub(crate) const FETCH_SOCKETS_RESPONSE: u64 = 8;
    pub(crate) const SERVER_SIDE_EMIT: u64 = 9;
    pub(crate) const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    pub(crate) const BROADCAST_CLIENT_COUNT: u64 = 11;
    pub(crate) const BROADCAST_ACK: u64 = 12;
    pub(crate) const ADAPTER_CLOSE: u64 = 13;
}

/// The Socket.IO EVENT packet type, the only one a broadcast carries.
const EVENT: u64 = 2;

/// Longest node uid accepted (ours are 16 characters).
const MAX_UID_LEN: usize = 64;

/// Why a broker message was refused.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Larger than `max_message_size`.
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// Not msgpack, nested too deeply, or trailing bytes.
    #[error("undecodable message: {0}")]
    Decode(String),
    /// Decoded, but not a message of this format.
    #[error("unexpected message shape: {0}")]
    Schema(&'static str),
    /// A well-formed message of another format version: ignored and counted.
    #[error("wire version {0} is not this node's ({WIRE_VERSION}); upgrade this node")]
    UnknownVersion(u64),
}

/// Limits applied to everything decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_size: usize,
    pub(crate) max_depth: usize,
}

/// One cluster message.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) uid: String,
    pub(crate) nsp: String,
    pub(crate) kind: u64,
    /// The sender's sequence number on the namespace's ordered subject (core NATS only).
    pub(crate) seq: Option<u64>,
    /// The `data` map (Nil when absent).
    pub(crate) data: Value,
}

/// A msgpack map from `(key, value)` pairs.
pub(crate) fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// Encodes one message.
pub(crate) fn encode(
    uid: &str,
    nsp: &str,
    kind: u64,
    seq: Option<u64>,
    data: Value,
) -> Result<Vec<u8>, String> {
    let mut entries = vec![
        ("v", Value::from(WIRE_VERSION)),
        ("uid", Value::from(uid)),
        ("nsp", Value::from(nsp)),
        ("type", Value::from(kind)),
    ];
    if let Some(seq) = seq {
        entries.push(("seq", Value::from(seq)));
    }
    entries.push(("data", data));
    encode_value(&map(entries))
}

pub(crate) fn encode_value(v: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Decodes msgpack with the limits; trailing bytes are refused.
pub(crate) fn decode_value(payload: &[u8], limits: Limits) -> Result<Value, WireError> {
    if payload.len() > limits.max_size {
        return Err(WireError::TooLarge(payload.len()));
    }
    let mut rd = payload;
    // rmpv spends two units of its budget per array or map level and three on a leaf, so this
    // admits `max_depth` levels of arrays and maps.
    let budget = limits.max_depth.saturating_mul(2).saturating_add(3);
    let value = rmpv::decode::read_value_with_max_depth(&mut rd, budget)
        .map_err(|e| WireError::Decode(e.to_string()))?;
    if !rd.is_empty() {
        return Err(WireError::Decode(format!("{} trailing bytes", rd.len())));
    }
    Ok(value)
}

/// Decodes and checks one message (the envelope; `data` is checked by the reader of its kind).
pub(crate) fn decode_message(payload: &[u8], limits: Limits) -> Result<Message, WireError> {
    let value = decode_value(payload, limits)?;
    if !value.is_map() {
        return Err(WireError::Schema("message is not a map"));
    }
    match field(&value, "v") {
        Some(Value::Integer(i)) => match i.as_u64() {
            Some(WIRE_VERSION) => {}
            Some(v) => return Err(WireError::UnknownVersion(v)),
            None => return Err(WireError::Schema("version is negative")),
        },
        Some(_) => return Err(WireError::Schema("version is not an integer")),
        None => return Err(WireError::Schema("message has no version")),
    }
    let uid = field_str(&value, "uid").ok_or(WireError::Schema("uid is not a string"))?;
    if uid.is_empty() || uid.len() > MAX_UID_LEN {
        return Err(WireError::Schema("uid is empty or too long"));
    }
    let nsp = field_str(&value, "nsp").ok_or(WireError::Schema("nsp is not a string"))?;
    let kind = field_u64(&value, "type").ok_or(WireError::Schema("type is not an integer"))?;
    let seq = match field(&value, "seq") {
        None | Some(Value::Nil) => None,
        Some(_) => {
            Some(field_u64(&value, "seq").ok_or(WireError::Schema("seq is not an integer"))?)
        }
    };
    let (uid, nsp) = (uid.to_owned(), nsp.to_owned());
    let data = match value {
        Value::Map(entries) => entries
            .into_iter()
            .find(|(k, _)| k.as_str() == Some("data"))
            .map_or(Value::Nil, |(_, v)| v),
        _ => Value::Nil,
    };
    if !(data.is_nil() || data.is_map()) {
        return Err(WireError::Schema("data is not a map"));
    }
    Ok(Message {
        uid,
        nsp,
        kind,
        seq,
        data,
    })
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
        _ => None,
    }
}

/// The `requestId` of a request or response.
pub(crate) fn request_id(data: &Value) -> Option<String> {
    field_str(data, "requestId")
        .filter(|id| !id.is_empty() && id.len() <= 64)
        .map(str::to_owned)
}

/// A room list (absent is empty).
pub(crate) fn rooms(v: Option<&Value>) -> Result<Vec<String>, WireError> {
    match v {
        None | Some(Value::Nil) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or(WireError::Schema("room is not a string"))
            })
            .collect(),
        Some(_) => Err(WireError::Schema("rooms is not an array")),
    }
}

fn room_list(rooms: &[String]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::from(r.as_str())).collect())
}

/// `opts` of a broadcast, room change or request: `{rooms, except, flags: {volatile, timeout}}`.
pub(crate) fn opts_value(opts: &BroadcastOptions, timeout_ms: Option<u64>) -> Value {
    let mut flags = Vec::new();
    if opts.flags.volatile {
        flags.push(("volatile", Value::from(true)));
    }
    if let Some(ms) = timeout_ms {
        flags.push(("timeout", Value::from(ms)));
    }
    map(vec![
        ("rooms", room_list(&opts.rooms)),
        ("except", room_list(&opts.except)),
        ("flags", map(flags)),
    ])
}

/// Reads `opts`; also returns the ack timeout in milliseconds, if one was given.
pub(crate) fn parse_opts(v: Option<&Value>) -> Result<(BroadcastOptions, Option<u64>), WireError> {
    let Some(v) = v else {
        return Ok((BroadcastOptions::default(), None));
    };
    if !v.is_map() {
        return Err(WireError::Schema("opts is not a map"));
    }
    let flags = field(v, "flags");
    let volatile = match flags.and_then(|f| field(f, "volatile")) {
        None | Some(Value::Nil) => false,
        Some(Value::Boolean(b)) => *b,
        Some(_) => return Err(WireError::Schema("volatile is not a boolean")),
    };
    let timeout = flags.and_then(|f| field_u64(f, "timeout"));
    Ok((
        BroadcastOptions {
            rooms: rooms(field(v, "rooms"))?,
            except: rooms(field(v, "except"))?,
            flags: BroadcastFlags {
                volatile,
                ..BroadcastFlags::default()
            },
        },
        timeout,
    ))
}

/// Event arguments as msgpack values; attachments become inline binary.
pub(crate) fn args_to_values(args: &Args) -> Result<Vec<Value>, String> {
    args.deserialize::<Vec<Value>>().map_err(|e| e.to_string())
}

/// Replaces what JSON cannot carry (extension types) and refuses map keys that are not
/// strings, so the tree can become [`Args`].
fn sanitize(v: Value) -> Result<Value, WireError> {
    Ok(match v {
        Value::Ext(..) => Value::Nil,
        Value::Array(a) => Value::Array(a.into_iter().map(sanitize).collect::<Result<_, _>>()?),
        Value::Map(m) => Value::Map(
            m.into_iter()
                .map(|(k, v)| {
                    if !k.is_str() {
                        return Err(WireError::Schema("map key is not a string"));
                    }
                    Ok((k, sanitize(v)?))
                })
                .collect::<Result<_, WireError>>()?,
        ),
        Value::String(s) if s.as_str().is_none() => {
            return Err(WireError::Schema("string is not UTF-8"));
        }
        other => other,
    })
}

/// Event arguments from msgpack values; binary values become attachments.
pub(crate) fn values_to_args(values: Vec<Value>) -> Result<Args, WireError> {
    let mut builder = Args::builder();
    for v in values {
        builder
            .push(&sanitize(v)?)
            .map_err(|e| WireError::Decode(e.to_string()))?;
    }
    Ok(builder.build())
}

/// `[event, ...args]`.
pub(crate) fn event_value(event: &str, args: &Args) -> Result<Value, String> {
    let mut data = vec![Value::from(event)];
    data.extend(args_to_values(args)?);
    Ok(Value::Array(data))
}

/// Reads `[event, ...args]`.
pub(crate) fn parse_event(v: Option<&Value>) -> Result<(String, Args), WireError> {
    let Some(Value::Array(items)) = v else {
        return Err(WireError::Schema("event data is not an array"));
    };
    let mut items = items.iter().cloned();
    let event = match items.next() {
        Some(Value::String(s)) => s
            .into_str()
            .ok_or(WireError::Schema("event name is not UTF-8"))?,
        _ => return Err(WireError::Schema("event data does not start with a name")),
    };
    Ok((event, values_to_args(items.collect())?))
}

/// The `packet` of a broadcast: `{type: 2, data: [event, ...args], nsp}`.
pub(crate) fn packet_value(nsp: &str, event: &str, args: &Args) -> Result<Value, String> {
    Ok(map(vec![
        ("type", Value::from(EVENT)),
        ("data", event_value(event, args)?),
        ("nsp", Value::from(nsp)),
    ]))
}

/// A broadcast's contents.
#[derive(Debug)]
pub(crate) struct Broadcast {
    pub(crate) event: String,
    pub(crate) args: Args,
    pub(crate) opts: BroadcastOptions,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) request_id: Option<String>,
}

/// Reads the `data` of a BROADCAST; its packet's namespace must be `nsp`.
pub(crate) fn parse_broadcast(data: &Value, nsp: &str) -> Result<Broadcast, WireError> {
    let packet = field(data, "packet").ok_or(WireError::Schema("broadcast without packet"))?;
    if field_u64(packet, "type") != Some(EVENT) {
        return Err(WireError::Schema("packet type is not EVENT"));
    }
    if field_str(packet, "nsp") != Some(nsp) {
        return Err(WireError::Schema("packet namespace is not the message's"));
    }
    let (event, args) = parse_event(field(packet, "data"))?;
    let (opts, timeout_ms) = parse_opts(field(data, "opts"))?;
    Ok(Broadcast {
        event,
        args,
        opts,
        timeout_ms,
        request_id: request_id(data),
    })
}

/// A socket of a FETCH_SOCKETS_RESPONSE.
#[derive(Debug)]
pub(crate) struct FetchedSocket {
    pub(crate) id: String,
    pub(crate) rooms: Vec<String>,
    pub(crate) handshake: Option<serde_json::Value>,
    pub(crate) data: Option<serde_json::Value>,
}

/// The sockets of a FETCH_SOCKETS_RESPONSE; entries without a string id or with malformed
/// rooms are skipped. `None` when there is no socket list.
pub(crate) fn fetched_sockets(data: &Value) -> Option<Vec<FetchedSocket>> {
    let Some(Value::Array(list)) = field(data, "sockets") else {
        return None;
    };
    Some(
        list.iter()
            .filter_map(|s| {
                Some(FetchedSocket {
                    id: field_str(s, "id")?.to_owned(),
                    rooms: rooms(field(s, "rooms")).ok()?,
                    handshake: field(s, "handshake").map(value_to_json),
                    data: field(s, "data").map(value_to_json).filter(|v| !v.is_null()),
                })
            })
            .collect(),
    )
}

/// A JSON tree as a msgpack tree.
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

/// A msgpack tree as JSON: binary becomes an array of numbers, extensions null; entries whose
/// key is not a string are left out (so no key is rendered as text of text of ...).
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
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), value_to_json(v))))
                .collect(),
        ),
    }
}

/// True when a session with `rooms` is targeted by `opts`.
pub(crate) fn session_matches(rooms: &[String], opts: &BroadcastOptions) -> bool {
    let included = opts.rooms.is_empty() || rooms.iter().any(|r| opts.rooms.contains(r));
    let excluded = rooms.iter().any(|r| opts.except.contains(r));
    included && !excluded
}

/// A stored session (JetStream KV value): `{v, sid, pid, nsp, rooms, data, expires, liveOn?}`,
/// `expires` in milliseconds since the Unix epoch.
pub(crate) fn encode_session(
    session: &PersistedSession,
    expires_ms: u64,
    live_on: Option<&str>,
) -> Result<Vec<u8>, String> {
    let data = match &session.data {
        Some(d) => json_to_value(d.to_json().map_err(|e| e.to_string())?),
        None => Value::Nil,
    };
    let mut entries = vec![
        ("v", Value::from(WIRE_VERSION)),
        ("sid", Value::from(session.id.as_str())),
        ("pid", Value::from(session.pid.as_str())),
        ("nsp", Value::from(session.ns.as_str())),
        ("rooms", room_list(&session.rooms)),
        ("data", data),
        ("expires", Value::from(expires_ms)),
    ];
    if let Some(uid) = live_on {
        entries.push(("liveOn", Value::from(uid)));
    }
    encode_value(&map(entries))
}

/// A stored session, checked: its `pid` must be the one it was stored under and `nsp` the
/// namespace asking. Also returns its expiry and the node that wrote it while it was live.
pub(crate) fn decode_session(
    raw: &[u8],
    pid: &str,
    nsp: &str,
    limits: Limits,
) -> Result<(PersistedSession, u64, Option<String>), WireError> {
    let v = decode_value(raw, limits)?;
    match field_u64(&v, "v") {
        Some(WIRE_VERSION) => {}
        Some(other) => return Err(WireError::UnknownVersion(other)),
        None => return Err(WireError::Schema("session has no version")),
    }
    if field_str(&v, "pid") != Some(pid) {
        return Err(WireError::Schema("session pid is not its key's"));
    }
    if field_str(&v, "nsp") != Some(nsp) {
        return Err(WireError::Schema("session namespace is not this one"));
    }
    let sid = field_str(&v, "sid").ok_or(WireError::Schema("session sid is not a string"))?;
    let expires =
        field_u64(&v, "expires").ok_or(WireError::Schema("session expiry is not an integer"))?;
    let data = match field(&v, "data") {
        None | Some(Value::Nil) => None,
        Some(d) => Some(SessionData::from_json(value_to_json(d))),
    };
    // A node uid becomes a subject token (the liveness probe): letters and digits only, so a
    // forged session cannot aim the probe at a wildcard or another subject.
    let live_on = match field(&v, "liveOn") {
        None | Some(Value::Nil) => None,
        Some(Value::String(s)) => match s.as_str() {
            Some(uid)
                if !uid.is_empty()
                    && uid.len() <= MAX_UID_LEN
                    && uid.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                Some(uid.to_owned())
            }
            _ => return Err(WireError::Schema("session liveOn is not a node uid")),
        },
        Some(_) => return Err(WireError::Schema("session liveOn is not a string")),
    };
    Ok((
        PersistedSession {
            id: SocketId::from(sid),
            pid: pid.to_owned(),
            ns: nsp.to_owned(),
            rooms: rooms(field(&v, "rooms"))?,
            data,
        },
        expires,
        live_on,
    ))
}

/// A namespace as one subject token: ASCII letters, digits, `-` and `_` as they are, every
/// other byte `~XX` (hex), so `/` becomes `~2F` and `/chat` `~2Fchat`. No namespace can add a
/// subject level or a wildcard.
pub(crate) fn subject_token(nsp: &str) -> String {
    let mut out = String::with_capacity(nsp.len() + 4);
    for b in nsp.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('~');
    }
    out
}

/// A random id of `len` alphanumeric characters (node uids and request ids).
pub(crate) fn random_id(len: usize) -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

#[cfg(feature = "fuzzing")]
const FUZZ_LIMITS: Limits = Limits {
    max_size: 1 << 20,
    max_depth: 64,
};

/// The fuzz target's message entry: the envelope, then the reader of its type.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_message(data: &[u8]) -> bool {
    let Ok(m) = decode_message(data, FUZZ_LIMITS) else {
        return false;
    };
    match m.kind {
        kind::INITIAL_HEARTBEAT | kind::HEARTBEAT | kind::ADAPTER_CLOSE => true,
        kind::BROADCAST => parse_broadcast(&m.data, &m.nsp).is_ok(),
        kind::SOCKETS_JOIN | kind::SOCKETS_LEAVE => {
            parse_opts(field(&m.data, "opts")).is_ok() && rooms(field(&m.data, "rooms")).is_ok()
        }
        kind::DISCONNECT_SOCKETS => parse_opts(field(&m.data, "opts")).is_ok(),
        kind::FETCH_SOCKETS => {
            request_id(&m.data).is_some() && parse_opts(field(&m.data, "opts")).is_ok()
        }
        kind::FETCH_SOCKETS_RESPONSE => {
            request_id(&m.data).is_some() && fetched_sockets(&m.data).is_some()
        }
        kind::SERVER_SIDE_EMIT => parse_event(field(&m.data, "packet")).is_ok(),
        kind::SERVER_SIDE_EMIT_RESPONSE | kind::BROADCAST_CLIENT_COUNT | kind::BROADCAST_ACK => {
            request_id(&m.data).is_some()
                && field(&m.data, "packet").is_none_or(|v| values_to_args(vec![v.clone()]).is_ok())
        }
        _ => false,
    }
}

/// The fuzz target's session entry (the pid and namespace are read from the blob itself, so
/// that a well-formed one is accepted).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_session(data: &[u8]) -> bool {
    let Ok(v) = decode_value(data, FUZZ_LIMITS) else {
        return false;
    };
    let pid = field_str(&v, "pid").unwrap_or_default().to_owned();
    let nsp = field_str(&v, "nsp").unwrap_or_default().to_owned();
    decode_session(data, &pid, &nsp, FUZZ_LIMITS).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_size: 1 << 20,
        max_depth: 32,
    };

    #[test]
    fn broadcast_round_trips_with_binary() {
        let args = values_to_args(vec![Value::from(1), Value::Binary(vec![1, 2, 3])]).unwrap();
        assert!(args.has_binary());
        let opts = BroadcastOptions {
            rooms: vec!["r".into()],
            except: vec!["x".into()],
            flags: BroadcastFlags {
                volatile: true,
                ..BroadcastFlags::default()
            },
        };
        let data = map(vec![
            ("packet", packet_value("/chat", "ev", &args).unwrap()),
            ("opts", opts_value(&opts, Some(250))),
            ("requestId", Value::from("req1")),
        ]);
        let bytes = encode("uid1", "/chat", kind::BROADCAST, Some(9), data).unwrap();
        let m = decode_message(&bytes, LIMITS).unwrap();
        assert_eq!(
            (m.uid.as_str(), m.nsp.as_str(), m.kind, m.seq),
            ("uid1", "/chat", kind::BROADCAST, Some(9))
        );
        let b = parse_broadcast(&m.data, "/chat").unwrap();
        assert_eq!(b.event, "ev");
        assert_eq!(b.args, args);
        assert_eq!(b.opts, opts);
        assert_eq!(b.timeout_ms, Some(250));
        assert_eq!(b.request_id.as_deref(), Some("req1"));
        assert!(parse_broadcast(&m.data, "/").is_err(), "namespace mismatch");
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let good = |f: fn(&mut Vec<(Value, Value)>)| {
            let mut entries = vec![
                (Value::from("v"), Value::from(1)),
                (Value::from("uid"), Value::from("u")),
                (Value::from("nsp"), Value::from("/")),
                (Value::from("type"), Value::from(3)),
                (Value::from("data"), Value::Map(vec![])),
            ];
            f(&mut entries);
            encode_value(&Value::Map(entries)).unwrap()
        };
        assert!(decode_message(&good(|_| {}), LIMITS).is_ok());
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xc1],
            vec![0x90],
            vec![0xdd, 0xff, 0xff, 0xff, 0xff],
            [good(|_| {}), vec![0]].concat(),
            good(|e| e[0].1 = Value::from("1")),
            good(|e| {
                e.remove(0);
            }),
            good(|e| e[1].1 = Value::from(5)),
            good(|e| e[1].1 = Value::from("u".repeat(65))),
            good(|e| e[3].1 = Value::from(-3)),
            good(|e| e[4].1 = Value::from(7)),
            good(|e| e.push((Value::from("seq"), Value::from("x")))),
        ];
        for bytes in cases {
            assert!(
                decode_message(&bytes, LIMITS).is_err(),
                "{bytes:?} was accepted"
            );
        }
        assert!(matches!(
            decode_message(&good(|e| e[0].1 = Value::from(2)), LIMITS),
            Err(WireError::UnknownVersion(2))
        ));
        assert!(matches!(
            decode_message(
                &[0x90; 100],
                Limits {
                    max_size: 10,
                    max_depth: 8
                }
            ),
            Err(WireError::TooLarge(100))
        ));
        assert!(decode_value(&[0x91u8; 200], LIMITS).is_err(), "too deep");
        // Broadcast data checked field by field.
        let data = |packet: Value| map(vec![("packet", packet)]);
        for bad in [
            data(Value::Nil),
            data(map(vec![
                ("type", Value::from(2)),
                ("nsp", Value::from("/")),
            ])),
            data(map(vec![
                ("type", Value::from(2)),
                ("nsp", Value::from("/")),
                ("data", Value::Array(vec![Value::from(1)])),
            ])),
            data(map(vec![
                ("type", Value::from(2)),
                ("nsp", Value::from("/")),
                (
                    "data",
                    Value::Array(vec![
                        Value::from("ev"),
                        Value::Map(vec![(Value::Array(vec![]), Value::Nil)]),
                    ]),
                ),
            ])),
        ] {
            assert!(parse_broadcast(&bad, "/").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sessions_round_trip_and_are_checked() {
        let session = PersistedSession {
            id: SocketId::from("sid1"),
            pid: "pid1".into(),
            ns: "/".into(),
            rooms: vec!["sid1".into(), "r".into()],
            data: Some(SessionData::from_json(serde_json::json!({"n": 7}))),
        };
        let raw = encode_session(&session, 1234, Some("node")).unwrap();
        let (back, expires, live) = decode_session(&raw, "pid1", "/", LIMITS).unwrap();
        assert_eq!(back.id, session.id);
        assert_eq!(back.rooms, session.rooms);
        assert_eq!(
            back.data.unwrap().to_json().unwrap(),
            serde_json::json!({"n": 7})
        );
        assert_eq!((expires, live.as_deref()), (1234, Some("node")));
        assert!(decode_session(&raw, "other", "/", LIMITS).is_err());
        assert!(decode_session(&raw, "pid1", "/chat", LIMITS).is_err());
        assert!(decode_session(&raw[..raw.len() - 1], "pid1", "/", LIMITS).is_err());
        for forged in ["a.b", "*", ">", ""] {
            let raw = encode_session(&session, 1, Some(forged)).unwrap();
            assert!(
                decode_session(&raw, "pid1", "/", LIMITS).is_err(),
                "liveOn {forged:?} accepted"
            );
        }
    }

    #[test]
    fn namespaces_become_single_subject_tokens() {
        assert_eq!(subject_token("/"), "~2F");
        assert_eq!(subject_token("/chat-1_x"), "~2Fchat-1_x");
        assert_eq!(subject_token("/a.b *>"), "~2Fa~2Eb~20~2A~3E");
        assert_eq!(subject_token(""), "~");
    }
}
