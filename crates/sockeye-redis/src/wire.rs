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

// The checked decoding and the parts of the format every socket.io-adapter wire shares live in
// sockeye-cluster; re-exported so this crate's modules name them as before.
pub(crate) use sockeye_cluster::wire::{
    EventPacket, Opts, VERSION_KEY, WIRE_VERSION, WireError, args_to_values, check_version, decode,
    decode_msgpack, encode_msgpack, event_data, fetched_sockets, field, field_str, field_u64,
    json_to_value, packet_value, parse_packet, rooms, value_to_json, values_to_args, version_entry,
};

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

/// A JSON request or response from `fields` (every value JSON-representable), with the wire
/// version added.
pub(crate) fn encode_json(fields: Vec<(&str, serde_json::Value)>) -> Vec<u8> {
    let mut map: serde_json::Map<String, serde_json::Value> =
        fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    map.insert(
        VERSION_KEY.to_owned(),
        serde_json::Value::from(WIRE_VERSION),
    );
    serde_json::Value::Object(map).to_string().into_bytes()
}

/// Which sockets a remote join, leave or disconnect applies to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// Every socket matching the options (no answer expected).
    Opts(Opts),
    /// One socket by id; the sender waits for an answer to `request_id`.
    Socket {
        sid: String,
        request_id: Option<String>,
    },
}

/// A request of another node or an emitter, schema-checked.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    /// SOCKETS: the ids of the sockets in `rooms`.
    Sockets {
        request_id: String,
        rooms: Vec<String>,
    },
    /// ALL_ROOMS: every room of the node.
    AllRooms { request_id: String },
    /// REMOTE_JOIN (`join`) or REMOTE_LEAVE of `rooms`; by socket id, one `room`.
    RoomChange {
        join: bool,
        target: Target,
        rooms: Vec<String>,
    },
    /// REMOTE_DISCONNECT.
    Disconnect { target: Target, close: bool },
    /// REMOTE_FETCH.
    Fetch { request_id: String, opts: Opts },
    /// SERVER_SIDE_EMIT, answered when it has a request id.
    ServerSideEmit {
        request_id: Option<String>,
        event: String,
        args: Args,
    },
    /// BROADCAST with ack.
    Broadcast {
        request_id: String,
        packet: EventPacket,
        opts: Opts,
    },
}

