//! Engine.IO v3 wire formats (the protocol of the JavaScript clients 2.x), as the reference
//! server still accepts them with `allowEIO3`.
//!
//! What differs from v4 ([`crate::engine`]):
//!
//! - **Polling payloads** are `<length>:<packet>` repeated, where `length` counts the UTF-16
//!   code units of the packet (a JavaScript string's `length`), not bytes and not characters.
//!   An empty payload is `0:`.
//! - **Binary packets** keep their type: `b4<base64>` inside a text payload, `0x04` + data in a
//!   WebSocket binary frame.
//! - **XHR2 binary payloads** (`Content-Type: application/octet-stream`, sent when the client
//!   did not ask for `b64=1` and the payload holds binary): each packet is one byte `0`
//!   (string) or `1` (binary), the packet's length as decimal digits, one byte per digit
//!   (values 0-9), the byte `0xFF`, then the packet: the UTF-8 bytes of a text packet, or the
//!   type byte and the data of a binary one.
//! - **JSONP polling** (query parameter `j`): the client POSTs a form with the text payload in
//!   field `d`, newlines escaped as `\n`; the server answers `___eio[<j>]("<payload>");`.
//!
//! Decoding is strict where the reference is lenient with garbage (a length written as `1e1`,
//! digits over 9, a body shorter than its length field, lone UTF-16 surrogates): such input is
//! refused with a [`V3Error`], never guessed at.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{BufMut, Bytes, BytesMut};

use crate::engine::{DecodeError, Frame, Packet};

/// Most digits a length field may have: 10 digits hold any length up to 9 999 999 999, far
/// beyond any payload a server accepts; the reference allows 310.
pub const MAX_LENGTH_DIGITS: usize = 10;

/// The byte that ends the length field of an XHR2 binary payload entry.
const LENGTH_END: u8 = 0xff;

/// The packet type byte of a binary message (`message`).
const MESSAGE_TYPE: u8 = 4;

/// Why bytes are not a valid Engine.IO v3 payload or packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V3Error {
    /// The payload had no bytes at all (the reference answers an empty body with an error too).
    #[error("empty engine.io v3 payload: an empty payload is written `0:`")]
    Empty,
    /// A length field is missing, is not made of decimal digits, or is too long.
    #[error(
        "engine.io v3 payload: bad length field at byte {at}: expected 1 to 10 decimal digits then ':'"
    )]
    BadLength {
        /// Byte offset of the field in the payload.
        at: usize,
    },
    /// The payload ends before the length its field announced.
    #[error(
        "engine.io v3 payload: packet at byte {at} announces {declared} units but the payload ends first"
    )]
    Truncated {
        /// Byte offset of the packet in the payload.
        at: usize,
        /// The announced length.
        declared: usize,
    },
    /// The announced length ends between the two halves of a UTF-16 surrogate pair (a
    /// character outside the Basic Multilingual Plane): the packet would hold half a character.
    #[error("engine.io v3 payload: the length at byte {at} splits a UTF-16 surrogate pair")]
    SplitSurrogate {
        /// Byte offset of the packet in the payload.
        at: usize,
    },
    /// A text payload, or a string entry of a binary payload, is not UTF-8.
    #[error("engine.io v3 payload is not valid UTF-8")]
    InvalidUtf8,
    /// A binary packet has a type other than `message` (4), or no type at all.
    #[error("engine.io v3 binary packet of type {0:?}: only message (4) packets carry binary data")]
    BinaryType(Option<u8>),
    /// One packet is invalid.
    #[error(transparent)]
    Packet(#[from] DecodeError),
    /// A JSONP body has no `d` field.
    #[error("engine.io JSONP body has no `d` form field")]
    JsonpNoData,
}

/// How a polling session writes its payloads (fixed at its handshake).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollingFormat {
    /// The client asked for `b64=1`: binary goes out as `b4<base64>` in text payloads; otherwise
    /// a payload holding binary is written as an XHR2 binary payload.
    pub b64: bool,
}

