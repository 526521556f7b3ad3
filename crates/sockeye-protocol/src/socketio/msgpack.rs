//! The msgpack parser, byte-compatible with the official `socket.io-msgpack-parser`.
//!
//! A packet is one msgpack map sent as one binary message. The official encoder writes the
//! packet object's own keys in insertion order; the Node server builds events as
//! `{type, data, id?, nsp}`, so that is the order written here. The decoder accepts the keys in
//! any order and ignores unknown ones (the JavaScript client adds `options`). Binary values stay
//! inline as msgpack `bin`.

use bytes::Bytes;

use super::args::{Args, Form};
use super::json::{ACK, CONNECT, CONNECT_ERROR, DISCONNECT, EVENT};
use super::value::Value;
use super::{DecodeError, EncodeError, Encoded, Limits, Packet, PacketData, Str};
use crate::engine::Frame;

fn transcode(e: &dyn std::fmt::Display) -> EncodeError {
    EncodeError::Transcode(e.to_string())
}

/// JSON-form arguments converted to msgpack-form arguments, or the reverse direction's helper.
pub(crate) fn args_to_json(args: &Args) -> Result<Args, EncodeError> {
    let mut builder = Args::builder();
    for value in args.to_values()? {
        builder.push(&value)?;
    }
    Ok(builder.build())
}

/// Writes `value` as msgpack into `buf`.
fn write_value(buf: &mut Vec<u8>, value: &Value) -> Result<(), EncodeError> {
    rmp_serde::encode::write(buf, value).map_err(|e| transcode(&e))
}

/// Raw JSON text of an object (or string) as msgpack.
fn json_to_msgpack(buf: &mut Vec<u8>, json: &[u8]) -> Result<(), EncodeError> {
    let value: Value = serde_json::from_slice(json).map_err(|e| transcode(&e))?;
    write_value(buf, &value)
}

fn write_key(buf: &mut Vec<u8>, key: &str) -> Result<(), EncodeError> {
    rmp::encode::write_str(buf, key).map_err(|e| transcode(&e))
}

fn write_uint(buf: &mut Vec<u8>, n: u64) -> Result<(), EncodeError> {
    rmp::encode::write_uint(buf, n)
        .map(drop)
        .map_err(|e| transcode(&e))
}

/// Encodes a packet as one binary frame.
pub(crate) fn encode(packet: &Packet) -> Result<Encoded, EncodeError> {
    let (kind, has_data, id) = match &packet.data {
        PacketData::Connect(p) => (CONNECT, p.is_some(), None),
        PacketData::Disconnect => (DISCONNECT, false, None),
        PacketData::Event { ack, .. } => (EVENT, true, *ack),
        PacketData::Ack { id, .. } => (ACK, true, Some(*id)),
        PacketData::ConnectError(_) => (CONNECT_ERROR, true, None),
    };
    let entries = 2 + u32::from(has_data) + u32::from(id.is_some());
    let mut buf = Vec::with_capacity(64);
    rmp::encode::write_map_len(&mut buf, entries).map_err(|e| transcode(&e))?;
    write_key(&mut buf, "type")?;
    write_uint(&mut buf, u64::from(kind))?;
    if has_data {
        write_key(&mut buf, "data")?;
        match &packet.data {
            PacketData::Connect(Some(json)) | PacketData::ConnectError(json) => {
                json_to_msgpack(&mut buf, json)?;
            }
            PacketData::Event { name, args, .. } => write_args(&mut buf, Some(name), args)?,
            PacketData::Ack { args, .. } => write_args(&mut buf, None, args)?,
            PacketData::Connect(None) | PacketData::Disconnect => {}
        }
    }
    if let Some(id) = id {
        write_key(&mut buf, "id")?;
        write_uint(&mut buf, id)?;
    }
    write_key(&mut buf, "nsp")?;
    write_key(&mut buf, &packet.ns)?;
    let mut frames = smallvec::SmallVec::new();
    frames.push(Frame::Binary(Bytes::from(buf)));
    Ok(Encoded { frames })
}

