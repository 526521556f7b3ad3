//! Hostile and malformed input: every case is a typed error naming the problem, never a panic.

use bytes::Bytes;
use sockeye_protocol::engine::Message;
use sockeye_protocol::socketio::{DecodeError, Decoder, Limits, PacketData, ParserKind};

fn text(s: &str) -> Message {
    Message::Text(Bytes::from(s.to_owned()))
}

fn decode(s: &str) -> Result<Option<sockeye_protocol::socketio::Packet>, DecodeError> {
    Decoder::default().decode(text(s))
}

#[test]
fn malformed_text_packets_are_named_errors() {
    use DecodeError as E;
    let max = u64::MAX;
    for (input, expected) in [
        ("", E::Empty),
        ("7", E::UnknownType('7')),
        ("x[]", E::UnknownType('x')),
        ("2abc[\"a\"]", E::PayloadNotArray),
        ("2/x,12abc[\"a\"]", E::PayloadNotArray),
        ("2{}", E::PayloadNotArray),
        ("2\"a\"", E::PayloadNotArray),
        ("2", E::MissingPayload(2)),
        ("3[]", E::MissingAckId),
        ("2[]", E::InvalidEventName),
        ("2[1]", E::InvalidEventName),
        ("2[null,1]", E::InvalidEventName),
        ("2[\"a\"", E::InvalidPayload(String::new())),
        ("2[\"a\"]x", E::InvalidPayload(String::new())),
        ("0[]", E::ConnectPayloadNotObject),
        ("0\"s\"", E::ConnectPayloadNotObject),
        ("1{}", E::UnexpectedPayload(1)),
        ("4", E::MissingPayload(4)),
        ("4[1]", E::InvalidConnectError),
        ("012{}", E::UnexpectedAckId(0)),
        ("218446744073709551616[\"a\"]", E::AckIdTooLarge { max }),
        ("5-[\"a\"]", E::InvalidAttachmentCount),
        ("51[\"a\"]", E::InvalidAttachmentCount),
        ("5x-[\"a\"]", E::InvalidAttachmentCount),
        ("511-[\"a\"]", E::TooManyAttachments { count: 11, max: 10 }),
        (
            "599999999999999999999999-[\"a\"]",
            E::TooManyAttachments {
                count: usize::MAX,
                max: 10,
            },
        ),
    ] {
        let got = decode(input).expect_err(input);
        match (&got, &expected) {
            // The JSON error text comes from serde_json; the variant is what matters.
            (E::InvalidPayload(_), E::InvalidPayload(_)) => {}
            _ => assert_eq!(got, expected, "{input:?}"),
        }
        assert!(!got.to_string().is_empty());
    }
}

