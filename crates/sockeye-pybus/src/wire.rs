//! The bus messages of python-socketio's `PubSubManager` (5.x): one JSON object per message on
//! one channel, `method` saying what it is. Decoding is for untrusted input: size-limited,
//! depth-limited, every field type-checked; anything else is a [`WireError`].
//!
//! Keys python-socketio does not know (`sockeye_ack`, `sockeye_close`, `from`, `socket`) carry
//! what only sockeye nodes use; python nodes read fields with `dict.get` and ignore the rest.

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sockeye::Args;

/// Why a bus message was dropped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// Larger than the configured limit.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// Not JSON, or a field of the wrong type.
    #[error("not a python-socketio bus message: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not what the method needs.
    #[error("invalid {method} message: {why}")]
    Schema { method: &'static str, why: String },
}

fn schema(method: &'static str, why: impl Into<String>) -> WireError {
    WireError::Schema {
        method,
        why: why.into(),
    }
}

/// A room (or list of rooms) as python sends it: `null`, a string, or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Rooms {
    One(String),
    Many(Vec<String>),
}

fn rooms(v: Option<Rooms>) -> Vec<String> {
    match v {
        None => Vec::new(),
        Some(Rooms::One(r)) => vec![r],
        Some(Rooms::Many(r)) => r,
    }
}

/// The envelope every method shares; fields a method does not use stay `None`.
#[derive(Deserialize)]
struct Envelope<'a> {
    method: String,
    #[serde(default)]
    host_id: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    binary: Option<bool>,
    #[serde(default)]
    room: Option<Rooms>,
    #[serde(default)]
    skip_sid: Option<Rooms>,
    #[serde(default, borrow)]
    callback: Option<&'a RawValue>,
    #[serde(default, borrow)]
    sid: Option<&'a RawValue>,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default, borrow)]
    args: Option<&'a RawValue>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    socket: Option<String>,
    #[serde(default)]
    sockeye_ack: Option<AckExt>,
    #[serde(default)]
    sockeye_close: Option<bool>,
}

/// What a sockeye origin adds to an emit with callback: its receivers report how many sockets
/// they asked (so the origin can time out the silent ones) and stop waiting at the timeout.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct AckExt {
    pub(crate) timeout_ms: u64,
}

/// Where an answer to an emit with callback goes: python's `[room, namespace, id]`. `room` is
/// kept as sent, since the origin looks its callback up by it.
#[derive(Debug, Clone)]
pub(crate) struct CallbackRef {
    pub(crate) room: Box<RawValue>,
    pub(crate) ns: String,
    pub(crate) id: u64,
}

/// A decoded bus message.
#[derive(Debug)]
pub(crate) enum Message {
    /// `emit`: a broadcast, maybe with a callback.
    Emit {
        host_id: String,
        ns: String,
        event: String,
        args: Args,
        rooms: Vec<String>,
        skip: Vec<String>,
        callback: Option<CallbackRef>,
        ack: Option<AckExt>,
    },
    /// `disconnect` of a socket (a room, for sockeye nodes).
    Disconnect {
        host_id: String,
        ns: String,
        sid: String,
        close: bool,
    },
    /// `enter_room` / `leave_room` of a socket (a room, for sockeye nodes).
    Room {
        host_id: String,
        ns: String,
        sid: String,
        room: String,
        enter: bool,
    },
    /// `close_room`: every socket leaves the room.
    CloseRoom {
        host_id: String,
        ns: String,
        room: String,
    },
    /// `callback`: an answer addressed to the origin `host_id`.
    Callback {
        host_id: String,
        id: u64,
        args: Args,
        from: Option<String>,
        socket: Option<String>,
    },
    /// `sockeye_ack_count`: how many sockets node `from` asked for answer `id`.
    AckCount {
        host_id: String,
        id: u64,
        from: String,
        count: u64,
    },
    /// A method this node does not know (python ignores those too).
    Other { method: String },
}

/// Python's binary form: `[args with placeholders, "<base64>", ...]`.
fn decode_args(
    method: &'static str,
    data: &RawValue,
    binary: bool,
    max_depth: usize,
) -> Result<Args, WireError> {
    let (array, attachments) = if binary {
        let parts: Vec<&RawValue> = serde_json::from_str(data.get())?;
        let Some((first, rest)) = parts.split_first() else {
            return Err(schema(method, "binary data without its arguments"));
        };
        let mut attachments = Vec::with_capacity(rest.len());
        for part in rest {
            let text: String = serde_json::from_str(part.get())?;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|e| schema(method, format!("attachment is not base64: {e}")))?;
            attachments.push(Bytes::from(raw));
        }
        (first.get().to_owned(), attachments)
    } else {
        (data.get().to_owned(), Vec::new())
    };
    Args::from_json_array(Bytes::from(array), attachments, max_depth)
        .map_err(|e| schema(method, format!("arguments: {e}")))
}

