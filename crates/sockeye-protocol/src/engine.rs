//! Engine.IO v4 packets (socketio/engine.io-protocol).
//!
//! A packet travels as a WebSocket frame or inside a long-polling payload. Text packets are a
//! type digit followed by UTF-8 data (`4hello`); binary messages travel as raw WebSocket binary
//! frames, or as `b` + base64 inside a polling payload.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// The record separator that joins packets in a long-polling payload.
pub const SEPARATOR: u8 = 0x1e;

/// An Engine.IO v4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0`: the handshake, sent by the server as the first packet of a session.
    Open(Handshake),
    /// `1`: either side closes the session.
    Close,
    /// `2`: heartbeat from the server, or `2probe` from a client testing a WebSocket upgrade.
    Ping(Bytes),
    /// `3`: the answer to a ping, echoing its data (`3probe`).
    Pong(Bytes),
    /// `4`: a text message; the bytes are the UTF-8 text without the type digit.
    Message(Bytes),
    /// A binary message (raw WebSocket binary frame, or `b` + base64 over polling).
    Binary(Bytes),
    /// `5`: the client completes the switch to WebSocket.
    Upgrade,
    /// `6`: no operation; the server answers a pending poll with it during an upgrade.
    Noop,
}

/// An outbound unit ready for a transport, shared by every recipient of a broadcast.
///
/// `Text` holds a whole Engine.IO text packet, type digit included (`42["a"]`), so a WebSocket
/// writer sends it unchanged; `Binary` holds a binary message's raw bytes. Both are
/// reference-counted: cloning a frame for ten thousand sockets copies no payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole Engine.IO text packet, valid UTF-8, starting with its type digit.
    Text(Bytes),
    /// The raw bytes of a binary message.
    Binary(Bytes),
}

impl Frame {
    /// A text MESSAGE frame (`4` + `text`).
    pub fn message(text: &str) -> Frame {
        let mut buf = BytesMut::with_capacity(text.len() + 1);
        buf.put_u8(b'4');
        buf.extend_from_slice(text.as_bytes());
        Frame::Text(buf.freeze())
    }

    /// Appends this frame in its long-polling form (binary as `b` + base64).
    pub fn write_polling(&self, buf: &mut BytesMut) {
        match self {
            Frame::Text(text) => buf.extend_from_slice(text),
            Frame::Binary(data) => write_base64(data, buf),
        }
    }
}

impl From<&Packet> for Frame {
    fn from(packet: &Packet) -> Frame {
        match packet {
            Packet::Binary(data) => Frame::Binary(data.clone()),
            other => Frame::Text(other.encode()),
        }
    }
}

/// An inbound message delivered to the layer above Engine.IO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message's UTF-8 data, without the `4` type digit.
    Text(Bytes),
    /// A binary message's raw bytes.
    Binary(Bytes),
}

/// The handshake data of an [`Packet::Open`] packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    /// The session id; it authorises every later polling request of the session.
    pub sid: String,
    /// Transports the client may upgrade to (`["websocket"]` over polling, `[]` otherwise).
    pub upgrades: Vec<String>,
    /// Milliseconds between two server pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong before it closes the session.
    pub ping_timeout: u64,
    /// The largest payload, in bytes, the server accepts in one message or polling body.
    pub max_payload: u64,
}

/// Why bytes could not be decoded as an Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The packet had no bytes at all, so not even a type.
    #[error("empty engine.io packet: a packet starts with its type digit 0-6")]
    Empty,
    /// The first byte is not a known packet type.
    #[error("unknown engine.io packet type {0:?}: expected a digit 0-6 or 'b'")]
    UnknownType(char),
    /// A text packet's data is not valid UTF-8.
    #[error("engine.io text packet is not valid UTF-8")]
    InvalidUtf8,
    /// A `b` packet in a polling payload is not valid base64.
    #[error("engine.io binary packet is not valid base64")]
    InvalidBase64,
    /// The data of an open packet is not a valid handshake.
    #[error("invalid engine.io handshake: {0}")]
    InvalidHandshake(String),
    /// A packet type that carries no data came with data.
    #[error("engine.io packet type {0} carries no data")]
    UnexpectedData(char),
}