/// Decodes one v3 text packet: a WebSocket text frame, or one packet of a text payload.
/// `b<type><base64>` is a binary packet.
pub fn decode_text(text: Bytes) -> Result<Packet, V3Error> {
    match text.first() {
        Some(b'b') => {
            let Some(&kind) = text.get(1) else {
                return Err(V3Error::BinaryType(None));
            };
            let digit = kind.wrapping_sub(b'0');
            if digit != MESSAGE_TYPE {
                return Err(V3Error::BinaryType(Some(digit)));
            }
            let raw = BASE64
                .decode(text.slice(2..))
                .map_err(|_| DecodeError::InvalidBase64)?;
            Ok(Packet::Binary(Bytes::from(raw)))
        }
        _ => Ok(Packet::decode_text(text)?),
    }
}

/// Decodes a v3 WebSocket binary frame: the type byte, then the data.
pub fn decode_binary(frame: Bytes) -> Result<Packet, V3Error> {
    match frame.first() {
        Some(&MESSAGE_TYPE) => Ok(Packet::Binary(frame.slice(1..))),
        other => Err(V3Error::BinaryType(other.copied())),
    }
}

/// Splits a v3 text payload (`<length>:<packet>...`, lengths in UTF-16 code units) into its
/// packets. Empty packets (`0:`) are skipped, as by the reference.
pub fn decode_payload(payload: Bytes) -> Result<Vec<Packet>, V3Error> {
    if payload.is_empty() {
        return Err(V3Error::Empty);
    }
    let text = std::str::from_utf8(&payload).map_err(|_| V3Error::InvalidUtf8)?;
    let mut packets = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let rest = text.get(pos..).unwrap_or_default();
        let colon = rest
            .bytes()
            .take(MAX_LENGTH_DIGITS + 1)
            .position(|b| b == b':')
            .ok_or(V3Error::BadLength { at: pos })?;
        let digits = rest.get(..colon).unwrap_or_default();
        let units = parse_digits(digits.bytes().map(|b| b.wrapping_sub(b'0')))
            .ok_or(V3Error::BadLength { at: pos })?;
        let start = pos + colon + 1;
        let body = text.get(start..).unwrap_or_default();
        let len = utf16_prefix_len(body, units).map_err(|split| match split {
            Utf16Prefix::Short => V3Error::Truncated {
                at: pos,
                declared: units,
            },
            Utf16Prefix::Split => V3Error::SplitSurrogate { at: pos },
        })?;
        if len > 0 {
            packets.push(decode_text(payload.slice(start..start + len))?);
        }
        pos = start + len;
    }
    Ok(packets)
}

/// Decodes an XHR2 binary payload (see the module docs).
pub fn decode_binary_payload(payload: Bytes) -> Result<Vec<Packet>, V3Error> {
    if payload.is_empty() {
        return Err(V3Error::Empty);
    }
    let mut packets = Vec::new();
    let mut pos = 0;
    while let Some(&kind) = payload.get(pos) {
        let field = payload.get(pos + 1..).unwrap_or_default();
        let end = field
            .iter()
            .take(MAX_LENGTH_DIGITS + 1)
            .position(|&b| b == LENGTH_END)
            .ok_or(V3Error::BadLength { at: pos })?;
        let len = parse_digits(field.get(..end).unwrap_or_default().iter().copied())
            .ok_or(V3Error::BadLength { at: pos })?;
        let start = pos + 1 + end + 1;
        let stop = start
            .checked_add(len)
            .filter(|&stop| stop <= payload.len())
            .ok_or(V3Error::Truncated {
                at: pos,
                declared: len,
            })?;
        let body = payload.slice(start..stop);
        let packet = if kind == 0 {
            std::str::from_utf8(&body).map_err(|_| V3Error::InvalidUtf8)?;
            decode_text(body)?
        } else {
            decode_binary(body)?
        };
        packets.push(packet);
        pos = stop;
    }
    Ok(packets)
}

