//! The cluster protocol of `socket.io-adapter` 2.5 as the Node adapters put it on a broker:
//! the checked decoding of untrusted messages (size and depth limits, field by field), the
//! value trees both encodings (JSON and msgpack) become, and the parts every message format
//! shares (targeting options, event packets, fetched sockets, the `MessageType` numbers).
//!
//! Everything read here is untrusted: it is size-checked before decoding, decoded with a depth
//! limit into a value tree, then checked field by field; anything else is a [`WireError`] the
//! caller counts and drops.

use std::time::Duration;

use rmpv::Value;
use sockeye::Args;
use sockeye::SocketId;
use sockeye::adapter::{BroadcastFlags, BroadcastOptions, SocketInfo};

/// `socket.io-adapter`'s `MessageType`: the message types of the cluster protocol (the
/// PostgreSQL adapter, the Redis streams adapter and the sharded Redis adapter).
pub mod kind {
    /// A node announces itself (answered with a HEARTBEAT).
    pub const INITIAL_HEARTBEAT: u64 = 1;
    /// A node is alive.
    pub const HEARTBEAT: u64 = 2;
    /// A broadcast (with a request id when it expects acks).
    pub const BROADCAST: u64 = 3;
    /// Sockets matching the options join rooms.
    pub const SOCKETS_JOIN: u64 = 4;
    /// Sockets matching the options leave rooms.
    pub const SOCKETS_LEAVE: u64 = 5;
    /// Sockets matching the options are disconnected.
    pub const DISCONNECT_SOCKETS: u64 = 6;
    /// A request for the sockets matching the options.
    pub const FETCH_SOCKETS: u64 = 7;
    /// The answer to FETCH_SOCKETS.
    pub const FETCH_SOCKETS_RESPONSE: u64 = 8;
    /// A server-side event (with a request id when it expects answers).
    pub const SERVER_SIDE_EMIT: u64 = 9;
    /// One answer to a server-side event.
    pub const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    /// How many clients of a node a broadcast with acks reached.
    pub const BROADCAST_CLIENT_COUNT: u64 = 11;
    /// One client's ack of a broadcast.
    pub const BROADCAST_ACK: u64 = 12;
    /// A node leaves the cluster.
    pub const ADAPTER_CLOSE: u64 = 13;
}

/// The key of the wire version sockeye adds to what it publishes: at the top level of every
/// request and response, and in the `opts` map of a broadcast. The official adapter and emitter
/// neither send nor read it (they ignore unknown keys), so the messages stay interoperable.
pub const VERSION_KEY: &str = "sockeyeWire";

/// The wire version sockeye speaks: 1 is the format of the official packages (the Redis adapter
/// 8.3 and emitter 5.1 for the Redis wire). A message without [`VERSION_KEY`] (every official
/// node's and emitter's) is version 1.
pub const WIRE_VERSION: u64 = 1;

/// Checks the wire version of `map` (a request, a response or a broadcast's `opts`): absent or
/// [`WIRE_VERSION`] is accepted; another integer is a future format this node cannot read.
pub fn check_version(map: &Value) -> Result<(), WireError> {
    match field(map, VERSION_KEY) {
        None => Ok(()),
        Some(Value::Integer(i)) => match i.as_u64() {
            Some(WIRE_VERSION) => Ok(()),
            Some(v) => Err(WireError::UnknownVersion(v)),
            None => Err(WireError::Schema("wire version is negative")),
        },
        Some(_) => Err(WireError::Schema("wire version is not an integer")),
    }
}

/// The version entry sockeye adds to a message map.
pub fn version_entry() -> (Value, Value) {
    (Value::from(VERSION_KEY), Value::from(WIRE_VERSION))
}

/// Socket.IO packet types a broadcast may carry (EVENT and BINARY_EVENT).
const EVENT: u64 = 2;
const BINARY_EVENT: u64 = 5;

/// Why a broker message was refused.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Larger than the configured maximum message size.
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// Not JSON or not msgpack (or trailing bytes, or a value that cannot become arguments).
    #[error("undecodable message: {0}")]
    Decode(String),
    /// Decoded, but not a message of the protocol.
    #[error("unexpected message shape: {0}")]
    Schema(&'static str),
    /// Written by a newer sockeye whose format this node cannot read.
    #[error("wire version {0} is newer than this node's ({WIRE_VERSION}); upgrade this node")]
    UnknownVersion(u64),
}

/// Limits applied to everything decoded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message, in bytes.
    pub max_size: usize,
    /// Deepest nesting of arrays and maps.
    pub max_depth: usize,
}

/// Decodes a request or response: JSON when it starts with `{`, msgpack otherwise.
pub fn decode(payload: &[u8], max_size: usize, max_depth: usize) -> Result<Value, WireError> {
    if payload.len() > max_size {
        return Err(WireError::TooLarge(payload.len()));
    }
    if payload.first() == Some(&b'{') {
        // Checked on the bytes, without recursion, before serde_json builds (and later code
        // walks) a tree of that depth.
        if json_depth(payload) > max_depth {
            return Err(WireError::Schema("nested too deeply"));
        }
        let json: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| WireError::Decode(e.to_string()))?;
        Ok(json_to_value(json))
    } else {
        decode_msgpack(payload, max_size, max_depth)
    }
}

