//! Arguments: typed reads, binary in and out, passthrough, the msgpack form.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sockeye_protocol::engine::{Frame, Message};
use sockeye_protocol::socketio::{Args, Decoder, Limits, Packet, PacketData, ParserKind};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct File {
    name: String,
    data: Bytes,
    parts: Vec<Bytes>,
}

fn decode_all(kind: ParserKind, frames: &[Frame]) -> Packet {
    let mut d = Decoder::new(kind, Limits::default());
    let mut last = None;
    for f in frames {
        last = match f {
            Frame::Text(t) => d.decode(Message::Text(t.slice(1..))),
            Frame::Binary(b) => d.decode(Message::Binary(b.clone())),
        }
        .unwrap();
    }
    last.unwrap()
}

fn args_of(p: &Packet) -> &Args {
    match &p.data {
        PacketData::Event { args, .. } | PacketData::Ack { args, .. } => args,
        other => panic!("no args in {other:?}"),
    }
}

#[test]
fn binary_fields_become_attachments_and_come_back() {
    let file = File {
        name: "a.bin".into(),
        data: Bytes::from_static(&[0, 1, 2]),
        parts: vec![Bytes::from_static(b"x"), Bytes::new()],
    };
    let args = Args::from_value(&file).unwrap();
    assert_eq!(args.attachments().len(), 3);
    assert_eq!(
        args.raw_json().unwrap(),
        br#"{"name":"a.bin","data":{"_placeholder":true,"num":0},"parts":[{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]}"#
    );
    for kind in [ParserKind::Json, ParserKind::MsgPack] {
        let packet = Packet::event("/", "upload", args.clone());
        let encoded = packet.encode(kind).unwrap();
        let back = decode_all(kind, encoded.frames());
        let got: File = args_of(&back).first().unwrap();
        assert_eq!(got, file, "{kind:?}");
        let (got,): (File,) = args_of(&back).deserialize().unwrap();
        assert_eq!(got, file, "{kind:?}");
    }
}

