//! The default parser: Socket.IO packets as text, `<type>[<n>-][<nsp>,][<id>][<json>]`.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::args::{Args, Form};
use super::value::Value;
use super::{DecodeError, EncodeError, Encoded, Limits, Packet, PacketData, Str, scan};
use crate::engine::Frame;

pub(crate) const CONNECT: u8 = 0;
pub(crate) const DISCONNECT: u8 = 1;
pub(crate) const EVENT: u8 = 2;
pub(crate) const ACK: u8 = 3;
pub(crate) const CONNECT_ERROR: u8 = 4;
pub(crate) const BINARY_EVENT: u8 = 5;
pub(crate) const BINARY_ACK: u8 = 6;

/// A binary packet whose header was read, waiting for its attachments.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) packet: Packet,
    pub(crate) expected: usize,
    pub(crate) received: Vec<Bytes>,
    pub(crate) size: usize,
}

/// The outcome of decoding one text message.
pub(crate) enum Decoded {
    Packet(Packet),
    Pending(Pending),
}

/// Checks that `json` nests arrays and objects at most `max` deep, without recursion and without
/// parsing: brackets inside strings are skipped.
pub(crate) fn check_depth(json: &[u8], max: usize) -> Result<(), DecodeError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut pos = 0;
    while let Some(&b) = json.get(pos) {
        pos += 1;
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            } else {
                // Payloads are mostly string contents: jump over the plain run in 16-byte
                // steps instead of one branchy step per byte (this loop was 17 % of the
                // server's CPU echoing 4 KiB strings).
                pos += plain_string_run(json.get(pos..).unwrap_or_default());
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(DecodeError::TooDeep { max });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// How many bytes at the start of `bytes` are neither `"` nor a backslash (string contents that
/// cannot end the string or escape anything).
fn plain_string_run(bytes: &[u8]) -> usize {
    const STEP: usize = 16;
    let mut run = 0;
    for chunk in bytes.chunks_exact(STEP) {
        // No early exit inside the chunk, so the comparison compiles to vector instructions.
        let special = chunk
            .iter()
            .fold(false, |found, &b| found | (b == b'"') | (b == b'\\'));
        if special {
            break;
        }
        run += STEP;
    }
    let rest = bytes.get(run..).unwrap_or_default();
    run + rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
        .unwrap_or(rest.len())
}

fn invalid_json(e: &dyn fmt::Display) -> DecodeError {
    DecodeError::InvalidPayload(e.to_string())
}

/// Reads a JSON array payload, checked in one pass (valid JSON, nested at most `max_depth`):
/// the event name (if `with_name`) and the arguments as a raw slice. With attachments, every
/// placeholder is checked against them.
pub(crate) fn parse_array(
    raw: Bytes,
    with_name: bool,
    attachments: Vec<Bytes>,
    max_depth: usize,
) -> Result<(Option<Str>, Args), DecodeError> {
    let layout = scan::array(&raw, max_depth)?;
    let open = layout.open;
    let (name, elems, len) = if with_name {
        let (start, end) = layout.first.ok_or(DecodeError::InvalidEventName)?;
        let text = raw.get(start..end).ok_or(DecodeError::InvalidEventName)?;
        let name = match scan::plain_string(text) {
            // Checked as UTF-8 by the scan.
            Some(plain) => {
                Str::from(std::str::from_utf8(plain).map_err(|_| DecodeError::InvalidEventName)?)
            }
            None => serde_json::from_slice(text).map_err(|_| DecodeError::InvalidEventName)?,
        };
        let elems = match layout.second_start {
            Some(s) => s..layout.last_end,
            None => end..end,
        };
        (Some(name), elems, layout.count - 1)
    } else {
        let elems = match layout.first {
            Some((s, _)) => s..layout.last_end,
            None => open..open,
        };
        (None, elems, layout.count)
    };
    let args = Args {
        form: Form::Json,
        raw,
        elems,
        skip_first: with_name,
        len,
        attachments,
    };
    if !args.attachments.is_empty() {
        validate_placeholders(&args)?;
    }
    Ok((name, args))
}

/// Checks that every placeholder of JSON arguments refers to an attachment and every attachment
/// is referred to.
pub(crate) fn validate_placeholders(args: &Args) -> Result<(), DecodeError> {
    let mut tree: Value = serde_json::from_slice(&args.raw).map_err(|e| invalid_json(&e))?;
    tree.fill_placeholders(&args.attachments)
}

/// Checks that a payload is a JSON object (CONNECT) or an object or string (CONNECT_ERROR).
fn check_object(payload: &[u8], allow_string: bool, err: DecodeError) -> Result<(), DecodeError> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    let shape_ok = first == Some(&b'{') || (allow_string && first == Some(&b'"'));
    if !shape_ok {
        return Err(err);
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(payload).map_err(|e| invalid_json(&e))?;
    Ok(())
}

/// Decodes one text message (the engine MESSAGE data, without its `4`).
pub(crate) fn decode(text: Bytes, limits: &Limits) -> Result<Decoded, DecodeError> {
    if text.len() > limits.max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            max: limits.max_packet_size,
        });
    }
    let &first = text.first().ok_or(DecodeError::Empty)?;
    let kind = match first {
        b'0'..=b'6' => first - b'0',
        other => return Err(DecodeError::UnknownType(char::from(other))),
    };
    let mut pos = 1;

    let mut expected = 0usize;
    if kind == BINARY_EVENT || kind == BINARY_ACK {
        let digits = count_digits(text.get(pos..).unwrap_or_default());
        if digits == 0 || text.get(pos + digits) != Some(&b'-') {
            return Err(DecodeError::InvalidAttachmentCount);
        }
        let count = parse_decimal(text.get(pos..pos + digits).unwrap_or_default())
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(usize::MAX);
        if count > limits.max_attachments {
            return Err(DecodeError::TooManyAttachments {
                count,
                max: limits.max_attachments,
            });
        }
        expected = count;
        pos += digits + 1;
    }

    let ns = if text.get(pos) == Some(&b'/') {
        let rest = text.get(pos..).unwrap_or_default();
        let (len, skip) = match rest.iter().position(|&b| b == b',') {
            Some(comma) => (comma, comma + 1),
            None => (rest.len(), rest.len()),
        };
        if len > limits.max_namespace_len {
            return Err(DecodeError::NamespaceTooLong {
                max: limits.max_namespace_len,
            });
        }
        let ns = std::str::from_utf8(rest.get(..len).unwrap_or_default())
            .map_err(|_| DecodeError::InvalidUtf8)?;
        pos += skip;
        if ns == "/" { Str::ROOT } else { Str::from(ns) }
    } else {
        Str::ROOT
    };

    let digits = count_digits(text.get(pos..).unwrap_or_default());
    let ack = if digits > 0 {
        let id = parse_decimal(text.get(pos..pos + digits).unwrap_or_default())
            .filter(|&id| id <= limits.max_ack_id)
            .ok_or(DecodeError::AckIdTooLarge {
                max: limits.max_ack_id,
            })?;
        pos += digits;
        Some(id)
    } else {
        None
    };

    let payload = text.slice(pos.min(text.len())..);
    // EVENT and ACK payloads are checked for depth by `parse_array`'s scan.
    if !payload.is_empty() && !matches!(kind, EVENT | BINARY_EVENT | ACK | BINARY_ACK) {
        check_depth(&payload, limits.max_depth)?;
    }
    if ack.is_some() && matches!(kind, CONNECT | DISCONNECT | CONNECT_ERROR) {
        return Err(DecodeError::UnexpectedAckId(kind));
    }

    let data = match kind {
        CONNECT if payload.is_empty() => PacketData::Connect(None),
        CONNECT => {
            check_object(&payload, false, DecodeError::ConnectPayloadNotObject)?;
            PacketData::Connect(Some(payload))
        }
        DISCONNECT if payload.is_empty() => PacketData::Disconnect,
        DISCONNECT => return Err(DecodeError::UnexpectedPayload(kind)),
        CONNECT_ERROR if payload.is_empty() => return Err(DecodeError::MissingPayload(kind)),
        CONNECT_ERROR => {
            check_object(&payload, true, DecodeError::InvalidConnectError)?;
            PacketData::ConnectError(payload)
        }
        EVENT | BINARY_EVENT | ACK | BINARY_ACK if payload.is_empty() => {
            return Err(DecodeError::MissingPayload(kind));
        }
        EVENT | BINARY_EVENT => {
            let (name, args) = parse_array(payload, true, Vec::new(), limits.max_depth)?;
            let name = name.ok_or(DecodeError::InvalidEventName)?;
            PacketData::Event { name, args, ack }
        }
        _ => {
            let id = ack.ok_or(DecodeError::MissingAckId)?;
            let (_, args) = parse_array(payload, false, Vec::new(), limits.max_depth)?;
            PacketData::Ack { id, args }
        }
    };
    let packet = Packet { ns, data };
    if kind == BINARY_EVENT || kind == BINARY_ACK {
        Ok(Decoded::Pending(Pending {
            packet,
            expected,
            // Bounded by `max_attachments`, checked above.
            received: Vec::with_capacity(expected),
            size: text.len(),
        }))
    } else {
        Ok(Decoded::Packet(packet))
    }
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Parses ASCII digits; `None` on overflow of `u64`.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?
            .checked_add(u64::from(d.wrapping_sub(b'0')))
    })
}