/// Writes the data array: the event name (if any) then the arguments.
fn write_args(buf: &mut Vec<u8>, name: Option<&Str>, args: &Args) -> Result<(), EncodeError> {
    let len = u32::try_from(args.len() + usize::from(name.is_some()))
        .map_err(|_| EncodeError::Serialize("too many arguments for msgpack".into()))?;
    rmp::encode::write_array_len(buf, len).map_err(|e| transcode(&e))?;
    if let Some(name) = name {
        write_key(buf, name)?;
    }
    match args.form {
        Form::MsgPack => {
            buf.extend_from_slice(args.raw.get(args.elems.clone()).unwrap_or_default());
        }
        Form::Json => {
            for value in args.to_values()? {
                write_value(buf, &value)?;
            }
        }
    }
    Ok(())
}

/// A bounds-checked reader over a msgpack message.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

const TRUNCATED: DecodeError = DecodeError::InvalidMsgPack("truncated message");

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(TRUNCATED)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(TRUNCATED)?;
        let s = self.buf.get(self.pos..end).ok_or(TRUNCATED)?;
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn len(&mut self, n: usize) -> Result<usize, DecodeError> {
        usize::try_from(self.be(n)?).map_err(|_| TRUNCATED)
    }

    /// A map header's entry count.
    fn map_len(&mut self) -> Result<usize, DecodeError> {
        match self.byte()? {
            m @ 0x80..=0x8f => Ok(usize::from(m & 0x0f)),
            0xde => self.len(2),
            0xdf => self.len(4),
            _ => Err(DecodeError::InvalidMsgPack("a packet must be a map")),
        }
    }

    /// A string value.
    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.len(1)?,
            0xda => self.len(2)?,
            0xdb => self.len(4)?,
            _ => return Err(DecodeError::InvalidMsgPack("expected a string")),
        };
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// An integer value; `None` (nothing consumed) for anything else.
    fn int(&mut self) -> Result<Option<i128>, DecodeError> {
        let start = self.pos;
        let n = match self.byte()? {
            m @ 0x00..=0x7f => i128::from(m),
            m @ 0xe0..=0xff => i128::from(i8::from_be_bytes([m])),
            0xcc => i128::from(self.be(1)?),
            0xcd => i128::from(self.be(2)?),
            0xce => i128::from(self.be(4)?),
            0xcf => i128::from(self.be(8)?),
            0xd0 => i128::from(i8::from_be_bytes([self.byte()?])),
            0xd1 => {
                let b = self.take(2)?;
                i128::from(i16::from_be_bytes([
                    b.first().copied().unwrap_or(0),
                    b.get(1).copied().unwrap_or(0),
                ]))
            }
            0xd2 => {
                let mut a = [0u8; 4];
                a.copy_from_slice(self.take(4)?);
                i128::from(i32::from_be_bytes(a))
            }
            0xd3 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(self.take(8)?);
                i128::from(i64::from_be_bytes(a))
            }
            // Not an integer: the caller rejects the packet, so nothing needs skipping.
            _ => {
                self.pos = start;
                return Ok(None);
            }
        };
        Ok(Some(n))
    }

    /// Skips one value, iteratively; containers nested deeper than `max_depth` are an error.
    fn skip(&mut self, max_depth: usize) -> Result<(), DecodeError> {
        // Items still to read at each open level.
        let mut stack: Vec<usize> = vec![1];
        while let Some(top) = stack.last_mut() {
            if *top == 0 {
                stack.pop();
                continue;
            }
            *top -= 1;
            let children = match self.byte()? {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
                m @ 0x80..=0x8f => usize::from(m & 0x0f) * 2,
                m @ 0x90..=0x9f => usize::from(m & 0x0f),
                m @ 0xa0..=0xbf => {
                    self.take(usize::from(m & 0x1f))?;
                    0
                }
                0xc1 => return Err(DecodeError::InvalidMsgPack("reserved marker 0xc1")),
                0xc4 | 0xd9 => self.skip_sized(1, 0)?,
                0xc5 | 0xda => self.skip_sized(2, 0)?,
                0xc6 | 0xdb => self.skip_sized(4, 0)?,
                0xc7 => self.skip_sized(1, 1)?,
                0xc8 => self.skip_sized(2, 1)?,
                0xc9 => self.skip_sized(4, 1)?,
                0xca => self.take(4).map(|_| 0)?,
                0xcb => self.take(8).map(|_| 0)?,
                0xcc | 0xd0 => self.take(1).map(|_| 0)?,
                0xcd | 0xd1 => self.take(2).map(|_| 0)?,
                0xce | 0xd2 => self.take(4).map(|_| 0)?,
                0xcf | 0xd3 => self.take(8).map(|_| 0)?,
                0xd4 => self.take(2).map(|_| 0)?,
                0xd5 => self.take(3).map(|_| 0)?,
                0xd6 => self.take(5).map(|_| 0)?,
                0xd7 => self.take(9).map(|_| 0)?,
                0xd8 => self.take(17).map(|_| 0)?,
                0xdc => self.len(2)?,
                0xdd => self.len(4)?,
                0xde => self.len(2)?.saturating_mul(2),
                0xdf => self.len(4)?.saturating_mul(2),
            };
            if children > 0 {
                // Every child takes at least one byte: a count beyond the bytes left is a lie.
                if children > self.buf.len().saturating_sub(self.pos) {
                    return Err(TRUNCATED);
                }
                stack.push(children);
                if stack.len() > max_depth.saturating_add(1) {
                    return Err(DecodeError::TooDeep { max: max_depth });
                }
            }
        }
        Ok(())
    }

    /// Skips a length-prefixed value (`len_size` bytes of length, `extra` bytes of ext type).
    fn skip_sized(&mut self, len_size: usize, extra: usize) -> Result<usize, DecodeError> {
        let len = self.len(len_size)?;
        self.take(extra.saturating_add(len))?;
        Ok(0)
    }
}

