//! Cross-implementation vectors: the official `engine.io-parser`, `socket.io-parser` and
//! `socket.io-msgpack-parser` (tests/protocol/vectors.js) encode packets that sockeye must
//! decode to the same packets and re-encode to the same bytes; sockeye's encodings must decode,
//! in the official parsers, to the packets they came from.

use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::json;
use sockeye_protocol::engine::{self, Frame, Message};
use sockeye_protocol::socketio::{Args, Decoder, Limits, Packet, PacketData, ParserKind};

/// A JSON value that keeps object key order and knows binary (`{"$bin": base64}` in JSON form).
#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Bin(Vec<u8>),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_none<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<J, E> {
                Ok(J::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<J, E> {
                Ok(J::Num(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<J, E> {
                Ok(J::Num(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<J, E> {
                serde_json::Number::from_f64(v)
                    .map(J::Num)
                    .ok_or_else(|| E::custom("not a finite number"))
            }
            fn visit_str<E>(self, v: &str) -> Result<J, E> {
                Ok(J::Str(v.to_owned()))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<J, E> {
                Ok(J::Bin(v.to_vec()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<J, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = s.next_element()? {
                    v.push(x);
                }
                Ok(J::Arr(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<J, A::Error> {
                let mut v: Vec<(String, J)> = Vec::new();
                while let Some(e) = m.next_entry()? {
                    v.push(e);
                }
                if let [(k, J::Str(b64))] = v.as_slice()
                    && k == "$bin"
                {
                    return Ok(J::Bin(BASE64.decode(b64).map_err(de::Error::custom)?));
                }
                Ok(J::Obj(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::Null => s.serialize_unit(),
            J::Bool(b) => s.serialize_bool(*b),
            J::Num(n) => n.serialize(s),
            J::Str(v) => s.serialize_str(v),
            J::Bin(b) => s.serialize_bytes(b),
            J::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            J::Obj(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

fn field<'a>(obj: &'a J, name: &str) -> Option<&'a J> {
    match obj {
        J::Obj(entries) => entries.iter().find(|(k, _)| k == name).map(|(_, v)| v),
        _ => None,
    }
}

fn script() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tests/protocol/vectors.js");
    assert!(
        root.join("tests/node_modules/socket.io-parser").is_dir(),
        "tests/node_modules is missing: run `npm ci` in tests/ (scripts/test does it)"
    );
    script
}

/// Runs the vector script, feeding `input`, with a bounded wait.
fn node(mode: &str, input: &str) -> String {
    let mut child = Command::new("node")
        .arg(script())
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`node` must be installed to run the cross-implementation vectors");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("node vectors.js {mode} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap().unwrap();
    let out = reader.join().unwrap().unwrap();
    if !status.success() {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!("node vectors.js {mode} failed: {err}");
    }
    out
}

fn parser(name: &J) -> ParserKind {
    match name {
        J::Str(s) if s == "json" => ParserKind::Json,
        J::Str(s) if s == "msgpack" => ParserKind::MsgPack,
        other => panic!("unknown parser {other:?}"),
    }
}

fn frames_of(v: &J) -> Vec<Frame> {
    let J::Arr(frames) = field(v, "frames").unwrap() else {
        panic!("frames")
    };
    frames
        .iter()
        .map(|f| match (field(f, "text"), field(f, "binary")) {
            (Some(J::Str(t)), _) => Frame::Text(Bytes::from(format!("4{t}"))),
            (_, Some(J::Bin(b))) => Frame::Binary(Bytes::from(b.clone())),
            // `{"binary": "AQID"}` is a plain string, not the `$bin` form.
            (_, Some(J::Str(b))) => Frame::Binary(Bytes::from(BASE64.decode(b).unwrap())),
            other => panic!("bad frame {other:?}"),
        })
        .collect()
}

fn frames_to_j(frames: &[Frame]) -> J {
    J::Arr(
        frames
            .iter()
            .map(|f| match f {
                Frame::Text(t) => J::Obj(vec![(
                    "text".into(),
                    J::Str(std::str::from_utf8(&t[1..]).unwrap().to_owned()),
                )]),
                Frame::Binary(b) => J::Obj(vec![("binary".into(), J::Str(BASE64.encode(b)))]),
            })
            .collect(),
    )
}

fn json_text(v: &J) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap())
}

/// The packet a portable description stands for.
fn packet_from(desc: &J) -> Packet {
    let ns = match field(desc, "nsp") {
        Some(J::Str(s)) => s.clone(),
        _ => "/".into(),
    };
    let Some(J::Num(ty)) = field(desc, "type") else {
        panic!("type")
    };
    let id = field(desc, "id").map(|v| match v {
        J::Num(n) => n.as_u64().unwrap(),
        _ => panic!("id"),
    });
    let data = field(desc, "data");
    let args_of = |items: &[J]| {
        let mut b = Args::builder();
        for item in items {
            b.push(item).unwrap();
        }
        b.build()
    };
    match ty.as_u64().unwrap() {
        0 => Packet::connect(ns, data.map(json_text)),
        1 => Packet::disconnect(ns),
        2 => {
            let Some(J::Arr(items)) = data else {
                panic!("event data")
            };
            let J::Str(name) = &items[0] else {
                panic!("event name")
            };
            let args = args_of(&items[1..]);
            match id {
                Some(id) => Packet::event_with_ack(ns, name.as_str(), args, id),
                None => Packet::event(ns, name.as_str(), args),
            }
        }
        3 => {
            let Some(J::Arr(items)) = data else {
                panic!("ack data")
            };
            Packet::ack(ns, id.unwrap(), args_of(items))
        }
        4 => Packet {
            ns: ns.into(),
            data: PacketData::ConnectError(json_text(data.unwrap())),
        },
        other => panic!("type {other}"),
    }
}

/// The portable description of a decoded packet (what the official decoders report).
fn describe(packet: &Packet) -> J {
    let mut out = Vec::new();
    let parse = |b: &Bytes| serde_json::from_slice::<J>(b).unwrap();
    let (ty, data, id) = match &packet.data {
        PacketData::Connect(p) => (0, p.as_ref().map(parse), None),
        PacketData::Disconnect => (1, None, None),
        PacketData::Event { name, args, ack } => {
            let mut items = vec![J::Str(name.to_string())];
            items.extend(args.deserialize::<Vec<J>>().unwrap());
            (2, Some(J::Arr(items)), *ack)
        }
        PacketData::Ack { id, args } => (
            3,
            Some(J::Arr(args.deserialize::<Vec<J>>().unwrap())),
            Some(*id),
        ),
        PacketData::ConnectError(p) => (4, Some(parse(p)), None),
    };
    out.push(("type".to_owned(), J::Num(ty.into())));
    out.push(("nsp".to_owned(), J::Str(packet.ns.to_string())));
    if let Some(d) = data {
        out.push(("data".to_owned(), d));
    }
    if let Some(id) = id {
        out.push(("id".to_owned(), J::Num(id.into())));
    }
    J::Obj(out)
}

fn decode_frames(kind: ParserKind, frames: &[Frame]) -> Packet {
    let mut decoder = Decoder::new(kind, Limits::default());
    let mut last = None;
    for f in frames {
        last = match f {
            Frame::Text(t) => decoder.decode(Message::Text(t.slice(1..))),
            Frame::Binary(b) => decoder.decode(Message::Binary(b.clone())),
        }
        .unwrap();
    }
    last.expect("the frames must complete a packet")
}

/// Compares descriptions regardless of object key order at the top level of the packet (the
/// decoders report fields in their own order) but with key order inside the data.
fn same_packet(a: &J, b: &J) -> bool {
    ["type", "nsp", "data", "id"]
        .iter()
        .all(|k| field(a, k) == field(b, k))
}

fn engine_packet(desc: &J) -> engine::Packet {
    let Some(J::Str(ty)) = field(desc, "type") else {
        panic!("engine type")
    };
    let data = field(desc, "data").unwrap();
    let text = |d: &J| match d {
        J::Str(s) => Bytes::from(s.clone()),
        other => panic!("text data {other:?}"),
    };
    match (ty.as_str(), data) {
        ("message", J::Bin(b)) => engine::Packet::Binary(Bytes::from(b.clone())),
        ("message", d) => engine::Packet::Message(text(d)),
        ("ping", d) => engine::Packet::Ping(text(d)),
        ("pong", d) => engine::Packet::Pong(text(d)),
        other => panic!("engine packet {other:?}"),
    }
}

fn engine_describe(p: &engine::Packet) -> J {
    let (ty, data) = match p {
        engine::Packet::Message(d) => ("message", J::Str(String::from_utf8(d.to_vec()).unwrap())),
        engine::Packet::Binary(d) => ("message", J::Bin(d.to_vec())),
        engine::Packet::Ping(d) => ("ping", J::Str(String::from_utf8(d.to_vec()).unwrap())),
        engine::Packet::Pong(d) => ("pong", J::Str(String::from_utf8(d.to_vec()).unwrap())),
        other => panic!("unexpected {other:?}"),
    };
    J::Obj(vec![
        ("type".into(), J::Str(ty.into())),
        ("data".into(), data),
    ])
}

#[test]
fn official_encodings_decode_and_reencode_byte_for_byte() {
    let out: J = serde_json::from_str(&node("produce", "")).unwrap();
    let J::Arr(sio) = field(&out, "sio").unwrap() else {
        panic!("sio")
    };
    assert!(sio.len() >= 30, "expected every vector for both parsers");
    for v in sio {
        let name = field(v, "name").unwrap();
        let kind = parser(field(v, "parser").unwrap());
        let expected = field(v, "packet").unwrap();
        let frames = frames_of(v);

        let decoded = decode_frames(kind, &frames);
        assert!(
            same_packet(&describe(&decoded), expected),
            "{name:?} {kind:?}: decoded {:?}, expected {expected:?}",
            describe(&decoded)
        );

        let built = packet_from(expected);
        assert_eq!(
            built.encode(kind).unwrap().frames(),
            frames.as_slice(),
            "{name:?} {kind:?}: encoding"
        );
        // Re-encoding the decoded packet (raw arguments passed through) gives the same bytes.
        assert_eq!(
            decoded.encode(kind).unwrap().frames(),
            frames.as_slice(),
            "{name:?} {kind:?}: passthrough"
        );
    }

    let J::Arr(eng) = field(&out, "engine").unwrap() else {
        panic!("engine")
    };
    for v in eng {
        let J::Arr(descs) = field(v, "packets").unwrap() else {
            panic!("packets")
        };
        let packets: Vec<_> = descs.iter().map(engine_packet).collect();
        if let Some(J::Str(payload)) = field(v, "payload") {
            assert_eq!(
                engine::encode_payload(&packets),
                Bytes::from(payload.clone())
            );
            let back: Vec<_> = engine::decode_payload(Bytes::from(payload.clone()))
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(back, packets);
        } else {
            let frame = &frames_of(v)[0];
            let expected = match frame {
                // `frames_of` prefixed a `4` for Socket.IO frames; engine frames are whole.
                Frame::Text(t) => Frame::Text(t.slice(1..)),
                Frame::Binary(b) => Frame::Binary(b.clone()),
            };
            assert_eq!(Frame::from(&packets[0]), expected);
            if let Frame::Text(t) = &expected {
                assert_eq!(engine::Packet::decode_text(t.clone()).unwrap(), packets[0]);
            }
        }
    }
}

#[test]
fn sockeye_encodings_decode_in_the_official_parsers() {
    let out: J = serde_json::from_str(&node("produce", "")).unwrap();
    let J::Arr(sio) = field(&out, "sio").unwrap() else {
        panic!("sio")
    };
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for v in sio {
        let kind = parser(field(v, "parser").unwrap());
        let packet = packet_from(field(v, "packet").unwrap());
        let frames = packet.encode(kind).unwrap();
        requests.push(J::Obj(vec![
            ("parser".into(), field(v, "parser").unwrap().clone()),
            ("frames".into(), frames_to_j(frames.frames())),
        ]));
        expected.push((field(v, "name").unwrap().clone(), kind, describe(&packet)));
    }
    // Engine.IO: a payload and single frames encoded by sockeye.
    let J::Arr(eng) = field(&out, "engine").unwrap() else {
        panic!("engine")
    };
    let all = eng.last().unwrap();
    let J::Arr(descs) = field(all, "packets").unwrap() else {
        panic!("packets")
    };
    let packets: Vec<_> = descs.iter().map(engine_packet).collect();
    let payload = engine::encode_payload(&packets);
    let frames: Vec<J> = packets
        .iter()
        .map(|p| match Frame::from(p) {
            Frame::Text(t) => J::Obj(vec![(
                "text".into(),
                J::Str(String::from_utf8(t.to_vec()).unwrap()),
            )]),
            Frame::Binary(b) => J::Obj(vec![("binary".into(), J::Str(BASE64.encode(b)))]),
        })
        .collect();
    let request = json!({
        "engine": [{ "payload": String::from_utf8(payload.to_vec()).unwrap(), "frames": serde_json::to_value(J::Arr(frames)).unwrap() }],
        "sio": serde_json::to_value(J::Arr(requests)).unwrap(),
    });
    let answer: J = serde_json::from_str(&node("decode", &request.to_string())).unwrap();

    let J::Arr(decoded) = field(&answer, "sio").unwrap() else {
        panic!("sio answer")
    };
    assert_eq!(decoded.len(), expected.len());
    for (got, (name, kind, want)) in decoded.iter().zip(&expected) {
        assert!(
            field(got, "error").is_none(),
            "{name:?} {kind:?}: official decoder failed: {got:?}"
        );
        assert!(
            same_packet(got, want),
            "{name:?} {kind:?}: official decoder read {got:?}, expected {want:?}"
        );
    }
    let J::Arr(eng_answer) = field(&answer, "engine").unwrap() else {
        panic!("engine answer")
    };
    let want: Vec<J> = packets.iter().map(engine_describe).collect();
    assert_eq!(
        field(&eng_answer[0], "payload"),
        Some(&J::Arr(want.clone()))
    );
    assert_eq!(field(&eng_answer[0], "frames"), Some(&J::Arr(want)));
}
