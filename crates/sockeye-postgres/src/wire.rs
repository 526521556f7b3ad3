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

// The checked decoding and what every socket.io-adapter wire shares live in sockeye-cluster.
pub(crate) use sockeye_cluster::wire::{
    EventPacket, Limits, Opts, WireError, answer, decode, decode_msgpack, encode_msgpack,
    event_data, event_value, fetched_sockets, field, field_u64, first_value, has_binary,
    json_to_value, kind, map, packet_value, parse_packet, request_id, rooms, socket_value,
    value_to_json,
};

/// The uid of `@socket.io/postgres-emitter`'s messages: not a node, never counted as one.
pub(crate) const EMITTER_UID: &str = "emitter";

/// PostgreSQL's `NOTIFY` payload limit: payloads must be shorter.
const NOTIFY_LIMIT: usize = 8000;

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
    // JSON (it starts with `{`): depth-checked on the bytes before it is parsed.
    let v = decode(payload.as_bytes(), limits.max_size, limits.max_depth)?;
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
    let v = decode_msgpack(bytes, limits.max_size, limits.max_depth)?;
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