/// Reads a JSONP POST body (`application/x-www-form-urlencoded`, field `d`) and undoes the
/// client's newline escaping (`\n` stands for a newline, `\\n` for a backslash and `n`). The
/// result is a text payload of the session's protocol version.
pub fn decode_jsonp_body(body: &[u8]) -> Result<Bytes, V3Error> {
    let data = form_field(body, b"d").ok_or(V3Error::JsonpNoData)?;
    // Two passes, as the reference: first `\n` becomes a newline unless a backslash comes
    // right before it, then `\\n` becomes `\n`.
    let unescaped = replace_all(&data, |rest| {
        if rest.starts_with("\\\\n") {
            Some(("\\\\n", 3))
        } else if rest.starts_with("\\n") {
            Some(("\n", 2))
        } else {
            None
        }
    });
    let unescaped = replace_all(&unescaped, |rest| {
        rest.starts_with("\\\\n").then_some(("\\n", 3))
    });
    Ok(Bytes::from(unescaped))
}

/// Scans `text` left to right; where `at` matches, writes its replacement and skips the
/// matched characters (all ASCII), else copies one character.
fn replace_all(text: &str, at: impl Fn(&str) -> Option<(&'static str, usize)>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some((replacement, skip)) = at(rest) {
            out.push_str(replacement);
            rest = rest.get(skip..).unwrap_or_default();
        } else {
            out.push(c);
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
        }
    }
    out
}

/// The value of form field `name` in a URL-encoded body (the first occurrence), decoded.
fn form_field(body: &[u8], name: &[u8]) -> Option<String> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let mut halves = pair.splitn(2, |&b| b == b'=');
        let key = halves.next()?;
        let value = halves.next().unwrap_or_default();
        (percent_decode(key)? == name)
            .then(|| percent_decode(value))?
            .and_then(|v| String::from_utf8(v).ok())
    })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte. A `%` not
/// followed by two hex digits is kept as is (as browsers' URLSearchParams do).
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = input.get(i + 1..i + 3).and_then(|h| {
                    let h = std::str::from_utf8(h).ok()?;
                    u8::from_str_radix(h, 16).ok()
                });
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            other => out.push(other),
        }
        i += 1;
    }
    Some(out)
}