/// A decoded request, checked field by field.
pub(crate) fn parse_request(req: &Value) -> Result<Request, WireError> {
    if !req.is_map() {
        return Err(WireError::Schema("request is not a map"));
    }
    check_version(req)?;
    let ty = field_u64(req, "type").ok_or(WireError::Schema("request without type"))?;
    let request_id = match field(req, "requestId") {
        None | Some(Value::Nil) => None,
        Some(Value::String(s)) => Some(
            s.as_str()
                .ok_or(WireError::Schema("requestId is not UTF-8"))?
                .to_owned(),
        ),
        Some(_) => return Err(WireError::Schema("requestId is not a string")),
    };
    let need_id = || {
        request_id
            .clone()
            .ok_or(WireError::Schema("request without requestId"))
    };
    let target = || -> Result<Target, WireError> {
        if let Some(opts) = field(req, "opts") {
            return Ok(Target::Opts(Opts::parse(Some(opts))?));
        }
        let sid = field_str(req, "sid").ok_or(WireError::Schema("no opts and no sid"))?;
        Ok(Target::Socket {
            sid: sid.to_owned(),
            request_id: request_id.clone(),
        })
    };
    Ok(match ty {
        kind::SOCKETS => Request::Sockets {
            request_id: need_id()?,
            rooms: rooms(field(req, "rooms"))?,
        },
        kind::ALL_ROOMS => Request::AllRooms {
            request_id: need_id()?,
        },
        kind::REMOTE_JOIN | kind::REMOTE_LEAVE => {
            let target = target()?;
            let rooms = match &target {
                Target::Opts(_) => rooms(field(req, "rooms"))?,
                Target::Socket { .. } => vec![
                    field_str(req, "room")
                        .ok_or(WireError::Schema("no room"))?
                        .to_owned(),
                ],
            };
            Request::RoomChange {
                join: ty == kind::REMOTE_JOIN,
                target,
                rooms,
            }
        }
        kind::REMOTE_DISCONNECT => Request::Disconnect {
            target: target()?,
            close: field(req, "close")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        kind::REMOTE_FETCH => Request::Fetch {
            request_id: need_id()?,
            opts: Opts::parse(field(req, "opts"))?,
        },
        kind::SERVER_SIDE_EMIT => {
            let (event, args) = event_data(field(req, "data"))?;
            Request::ServerSideEmit {
                request_id,
                event,
                args,
            }
        }
        kind::BROADCAST => Request::Broadcast {
            request_id: need_id()?,
            packet: parse_packet(field(req, "packet").ok_or(WireError::Schema("no packet"))?)?,
            opts: Opts::parse(field(req, "opts"))?,
        },
        _ => return Err(WireError::Schema("unknown request type")),
    })
}

/// A response to one of this node's requests: its request id once the version is checked.
pub(crate) fn response_id(resp: &Value) -> Result<&str, WireError> {
    if !resp.is_map() {
        return Err(WireError::Schema("response is not a map"));
    }
    check_version(resp)?;
    field_str(resp, "requestId").ok_or(WireError::Schema("response without requestId"))
}

/// The rooms of an ALL_ROOMS answer; `None` if it has no valid room list.
pub(crate) fn answered_rooms(resp: &Value) -> Option<Vec<String>> {
    match field(resp, "rooms") {
        Some(v @ Value::Array(_)) => rooms(Some(v)).ok(),
        _ => None,
    }
}

/// The arguments an answer carries: the `data` of a server-side emit answer or the `packet` of
/// a broadcast ack (one value each in the official format).
pub(crate) fn answer_args(resp: &Value, ty: u64) -> Option<Args> {
    let name = if ty == kind::SERVER_SIDE_EMIT {
        "data"
    } else {
        "packet"
    };
    match field(resp, name) {
        None => Some(Args::empty()),
        Some(v) => values_to_args(vec![v.clone()]).ok(),
    }
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

    #[test]
    fn wire_version_absent_or_one_is_read_newer_is_refused() {
        let msg = |extra: Option<Value>| {
            let mut opts = vec![(Value::from("rooms"), Value::Array(vec![]))];
            if let Some(v) = extra {
                opts.push((Value::from(VERSION_KEY), v));
            }
            Value::Array(vec![
                Value::from("u"),
                packet_value("/", "ev", &Args::empty()).unwrap(),
                Value::Map(opts),
            ])
        };
        assert!(parse_broadcast(&msg(None)).is_ok(), "official format (v1)");
        assert!(parse_broadcast(&msg(Some(Value::from(1)))).is_ok());
        assert!(matches!(
            parse_broadcast(&msg(Some(Value::from(2)))),
            Err(WireError::UnknownVersion(2))
        ));
        assert!(matches!(
            parse_broadcast(&msg(Some(Value::from("1")))),
            Err(WireError::Schema(_))
        ));
        assert!(matches!(
            parse_broadcast(&msg(Some(Value::from(-1)))),
            Err(WireError::Schema(_))
        ));

        // What sockeye publishes carries the version: JSON requests and responses at the top
        // level, broadcasts in `opts`.
        let json = decode(&encode_json(vec![("type", serde_json::json!(1))]), 1000, 8).unwrap();
        assert_eq!(field_u64(&json, VERSION_KEY), Some(WIRE_VERSION));
        let bytes = encode_broadcast(
            "u",
            packet_value("/", "ev", &Args::empty()).unwrap(),
            &Opts::default(),
        )
        .unwrap();
        let v = decode_msgpack(&bytes, 1000, 8).unwrap();
        let Value::Array(items) = &v else { panic!() };
        assert_eq!(field_u64(&items[2], VERSION_KEY), Some(WIRE_VERSION));

        let req = |version: &str| {
            decode(
                format!(r#"{{"type":1,"requestId":"r","sockeyeWire":{version}}}"#).as_bytes(),
                1000,
                8,
            )
            .unwrap()
        };
        assert!(parse_request(&req("1")).is_ok());
        assert!(matches!(
            parse_request(&req("7")),
            Err(WireError::UnknownVersion(7))
        ));
        assert!(matches!(
            response_id(&req("7")),
            Err(WireError::UnknownVersion(7))
        ));
        assert!(parse_request(&req("1.5")).is_err());
    }

    #[test]
    fn msgpack_and_json_share_the_depth_limit() {
        // `max_depth` levels of arrays are accepted in both encodings, one more is refused
        // (rmpv counts its budget differently; found while testing the fuzz target's seeds).
        for depth in [1usize, 4, 16, 64] {
            let ok = [&vec![0x91u8; depth - 1][..], &[0x91, 0xa1, b'x']].concat();
            assert!(
                decode_msgpack(&ok, 1 << 20, depth).is_ok(),
                "msgpack {depth}"
            );
            let too_deep = [&vec![0x91u8; depth][..], &[0x91, 0xa1, b'x']].concat();
            assert!(
                decode_msgpack(&too_deep, 1 << 20, depth).is_err(),
                "msgpack {depth}+1"
            );
            let json_ok = format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth));
            assert!(
                decode(
                    format!(r#"{{"a":{json_ok}}}"#).as_bytes(),
                    1 << 20,
                    depth + 1
                )
                .is_ok()
            );
            assert!(decode(format!(r#"{{"a":{json_ok}}}"#).as_bytes(), 1 << 20, depth).is_err());
        }
    }

    #[test]
    fn requests_are_parsed_into_their_kinds() {
        let parse = |text: &str| parse_request(&decode(text.as_bytes(), 10_000, 16).unwrap());
        assert!(matches!(
            parse(r#"{"type":0,"requestId":"r","rooms":["a"]}"#),
            Ok(Request::Sockets { rooms, .. }) if rooms == ["a"]
        ));
        assert!(matches!(
            parse(r#"{"type":2,"opts":{"rooms":["a"],"except":[]},"rooms":["b"]}"#),
            Ok(Request::RoomChange { join: true, target: Target::Opts(_), rooms }) if rooms == ["b"]
        ));
        assert!(matches!(
            parse(r#"{"type":3,"sid":"s","room":"x","requestId":"r"}"#),
            Ok(Request::RoomChange { join: false, target: Target::Socket { request_id: Some(_), .. }, rooms }) if rooms == ["x"]
        ));
        assert!(
            parse(r#"{"type":3,"sid":"s","requestId":"r"}"#).is_err(),
            "no room"
        );
        assert!(matches!(
            parse(r#"{"type":4,"opts":{"rooms":[]},"close":true}"#),
            Ok(Request::Disconnect { close: true, .. })
        ));
        assert!(parse(r#"{"type":5}"#).is_err(), "fetch without requestId");
        assert!(matches!(
            parse(r#"{"type":6,"data":["ev",1]}"#),
            Ok(Request::ServerSideEmit { request_id: None, event, .. }) if event == "ev"
        ));
        assert!(parse(r#"{"type":6,"data":[1]}"#).is_err());
        assert!(parse(r#"{"type":0,"requestId":7}"#).is_err());
        assert!(parse(r#"{"type":99,"requestId":"r"}"#).is_err());
        assert!(parse_request(&Value::from(1)).is_err());
        // A JSON text nested beyond the limit is refused before it is parsed; brackets inside
        // strings do not count.
        let deep = format!("{}1{}", "[".repeat(20), "]".repeat(20));
        assert!(decode(format!(r#"{{"a":{deep}}}"#).as_bytes(), 10_000, 16).is_err());
        let quoted = format!(r#"{{"type":1,"requestId":"{}"}}"#, "[".repeat(50));
        assert!(parse(&quoted).is_ok());
    }

    #[test]
    fn answers_are_read_leniently_per_entry() {
        let resp = decode(
            br#"{"requestId":"r","sockets":[{"id":"a","rooms":["a",1]},{"id":5},{"id":"b","rooms":"x"},{"id":"c"}],"rooms":["x",2]}"#,
            10_000,
            16,
        )
        .unwrap();
        assert_eq!(response_id(&resp).unwrap(), "r");
        let sockets = fetched_sockets(&resp).unwrap();
        let ids: Vec<&str> = sockets.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(sockets[0].rooms, ["a", "1"]);
        assert_eq!(answered_rooms(&resp).unwrap(), ["x", "2"]);
        assert!(answered_rooms(&decode(br#"{"rooms":[{}]}"#, 100, 8).unwrap()).is_none());
    }

    #[test]
    fn every_message_captured_from_the_official_packages_is_accepted() {
        // fuzz/seeds/redis_wire/node-*: what @socket.io/redis-adapter 8.3 and
        // @socket.io/redis-emitter 5.1 published (fuzz/seeds/capture-redis-wire.js); the first
        // byte is the channel kind.
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/redis_wire");
        let mut seen = [0usize; 4];
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("node-") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let (kind, payload) = bytes.split_first().unwrap();
            let result = match kind {
                0 | 1 => {
                    decode_msgpack(payload, 1 << 20, 64).and_then(|v| parse_broadcast(&v).map(drop))
                }
                2 => decode(payload, 1 << 20, 64).and_then(|v| parse_request(&v).map(drop)),
                3 => decode(payload, 1 << 20, 64).and_then(|v| response_id(&v).map(drop)),
                _ => panic!("{name}: unknown channel kind {kind}"),
            };
            assert!(result.is_ok(), "{name} refused: {result:?}");
            seen[usize::from(*kind)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 0), "captured kinds: {seen:?}");
    }

    #[test]
    fn nested_map_keys_cost_linear_memory() {
        // Regression (fuzz/artifacts oom, `redis_wire`): maps used as keys of maps, 60 deep,
        // once grew as 2^60 bytes of escaped JSON. Now such keys are refused in event
        // arguments and left out of JSON conversions.
        let n = 60;
        let key_chain = [vec![0x81u8; n], vec![0xc0, 0xc0], vec![0xc0; n - 1]].concat();
        let args = Value::Array(vec![
            Value::from("u"),
            Value::Map(vec![
                (Value::from("type"), Value::from(2)),
                (
                    Value::from("data"),
                    Value::Array(vec![
                        Value::from("ev"),
                        decode_msgpack(&key_chain, 1 << 20, 64).unwrap(),
                    ]),
                ),
                (Value::from("nsp"), Value::from("/")),
            ]),
            Value::Map(vec![]),
        ]);
        assert!(matches!(parse_broadcast(&args), Err(WireError::Schema(_))));
        let tree = decode_msgpack(&key_chain, 1 << 20, 64).unwrap();
        assert_eq!(value_to_json(&tree), serde_json::json!({}));
        // Scalar keys still become property names, as in JavaScript.
        let scalars = Value::Map(vec![
            (Value::from(1), Value::from("a")),
            (Value::Boolean(true), Value::from("b")),
            (Value::Nil, Value::from("c")),
        ]);
        assert_eq!(
            value_to_json(&scalars),
            serde_json::json!({"1": "a", "true": "b", "null": "c"})
        );
        let args = values_to_args(vec![scalars]).unwrap();
        assert_eq!(
            args.first::<serde_json::Value>().unwrap(),
            serde_json::json!({"1": "a", "true": "b", "null": "c"})
        );
    }
}