fn push_decimal(buf: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // `n % 10 < 10`, so the cast is lossless.
        #[allow(clippy::cast_possible_truncation)]
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// Encodes a packet into an engine text frame (with its `4`) and one binary frame per attachment.
pub(crate) fn encode(packet: &Packet) -> Result<Encoded, EncodeError> {
    #[cfg(feature = "msgpack")]
    let converted;
    let args: Option<&Args> = match &packet.data {
        PacketData::Event { args, .. } | PacketData::Ack { args, .. } => {
            #[cfg(feature = "msgpack")]
            if args.form != Form::Json {
                converted = super::msgpack::args_to_json(args)?;
                Some(&converted)
            } else {
                Some(args)
            }
            #[cfg(not(feature = "msgpack"))]
            Some(args)
        }
        _ => None,
    };
    let attachments = args.map_or(&[][..], Args::attachments);
    let binary = !attachments.is_empty();
    let kind = match &packet.data {
        PacketData::Connect(_) => CONNECT,
        PacketData::Disconnect => DISCONNECT,
        PacketData::Event { .. } if binary => BINARY_EVENT,
        PacketData::Event { .. } => EVENT,
        PacketData::Ack { .. } if binary => BINARY_ACK,
        PacketData::Ack { .. } => ACK,
        PacketData::ConnectError(_) => CONNECT_ERROR,
    };

    let elems = args.and_then(Args::raw_json).unwrap_or_default();
    let mut buf = BytesMut::with_capacity(32 + packet.ns.len() + elems.len());
    buf.put_u8(b'4');
    buf.put_u8(b'0' + kind);
    if binary {
        push_decimal(&mut buf, attachments.len() as u64);
        buf.put_u8(b'-');
    }
    if packet.ns != "/" {
        buf.extend_from_slice(packet.ns.as_bytes());
        buf.put_u8(b',');
    }
    match &packet.data {
        PacketData::Connect(payload) => {
            if let Some(p) = payload {
                buf.extend_from_slice(p);
            }
        }
        PacketData::Disconnect => {}
        PacketData::ConnectError(p) => buf.extend_from_slice(p),
        PacketData::Event { name, ack, .. } => {
            if let Some(id) = ack {
                push_decimal(&mut buf, *id);
            }
            buf.put_u8(b'[');
            let mut w = (&mut buf).writer();
            serde_json::to_writer(&mut w, name.as_str())
                .map_err(|e| EncodeError::Serialize(e.to_string()))?;
            if !elems.is_empty() {
                buf.put_u8(b',');
                buf.extend_from_slice(elems);
            }
            buf.put_u8(b']');
        }
        PacketData::Ack { id, .. } => {
            push_decimal(&mut buf, *id);
            buf.put_u8(b'[');
            buf.extend_from_slice(elems);
            buf.put_u8(b']');
        }
    }
    let mut frames = smallvec::SmallVec::with_capacity(1 + attachments.len());
    frames.push(Frame::Text(buf.freeze()));
    frames.extend(attachments.iter().cloned().map(Frame::Binary));
    Ok(Encoded { frames })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-at-a-time definition `check_depth` must keep agreeing with.
    fn depth_reference(json: &[u8]) -> usize {
        let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
        for &b in json {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        deepest
    }

    #[test]
    fn check_depth_skips_brackets_in_strings_wherever_quotes_and_escapes_fall() {
        // Escapes and quotes land on every offset around the 16-byte steps of the fast path.
        for before in 0..40 {
            for after in 0..40 {
                let json = format!(
                    "[\"{}\\\"[[[[\\\\{}\",[[1]],\"{}\"]",
                    "a".repeat(before),
                    "b".repeat(after),
                    "[".repeat(after)
                );
                let deepest = depth_reference(json.as_bytes());
                assert_eq!(deepest, 3, "{json}");
                assert!(check_depth(json.as_bytes(), 3).is_ok(), "{json}");
                assert!(
                    matches!(
                        check_depth(json.as_bytes(), 2),
                        Err(DecodeError::TooDeep { max: 2 })
                    ),
                    "{json}"
                );
            }
        }
    }

    #[test]
    fn check_depth_counts_brackets_after_an_unterminated_escape_run() {
        // `\\` ends the escape, so the quote after it closes the string and `[[` counts.
        let json = format!("[\"{}\\\\\",[[2]]]", "z".repeat(33));
        assert_eq!(depth_reference(json.as_bytes()), 3);
        assert!(check_depth(json.as_bytes(), 3).is_ok());
        assert!(check_depth(json.as_bytes(), 2).is_err());
        // An unterminated string hides everything after its opening quote.
        let open = format!("[\"{}[[[[[[", "q".repeat(20));
        assert!(check_depth(open.as_bytes(), 1).is_ok());
    }
}