#[test]
fn event_names_are_fully_unescaped() {
    for (input, name) in [
        (r#"2["\u00fcn"]"#, "ün"),
        (r#"2["echo\u002dack",1]"#, "echo-ack"),
        (r#"2[ "spaced" , 1 ]"#, "spaced"),
        (r#"2["a\"b\\c"]"#, "a\"b\\c"),
    ] {
        let packet = decode(input).unwrap().unwrap();
        let PacketData::Event { name: got, .. } = packet.data else {
            panic!("{input}")
        };
        assert_eq!(got, name, "{input}");
    }
}

#[test]
fn namespace_rules() {
    let ns = |s: &str| decode(s).unwrap().unwrap().ns.to_string();
    assert_eq!(ns("0/custom"), "/custom");
    assert_eq!(ns("0/custom,"), "/custom");
    assert_eq!(ns("0/custom,{\"a\":1}"), "/custom");
    assert_eq!(ns("2/chat,7[\"a\"]"), "/chat");
    assert_eq!(ns("0/,"), "/");
    let long = format!("0/{}", "n".repeat(300));
    assert_eq!(
        decode(&long).unwrap_err(),
        DecodeError::NamespaceTooLong { max: 256 }
    );
}

#[test]
fn configured_limits_apply() {
    let limits = Limits {
        max_attachments: 1,
        max_depth: 3,
        max_ack_id: 100,
        max_namespace_len: 4,
        max_packet_size: 64,
    };
    let mut d = Decoder::new(ParserKind::Json, limits);
    assert_eq!(
        d.decode(text(r#"2["a",[[[1]]]]"#)).unwrap_err(),
        DecodeError::TooDeep { max: 3 }
    );
    assert!(
        d.decode(text(r#"2["a",[["[[[[{{"]]]"#)).unwrap().is_some(),
        "brackets in strings do not count"
    );
    assert_eq!(
        d.decode(text("2101[\"a\"]")).unwrap_err(),
        DecodeError::AckIdTooLarge { max: 100 }
    );
    assert!(d.decode(text("2100[\"a\"]")).unwrap().is_some());
    assert_eq!(
        d.decode(text("0/abcde,")).unwrap_err(),
        DecodeError::NamespaceTooLong { max: 4 }
    );
    assert_eq!(
        d.decode(text(&format!("2[\"{}\"]", "x".repeat(64))))
            .unwrap_err(),
        DecodeError::PacketTooLarge { max: 64 }
    );
    assert_eq!(
        d.decode(text(r#"52-["a",{"_placeholder":true,"num":0}]"#))
            .unwrap_err(),
        DecodeError::TooManyAttachments { count: 2, max: 1 }
    );
    // Attachments count toward the packet size.
    assert_eq!(
        d.decode(text(r#"51-["a",{"_placeholder":true,"num":0}]"#))
            .unwrap(),
        None
    );
    assert_eq!(
        d.decode(Message::Binary(Bytes::from(vec![0u8; 40])))
            .unwrap_err(),
        DecodeError::PacketTooLarge { max: 64 }
    );
}

#[test]
fn deep_nesting_is_rejected_without_recursion() {
    // Far beyond any recursion limit: must be a clean error.
    let deep = format!("2[\"a\",{}{}]", "[".repeat(100_000), "]".repeat(100_000));
    let limits = Limits {
        max_packet_size: 1 << 20,
        ..Limits::default()
    };
    assert_eq!(
        Decoder::new(ParserKind::Json, limits)
            .decode(text(&deep))
            .unwrap_err(),
        DecodeError::TooDeep { max: 32 }
    );
}

#[test]
fn attachment_sequencing_and_placeholders() {
    let mut d = Decoder::default();
    assert_eq!(
        d.decode(Message::Binary(Bytes::from_static(b"x")))
            .unwrap_err(),
        DecodeError::UnexpectedBinary
    );
    assert_eq!(
        d.decode(text(
            r#"52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        ))
        .unwrap(),
        None
    );
    assert!(d.is_waiting());
    assert_eq!(
        d.decode(Message::Binary(Bytes::from_static(b"1"))).unwrap(),
        None
    );
    assert_eq!(
        d.decode(text(r#"2["b"]"#)).unwrap_err(),
        DecodeError::ExpectedAttachment { remaining: 1 }
    );
    assert!(!d.is_waiting(), "an error drops the pending packet");

    for (header, err) in [
        (
            r#"51-["a",{"_placeholder":true,"num":1}]"#,
            DecodeError::InvalidPlaceholder { count: 1 },
        ),
        (
            r#"51-["a",{"_placeholder":true,"num":-1}]"#,
            DecodeError::InvalidPlaceholder { count: 1 },
        ),
        (
            r#"51-["a",{"_placeholder":true,"num":"0"}]"#,
            DecodeError::InvalidPlaceholder { count: 1 },
        ),
        (
            r#"51-["a",{"_placeholder":true}]"#,
            DecodeError::InvalidPlaceholder { count: 1 },
        ),
        (r#"51-["a",1]"#, DecodeError::UnreferencedAttachment(0)),
        (
            r#"52-["a",{"_placeholder":true,"num":1},{"_placeholder":true,"num":1}]"#,
            DecodeError::UnreferencedAttachment(0),
        ),
    ] {
        let mut d = Decoder::default();
        let count = header.as_bytes()[1] - b'0';
        let mut result = d.decode(text(header));
        for _ in 0..count {
            result = d.decode(Message::Binary(Bytes::from_static(b"z")));
        }
        assert_eq!(result.unwrap_err(), err, "{header}");
    }
}

#[test]
fn msgpack_bad_input() {
    let mut d = Decoder::new(ParserKind::MsgPack, Limits::default());
    assert!(matches!(
        d.decode(text("2[]")),
        Err(DecodeError::WrongParser(_))
    ));
    for bytes in [
        &b""[..],
        &[0x90],                                     // not a map
        &[0x81, 0xa4, b't', b'y', b'p', b'e', 0x09], // bad type
        &[0x81, 0xa4, b't', b'y', b'p', b'e', 0x00], // no namespace
        &[0xdf, 0xff, 0xff, 0xff, 0xff],             // huge count, nothing behind
        &[
            0x82, 0xa4, b'd', b'a', b't', b'a', 0xdd, 0xff, 0xff, 0xff, 0xff,
        ], // lying array length
        &[0x81, 0xa4, b'd', b'a', b't', b'a', 0xc1], // reserved marker
    ] {
        assert!(
            d.decode(Message::Binary(Bytes::copy_from_slice(bytes)))
                .is_err(),
            "{bytes:?}"
        );
    }
    // Found by fuzzing: a CONNECT_ERROR string that is not UTF-8.
    let bad_utf8 = [
        0x83, 0xa4, b't', b'y', b'p', b'e', 0x04, 0xa4, b'd', b'a', b't', b'a', 0xa2, 0xc2, 0xff,
        0xa3, b'n', b's', b'p', 0xa1, b'/',
    ];
    assert_eq!(
        d.decode(Message::Binary(Bytes::copy_from_slice(&bad_utf8)))
            .unwrap_err(),
        DecodeError::InvalidUtf8
    );
    // 100 000 nested arrays: rejected by the iterative depth check.
    let mut deep = vec![
        0x82, 0xa4, b't', b'y', b'p', b'e', 0x02, 0xa4, b'd', b'a', b't', b'a',
    ];
    deep.extend(std::iter::repeat_n(0x91, 100_000));
    deep.push(0xc0);
    assert_eq!(
        d.decode(Message::Binary(Bytes::from(deep))).unwrap_err(),
        DecodeError::TooDeep { max: 32 }
    );
}