impl Packet {
    /// The type digit of this packet (`'b'` for a binary message, which has none in EIO4).
    pub fn type_char(&self) -> char {
        match self {
            Packet::Open(_) => '0',
            Packet::Close => '1',
            Packet::Ping(_) => '2',
            Packet::Pong(_) => '3',
            Packet::Message(_) => '4',
            Packet::Binary(_) => 'b',
            Packet::Upgrade => '5',
            Packet::Noop => '6',
        }
    }

    /// Decodes a WebSocket text frame or one text packet of a polling payload.
    ///
    /// The returned data shares `frame`'s memory.
    pub fn decode_text(frame: Bytes) -> Result<Packet, DecodeError> {
        Packet::decode_text_inner(frame, Utf8::Unchecked)
    }

    /// [`Packet::decode_text`] for a text that is already a `str` (a WebSocket text message,
    /// which the WebSocket layer has validated): its UTF-8 is not checked a second time.
    ///
    /// `text.into()` must hold the bytes of `text.as_ref()`, as it does for `String` and the
    /// WebSocket libraries' text types.
    pub fn decode_str(text: impl AsRef<str> + Into<Bytes>) -> Result<Packet, DecodeError> {
        Packet::decode_text_inner(text.into(), Utf8::Valid)
    }

    fn decode_text_inner(frame: Bytes, utf8: Utf8) -> Result<Packet, DecodeError> {
        let check_utf8 = |data: Bytes| match utf8 {
            Utf8::Valid => Ok(data),
            Utf8::Unchecked => check_utf8(data),
        };
        let Some(&first) = frame.first() else {
            return Err(DecodeError::Empty);
        };
        let data = frame.slice(1..);
        let no_data = |p: Packet| {
            if data.is_empty() {
                Ok(p)
            } else {
                Err(DecodeError::UnexpectedData(char::from(first)))
            }
        };
        match first {
            b'0' => {
                let handshake = serde_json::from_slice(&data)
                    .map_err(|e| DecodeError::InvalidHandshake(e.to_string()))?;
                Ok(Packet::Open(handshake))
            }
            b'1' => no_data(Packet::Close),
            b'2' => Ok(Packet::Ping(check_utf8(data)?)),
            b'3' => Ok(Packet::Pong(check_utf8(data)?)),
            b'4' => Ok(Packet::Message(check_utf8(data)?)),
            b'5' => no_data(Packet::Upgrade),
            b'6' => no_data(Packet::Noop),
            other => Err(DecodeError::UnknownType(char::from(other))),
        }
    }

    /// Decodes one packet of a long-polling payload: a text packet, or `b` + base64.
    pub fn decode_polling(chunk: Bytes) -> Result<Packet, DecodeError> {
        match chunk.first() {
            Some(b'b') => {
                let raw = BASE64
                    .decode(chunk.slice(1..))
                    .map_err(|_| DecodeError::InvalidBase64)?;
                Ok(Packet::Binary(Bytes::from(raw)))
            }
            _ => Packet::decode_text(chunk),
        }
    }

    /// Encodes this packet as a WebSocket frame body: text packets with their type digit,
    /// binary messages as the raw bytes.
    pub fn encode(&self) -> Bytes {
        match self {
            Packet::Binary(data) => data.clone(),
            other => {
                let mut buf = BytesMut::with_capacity(other.text_len());
                other.write_text(&mut buf);
                buf.freeze()
            }
        }
    }

    /// True for packets that travel as WebSocket binary frames.
    pub fn is_binary(&self) -> bool {
        matches!(self, Packet::Binary(_))
    }

    /// Appends this packet in its long-polling form (binary as `b` + base64).
    pub fn write_polling(&self, buf: &mut BytesMut) {
        match self {
            Packet::Binary(data) => write_base64(data, buf),
            other => other.write_text(buf),
        }
    }

    fn text_len(&self) -> usize {
        1 + match self {
            Packet::Ping(d) | Packet::Pong(d) | Packet::Message(d) => d.len(),
            Packet::Open(_) => 128,
            _ => 0,
        }
    }

    fn write_text(&self, buf: &mut BytesMut) {
        buf.put_u8(self.type_char() as u8);
        match self {
            Packet::Open(handshake) => {
                // Serialising a struct of strings and integers cannot fail.
                if let Ok(json) = serde_json::to_vec(handshake) {
                    buf.extend_from_slice(&json);
                }
            }
            Packet::Ping(d) | Packet::Pong(d) | Packet::Message(d) => buf.extend_from_slice(d),
            _ => {}
        }
    }
}