/// Decodes a msgpack message; trailing bytes are refused.
pub fn decode_msgpack(
    payload: &[u8],
    max_size: usize,
    max_depth: usize,
) -> Result<Value, WireError> {
    if payload.len() > max_size {
        return Err(WireError::TooLarge(payload.len()));
    }
    let mut rd = payload;
    // rmpv spends two units of its budget per array or map level (the value, then its
    // elements) and three on a string, binary or extension leaf, so `2 * max_depth + 3` admits
    // exactly `max_depth` levels of arrays and maps, the depth JSON messages get.
    let budget = max_depth.saturating_mul(2).saturating_add(3);
    let value = rmpv::decode::read_value_with_max_depth(&mut rd, budget)
        .map_err(|e| WireError::Decode(e.to_string()))?;
    if !rd.is_empty() {
        return Err(WireError::Decode(format!("{} trailing bytes", rd.len())));
    }
    Ok(value)
}

/// The deepest nesting of arrays and objects in JSON text (brackets inside strings ignored).
/// Invalid text is measured as well as it can be; the parser refuses it afterwards.
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
pub fn json_to_value(v: serde_json::Value) -> Value {
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
/// `undefined`, dates) become null, scalar keys their text; entries whose key is an array, map
/// or binary are left out.
pub fn value_to_json(v: &Value) -> serde_json::Value {
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
/// them into property names). An array, map, binary or extension key has no text: rendering it
/// as JSON and that text again as the key of an outer map would escape every quote once more
/// per level, doubling the size each time (a 100-byte message of nested map keys asked for
/// gigabytes: found by the `redis_wire` fuzz target).
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
pub fn values_to_args(values: Vec<Value>) -> Result<Args, WireError> {
    let mut builder = Args::builder();
    for v in values {
        builder
            .push(&sanitize(v)?)
            .map_err(|e| WireError::Decode(e.to_string()))?;
    }
    Ok(builder.build())
}

/// Event arguments as msgpack values; attachments become inline binary.
pub fn args_to_values(args: &Args) -> Result<Vec<Value>, String> {
    args.deserialize::<Vec<Value>>().map_err(|e| e.to_string())
}

/// A field of a map value.
pub fn field<'a>(map: &'a Value, name: &str) -> Option<&'a Value> {
    match map {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// A string field of a map value.
pub fn field_str<'a>(map: &'a Value, name: &str) -> Option<&'a str> {
    field(map, name).and_then(Value::as_str)
}