/// Decodes one binary message as a packet.
pub(crate) fn decode(message: &Bytes, limits: &Limits) -> Result<Packet, DecodeError> {
    if message.len() > limits.max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            max: limits.max_packet_size,
        });
    }
    let mut r = Reader {
        buf: message,
        pos: 0,
    };
    let entries = r.map_len()?;
    let (mut kind, mut nsp, mut id, mut data) = (None, None, None, None);
    for _ in 0..entries {
        match r.str()? {
            "type" => {
                kind = match r.int()? {
                    Some(n @ 0..=4) => u8::try_from(n).ok(),
                    _ => return Err(DecodeError::InvalidMsgPack("invalid packet type")),
                };
            }
            "nsp" => {
                let ns = r.str()?;
                if ns.len() > limits.max_namespace_len {
                    return Err(DecodeError::NamespaceTooLong {
                        max: limits.max_namespace_len,
                    });
                }
                nsp = Some(ns);
            }
            "id" => {
                let n = r
                    .int()?
                    .ok_or(DecodeError::InvalidMsgPack("ack id must be an integer"))?;
                id = Some(
                    u64::try_from(n)
                        .ok()
                        .filter(|&n| n <= limits.max_ack_id)
                        .ok_or(DecodeError::AckIdTooLarge {
                            max: limits.max_ack_id,
                        })?,
                );
            }
            "data" => {
                let start = r.pos;
                r.skip(limits.max_depth)?;
                data = Some(start..r.pos);
            }
            _ => r.skip(limits.max_depth)?,
        }
    }
    if r.pos != message.len() {
        return Err(DecodeError::InvalidMsgPack(
            "trailing bytes after the packet",
        ));
    }
    let kind = kind.ok_or(DecodeError::InvalidMsgPack("missing packet type"))?;
    let nsp = nsp.ok_or(DecodeError::InvalidMsgPack("missing namespace"))?;
    if id.is_some() && matches!(kind, CONNECT | DISCONNECT | CONNECT_ERROR) {
        return Err(DecodeError::UnexpectedAckId(kind));
    }
    let ns = if nsp == "/" {
        Str::ROOT
    } else {
        Str::from(nsp)
    };
    let data = data.map(|range| message.slice(range));
    let first = data.as_ref().and_then(|d| d.first().copied());
    let is_map = matches!(first, Some(0x80..=0x8f | 0xde | 0xdf));
    let is_str = matches!(first, Some(0xa0..=0xbf | 0xd9..=0xdb));
    let packet_data = match (kind, data) {
        (CONNECT, None) => PacketData::Connect(None),
        (CONNECT, Some(d)) if is_map => PacketData::Connect(Some(to_json(&d, limits.max_depth)?)),
        (CONNECT, Some(_)) => return Err(DecodeError::ConnectPayloadNotObject),
        (DISCONNECT, None) => PacketData::Disconnect,
        (DISCONNECT, Some(_)) => return Err(DecodeError::UnexpectedPayload(kind)),
        (CONNECT_ERROR, Some(d)) if is_str => {
            // rmp-serde hands invalid UTF-8 strings over as binary: check the string first.
            Reader { buf: &d, pos: 0 }.str()?;
            PacketData::ConnectError(to_json(&d, limits.max_depth)?)
        }
        (CONNECT_ERROR, Some(d)) if is_map => {
            PacketData::ConnectError(to_json(&d, limits.max_depth)?)
        }
        (CONNECT_ERROR, Some(_)) => return Err(DecodeError::InvalidConnectError),
        (_, None) => return Err(DecodeError::MissingPayload(kind)),
        (EVENT, Some(d)) => {
            let (name, args) = read_array(d, true)?;
            PacketData::Event {
                name: name.ok_or(DecodeError::InvalidEventName)?,
                args,
                ack: id,
            }
        }
        (_, Some(d)) => PacketData::Ack {
            id: id.ok_or(DecodeError::MissingAckId)?,
            args: read_array(d, false)?.1,
        },
    };
    Ok(Packet {
        ns,
        data: packet_data,
    })
}