fn write_base64(data: &[u8], buf: &mut BytesMut) {
    buf.put_u8(b'b');
    let start = buf.len();
    buf.resize(
        start + base64::encoded_len(data.len(), true).unwrap_or(0),
        0,
    );
    let written = buf
        .get_mut(start..)
        .map_or(0, |out| BASE64.encode_slice(data, out).unwrap_or(0));
    buf.truncate(start + written);
}

/// Whether a text's UTF-8 is still to be checked.
#[derive(Clone, Copy)]
enum Utf8 {
    Valid,
    Unchecked,
}

fn check_utf8(data: Bytes) -> Result<Bytes, DecodeError> {
    std::str::from_utf8(&data).map_err(|_| DecodeError::InvalidUtf8)?;
    Ok(data)
}

/// Splits a long-polling payload into its packets, in order.
///
/// Each item is decoded lazily, so a caller can stop at the first error; packet data shares
/// the payload's memory (except base64-decoded binaries).
pub fn decode_payload(payload: Bytes) -> impl Iterator<Item = Result<Packet, DecodeError>> {
    let mut rest = Some(payload);
    std::iter::from_fn(move || {
        let mut current = rest.take()?;
        if let Some(pos) = current.iter().position(|&b| b == SEPARATOR) {
            let tail = current.split_off(pos);
            rest = Some(tail.slice(1..));
        }
        Some(Packet::decode_polling(current))
    })
}

/// Joins already-framed packets into one long-polling payload.
pub fn encode_payload<'a>(packets: impl IntoIterator<Item = &'a Packet>) -> Bytes {
    let mut buf = BytesMut::new();
    for (i, packet) in packets.into_iter().enumerate() {
        if i > 0 {
            buf.put_u8(SEPARATOR);
        }
        packet.write_polling(&mut buf);
    }
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples_round_trip() {
        for (wire, packet) in [
            ("1", Packet::Close),
            ("2", Packet::Ping(Bytes::new())),
            ("2probe", Packet::Ping(Bytes::from_static(b"probe"))),
            ("3probe", Packet::Pong(Bytes::from_static(b"probe"))),
            ("4hello", Packet::Message(Bytes::from_static(b"hello"))),
            ("5", Packet::Upgrade),
            ("6", Packet::Noop),
        ] {
            assert_eq!(Packet::decode_text(Bytes::from(wire)), Ok(packet.clone()));
            assert_eq!(Packet::decode_str(wire.to_owned()), Ok(packet.clone()));
            assert_eq!(packet.encode(), Bytes::from(wire));
        }
    }

    #[test]
    fn decode_str_refuses_what_decode_text_refuses_but_utf8() {
        for wire in ["", "7", "1x", "5x", "0{"] {
            assert_eq!(
                Packet::decode_str(wire.to_owned()),
                Packet::decode_text(Bytes::from(wire)),
                "{wire:?}"
            );
        }
        assert_eq!(
            Packet::decode_text(Bytes::from_static(b"4\xff")),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn polling_payload_with_binary() {
        let payload = Bytes::from_static(b"4hello\x1ebAQIDBA==");
        let packets: Vec<_> = decode_payload(payload.clone())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            packets,
            vec![
                Packet::Message(Bytes::from_static(b"hello")),
                Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
            ]
        );
        assert_eq!(encode_payload(&packets), payload);
    }

    #[test]
    fn handshake_has_exactly_the_spec_keys() {
        let open = Packet::Open(Handshake {
            sid: "lv_VI97HAXpY6yYWAAAC".into(),
            upgrades: vec!["websocket".into()],
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1_000_000,
        });
        assert_eq!(
            open.encode(),
            Bytes::from_static(
                br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
            )
        );
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert_eq!(Packet::decode_text(Bytes::new()), Err(DecodeError::Empty));
        assert_eq!(
            Packet::decode_text(Bytes::from("abc")),
            Err(DecodeError::UnknownType('a'))
        );
        assert_eq!(
            Packet::decode_text(Bytes::from("1x")),
            Err(DecodeError::UnexpectedData('1'))
        );
        assert_eq!(
            Packet::decode_polling(Bytes::from("b!!")),
            Err(DecodeError::InvalidBase64)
        );
        assert_eq!(
            Packet::decode_text(Bytes::from_static(b"4\xff")),
            Err(DecodeError::InvalidUtf8)
        );
    }
}
