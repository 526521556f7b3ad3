//! The format of `@socket.io/postgres-adapter` 0.5 (the cluster protocol of `socket.io-adapter`
//! 2.5 over `NOTIFY`) and `@socket.io/postgres-emitter` 0.1.
//!
//! A message is `{uid, type, nsp, data}`. It travels as the JSON text of a `NOTIFY` on the
//! channel `<prefix>#<namespace>`, unless its JSON is longer than the payload threshold or it
//! carries binary: then the whole message is msgpack in a row of the attachments table and the
//! notification is only `{uid, type, attachmentId}`.
//!
//! Everything read here is untrusted (anyone who can `NOTIFY` or write the table can write
//! it): size-limited, depth-limited and checked field by field; a refusal is a [`WireError`].

use rmpv::Value;
use sockeye::Args;

/// `socket.io-adapter`'s `MessageType`.
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

/// The uid of `@socket.io/postgres-emitter`'s messages: not a node, never counted as one.
pub(crate) const EMITTER_UID: &str = "emitter";

/// PostgreSQL's `NOTIFY` payload limit: payloads must be shorter.
const NOTIFY_LIMIT: usize = 8000;

/// Socket.IO packet types a broadcast may carry.
const EVENT: u64 = 2;
const BINARY_EVENT: u64 = 5;

/// Why a message from the database was refused.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Larger than the configured `max_message_size`.
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// Not JSON (a notification) or not msgpack (an attachment).
    #[error("undecodable message: {0}")]
    Decode(String),
    /// Decoded, but not a message of the protocol.
    #[error("unexpected message shape: {0}")]
    Schema(&'static str),
}

/// Limits applied to everything decoded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest notification or attachment, in bytes.
    pub max_size: usize,
    /// Deepest nesting of arrays and maps.
    pub max_depth: usize,
}

/// One decoded notification or attachment.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The sender's uid (`emitter` for the emitter); empty when absent.
    pub uid: String,
    /// The namespace the message names, if it names one (the emitter's do not).
    pub nsp: Option<String>,
    /// The message type (see `socket.io-adapter`'s `MessageType`).
    pub kind: u64,
    /// The `data` map (Nil when absent).
    pub data: Value,
    /// For a notification that only points at a row of the attachments table: its id.
    pub attachment_id: Option<i64>,
}

/// Decodes the JSON text of a notification.
pub fn decode_notification(payload: &str, limits: Limits) -> Result<Message, WireError> {
    if payload.len() > limits.max_size {
        return Err(WireError::TooLarge(payload.len()));
    }
    if !payload.starts_with('{') {
        return Err(WireError::Schema("notification is not a JSON object"));
    }
    // Checked on the bytes, without recursion, before serde_json builds (and later code
    // walks) a tree of that depth.
    if json_depth(payload.as_bytes()) > limits.max_depth {
        return Err(WireError::Schema("nested too deeply"));
    }
    let json: serde_json::Value =
        serde_json::from_str(payload).map_err(|e| WireError::Decode(e.to_string()))?;
    let v = json_to_value(json);
    let attachment_id = match field(&v, "attachmentId") {
        None | Some(Value::Nil) => None,
        // node-postgres hands a bigserial back as a string: the Node packages send it so.
        Some(Value::String(s)) => Some(
            s.as_str()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or(WireError::Schema("attachmentId is not an integer"))?,
        ),
        Some(Value::Integer(i)) => Some(
            i.as_i64()
                .ok_or(WireError::Schema("attachmentId is out of range"))?,
        ),
        Some(_) => return Err(WireError::Schema("attachmentId is not an integer")),
    };
    message_of(&v, attachment_id)
}

/// Decodes the msgpack of an attachment row (the whole message).
pub fn decode_attachment(bytes: &[u8], limits: Limits) -> Result<Message, WireError> {
    let v = decode_msgpack(bytes, limits)?;
    message_of(&v, None)
}