/// An unsigned integer field of a map value (a float holding an integer counts).
pub fn field_u64(map: &Value, name: &str) -> Option<u64> {
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
pub fn rooms(v: Option<&Value>) -> Result<Vec<String>, WireError> {
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
pub struct Opts {
    /// The rooms targeted (every socket when empty).
    pub rooms: Vec<String>,
    /// The rooms whose sockets are left out.
    pub except: Vec<String>,
    /// The `volatile` flag.
    pub volatile: bool,
    /// The ack timeout of a broadcast with acks, in milliseconds.
    pub timeout_ms: Option<u64>,
}

impl Opts {
    /// The options of a broadcast or room operation (`timeout` for a broadcast with acks).
    pub fn of(opts: &BroadcastOptions, timeout: Option<Duration>) -> Opts {
        Opts {
            rooms: opts.rooms.clone(),
            except: opts.except.clone(),
            volatile: opts.flags.volatile,
            timeout_ms: timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// The options to apply on this node (the ack timeout is the caller's business).
    pub fn broadcast_options(self) -> BroadcastOptions {
        BroadcastOptions {
            rooms: self.rooms,
            except: self.except,
            flags: BroadcastFlags {
                volatile: self.volatile,
                ..BroadcastFlags::default()
            },
        }
    }

    /// Reads options carrying sockeye's wire version (absent is version 1): a newer version
    /// is [`WireError::UnknownVersion`]. Absent options are the defaults.
    pub fn parse(v: Option<&Value>) -> Result<Opts, WireError> {
        Opts::read(v, true)
    }

    /// Reads options of a format without a wire version (the PostgreSQL adapter's): a
    /// version key is ignored like any unknown key.
    pub fn parse_unversioned(v: Option<&Value>) -> Result<Opts, WireError> {
        Opts::read(v, false)
    }

    fn read(v: Option<&Value>, versioned: bool) -> Result<Opts, WireError> {
        let Some(v) = v else {
            return Ok(Opts::default());
        };
        if !v.is_map() {
            return Err(WireError::Schema("opts is not a map"));
        }
        if versioned {
            check_version(v)?;
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

    /// `{rooms, except, sockeyeWire[, flags]}`: the options with sockeye's wire version.
    pub fn to_value(&self, with_flags: bool) -> Value {
        self.write(true, with_flags)
    }

    /// `{rooms, except, flags}`, as the PostgreSQL adapter writes them (no wire version).
    pub fn to_unversioned_value(&self) -> Value {
        self.write(false, true)
    }

    fn write(&self, versioned: bool, with_flags: bool) -> Value {
        let list = |rooms: &[String]| {
            Value::Array(rooms.iter().map(|r| Value::from(r.as_str())).collect())
        };
        let mut entries = vec![
            (Value::from("rooms"), list(&self.rooms)),
            (Value::from("except"), list(&self.except)),
        ];
        if versioned {
            entries.push(version_entry());
        }
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
pub struct EventPacket {
    /// The namespace (`/` when the packet names none).
    pub nsp: String,
    /// The event name.
    pub event: String,
    /// The event's arguments.
    pub args: Args,
}

/// `{type: 2, data: [event, ...args], nsp}`.
pub fn packet_value(nsp: &str, event: &str, args: &Args) -> Result<Value, String> {
    Ok(Value::Map(vec![
        (Value::from("type"), Value::from(EVENT)),
        (Value::from("data"), event_value(event, args)?),
        (Value::from("nsp"), Value::from(nsp)),
    ]))
}

/// `[event, ...args]`: the `data` of an event packet, the `packet` of a server-side emit.
pub fn event_value(event: &str, args: &Args) -> Result<Value, String> {
    let mut data = vec![Value::from(event)];
    data.extend(args_to_values(args)?);
    Ok(Value::Array(data))
}

/// Reads a broadcast packet; the namespace defaults to `/` as in the JS adapter.
pub fn parse_packet(v: &Value) -> Result<EventPacket, WireError> {
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
pub fn event_data(data: Option<&Value>) -> Result<(String, Args), WireError> {
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

/// A value as msgpack.
pub fn encode_msgpack(v: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A msgpack map from string keys.
pub fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// Whether a value holds binary anywhere (then JSON cannot carry it).
pub fn has_binary(v: &Value) -> bool {
    match v {
        Value::Binary(_) => true,
        Value::Array(items) => items.iter().any(has_binary),
        Value::Map(entries) => entries.iter().any(|(_, v)| has_binary(v)),
        _ => false,
    }
}

/// `data.requestId` as text (JS random ids are hex strings).
pub fn request_id(data: &Value) -> Option<String> {
    field_str(data, "requestId").map(str::to_owned)
}

/// One socket of a REMOTE_FETCH (FETCH_SOCKETS_RESPONSE) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedSocket {
    /// The socket id.
    pub id: String,
    /// The rooms the socket is in.
    pub rooms: Vec<String>,
    /// The handshake as the remote node describes it.
    pub handshake: Option<serde_json::Value>,
    /// The socket's `data` (its session value), `None` when absent or `null`.
    pub data: Option<serde_json::Value>,
}

impl FetchedSocket {
    /// The socket as this node's `fetch_sockets` reports it (a remote one, of namespace `ns`).
    pub fn into_info(self, ns: &str) -> SocketInfo {
        SocketInfo {
            id: SocketId::from(self.id.as_str()),
            ns: ns.to_owned(),
            rooms: self.rooms,
            local: false,
            handshake: self.handshake,
            data: self.data,
        }
    }
}

/// One local socket as a FETCH_SOCKETS_RESPONSE lists it: `{id, handshake, rooms, data}`
/// (an absent handshake is `{}`, absent data `null`, as the Node adapters write them).
pub fn socket_value(s: SocketInfo) -> Value {
    map(vec![
        ("id", Value::from(s.id.as_str())),
        (
            "handshake",
            json_to_value(s.handshake.unwrap_or_else(|| serde_json::json!({}))),
        ),
        (
            "rooms",
            Value::Array(s.rooms.iter().map(|r| Value::from(r.as_str())).collect()),
        ),
        (
            "data",
            json_to_value(s.data.unwrap_or(serde_json::Value::Null)),
        ),
    ])
}

/// The sockets of a REMOTE_FETCH (FETCH_SOCKETS_RESPONSE) answer; `None` if the answer has no socket list. Entries
/// without a string id or with malformed rooms are skipped.
pub fn fetched_sockets(resp: &Value) -> Option<Vec<FetchedSocket>> {
    let Some(Value::Array(list)) = field(resp, "sockets") else {
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

/// The first argument of an acknowledgement, the one value an ack answer carries (nil when
/// there is none).
pub fn first_value(args: &Args) -> Value {
    args_to_values(args)
        .ok()
        .and_then(|v| v.into_iter().next())
        .unwrap_or(Value::Nil)
}

/// The one argument of an ack or server-side answer (`data.packet`).
pub fn answer(data: &Value) -> Option<Args> {
    match field(data, "packet") {
        None => Some(Args::empty()),
        Some(v) => values_to_args(vec![v.clone()]).ok(),
    }
}