/// Decodes one message read from the bus.
pub(crate) fn decode(
    payload: &[u8],
    max_size: usize,
    max_depth: usize,
) -> Result<Message, WireError> {
    if payload.len() > max_size {
        return Err(WireError::TooLarge {
            size: payload.len(),
            limit: max_size,
        });
    }
    let env: Envelope<'_> = serde_json::from_slice(payload)?;
    let host = |m: &'static str| env.host_id.clone().ok_or_else(|| schema(m, "no host_id"));
    // python-socketio sends `namespace or '/'`; a missing one means the same.
    let ns = env.namespace.clone().unwrap_or_else(|| "/".to_owned());
    let sid = |m: &'static str| -> Result<String, WireError> {
        let raw = env.sid.ok_or_else(|| schema(m, "no sid"))?;
        serde_json::from_str::<String>(raw.get()).map_err(|_| schema(m, "sid is not a string"))
    };
    Ok(match env.method.as_str() {
        "emit" => {
            let m = "emit";
            let event = env.event.clone().ok_or_else(|| schema(m, "no event"))?;
            let data = env.data.ok_or_else(|| schema(m, "no data"))?;
            let mut args = decode_args(m, data, env.binary.unwrap_or(false), max_depth)?;
            // python-socketio publishes `emit(event)` with no data as `[null]` and its nodes
            // deliver that with no argument: do the same.
            if args.len() == 1 && args.first::<serde_json::Value>().is_ok_and(|v| v.is_null()) {
                args = Args::empty();
            }
            let callback = match env.callback {
                None => None,
                Some(raw) if raw.get() == "null" => None,
                Some(raw) => {
                    let (room, ns, id): (Box<RawValue>, String, u64) =
                        serde_json::from_str(raw.get())
                            .map_err(|e| schema(m, format!("callback: {e}")))?;
                    Some(CallbackRef { room, ns, id })
                }
            };
            Message::Emit {
                host_id: host(m)?,
                ns,
                event,
                args,
                rooms: rooms(env.room),
                skip: rooms(env.skip_sid),
                callback,
                ack: env.sockeye_ack,
            }
        }
        "disconnect" => Message::Disconnect {
            host_id: host("disconnect")?,
            ns,
            sid: sid("disconnect")?,
            close: env.sockeye_close.unwrap_or(false),
        },
        method @ ("enter_room" | "leave_room") => {
            let m = if method == "enter_room" {
                "enter_room"
            } else {
                "leave_room"
            };
            let room = match env.room {
                Some(Rooms::One(r)) => r,
                _ => return Err(schema(m, "room is not a string")),
            };
            Message::Room {
                host_id: host(m)?,
                ns,
                sid: sid(m)?,
                room,
                enter: m == "enter_room",
            }
        }
        "close_room" => {
            let room = match env.room {
                Some(Rooms::One(r)) => r,
                _ => return Err(schema("close_room", "room is not a string")),
            };
            Message::CloseRoom {
                host_id: host("close_room")?,
                ns,
                room,
            }
        }
        "callback" => {
            let m = "callback";
            let args = env.args.ok_or_else(|| schema(m, "no args"))?;
            Message::Callback {
                host_id: host(m)?,
                id: env.id.ok_or_else(|| schema(m, "no numeric id"))?,
                args: decode_args(m, args, env.binary.unwrap_or(false), max_depth)?,
                from: env.from.clone(),
                socket: env.socket.clone(),
            }
        }
        "sockeye_ack_count" => {
            let m = "sockeye_ack_count";
            Message::AckCount {
                host_id: host(m)?,
                id: env.id.ok_or_else(|| schema(m, "no numeric id"))?,
                from: env.from.clone().ok_or_else(|| schema(m, "no from"))?,
                count: env.count.ok_or_else(|| schema(m, "no count"))?,
            }
        }
        other => Message::Other {
            method: other.to_owned(),
        },
    })
}