fn message_of(v: &Value, attachment_id: Option<i64>) -> Result<Message, WireError> {
    if !v.is_map() {
        return Err(WireError::Schema("message is not a map"));
    }
    let uid = match field(v, "uid") {
        None | Some(Value::Nil) => String::new(),
        Some(Value::String(s)) => s
            .as_str()
            .ok_or(WireError::Schema("uid is not UTF-8"))?
            .to_owned(),
        Some(_) => return Err(WireError::Schema("uid is not a string")),
    };
    let nsp = match field(v, "nsp") {
        None | Some(Value::Nil) => None,
        Some(Value::String(s)) => Some(
            s.as_str()
                .ok_or(WireError::Schema("nsp is not UTF-8"))?
                .to_owned(),
        ),
        Some(_) => return Err(WireError::Schema("nsp is not a string")),
    };
    let kind = field_u64(v, "type").ok_or(WireError::Schema("message has no numeric type"))?;
    let data = field(v, "data").cloned().unwrap_or(Value::Nil);
    if attachment_id.is_none() && !matches!(data, Value::Nil | Value::Map(_)) {
        return Err(WireError::Schema("data is not a map"));
    }
    Ok(Message {
        uid,
        nsp,
        kind,
        data,
        attachment_id,
    })
}

/// What to send for one message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Encoded {
    /// The JSON text, notified as it is.
    Notify(String),
    /// The msgpack of the whole message, for the attachments table, and the header fields.
    Attachment {
        bytes: Vec<u8>,
        uid: String,
        kind: u64,
    },
}

/// Encodes a message as the Node adapter does: JSON, unless it carries binary or its JSON is
/// longer than `threshold` bytes.
pub(crate) fn encode(
    uid: &str,
    nsp: &str,
    kind: u64,
    data: Value,
    threshold: usize,
) -> Result<Encoded, String> {
    let message = map(vec![
        ("uid", Value::from(uid)),
        ("type", Value::from(kind)),
        ("nsp", Value::from(nsp)),
        ("data", data),
    ]);
    if !has_binary(&message) {
        let text = serde_json::to_string(&value_to_json(&message)).map_err(|e| e.to_string())?;
        // PostgreSQL refuses payloads of 8000 bytes or more, whatever the threshold says (the
        // Node adapter's default of 8000 lets an 8000-byte message through to that error).
        if text.len() <= threshold && text.len() < NOTIFY_LIMIT {
            return Ok(Encoded::Notify(text));
        }
    }
    Ok(Encoded::Attachment {
        bytes: encode_msgpack(&message)?,
        uid: uid.to_owned(),
        kind,
    })
}

/// The notification pointing at attachment `id`, as the Node adapter writes it (the
/// publisher builds the same in SQL).
#[cfg(test)]
pub(crate) fn attachment_header(uid: &str, kind: u64, id: i64) -> String {
    serde_json::json!({"uid": uid, "type": kind, "attachmentId": id.to_string()}).to_string()
}

fn has_binary(v: &Value) -> bool {
    match v {
        Value::Binary(_) => true,
        Value::Array(items) => items.iter().any(has_binary),
        Value::Map(entries) => entries.iter().any(|(_, v)| has_binary(v)),
        _ => false,
    }
}

/// A msgpack map from string keys.
pub(crate) fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

pub(crate) fn encode_msgpack(v: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Decodes msgpack; trailing bytes are refused.
pub(crate) fn decode_msgpack(payload: &[u8], limits: Limits) -> Result<Value, WireError> {
    if payload.len() > limits.max_size {
        return Err(WireError::TooLarge(payload.len()));
    }
    let mut rd = payload;
    // rmpv spends two units of its budget per array or map level and three on a string,
    // binary or extension leaf: `2 * max_depth + 3` admits `max_depth` levels, as JSON gets.
    let budget = limits.max_depth.saturating_mul(2).saturating_add(3);
    let value = rmpv::decode::read_value_with_max_depth(&mut rd, budget)
        .map_err(|e| WireError::Decode(e.to_string()))?;
    if !rd.is_empty() {
        return Err(WireError::Decode(format!("{} trailing bytes", rd.len())));
    }
    Ok(value)
}

/// The deepest nesting of arrays and objects in JSON text (brackets inside strings ignored).
fn json_depth(text: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
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

/// A msgpack tree as JSON: binary becomes an array of numbers, extension types null, scalar
/// keys their text; entries whose key is an array, map or binary are left out.
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
                .filter_map(|(k, v)| Some((key_text(k)?, value_to_json(v))))
                .collect(),
        ),
    }
}