/// Decimal digits given as values 0-9 (text digits minus `'0'`, or the raw bytes of a binary
/// payload's length field): `None` when empty, too long, or not all digits.
fn parse_digits(digits: impl Iterator<Item = u8>) -> Option<usize> {
    let mut value: usize = 0;
    let mut count = 0;
    for d in digits {
        if d > 9 || count == MAX_LENGTH_DIGITS {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(usize::from(d))?;
        count += 1;
    }
    (count > 0).then_some(value)
}

enum Utf16Prefix {
    /// The text has fewer units than asked for.
    Short,
    /// The count ends inside a surrogate pair.
    Split,
}

/// Byte length of the prefix of `text` that is exactly `units` UTF-16 code units long.
fn utf16_prefix_len(text: &str, units: usize) -> Result<usize, Utf16Prefix> {
    let mut counted = 0;
    for (at, c) in text.char_indices() {
        if counted == units {
            return Ok(at);
        }
        counted += c.len_utf16();
        if counted > units {
            return Err(Utf16Prefix::Split);
        }
    }
    if counted == units {
        Ok(text.len())
    } else {
        Err(Utf16Prefix::Short)
    }
}

/// Writes one outgoing v3 payload for a polling GET, packet by packet, in the session's
/// format: a text payload, or an XHR2 binary payload when the client takes binary and some
/// packet is binary (decided up front by [`PayloadWriter::new`]).
#[derive(Debug)]
pub struct PayloadWriter {
    buf: BytesMut,
    binary: bool,
}

impl PayloadWriter {
    /// A writer for a payload that will hold binary packets (`has_binary`) or not.
    pub fn new(format: PollingFormat, has_binary: bool) -> Self {
        PayloadWriter {
            buf: BytesMut::new(),
            binary: has_binary && !format.b64,
        }
    }

    /// True when the payload is an XHR2 binary payload (`application/octet-stream`).
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// Appends a whole text packet (type digit included, UTF-8).
    pub fn text(&mut self, packet: &[u8]) {
        if self.binary {
            self.entry(0, packet.len());
            self.buf.extend_from_slice(packet);
        } else {
            let units =
                std::str::from_utf8(packet).map_or(packet.len(), |s| s.encode_utf16().count());
            self.buf.extend_from_slice(units.to_string().as_bytes());
            self.buf.put_u8(b':');
            self.buf.extend_from_slice(packet);
        }
    }

    /// Appends a binary message.
    pub fn binary(&mut self, data: &[u8]) {
        if self.binary {
            self.entry(1, data.len() + 1);
            self.buf.put_u8(MESSAGE_TYPE);
            self.buf.extend_from_slice(data);
        } else {
            let encoded = BASE64.encode(data);
            self.buf
                .extend_from_slice((encoded.len() + 2).to_string().as_bytes());
            self.buf.extend_from_slice(b":b4");
            self.buf.extend_from_slice(encoded.as_bytes());
        }
    }

    /// Appends an outgoing frame.
    pub fn frame(&mut self, frame: &Frame) {
        match frame {
            Frame::Text(text) => self.text(text),
            Frame::Binary(data) => self.binary(data),
        }
    }

    fn entry(&mut self, kind: u8, len: usize) {
        self.buf.put_u8(kind);
        for digit in len.to_string().bytes() {
            self.buf.put_u8(digit - b'0');
        }
        self.buf.put_u8(LENGTH_END);
    }

    /// The payload; an empty text payload is `0:`.
    pub fn finish(mut self) -> Bytes {
        if self.buf.is_empty() && !self.binary {
            self.buf.extend_from_slice(b"0:");
        }
        self.buf.freeze()
    }
}

/// Encodes a v3 WebSocket frame for an outgoing frame: text unchanged, binary with its type
/// byte in front.
pub fn websocket_binary(data: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(data.len() + 1);
    buf.put_u8(MESSAGE_TYPE);
    buf.extend_from_slice(data);
    buf.freeze()
}

/// Wraps a text payload in a JSONP answer: `___eio[<index>]("<payload as a JSON string>");`,
/// with U+2028 and U+2029 escaped so that the answer is valid JavaScript. `index` keeps only
/// the digits of the client's `j` parameter, as the reference does.
pub fn jsonp_wrap(index: &str, payload: &[u8]) -> Bytes {
    let text = String::from_utf8_lossy(payload);
    let json = serde_json::to_string(&text)
        .unwrap_or_default()
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    let digits: String = index.chars().filter(char::is_ascii_digit).collect();
    Bytes::from(format!("___eio[{digits}]({json});"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Packet {
        Packet::Message(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn lengths_count_utf16_code_units() {
        // "4é🚀": 1 + 1 + 2 UTF-16 units, 1 + 2 + 4 bytes.
        let mut w = PayloadWriter::new(PollingFormat::default(), false);
        w.text("4é🚀".as_bytes());
        w.text(b"2");
        let payload = w.finish();
        assert_eq!(payload, Bytes::from("4:4é🚀1:2"));
        assert_eq!(
            decode_payload(payload).unwrap(),
            vec![text("é🚀"), Packet::Ping(Bytes::new())]
        );
    }

    #[test]
    fn base64_binary_keeps_its_type() {
        let mut w = PayloadWriter::new(PollingFormat { b64: true }, true);
        w.binary(&[1, 2, 3]);
        w.text(b"4x");
        let payload = w.finish();
        assert_eq!(payload, Bytes::from("6:b4AQID2:4x"));
        assert_eq!(
            decode_payload(payload).unwrap(),
            vec![Packet::Binary(Bytes::from_static(&[1, 2, 3])), text("x")]
        );
    }

    #[test]
    fn xhr2_binary_payload_round_trips() {
        let mut w = PayloadWriter::new(PollingFormat::default(), true);
        w.text("4ü".as_bytes());
        w.binary(&[9; 12]);
        assert!(w.is_binary());
        let payload = w.finish();
        let mut expected = vec![0, 3, 0xff, b'4', 0xc3, 0xbc, 1, 1, 3, 0xff, 4];
        expected.extend([9; 12]);
        assert_eq!(payload.as_ref(), expected.as_slice());
        assert_eq!(
            decode_binary_payload(payload).unwrap(),
            vec![text("ü"), Packet::Binary(Bytes::from_static(&[9; 12]))]
        );
    }

    #[test]
    fn empty_payloads() {
        assert_eq!(
            PayloadWriter::new(PollingFormat::default(), false).finish(),
            Bytes::from("0:")
        );
        assert_eq!(decode_payload(Bytes::from("0:")).unwrap(), vec![]);
        assert_eq!(decode_payload(Bytes::new()), Err(V3Error::Empty));
    }

    #[test]
    fn hostile_payloads_are_refused() {
        for (input, err) in [
            ("5:4abc", V3Error::Truncated { at: 0, declared: 5 }),
            (":4abc", V3Error::BadLength { at: 0 }),
            ("1e1:4abcdefghi", V3Error::BadLength { at: 0 }),
            ("99999999999:4", V3Error::BadLength { at: 0 }),
            ("2:4a2", V3Error::BadLength { at: 4 }),
            ("2:4🚀", V3Error::SplitSurrogate { at: 0 }),
            ("2:b1AQ==", V3Error::BinaryType(Some(1))),
            ("1:b", V3Error::BinaryType(None)),
        ] {
            assert_eq!(decode_payload(Bytes::from(input)), Err(err), "{input}");
        }
        assert_eq!(
            decode_payload(Bytes::from("4:b4!!")),
            Err(V3Error::Packet(DecodeError::InvalidBase64))
        );
        assert_eq!(
            decode_payload(Bytes::from_static(b"2:4\xff")),
            Err(V3Error::InvalidUtf8)
        );
        for (input, err) in [
            (
                &[0u8, 5, 0xff, b'4'][..],
                V3Error::Truncated { at: 0, declared: 5 },
            ),
            (&[0, 12, 0xff, b'4'], V3Error::BadLength { at: 0 }),
            (
                &[0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0xff],
                V3Error::BadLength { at: 0 },
            ),
            (&[1, 1, 0xff, 2], V3Error::BinaryType(Some(2))),
            (&[0, 2, 0xff, b'4', 0xff], V3Error::InvalidUtf8),
            (&[0, 1], V3Error::BadLength { at: 0 }),
        ] {
            assert_eq!(
                decode_binary_payload(Bytes::copy_from_slice(input)),
                Err(err),
                "{input:?}"
            );
        }
    }

    #[test]
    fn a_string_entry_of_a_binary_payload_may_hold_base64() {
        let payload = [&[0u8, 6, 0xff][..], b"b4AQID"].concat();
        assert_eq!(
            decode_binary_payload(Bytes::from(payload)).unwrap(),
            vec![Packet::Binary(Bytes::from_static(&[1, 2, 3]))]
        );
    }

    #[test]
    fn websocket_binary_frames_carry_the_type_byte() {
        assert_eq!(websocket_binary(&[7, 8]), Bytes::from_static(&[4, 7, 8]));
        assert_eq!(
            decode_binary(Bytes::from_static(&[4, 7, 8])).unwrap(),
            Packet::Binary(Bytes::from_static(&[7, 8]))
        );
        assert_eq!(decode_binary(Bytes::new()), Err(V3Error::BinaryType(None)));
    }

    #[test]
    fn jsonp_bodies_and_answers() {
        // What the 2.x client posts for the payload `6:4a\nb` (newline escaped as `\n`), and a
        // literal backslash-n (escaped as `\\n`).
        let body = b"d=6%3A4a%5Cnb7%3A4a%5C%5Cnb";
        assert_eq!(
            decode_jsonp_body(body).unwrap(),
            Bytes::from("6:4a\nb7:4a\\nb")
        );
        assert_eq!(decode_jsonp_body(b"x=1"), Err(V3Error::JsonpNoData));
        assert_eq!(
            jsonp_wrap("3x", "4:4a\u{2028}\"".as_bytes()),
            Bytes::from("___eio[3](\"4:4a\\u2028\\\"\");")
        );
    }
}