/// Arguments as python's `data`: the JSON array, or with binary `[array, base64...]`.
fn encode_args(args: &Args) -> Result<(Box<RawValue>, bool), String> {
    let array = match args.json_array() {
        Some(a) => a,
        // msgpack-parsed arguments: rebuild them as JSON (binary becomes attachments).
        None => {
            let values: Vec<serde_json::Value> = args
                .deserialize()
                .map_err(|e| format!("arguments cannot be turned into JSON: {e}"))?;
            let rebuilt = Args::from_values(values).map_err(|e| e.to_string())?;
            return encode_args(&rebuilt);
        }
    };
    let text = String::from_utf8(array.to_vec()).map_err(|e| e.to_string())?;
    if !args.has_binary() {
        return RawValue::from_string(text)
            .map(|r| (r, false))
            .map_err(|e| e.to_string());
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('[');
    out.push_str(&text);
    for att in args.attachments() {
        out.push_str(",\"");
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(att));
        out.push('"');
    }
    out.push(']');
    RawValue::from_string(out)
        .map(|r| (r, true))
        .map_err(|e| e.to_string())
}

/// `null`, one string, or a list, as python writes rooms and skip lists.
fn rooms_json(rooms: &[String]) -> serde_json::Value {
    match rooms {
        [] => serde_json::Value::Null,
        [one] => serde_json::Value::String(one.clone()),
        many => serde_json::Value::from(many.to_vec()),
    }
}

#[derive(Serialize)]
struct EmitOut<'a> {
    method: &'static str,
    event: &'a str,
    data: Box<RawValue>,
    binary: bool,
    namespace: &'a str,
    room: serde_json::Value,
    skip_sid: serde_json::Value,
    callback: Option<(serde_json::Value, &'a str, u64)>,
    host_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sockeye_ack: Option<AckExt>,
}

/// An `emit` message; `callback` is the answer id when the origin wants answers.
pub(crate) fn encode_emit(
    host_id: &str,
    ns: &str,
    event: &str,
    args: &Args,
    rooms: &[String],
    skip: &[String],
    callback: Option<(u64, AckExt)>,
) -> Result<Vec<u8>, String> {
    let (data, binary) = encode_args(args)?;
    let room = rooms_json(rooms);
    let msg = EmitOut {
        method: "emit",
        event,
        data,
        binary,
        namespace: ns,
        callback: callback.map(|(id, _)| (room.clone(), ns, id)),
        room,
        skip_sid: rooms_json(skip),
        host_id,
        sockeye_ack: callback.map(|(_, ext)| ext),
    };
    serde_json::to_vec(&msg).map_err(|e| e.to_string())
}

/// A `disconnect` message; `close` (sockeye nodes only) also closes the connection.
pub(crate) fn encode_disconnect(host_id: &str, ns: &str, sid: &str, close: bool) -> Vec<u8> {
    let mut v = serde_json::json!({
        "method": "disconnect", "sid": sid, "namespace": ns, "host_id": host_id,
    });
    if close {
        v["sockeye_close"] = serde_json::Value::Bool(true);
    }
    v.to_string().into_bytes()
}

/// An `enter_room` (or `leave_room`) message.
pub(crate) fn encode_room(host_id: &str, ns: &str, sid: &str, room: &str, enter: bool) -> Vec<u8> {
    serde_json::json!({
        "method": if enter { "enter_room" } else { "leave_room" },
        "sid": sid, "room": room, "namespace": ns, "host_id": host_id,
    })
    .to_string()
    .into_bytes()
}

/// A `close_room` message.
pub(crate) fn encode_close_room(host_id: &str, ns: &str, room: &str) -> Vec<u8> {
    serde_json::json!({
        "method": "close_room", "room": room, "namespace": ns, "host_id": host_id,
    })
    .to_string()
    .into_bytes()
}

#[derive(Serialize)]
struct CallbackOut<'a> {
    method: &'static str,
    host_id: &'a str,
    sid: &'a RawValue,
    namespace: &'a str,
    id: u64,
    args: Box<RawValue>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    binary: bool,
    from: &'a str,
    socket: &'a str,
}

/// A `callback` message: `socket`'s answer to `to`'s emit, with python's fields (`sid` is the
/// callback's room as received) and `from`/`socket` for a sockeye origin. Binary arguments go
/// in the emit's base64 form with `binary: true`; a python origin cannot read them as bytes.
pub(crate) fn encode_callback(
    to: &str,
    cb: &CallbackRef,
    args: &Args,
    from: &str,
    socket: &str,
) -> Result<Vec<u8>, String> {
    let (args, binary) = encode_args(args)?;
    serde_json::to_vec(&CallbackOut {
        method: "callback",
        host_id: to,
        sid: &cb.room,
        namespace: &cb.ns,
        id: cb.id,
        args,
        binary,
        from,
        socket,
    })
    .map_err(|e| e.to_string())
}