/// A map key as text: strings as they are, scalars as their JSON text (as JavaScript turns
/// them into property names). Container keys have none: rendering them as JSON text would
/// escape every quote once more per nesting level and blow up the size.
fn key_text(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.as_str().unwrap_or_default().to_owned()),
        Value::Nil | Value::Boolean(_) | Value::Integer(_) | Value::F32(_) | Value::F64(_) => {
            Some(value_to_json(k).to_string())
        }
        Value::Array(_) | Value::Map(_) | Value::Binary(_) | Value::Ext(..) => None,
    }
}

/// Replaces what JSON cannot carry (extension types, non-string keys) so the tree can become
/// [`Args`]; a map key that is itself an array, map or binary is refused.
fn sanitize(v: Value) -> Result<Value, WireError> {
    Ok(match v {
        Value::Ext(..) => Value::Nil,
        Value::Array(a) => Value::Array(a.into_iter().map(sanitize).collect::<Result<_, _>>()?),
        Value::Map(m) => Value::Map(
            m.into_iter()
                .map(|(k, v)| {
                    let key = key_text(&k)
                        .ok_or(WireError::Schema("map key is an array, map or binary"))?;
                    Ok((Value::from(key), sanitize(v)?))
                })
                .collect::<Result<_, WireError>>()?,
        ),
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
        // JSON numbers written by JS may arrive as floats (`1.0`).
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

    pub(crate) fn to_value(&self) -> Value {
        let list = |rooms: &[String]| {
            Value::Array(rooms.iter().map(|r| Value::from(r.as_str())).collect())
        };
        let mut flags = Vec::new();
        if self.volatile {
            flags.push((Value::from("volatile"), Value::from(true)));
        }
        if let Some(ms) = self.timeout_ms {
            flags.push((Value::from("timeout"), Value::from(ms)));
        }
        map(vec![
            ("rooms", list(&self.rooms)),
            ("except", list(&self.except)),
            ("flags", Value::Map(flags)),
        ])
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
    Ok(map(vec![
        ("type", Value::from(EVENT)),
        ("data", Value::Array(data)),
        ("nsp", Value::from(nsp)),
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

/// `data.requestId` as text (JS random ids are hex strings).
pub(crate) fn request_id(data: &Value) -> Option<String> {
    field_str(data, "requestId").map(str::to_owned)
}

/// One socket of a FETCH_SOCKETS_RESPONSE.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FetchedSocket {
    pub(crate) id: String,
    pub(crate) rooms: Vec<String>,
    pub(crate) handshake: Option<serde_json::Value>,
    pub(crate) data: Option<serde_json::Value>,
}

/// The sockets of a FETCH_SOCKETS_RESPONSE; `None` if it has no socket list. Entries without a
/// string id or with malformed rooms are skipped.
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

/// The one argument of an ack or server-side answer (`data.packet`).
pub(crate) fn answer(data: &Value) -> Option<Args> {
    match field(data, "packet") {
        None => Some(Args::empty()),
        Some(v) => values_to_args(vec![v.clone()]).ok(),
    }
}

/// A random id of 16 hex digits, like the JS adapter's `randomBytes(8).toString("hex")`.
pub(crate) fn random_id() -> String {
    use rand::Rng as _;
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// Quotes a channel name for `LISTEN` (an identifier: `"` doubled inside double quotes).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_size: 1_000_000,
        max_depth: 32,
    };

    #[test]
    fn node_notifications_decode() {
        // As the Node adapter notifies a broadcast (captured shape).
        let text = r#"{"type":3,"data":{"packet":{"type":2,"data":["ev",1,{"a":"b"}],"nsp":"/"},"opts":{"rooms":["r"],"except":[],"flags":{}}},"uid":"0123456789abcdef","nsp":"/"}"#;
        let m = decode_notification(text, LIMITS).unwrap();
        assert_eq!(m.uid, "0123456789abcdef");
        assert_eq!(m.nsp.as_deref(), Some("/"));
        assert_eq!(m.kind, kind::BROADCAST);
        let p = parse_packet(field(&m.data, "packet").unwrap()).unwrap();
        assert_eq!(p.event, "ev");
        let opts = Opts::parse(field(&m.data, "opts")).unwrap();
        assert_eq!(opts.rooms, vec!["r".to_owned()]);
        // The attachment header: bigserial ids come as strings from node-postgres.
        let m = decode_notification(r#"{"uid":"emitter","type":3,"attachmentId":"42"}"#, LIMITS)
            .unwrap();
        assert_eq!((m.attachment_id, m.nsp), (Some(42), None));
    }

    #[test]
    fn encoding_picks_json_or_attachment_as_node_does() {
        let data = map(vec![("rooms", Value::Array(vec![Value::from("r")]))]);
        let Encoded::Notify(text) =
            encode("u", "/", kind::SOCKETS_JOIN, data.clone(), 8000).unwrap()
        else {
            panic!("small JSON is notified")
        };
        let back = decode_notification(&text, LIMITS).unwrap();
        assert_eq!(back.data, data);
        let bin = map(vec![("b", Value::Binary(vec![1, 2]))]);
        let Encoded::Attachment { bytes, .. } =
            encode("u", "/", kind::BROADCAST, bin.clone(), 8000).unwrap()
        else {
            panic!("binary goes to the table")
        };
        assert_eq!(decode_attachment(&bytes, LIMITS).unwrap().data, bin);
        // Exactly 8000 bytes of JSON: too long for NOTIFY even at the default threshold.
        let base = encode(
            "u",
            "/",
            kind::BROADCAST,
            map(vec![("s", Value::from(""))]),
            8000,
        );
        let Ok(Encoded::Notify(base)) = base else {
            panic!("a small message is notified")
        };
        let pad = map(vec![("s", Value::from("x".repeat(8000 - base.len())))]);
        assert!(matches!(
            encode("u", "/", kind::BROADCAST, pad, 8000).unwrap(),
            Encoded::Attachment { .. }
        ));
        let big = map(vec![("s", Value::from("x".repeat(9000)))]);
        assert!(matches!(
            encode("u", "/", kind::BROADCAST, big, 8000).unwrap(),
            Encoded::Attachment { .. }
        ));
        let header = attachment_header("u", 3, 7);
        assert_eq!(
            decode_notification(&header, LIMITS).unwrap().attachment_id,
            Some(7)
        );
    }

    #[test]
    fn malformed_input_is_refused() {
        for bad in [
            "",
            "[]",
            "{",
            r#"{"type":"x"}"#,
            r#"{"uid":1,"type":3}"#,
            r#"{"type":3,"attachmentId":"abc"}"#,
            r#"{"type":3,"attachmentId":[1]}"#,
            r#"{"type":3,"data":[1]}"#,
            r#"{"type":3,"nsp":5}"#,
        ] {
            assert!(decode_notification(bad, LIMITS).is_err(), "{bad:?}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(matches!(
            decode_notification(&deep, LIMITS),
            Err(WireError::Schema("nested too deeply"))
        ));
        assert!(decode_attachment(&[0xc1], LIMITS).is_err());
        assert!(
            decode_attachment(&[0x80, 0x00], LIMITS).is_err(),
            "trailing"
        );
        let small = Limits {
            max_size: 4,
            max_depth: 32,
        };
        assert!(matches!(
            decode_notification(r#"{"type":3}"#, small),
            Err(WireError::TooLarge(_))
        ));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("socket.io#/"), "\"socket.io#/\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