#[test]
fn typed_reads() {
    let packet = Decoder::default()
        .decode(Message::Text(Bytes::from_static(
            br#"2["ev",1,"two",{"three":3},[4]]"#,
        )))
        .unwrap()
        .unwrap();
    let args = args_of(&packet);
    assert_eq!(args.len(), 4);
    assert_eq!(args.first::<u32>().unwrap(), 1);
    assert_eq!(args.nth::<String>(1).unwrap(), "two");
    assert_eq!(args.nth::<Vec<u8>>(3).unwrap(), vec![4]);
    assert!(args.nth::<u32>(4).is_err());
    assert!(args.first::<String>().is_err());
    let (a, b): (u8, String) = args.deserialize().unwrap();
    assert_eq!((a, b.as_str()), (1, "two"));
    let all: Vec<serde_json::Value> = args.deserialize().unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(args.raw_json().unwrap(), br#"1,"two",{"three":3},[4]"#);
    assert_eq!(
        &args.json_array().unwrap()[..],
        br#"[1,"two",{"three":3},[4]]"#
    );
}

#[test]
fn passthrough_keeps_bytes_and_shares_memory() {
    let wire = Bytes::from_static(br#"2/room,5["echo",{"b":1,"a":[2.50,"\u00e9"]}]"#);
    let packet = Decoder::default()
        .decode(Message::Text(wire.clone()))
        .unwrap()
        .unwrap();
    let raw = args_of(&packet).raw_json().unwrap();
    // The arguments are a slice of the received message, not a copy.
    let offset = raw.as_ptr() as usize - wire.as_ptr() as usize;
    assert!(offset < wire.len());
    let encoded = packet.encode(ParserKind::Json).unwrap();
    assert_eq!(
        encoded.frames(),
        &[Frame::Text(Bytes::from([&b"4"[..], &wire[..]].concat()))]
    );
}

#[test]
fn empty_args_and_builder_errors() {
    let p = Packet::event("/", "x", Args::empty());
    assert_eq!(
        p.encode(ParserKind::Json).unwrap().frames(),
        &[Frame::Text(Bytes::from_static(br#"42["x"]"#))]
    );
    let mut map = std::collections::HashMap::new();
    map.insert(vec![1u8], 1);
    let mut b = Args::builder();
    b.push(&1).unwrap();
    assert!(b.push(&map).is_err(), "JSON object keys must be strings");
    b.push(&2).unwrap();
    assert_eq!(
        b.build().raw_json().unwrap(),
        b"1,2",
        "a failed push leaves no trace"
    );
}

#[test]
fn json_and_msgpack_args_convert_both_ways() {
    let args = Args::from_values([serde_json::json!({"k": [1, "v", null, true, -2.5]})]).unwrap();
    let mp = decode_all(
        ParserKind::MsgPack,
        Packet::ack("/", 3, args.clone())
            .encode(ParserKind::MsgPack)
            .unwrap()
            .frames(),
    );
    let json = decode_all(
        ParserKind::Json,
        mp.encode(ParserKind::Json).unwrap().frames(),
    );
    assert_eq!(args_of(&json), &args);
    assert_eq!(
        args_of(&mp).first::<serde_json::Value>().unwrap(),
        serde_json::json!({"k": [1, "v", null, true, -2.5]})
    );
}

#[test]
fn from_json_array_validates() {
    let one = vec![Bytes::from_static(b"\x01")];
    let args = Args::from_json_array(
        Bytes::from_static(br#"["x",{"_placeholder":true,"num":0}]"#),
        one.clone(),
        32,
    )
    .unwrap();
    assert_eq!(args.len(), 2);
    assert_eq!(args.nth::<Bytes>(1).unwrap(), Bytes::from_static(b"\x01"));
    assert!(Args::from_json_array(Bytes::from_static(br#"["x"]"#), one.clone(), 32).is_err());
    assert!(Args::from_json_array(Bytes::from_static(b"[[[1]]]"), Vec::new(), 2).is_err());
    assert!(Args::from_json_array(Bytes::from_static(b"{}"), Vec::new(), 32).is_err());
}

#[test]
fn connect_error_forms() {
    let p = Packet::connect_error("/a", "nope", Some(&serde_json::json!({"code": 1})));
    assert_eq!(
        p.encode(ParserKind::Json).unwrap().frames(),
        &[Frame::Text(Bytes::from_static(
            br#"44/a,{"message":"nope","data":{"code":1}}"#
        ))]
    );
    // The legacy string form is accepted like the official decoder does.
    let legacy = Decoder::default()
        .decode(Message::Text(Bytes::from_static(br#"4"refused""#)))
        .unwrap()
        .unwrap();
    assert_eq!(
        legacy.data,
        PacketData::ConnectError(Bytes::from_static(br#""refused""#))
    );
}

#[test]
fn appended_adds_one_last_argument_and_keeps_attachments() {
    let mut b = Args::builder();
    b.push(&"a")
        .unwrap()
        .push_binary(bytes::Bytes::from_static(b"\x01"));
    let args = b.build();
    let out = args.appended(&"17").unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(
        out.raw_json(),
        Some(&br#""a",{"_placeholder":true,"num":0},"17""#[..])
    );
    assert_eq!(out.attachments().len(), 1);
    assert_eq!(out.nth::<String>(2).unwrap(), "17");
    // The original is untouched, and an empty list gets no leading comma.
    assert_eq!(args.len(), 2);
    let one = Args::empty().appended(&"x").unwrap();
    assert_eq!(one.raw_json(), Some(&br#""x""#[..]));
    assert_eq!(one.len(), 1);
}

#[test]
fn appended_converts_msgpack_arguments() {
    let mut b = Args::builder();
    b.push(&1)
        .unwrap()
        .push_binary(Bytes::from_static(b"\x02\x03"));
    let packet = Packet::event("/", "ev", b.build());
    let encoded = packet.encode(ParserKind::MsgPack).unwrap();
    let decoded = decode_all(ParserKind::MsgPack, encoded.frames());
    let out = args_of(&decoded).appended(&"9").unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out.nth::<u32>(0).unwrap(), 1);
    assert_eq!(
        out.nth::<Bytes>(1).unwrap(),
        Bytes::from_static(b"\x02\x03")
    );
    assert_eq!(out.nth::<String>(2).unwrap(), "9");
}