/// A `sockeye_ack_count` message (python nodes ignore the method).
pub(crate) fn encode_ack_count(to: &str, id: u64, from: &str, count: usize) -> Vec<u8> {
    serde_json::json!({
        "method": "sockeye_ack_count", "host_id": to, "id": id, "from": from, "count": count,
    })
    .to_string()
    .into_bytes()
}

/// A random host id in python's form (`uuid4().hex`: 32 hex digits).
pub(crate) fn host_id() -> String {
    use rand::Rng as _;
    let n: u128 = rand::rng().random();
    format!("{n:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_ok(s: &str) -> Message {
        decode(s.as_bytes(), 1 << 20, 32).unwrap()
    }

    #[test]
    fn reads_python_binary_emit() {
        // As python-socketio 5.18 publishes `emit('ev', (1, b'\x00\x01'))`.
        let m = decode_ok(
            r#"{"method": "emit", "event": "ev", "data": [[1, {"_placeholder": true, "num": 0}], "AAE="], "binary": true, "namespace": "/", "room": null, "skip_sid": null, "callback": null, "host_id": "abc"}"#,
        );
        let Message::Emit { args, rooms, .. } = m else {
            panic!("not an emit")
        };
        assert!(rooms.is_empty());
        assert_eq!(args.attachments(), &[Bytes::from_static(&[0, 1])]);
        let (again, binary) = encode_args(&args).unwrap();
        assert!(binary);
        let again: serde_json::Value = serde_json::from_str(again.get()).unwrap();
        assert_eq!(
            again,
            serde_json::json!([[1, {"_placeholder": true, "num": 0}], "AAE="])
        );
    }

    #[test]
    fn callback_room_is_echoed_as_sent() {
        let m = decode_ok(
            r#"{"method":"emit","event":"q","data":[1],"binary":false,"namespace":"/","room":"sid1","skip_sid":null,"callback":["sid1","/",7],"host_id":"h"}"#,
        );
        let Message::Emit {
            callback: Some(cb), ..
        } = m
        else {
            panic!("no callback")
        };
        let out = encode_callback("h", &cb, &Args::from_value(&"ok").unwrap(), "me", "s").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["sid"], "sid1");
        assert_eq!(v["id"], 7);
        assert_eq!(v["args"], serde_json::json!(["ok"]));
    }

    #[test]
    fn binary_answers_are_publishable_and_read_back() {
        // python-socketio cannot publish an ack holding bytes (json.dumps fails); ours can.
        let cb = CallbackRef {
            room: RawValue::from_string("\"sid1\"".to_owned()).unwrap(),
            ns: "/".to_owned(),
            id: 3,
        };
        let mut b = Args::builder();
        b.push_binary(Bytes::from_static(b"\x00\xff"));
        b.push(&"text").unwrap();
        let args = b.build();
        let out = encode_callback("origin", &cb, &args, "me", "sock").unwrap();
        let Message::Callback {
            host_id,
            id,
            args: back,
            from,
            socket,
        } = decode(&out, 1 << 20, 32).unwrap()
        else {
            panic!("not a callback")
        };
        assert_eq!((host_id.as_str(), id), ("origin", 3));
        assert_eq!(back, args);
        assert_eq!(back.attachments(), &[Bytes::from_static(b"\x00\xff")]);
        assert_eq!(
            (from.as_deref(), socket.as_deref()),
            (Some("me"), Some("sock"))
        );
    }

    #[test]
    fn a_python_emit_without_data_has_no_argument() {
        let m = decode_ok(
            r#"{"method":"emit","event":"e","data":[null],"binary":false,"namespace":"/","room":null,"skip_sid":null,"callback":null,"host_id":"h"}"#,
        );
        let Message::Emit { args, .. } = m else {
            panic!("not an emit")
        };
        assert!(args.is_empty());
    }

    #[test]
    fn refuses_bad_input() {
        for bad in [
            "not json",
            r#"{"method":"emit","event":"e","data":5,"host_id":"h"}"#,
            r#"{"method":"emit","event":"e","data":[1],"binary":true,"host_id":"h"}"#,
            r#"{"method":"emit","event":"e","data":[[1],"!!"],"binary":true,"host_id":"h"}"#,
            r#"{"method":"enter_room","sid":1,"room":"r","host_id":"h"}"#,
            r#"{"method":"callback","host_id":"h","id":-1,"args":[]}"#,
        ] {
            assert!(decode(bad.as_bytes(), 1 << 20, 32).is_err(), "{bad}");
        }
        assert!(matches!(
            decode(&[b' '; 100], 10, 32),
            Err(WireError::TooLarge { .. })
        ));
    }
}
