//! Every example packet of the Socket.IO v5 and Engine.IO v4 protocol specifications
//! (socketio/socket.io-protocol and socketio/engine.io-protocol READMEs) encodes to exactly the
//! documented bytes and decodes back to the same packet.

use bytes::Bytes;
use sockeye_protocol::engine::{self, Frame, Message};
use sockeye_protocol::socketio::{Args, Decoder, Packet, ParserKind};

fn json_args(values: &[serde_json::Value]) -> Args {
    Args::from_values(values).unwrap()
}

fn binary_args(prefix: &[&str], buffers: &[&'static [u8]]) -> Args {
    let mut b = Args::builder();
    for p in prefix {
        b.push(p).unwrap();
    }
    for buf in buffers {
        b.push_binary(Bytes::from_static(buf));
    }
    b.build()
}

/// Encodes `packet` and checks the frames; decodes the frames and checks the packet.
fn check(packet: &Packet, text: &str, attachments: &[&[u8]]) {
    let encoded = packet.encode(ParserKind::Json).unwrap();
    let mut expected = vec![Frame::Text(Bytes::from(format!("4{text}")))];
    expected.extend(
        attachments
            .iter()
            .map(|a| Frame::Binary(Bytes::copy_from_slice(a))),
    );
    assert_eq!(encoded.frames(), expected.as_slice(), "encoding {text}");

    let mut decoder = Decoder::default();
    let mut result = decoder
        .decode(Message::Text(Bytes::from(text.to_owned())))
        .unwrap();
    for a in attachments {
        assert!(result.is_none(), "{text}: complete before its attachments");
        result = decoder
            .decode(Message::Binary(Bytes::copy_from_slice(a)))
            .unwrap();
    }
    assert_eq!(result.as_ref(), Some(packet), "decoding {text}");
}

#[test]
fn socketio_spec_connection_examples() {
    check(&Packet::connect("/", None), "0", &[]);
    check(
        &Packet::connect_ok("/", "wZX3oN0bSVIhsaknAAAI"),
        r#"0{"sid":"wZX3oN0bSVIhsaknAAAI"}"#,
        &[],
    );
    check(&Packet::connect("/admin", None), "0/admin,", &[]);
    check(
        &Packet::connect_ok("/admin", "oSO0OpakMV_3jnilAAAA"),
        r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
        &[],
    );
    check(
        &Packet::connect("/admin", Some(Bytes::from_static(br#"{"token":"123"}"#))),
        r#"0/admin,{"token":"123"}"#,
        &[],
    );
    check(
        &Packet::connect_error("/", "Not authorized", None),
        r#"4{"message":"Not authorized"}"#,
        &[],
    );
}

#[test]
fn socketio_spec_data_examples() {
    check(
        &Packet::event("/", "foo", Args::empty()),
        r#"2["foo"]"#,
        &[],
    );
    check(
        &Packet::event("/admin", "bar", Args::empty()),
        r#"2/admin,["bar"]"#,
        &[],
    );
    check(
        &Packet::event("/", "baz", binary_args(&[], &[&[1, 2, 3, 4]])),
        r#"51-["baz",{"_placeholder":true,"num":0}]"#,
        &[&[1, 2, 3, 4]],
    );
    check(
        &Packet::event("/admin", "baz", binary_args(&[], &[&[1, 2], &[3, 4]])),
        r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        &[&[1, 2], &[3, 4]],
    );
    // The sample session's server emit.
    check(
        &Packet::event("/", "hey", json_args(&["Jude".into()])),
        r#"2["hey","Jude"]"#,
        &[],
    );
}

#[test]
fn socketio_spec_ack_examples() {
    check(
        &Packet::event_with_ack("/", "foo", Args::empty(), 12),
        r#"212["foo"]"#,
        &[],
    );
    check(&Packet::ack("/", 12, Args::empty()), "312[]", &[]);
    check(
        &Packet::event_with_ack("/admin", "foo", Args::empty(), 13),
        r#"2/admin,13["foo"]"#,
        &[],
    );
    check(
        &Packet::ack("/admin", 13, json_args(&["bar".into()])),
        r#"3/admin,13["bar"]"#,
        &[],
    );
    check(
        &Packet::event_with_ack("/", "foo", binary_args(&[], &[&[1, 2, 3, 4]]), 14),
        r#"51-14["foo",{"_placeholder":true,"num":0}]"#,
        &[&[1, 2, 3, 4]],
    );
    check(
        &Packet::ack("/", 14, json_args(&["bar".into()])),
        r#"314["bar"]"#,
        &[],
    );
    check(
        &Packet::event_with_ack("/", "foo", Args::empty(), 15),
        r#"215["foo"]"#,
        &[],
    );
    check(
        &Packet::ack("/", 15, binary_args(&["bar"], &[&[1, 2, 3, 4]])),
        r#"61-15["bar",{"_placeholder":true,"num":0}]"#,
        &[&[1, 2, 3, 4]],
    );
}

#[test]
fn socketio_spec_disconnect_examples() {
    check(&Packet::disconnect("/"), "1", &[]);
    check(&Packet::disconnect("/admin"), "1/admin,", &[]);
}

#[test]
fn socketio_spec_sample_session_polling_body() {
    // Request n°5: two events in one long-polling body.
    let body = Bytes::from_static(b"42[\"hello\"]\x1e42[\"world\"]");
    let mut decoder = Decoder::default();
    let names: Vec<String> = engine::decode_payload(body)
        .map(|p| match p.unwrap() {
            engine::Packet::Message(text) => decoder.decode(Message::Text(text)).unwrap().unwrap(),
            other => panic!("unexpected {other:?}"),
        })
        .map(|p| match p.data {
            sockeye_protocol::socketio::PacketData::Event { name, .. } => name.to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(names, ["hello", "world"]);
}

#[test]
fn engineio_spec_examples() {
    use engine::Packet as E;
    // Packet encoding table of the Engine.IO v4 spec.
    for (wire, packet) in [
        ("4hello", E::Message(Bytes::from_static(b"hello"))),
        ("2", E::Ping(Bytes::new())),
        ("3", E::Pong(Bytes::new())),
        ("2probe", E::Ping(Bytes::from_static(b"probe"))),
        ("3probe", E::Pong(Bytes::from_static(b"probe"))),
        ("5", E::Upgrade),
        ("6", E::Noop),
        ("1", E::Close),
    ] {
        assert_eq!(E::decode_text(Bytes::from(wire)).unwrap(), packet);
        assert_eq!(packet.encode(), Bytes::from(wire));
    }
    // The spec's long-polling payload: "hello", a ping... and a binary message.
    let payload = Bytes::from_static(b"4hello\x1ebAQIDBA==");
    let packets: Vec<_> = engine::decode_payload(payload.clone())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        packets,
        [
            E::Message(Bytes::from_static(b"hello")),
            E::Binary(Bytes::from_static(&[1, 2, 3, 4]))
        ]
    );
    assert_eq!(engine::encode_payload(&packets), payload);
    let three = Bytes::from_static(b"4hello\x1e2\x1e4world");
    let packets: Vec<_> = engine::decode_payload(three.clone())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(packets.len(), 3);
    assert_eq!(engine::encode_payload(&packets), three);
}