/// A msgpack value (already bounded in depth) as JSON text, bounded in depth again: binary
/// becomes an array of numbers in JSON, one level deeper than it was, and the packet must
/// still decode (under the same limits) once it is encoded again.
fn to_json(data: &[u8], max_depth: usize) -> Result<Bytes, DecodeError> {
    let value: Value =
        rmp_serde::from_slice(data).map_err(|e| DecodeError::InvalidPayload(e.to_string()))?;
    let json =
        serde_json::to_vec(&value).map_err(|e| DecodeError::InvalidPayload(e.to_string()))?;
    super::json::check_depth(&json, max_depth)?;
    Ok(Bytes::from(json))
}

/// Reads a data array: the event name (if `with_name`) and where the arguments are.
fn read_array(data: Bytes, with_name: bool) -> Result<(Option<Str>, Args), DecodeError> {
    let mut r = Reader { buf: &data, pos: 0 };
    let count = match r.byte()? {
        m @ 0x90..=0x9f => usize::from(m & 0x0f),
        0xdc => r.len(2)?,
        0xdd => r.len(4)?,
        _ => return Err(DecodeError::PayloadNotArray),
    };
    let name = if with_name {
        if count == 0 {
            return Err(DecodeError::InvalidEventName);
        }
        Some(Str::from(
            r.str().map_err(|_| DecodeError::InvalidEventName)?,
        ))
    } else {
        None
    };
    let start = r.pos;
    let len = count - usize::from(with_name);
    let end = data.len();
    Ok((
        name,
        Args {
            form: Form::MsgPack,
            elems: start..end,
            raw: data,
            skip_first: with_name,
            len,
            attachments: Vec::new(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Bytes {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
            .into()
    }

    /// The Node server's CONNECT reply with the official msgpack parser and recovery off:
    /// `{type:0, nsp:"/", data:{sid:"abc", pid:undefined}}`, bytes taken from notepack.io.
    #[test]
    fn notepack_undefined_reads_as_null() {
        let bytes = hex("83a47479706500a36e7370a12fa46461746182a3736964a3616263a3706964d40000");
        let packet = decode(&bytes, &Limits::default()).unwrap();
        assert_eq!(
            packet.data,
            PacketData::Connect(Some(Bytes::from_static(br#"{"sid":"abc","pid":null}"#)))
        );
    }

    /// Binary in a CONNECT payload becomes an array in its JSON form, one level deeper: the
    /// depth limit holds for that form too (fuzz finding: such a packet decoded, and its
    /// re-encoding did not).
    #[test]
    fn connect_payload_is_bounded_in_depth_as_json() {
        // {type:0, nsp:"/", data:{a: bin8 [1]}}
        let bytes = hex("83a47479706500a36e7370a12fa46461746181a161c40101");
        let shallow = Limits {
            max_depth: 1,
            ..Limits::default()
        };
        assert!(matches!(
            decode(&bytes, &shallow),
            Err(DecodeError::TooDeep { max: 1 })
        ));
        assert_eq!(
            decode(&bytes, &Limits::default()).unwrap().data,
            PacketData::Connect(Some(Bytes::from_static(br#"{"a":[1]}"#)))
        );
    }

    /// Any other extension (here fixext 1 of type 5) is refused, not guessed at.
    #[test]
    fn other_extensions_are_refused() {
        let bytes = hex("83a47479706500a36e7370a12fa46461746182a3736964a3616263a3706964d40500");
        assert!(matches!(
            decode(&bytes, &Limits::default()),
            Err(DecodeError::InvalidPayload(_))
        ));
    }
}
