//! The format of `@socket.io/redis-streams-adapter` 0.3 on `socket.io-adapter` 2.5's cluster
//! protocol: stream entries, pub/sub messages and stored sessions. Everything read here is
//! untrusted (anyone who can write to Redis can write it): size-limited, depth-limited and
//! checked field by field; a refusal is a [`WireError`].

use base64::Engine as _;
use rmpv::Value;
use sockeye::SocketId;
use sockeye::adapter::SessionData;
use sockeye::adapter::{BroadcastOptions, PersistedSession};

use crate::wire::{
    self as classic, EventPacket, Opts, WireError, field, field_str, field_u64, json_to_value,
    value_to_json,
};
pub(crate) use sockeye_cluster::wire::{
    Limits, answer, event_value, first_value, has_binary, kind, map, request_id, socket_value,
};

/// One cluster message, from a stream entry or a pub/sub payload.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) uid: String,
    pub(crate) nsp: String,
    pub(crate) kind: u64,
    /// The `data` map (Nil when absent).
    pub(crate) data: Value,
}

/// JS `hashCode(namespace) % streamCount`: Java's string hash over UTF-16 code units, in
/// 32-bit signed arithmetic. A negative hash gives a negative JS remainder, hence a stream
/// name like `socket.io--1` that the official adapter never reads: reproduced as is, so both
/// sides agree on where a namespace's entries go.
pub(crate) fn stream_index(ns: &str, count: usize) -> i64 {
    let mut hash: i32 = 0;
    for unit in ns.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    let count = i64::try_from(count.max(1)).unwrap_or(1);
    i64::from(hash) % count
}

/// The stream a namespace's entries go to.
pub(crate) fn stream_name(base: &str, count: usize, ns: &str) -> String {
    if count <= 1 {
        base.to_owned()
    } else {
        format!("{base}-{}", stream_index(ns, count))
    }
}

/// A stream entry's fields as a message. `data` is JSON when it starts with `{`, base64
/// msgpack otherwise (the official adapter's choice when the payload holds binary).
pub(crate) fn decode_entry(
    fields: &[(Vec<u8>, Vec<u8>)],
    limits: Limits,
) -> Result<Message, WireError> {
    let size: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > limits.max_size {
        return Err(WireError::TooLarge(size));
    }
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.as_slice() == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    };
    let text = |name: &'static str| -> Result<String, WireError> {
        let raw = get(name).ok_or(WireError::Schema("stream entry field missing"))?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| WireError::Schema("stream entry field is not UTF-8"))
    };
    let uid = text("uid")?;
    let nsp = text("nsp")?;
    let kind = text("type")?
        .parse::<u64>()
        .map_err(|_| WireError::Schema("stream entry type is not a number"))?;
    let data = match get("data") {
        None => Value::Nil,
        Some(raw) => decode_data(raw, limits)?,
    };
    Ok(Message {
        uid,
        nsp,
        kind,
        data,
    })
}

/// A `data` field: JSON text, or base64 msgpack.
pub(crate) fn decode_data(raw: &[u8], limits: Limits) -> Result<Value, WireError> {
    if raw.first() == Some(&b'{') {
        return classic::decode(raw, limits.max_size, limits.max_depth);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|e| WireError::Decode(format!("data is neither JSON nor base64: {e}")))?;
    classic::decode_msgpack(&bytes, limits.max_size, limits.max_depth)
}

/// The fields of a stream entry for `message`: `data` as JSON, or base64 msgpack when it
/// holds binary (as the official adapter writes them).
pub(crate) fn encode_entry(
    uid: &str,
    nsp: &str,
    kind: u64,
    data: &Value,
) -> Result<Vec<(String, String)>, String> {
    let data = if has_binary(data) {
        base64::engine::general_purpose::STANDARD.encode(classic::encode_msgpack(data)?)
    } else {
        serde_json::to_string(&value_to_json(data)).map_err(|e| e.to_string())?
    };
    Ok(vec![
        ("uid".into(), uid.into()),
        ("nsp".into(), nsp.into()),
        ("type".into(), kind.to_string()),
        ("data".into(), data),
    ])
}

/// A pub/sub payload: the whole message as msgpack.
pub(crate) fn decode_pubsub(payload: &[u8], limits: Limits) -> Result<Message, WireError> {
    let v = classic::decode_msgpack(payload, limits.max_size, limits.max_depth)?;
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

/// A pub/sub payload for a message.
pub(crate) fn encode_pubsub(
    uid: &str,
    nsp: &str,
    kind: u64,
    data: Value,
) -> Result<Vec<u8>, String> {
    classic::encode_msgpack(&map(vec![
        ("uid", Value::from(uid)),
        ("nsp", Value::from(nsp)),
        ("type", Value::from(kind)),
        ("data", data),
    ]))
}

/// The `opts` of a broadcast or a room operation, as the JS adapter encodes them.
pub(crate) fn opts_value(opts: &BroadcastOptions) -> Value {
    Opts::of(opts, opts.flags.timeout).to_value(true)
}

/// The `{packet, opts}` of a BROADCAST.
pub(crate) struct Broadcast {
    pub(crate) packet: EventPacket,
    pub(crate) opts: Opts,
    pub(crate) request_id: Option<String>,
}

pub(crate) fn parse_broadcast(data: &Value) -> Result<Broadcast, WireError> {
    let packet = field(data, "packet").ok_or(WireError::Schema("broadcast has no packet"))?;
    Ok(Broadcast {
        packet: classic::parse_packet(packet)?,
        opts: Opts::parse(field(data, "opts"))?,
        request_id: request_id(data),
    })
}

/// The rooms of a SOCKETS_JOIN / SOCKETS_LEAVE.
pub(crate) fn rooms_of(data: &Value) -> Result<Vec<String>, WireError> {
    classic::rooms(field(data, "rooms"))
}

/// The key naming the node that keeps a live session (one whose socket is still connected):
/// the official adapter ignores it; sockeye restores such a session only once that node is
/// gone (see `take_session`).
pub(crate) const LIVE_ON_KEY: &str = "sockeyeLiveOn";

/// The official adapter's session: `{sid, pid, rooms, data}` as base64 msgpack, plus
/// [`LIVE_ON_KEY`] for a live copy written by node `live_on`.
pub(crate) fn encode_session(
    session: &PersistedSession,
    live_on: Option<&str>,
) -> Result<String, String> {
    let data = match &session.data {
        Some(d) => json_to_value(d.to_json().map_err(|e| e.to_string())?),
        None => Value::Map(Vec::new()),
    };
    let mut entries = vec![
        ("sid", Value::from(session.id.as_str())),
        ("pid", Value::from(session.pid.as_str())),
        (
            "rooms",
            Value::Array(
                session
                    .rooms
                    .iter()
                    .map(|r| Value::from(r.as_str()))
                    .collect(),
            ),
        ),
        ("data", data),
    ];
    if let Some(uid) = live_on {
        entries.push((LIVE_ON_KEY, Value::from(uid)));
    }
    let v = map(entries);
    Ok(base64::engine::general_purpose::STANDARD.encode(classic::encode_msgpack(&v)?))
}

/// A stored session, checked: its `pid` must be the one it was stored under, and `sid` a
/// string. An empty `data` map (the JS default `{}`) is no session value.
pub(crate) fn decode_session(
    raw: &[u8],
    pid: &str,
    ns: &str,
    limits: Limits,
) -> Result<(PersistedSession, Option<String>), WireError> {
    if raw.len() > limits.max_size {
        return Err(WireError::TooLarge(raw.len()));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|e| WireError::Decode(format!("session is not base64: {e}")))?;
    let v = classic::decode_msgpack(&bytes, limits.max_size, limits.max_depth)?;
    let sid = field_str(&v, "sid").ok_or(WireError::Schema("session has no sid"))?;
    if sid.is_empty() || sid.len() > 64 {
        return Err(WireError::Schema("session sid is empty or too long"));
    }
    if field_str(&v, "pid") != Some(pid) {
        return Err(WireError::Schema("session pid does not match its key"));
    }
    let rooms = classic::rooms(field(&v, "rooms"))?;
    let data = match field(&v, "data") {
        None | Some(Value::Nil) => None,
        Some(Value::Map(m)) if m.is_empty() => None,
        Some(d) => Some(SessionData::from_json(value_to_json(d))),
    };
    let live_on = match field(&v, LIVE_ON_KEY) {
        None => None,
        Some(Value::String(s)) => Some(
            s.as_str()
                .ok_or(WireError::Schema("live node id is not UTF-8"))?
                .to_owned(),
        ),
        Some(_) => return Err(WireError::Schema("live node id is not a string")),
    };
    let session = PersistedSession {
        id: SocketId::from(sid),
        pid: pid.to_owned(),
        ns: ns.to_owned(),
        rooms,
        data,
    };
    Ok((session, live_on))
}

/// A stream entry id `ms-seq`, for ordering.
pub(crate) fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    if ms.is_empty() || seq.is_empty() || !ms.bytes().chain(seq.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The smallest id after `id` (exclusive ranges without Redis 6.2's `(`).
pub(crate) fn next_id(id: (u64, u64)) -> String {
    match id.1.checked_add(1) {
        Some(seq) => format!("{}-{seq}", id.0),
        None => format!("{}-0", id.0.saturating_add(1)),
    }
}

/// The official adapter's packet filter for a session: a target room among its rooms (or no
/// target room), and no excluded room among them.
pub(crate) fn session_matches(rooms: &[String], opts: &Opts) -> bool {
    let included = opts.rooms.is_empty() || rooms.iter().any(|r| opts.rooms.contains(r));
    let excluded = rooms.iter().any(|r| opts.except.contains(r));
    included && !excluded
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_size: 1_000_000,
        max_depth: 64,
    };

    #[test]
    fn stream_hash_matches_the_js_hash_code() {
        // hashCode("/") = 47; "/chat": 31-based Java hash, as computed by the JS adapter.
        assert_eq!(stream_index("/", 3), 47 % 3);
        let mut h: i32 = 0;
        for c in "/chat".chars() {
            h = h.wrapping_mul(31).wrapping_add(c as i32);
        }
        assert_eq!(stream_index("/chat", 4), i64::from(h) % 4);
        assert_eq!(stream_name("socket.io", 1, "/x"), "socket.io");
    }

    #[test]
    fn entries_round_trip_as_json_and_as_msgpack() {
        let data = map(vec![("rooms", Value::Array(vec![Value::from("r")]))]);
        let fields = encode_entry("u1", "/", kind::SOCKETS_JOIN, &data).unwrap();
        assert!(fields[3].1.starts_with('{'));
        let raw: Vec<(Vec<u8>, Vec<u8>)> = fields
            .into_iter()
            .map(|(k, v)| (k.into_bytes(), v.into_bytes()))
            .collect();
        let m = decode_entry(&raw, LIMITS).unwrap();
        assert_eq!((m.uid.as_str(), m.nsp.as_str(), m.kind), ("u1", "/", 4));
        assert_eq!(rooms_of(&m.data).unwrap(), vec!["r".to_owned()]);
        let bin = map(vec![("b", Value::Binary(vec![1, 2]))]);
        let fields = encode_entry("u1", "/", kind::BROADCAST, &bin).unwrap();
        assert!(!fields[3].1.starts_with('{'));
        let back = decode_data(fields[3].1.as_bytes(), LIMITS).unwrap();
        assert_eq!(back, bin);
    }

    #[test]
    fn malformed_entries_and_sessions_are_refused() {
        let entry = |pairs: &[(&str, &str)]| -> Vec<(Vec<u8>, Vec<u8>)> {
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect()
        };
        assert!(decode_entry(&entry(&[("uid", "u")]), LIMITS).is_err());
        assert!(
            decode_entry(&entry(&[("uid", "u"), ("nsp", "/"), ("type", "x")]), LIMITS).is_err()
        );
        assert!(
            decode_entry(
                &entry(&[("uid", "u"), ("nsp", "/"), ("type", "3"), ("data", "!!")]),
                LIMITS
            )
            .is_err()
        );
        let small = Limits {
            max_size: 10,
            max_depth: 64,
        };
        assert!(matches!(
            decode_entry(
                &entry(&[("uid", "uuuuuuuuuuuu"), ("nsp", "/"), ("type", "3")]),
                small
            ),
            Err(WireError::TooLarge(_))
        ));
        let session = PersistedSession {
            id: SocketId::from("abc"),
            pid: "p1".into(),
            ns: "/".into(),
            rooms: vec!["abc".into(), "r".into()],
            data: Some(SessionData::from_json(serde_json::json!({"tag": 1}))),
        };
        let blob = encode_session(&session, Some("n1")).unwrap();
        let (back, live_on) = decode_session(blob.as_bytes(), "p1", "/", LIMITS).unwrap();
        assert_eq!(live_on.as_deref(), Some("n1"));
        assert_eq!(back.id.as_str(), "abc");
        assert_eq!(back.rooms, session.rooms);
        assert_eq!(
            back.data.unwrap().to_json().unwrap(),
            serde_json::json!({"tag": 1})
        );
        assert!(
            decode_session(blob.as_bytes(), "other", "/", LIMITS).is_err(),
            "pid must match its key"
        );
        assert!(decode_session(b"%%%", "p1", "/", LIMITS).is_err());
    }

    #[test]
    fn ids_order_and_advance() {
        assert_eq!(parse_id("12-3"), Some((12, 3)));
        assert_eq!(parse_id("12-"), None);
        assert_eq!(parse_id("a-1"), None);
        assert_eq!(parse_id("1-2-3"), None);
        assert_eq!(next_id((5, 9)), "5-10");
        assert_eq!(next_id((5, u64::MAX)), "6-0");
    }
}
