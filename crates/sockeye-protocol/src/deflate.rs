//! WebSocket permessage-deflate (RFC 7692), without I/O: the extension negotiation, the
//! compression of outgoing messages, and a transformer of the incoming byte stream that
//! inflates compressed messages into plain frames, so that a WebSocket implementation without
//! the extension (tungstenite) reads them as ordinary messages.
//!
//! Bounds: a compressed message may not take more than the caller's limit in compressed
//! bytes, nor inflate to more than it (the limit applies to the inflated size, counted while
//! inflating: a deflate bomb stops at the limit, whatever the number of fragments it is
//! split into). Over it, [`InflateError::TooBig`]: close with 1009.
//!
//! Memory: without context takeover (the default both ways), compressors and inflaters are
//! shared by every connection of a thread and reset per message, so an idle connection holds
//! none; with context takeover each connection keeps its own (tens of KiB for an inflater,
//! a few hundred for a compressor at the default level).

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const EXTENSION: &str = "permessage-deflate";

/// The four bytes a sync flush ends with, removed from each compressed message (RFC 7692
/// §7.2.1) and appended again before inflating (§7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Options of permessage-deflate, for a server or a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Messages shorter than this many bytes are sent uncompressed (default 1024, as the
    /// Node `ws` server).
    pub threshold: usize,
    /// The server compresses each message on its own, without the previous messages as
    /// dictionary (default true: no per-connection compressor is kept).
    pub server_no_context_takeover: bool,
    /// The client compresses each message on its own (default true: no per-connection
    /// inflater is kept on the server).
    pub client_no_context_takeover: bool,
    /// Compression level, 0 (none) to 9 (best); default 1. Measured on chat-like JSON
    /// (docs/benchmarks.md): a 16 KiB message takes about 53 µs at level 1 and 394 µs at
    /// level 6 for 19 % more bytes (4 243 against 3 556); at 1 KiB, 14 µs against 19 µs.
    pub level: u32,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            threshold: 1024,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            level: 1,
        }
    }
}

/// What both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The server resets its compressor per message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor per message.
    pub client_no_context_takeover: bool,
}

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads masked client frames, compresses with the server's parameters.
    Server,
    /// Reads unmasked server frames, compresses with the client's parameters.
    Client,
}

/// Why a compressed message could not be read, or an answer not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The message is over the limit, compressed or inflated.
    #[error(
        "compressed WebSocket message over {limit} bytes (inflated or compressed): close with 1009"
    )]
    TooBig {
        /// The limit in bytes.
        limit: usize,
    },
    /// The compressed data is not a valid raw deflate stream.
    #[error("compressed WebSocket message is not valid deflate data: {0}")]
    Corrupt(String),
    /// Frames break the extension's rules: a new data frame inside a compressed message, RSV1
    /// on a continuation frame, a client frame without mask or a server frame with one.
    #[error("WebSocket frames break permessage-deflate: {0}")]
    Protocol(&'static str),
}

/// Why a server's answer to a client's offer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "server answered permessage-deflate with {0:?}, which the client did not offer or cannot honour: close the connection"
)]
pub struct AnswerError(pub String);

/// An extension's parameters: names (lower case) and values (unquoted).
type Params = Vec<(String, Option<String>)>;

/// The extensions of a `Sec-WebSocket-Extensions` value: names and parameters.
fn parse_extensions(value: &str) -> Vec<(String, Params)> {
    let mut out = Vec::new();
    for item in split_outside_quotes(value, ',') {
        let mut parts = split_outside_quotes(item, ';').into_iter();
        let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let params = parts
            .map(|p| {
                let (key, value) = match p.split_once('=') {
                    Some((k, v)) => (k, Some(v.trim().trim_matches('"').to_owned())),
                    None => (p, None),
                };
                (key.trim().to_ascii_lowercase(), value)
            })
            .collect();
        out.push((name, params));
    }
    out
}

/// Splits on `sep` outside double quotes.
fn split_outside_quotes(value: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in value.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(value.get(start..i).unwrap_or_default());
            start = i + c.len_utf8();
        }
    }
    parts.push(value.get(start..).unwrap_or_default());
    parts
}

/// A window-bits value: 8 to 15 (RFC 7692 §7.1.2).
fn window_bits(value: Option<&str>) -> Option<u8> {
    let bits: u8 = value?.parse().ok()?;
    (8..=15).contains(&bits).then_some(bits)
}

/// Server side: picks the first acceptable permessage-deflate offer among the client's
/// `Sec-WebSocket-Extensions` values and returns the answer header value and the agreement.
/// An offer with an unknown or repeated parameter, or a bad value, is skipped (§7.1); so is
/// one that asks the server for a window under 15 bits (this compressor always uses 15).
pub fn negotiate<'a>(
    offers: impl IntoIterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Option<(String, Negotiated)> {
    'offers: for value in offers {
        for (name, params) in parse_extensions(value) {
            if name != EXTENSION {
                continue;
            }
            let mut agreed = Negotiated {
                server_no_context_takeover: config.server_no_context_takeover,
                client_no_context_takeover: config.client_no_context_takeover,
            };
            let mut seen: Vec<&str> = Vec::new();
            let mut acceptable = true;
            for (key, value) in &params {
                if seen.contains(&key.as_str()) {
                    acceptable = false;
                    break;
                }
                seen.push(key);
                match key.as_str() {
                    "server_no_context_takeover" if value.is_none() => {
                        agreed.server_no_context_takeover = true;
                    }
                    "client_no_context_takeover" if value.is_none() => {
                        agreed.client_no_context_takeover = true;
                    }
                    // The client can use smaller windows; the server inflates any window.
                    "client_max_window_bits"
                        if value.is_none() || window_bits(value.as_deref()).is_some() => {}
                    "server_max_window_bits" => {
                        if window_bits(value.as_deref()) != Some(15) {
                            acceptable = false;
                        }
                    }
                    _ => acceptable = false,
                }
                if !acceptable {
                    break;
                }
            }
            if !acceptable {
                continue;
            }
            let mut answer = String::from(EXTENSION);
            if agreed.server_no_context_takeover {
                answer.push_str("; server_no_context_takeover");
            }
            if agreed.client_no_context_takeover {
                answer.push_str("; client_no_context_takeover");
            }
            return Some((answer, agreed));
        }
        continue 'offers;
    }
    None
}

/// Client side: the offer to send in `Sec-WebSocket-Extensions`.
pub fn client_offer(config: &DeflateConfig) -> String {
    let mut offer = format!("{EXTENSION}; client_max_window_bits");
    if config.server_no_context_takeover {
        offer.push_str("; server_no_context_takeover");
    }
    if config.client_no_context_takeover {
        offer.push_str("; client_no_context_takeover");
    }
    offer
}

/// Client side: reads the server's `Sec-WebSocket-Extensions` answer. `Ok(None)`: the server
/// declined (no permessage-deflate in the answer). An answer the offer does not allow (an
/// unknown parameter, a server window under 15, a client window the client must honour but
/// cannot) is an error: the client must fail the connection (§7.1).
pub fn client_accept(
    answer: Option<&str>,
    config: &DeflateConfig,
) -> Result<Option<Negotiated>, AnswerError> {
    let Some(answer) = answer else {
        return Ok(None);
    };
    let mut found = None;
    for (name, params) in parse_extensions(answer) {
        if name != EXTENSION || found.is_some() {
            return Err(AnswerError(answer.to_owned()));
        }
        let mut agreed = Negotiated {
            server_no_context_takeover: false,
            client_no_context_takeover: config.client_no_context_takeover,
        };
        for (key, value) in &params {
            match (key.as_str(), value.as_deref()) {
                ("server_no_context_takeover", None) => agreed.server_no_context_takeover = true,
                ("client_no_context_takeover", None) => agreed.client_no_context_takeover = true,
                ("server_max_window_bits", v) if window_bits(v).is_some() => {}
                ("client_max_window_bits", v) if window_bits(v) == Some(15) => {}
                _ => return Err(AnswerError(answer.to_owned())),
            }
        }
        if config.server_no_context_takeover && !agreed.server_no_context_takeover {
            // The server ignored a request it must honour (§7.1.1.1).
            return Err(AnswerError(answer.to_owned()));
        }
        found = Some(agreed);
    }
    Ok(found)
}

thread_local! {
    /// Compressors for messages without context takeover, per level; reset per message.
    static COMPRESSORS: RefCell<Vec<(u32, Compress)>> = const { RefCell::new(Vec::new()) };
    /// The inflater for messages without context takeover; reset per message.
    static INFLATER: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// Compresses one message's payload: raw deflate, sync flush, the final `00 00 ff ff`
/// removed. Empty when the compressor fails (not reachable with valid parameters).
fn deflate_with(compress: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let start = compress.total_in();
    loop {
        let consumed = usize::try_from(compress.total_in() - start).unwrap_or(usize::MAX);
        let input = data.get(consumed..).unwrap_or_default();
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(256));
        }
        let before = (compress.total_in(), compress.total_out());
        if compress
            .compress_vec(input, &mut out, FlushCompress::Sync)
            .is_err()
        {
            return Vec::new();
        }
        let all_in = compress.total_in() - start == data.len() as u64;
        let room_left = out.len() < out.capacity();
        // With room left in the output, the sync flush is complete.
        if all_in && room_left {
            break;
        }
        if (compress.total_in(), compress.total_out()) == before && room_left {
            return Vec::new();
        }
    }
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    out
}

/// Compression of outgoing messages, for one connection.
#[derive(Debug)]
pub struct Deflater {
    /// The connection's own compressor, with context takeover; `None`: the thread's, reset
    /// per message.
    own: Option<Box<Compress>>,
    level: u32,
    threshold: usize,
}

impl Deflater {
    /// The compressor of `role` for what was `agreed`.
    pub fn new(role: Role, agreed: Negotiated, config: &DeflateConfig) -> Deflater {
        let takeover = match role {
            Role::Server => !agreed.server_no_context_takeover,
            Role::Client => !agreed.client_no_context_takeover,
        };
        let level = config.level.min(9);
        Deflater {
            own: takeover.then(|| Box::new(Compress::new(Compression::new(level), false))),
            level,
            threshold: config.threshold,
        }
    }

    /// The compressed payload of a message (to send with RSV1 set), or `None` when the
    /// message is under the threshold or would not get smaller (send it as is).
    pub fn compress(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        if data.len() < self.threshold {
            return None;
        }
        let packed = match &mut self.own {
            Some(compress) => deflate_with(compress, data),
            None => COMPRESSORS.with(|cell| {
                let Ok(mut list) = cell.try_borrow_mut() else {
                    return deflate_with(
                        &mut Compress::new(Compression::new(self.level), false),
                        data,
                    );
                };
                let pos = match list.iter().position(|(l, _)| *l == self.level) {
                    Some(pos) => pos,
                    None => {
                        list.push((
                            self.level,
                            Compress::new(Compression::new(self.level), false),
                        ));
                        list.len() - 1
                    }
                };
                let Some((_, compress)) = list.get_mut(pos) else {
                    return Vec::new();
                };
                compress.reset();
                deflate_with(compress, data)
            }),
        };
        // With context takeover the compressor's state moved on: the message must be sent
        // compressed even when it did not shrink.
        (!packed.is_empty() && (self.own.is_some() || packed.len() < data.len())).then_some(packed)
    }
}

/// Inflates `compressed` + the sync-flush tail into at most `limit` bytes.
fn inflate_with(
    decompress: &mut Decompress,
    compressed: &[u8],
    limit: usize,
) -> Result<Vec<u8>, InflateError> {
    let input = [compressed, &TAIL[..]].concat();
    let start = decompress.total_in();
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(3).clamp(64, limit + 1));
    loop {
        let consumed = usize::try_from(decompress.total_in() - start).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        if out.len() == out.capacity() {
            // Grow up to one byte past the limit, so that going over it shows.
            let grow = out
                .capacity()
                .max(1024)
                .min((limit + 1).saturating_sub(out.len()));
            if grow == 0 {
                return Err(InflateError::TooBig { limit });
            }
            out.reserve_exact(grow);
        }
        let before = (decompress.total_in(), decompress.total_out());
        let status = decompress
            .decompress_vec(rest, &mut out, FlushDecompress::Sync)
            .map_err(|e| InflateError::Corrupt(e.to_string()))?;
        if out.len() > limit {
            return Err(InflateError::TooBig { limit });
        }
        let consumed = decompress.total_in() - start;
        let room_left = out.len() < out.capacity();
        if status == Status::StreamEnd {
            if consumed < compressed.len() as u64 {
                return Err(InflateError::Corrupt("data after the final block".into()));
            }
            // A final block ends the stream: the next message starts a new one.
            decompress.reset(false);
            return Ok(out);
        }
        if consumed == input.len() as u64 && room_left {
            return Ok(out);
        }
        if (decompress.total_in(), decompress.total_out()) == before && room_left {
            return Err(InflateError::Corrupt(
                "deflate stream made no progress".into(),
            ));
        }
    }
}

/// Inflation of incoming messages, for one connection.
#[derive(Debug)]
pub struct Inflater {
    /// The connection's own inflater, with context takeover; `None`: the thread's.
    own: Option<Box<Decompress>>,
    limit: usize,
}

impl Inflater {
    /// The inflater of `role` for what was `agreed`, bounded to `limit` bytes per message.
    pub fn new(role: Role, agreed: Negotiated, limit: usize) -> Inflater {
        let takeover = match role {
            Role::Server => !agreed.client_no_context_takeover,
            Role::Client => !agreed.server_no_context_takeover,
        };
        Inflater {
            own: takeover.then(|| Box::new(Decompress::new(false))),
            limit,
        }
    }

    /// The inflated payload of one compressed message (its frames' payloads joined).
    pub fn inflate(&mut self, compressed: &[u8]) -> Result<Vec<u8>, InflateError> {
        let limit = self.limit;
        match &mut self.own {
            Some(decompress) => inflate_with(decompress, compressed, limit),
            None => INFLATER.with(|cell| match cell.try_borrow_mut() {
                Ok(mut slot) => {
                    let decompress = slot.get_or_insert_with(|| Decompress::new(false));
                    decompress.reset(false);
                    inflate_with(decompress, compressed, limit)
                }
                Err(_) => inflate_with(&mut Decompress::new(false), compressed, limit),
            }),
        }
    }
}

/// Where the transformer is in the frame it reads.
#[derive(Debug)]
enum Stage {
    /// Reading a frame header (at most 14 bytes).
    Header { buf: [u8; 14], have: usize },
    /// Copying `left` payload bytes of a frame that is not compressed.
    Pass { left: u64 },
    /// Collecting `left` payload bytes of a compressed message's frame.
    Collect {
        left: u64,
        mask: Option<[u8; 4]>,
        offset: usize,
        fin: bool,
    },
}

/// A compressed message being collected.
#[derive(Debug)]
struct Open {
    opcode: u8,
    data: Vec<u8>,
}

/// Rewrites the incoming byte stream of a connection with permessage-deflate: frames of
/// compressed messages (RSV1 on the first) are collected, and at the message's last frame
/// one plain frame with the inflated payload takes their place (masked with a zero key when
/// reading client frames, so the server side still sees masked frames). Every other frame
/// passes unchanged, byte for byte.
#[derive(Debug)]
pub struct InflateStream {
    role: Role,
    stage: Stage,
    open: Option<Open>,
    inflater: Inflater,
}

impl InflateStream {
    /// A transformer for `role`, inflating with `inflater`.
    pub fn new(role: Role, inflater: Inflater) -> InflateStream {
        InflateStream {
            role,
            stage: Stage::Header {
                buf: [0; 14],
                have: 0,
            },
            open: None,
            inflater,
        }
    }

    /// True while a compressed message is being collected or a frame header is incomplete.
    pub fn is_mid_message(&self) -> bool {
        self.open.is_some()
    }

    /// Feeds bytes read from the socket; appends what the WebSocket reader should see to
    /// `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), InflateError> {
        while !input.is_empty() {
            match &mut self.stage {
                Stage::Header { buf, have } => {
                    let Some((&byte, rest)) = input.split_first() else {
                        break;
                    };
                    input = rest;
                    if let Some(slot) = buf.get_mut(*have) {
                        *slot = byte;
                    }
                    *have += 1;
                    let (buf, have) = (*buf, *have);
                    if header_len(buf.get(..have).unwrap_or_default()) == Some(have) {
                        self.header(buf.get(..have).unwrap_or_default(), out)?;
                    }
                }
                Stage::Pass { left } => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let (now, rest) = input.split_at(n);
                    out.extend_from_slice(now);
                    input = rest;
                    *left -= n as u64;
                    if *left == 0 {
                        self.stage = new_header();
                    }
                }
                Stage::Collect {
                    left,
                    mask,
                    offset,
                    fin,
                } => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let (now, rest) = input.split_at(n);
                    input = rest;
                    *left -= n as u64;
                    let Some(open) = self.open.as_mut() else {
                        return Err(InflateError::Protocol("payload outside a message"));
                    };
                    let limit = self.inflater.limit;
                    if open.data.len() + n > limit {
                        return Err(InflateError::TooBig { limit });
                    }
                    match mask {
                        Some(key) => open.data.extend(
                            now.iter()
                                .enumerate()
                                .map(|(i, b)| b ^ key.get((*offset + i) % 4).copied().unwrap_or(0)),
                        ),
                        None => open.data.extend_from_slice(now),
                    }
                    *offset += n;
                    if *left == 0 {
                        let fin = *fin;
                        self.stage = new_header();
                        if fin {
                            self.finish(out)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A complete frame header: decides whether the frame is part of a compressed message.
    fn header(&mut self, header: &[u8], out: &mut Vec<u8>) -> Result<(), InflateError> {
        let (first, second) = match header {
            [a, b, ..] => (*a, *b),
            _ => return Err(InflateError::Protocol("short frame header")),
        };
        let fin = first & 0x80 != 0;
        let rsv1 = first & 0x40 != 0;
        let opcode = first & 0x0f;
        let masked = second & 0x80 != 0;
        let len = payload_len(header);
        let mask = masked.then(|| {
            let k = header.get(header.len() - 4..).unwrap_or_default();
            [
                k.first().copied().unwrap_or(0),
                k.get(1).copied().unwrap_or(0),
                k.get(2).copied().unwrap_or(0),
                k.get(3).copied().unwrap_or(0),
            ]
        });
        let compressed = match (opcode, &self.open) {
            (1 | 2, None) => rsv1,
            (1 | 2, Some(_)) => {
                return Err(InflateError::Protocol(
                    "new data frame inside a compressed message",
                ));
            }
            (0, Some(_)) => {
                if rsv1 {
                    return Err(InflateError::Protocol("RSV1 on a continuation frame"));
                }
                true
            }
            _ => false,
        };
        if !compressed {
            out.extend_from_slice(header);
            self.stage = if len == 0 {
                new_header()
            } else {
                Stage::Pass { left: len }
            };
            return Ok(());
        }
        match (self.role, masked) {
            (Role::Server, false) => return Err(InflateError::Protocol("unmasked client frame")),
            (Role::Client, true) => return Err(InflateError::Protocol("masked server frame")),
            _ => {}
        }
        let limit = self.inflater.limit;
        if len > limit as u64 {
            return Err(InflateError::TooBig { limit });
        }
        if self.open.is_none() {
            self.open = Some(Open {
                opcode,
                data: Vec::new(),
            });
        }
        self.stage = if len == 0 {
            new_header()
        } else {
            Stage::Collect {
                left: len,
                mask,
                offset: 0,
                fin,
            }
        };
        if len == 0 && fin {
            self.finish(out)?;
        }
        Ok(())
    }

    /// The last frame of a compressed message arrived: writes one plain frame in its place.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), InflateError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let payload = self.inflater.inflate(&open.data)?;
        out.push(0x80 | open.opcode);
        let mask_bit = if self.role == Role::Server { 0x80 } else { 0 };
        let len = payload.len();
        if let Ok(short @ 0..=125) = u8::try_from(len) {
            out.push(mask_bit | short);
        } else if let Ok(medium) = u16::try_from(len) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&medium.to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if self.role == Role::Server {
            // A zero masking key: the payload stays as is.
            out.extend_from_slice(&[0; 4]);
        }
        out.extend_from_slice(&payload);
        Ok(())
    }
}

fn new_header() -> Stage {
    Stage::Header {
        buf: [0; 14],
        have: 0,
    }
}

/// The full length of a frame header given its first bytes, once known (two bytes are
/// enough).
fn header_len(start: &[u8]) -> Option<usize> {
    let second = *start.get(1)?;
    let ext = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    Some(2 + ext + mask)
}

/// The payload length of a complete header.
fn payload_len(header: &[u8]) -> u64 {
    let second = header.get(1).copied().unwrap_or(0);
    match second & 0x7f {
        126 => header
            .get(2..4)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map_or(0, |b| u64::from(u16::from_be_bytes(b))),
        127 => header
            .get(2..10)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes),
        n => u64::from(n),
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn both_off() -> Negotiated {
        Negotiated {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
        }
    }

    /// A client frame (masked with `key`).
    fn client_frame(fin: bool, rsv1: bool, opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut out = vec![(if fin { 0x80 } else { 0 }) | (if rsv1 { 0x40 } else { 0 }) | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        out
    }

    fn compress(data: &[u8]) -> Vec<u8> {
        let config = DeflateConfig {
            threshold: 0,
            level: 9,
            ..DeflateConfig::default()
        };
        Deflater::new(Role::Client, both_off(), &config)
            .compress(data)
            .unwrap()
    }

    #[test]
    fn negotiation_follows_rfc_7692() {
        let config = DeflateConfig::default();
        // Chrome's offer.
        let (answer, agreed) =
            negotiate(["permessage-deflate; client_max_window_bits"], &config).unwrap();
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(agreed, both_off());
        // A first offer the server cannot take, then one it can.
        let (_, agreed) = negotiate(
            [
                "permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=\"15\"",
            ],
            &DeflateConfig {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                ..config
            },
        )
        .unwrap();
        assert!(!agreed.server_no_context_takeover);
        for refused in [
            "permessage-deflate; x=1",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover=1",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(negotiate([refused], &config), None, "{refused}");
        }
        let offer = client_offer(&config);
        let (answer, _) = negotiate([offer.as_str()], &config).unwrap();
        assert_eq!(client_accept(Some(&answer), &config), Ok(Some(both_off())));
        assert_eq!(client_accept(None, &config), Ok(None));
        assert!(client_accept(Some("permessage-deflate; x"), &config).is_err());
        assert!(client_accept(Some("permessage-deflate"), &config).is_err());
    }

    #[test]
    fn compressed_messages_become_plain_frames() {
        let text = "42[\"message\",\"hello hello hello hello\"]".repeat(50);
        let packed = compress(text.as_bytes());
        assert!(packed.len() < text.len() / 5);
        let mut stream = client_frame(true, true, 1, &packed, [1, 2, 3, 4]);
        // Fragmented, with a ping in between, then an uncompressed message.
        let (a, b) = packed.split_at(packed.len() / 2);
        stream.extend(client_frame(false, true, 2, a, [9, 8, 7, 6]));
        stream.extend(client_frame(true, false, 9, b"ping", [5, 5, 5, 5]));
        stream.extend(client_frame(true, false, 0, b, [0, 1, 0, 1]));
        stream.extend(client_frame(true, false, 1, b"plain", [3, 3, 3, 3]));
        for chunk in [1, 3, 7, 100, usize::MAX] {
            let mut reader = InflateStream::new(
                Role::Server,
                Inflater::new(Role::Server, both_off(), 1 << 20),
            );
            let mut out = Vec::new();
            for part in stream.chunks(chunk.min(stream.len())) {
                reader.feed(part, &mut out).unwrap();
            }
            let mut expected = client_frame(true, false, 1, text.as_bytes(), [0; 4]);
            expected.extend(client_frame(true, false, 9, b"ping", [5, 5, 5, 5]));
            expected.extend(client_frame(true, false, 2, text.as_bytes(), [0; 4]));
            expected.extend(client_frame(true, false, 1, b"plain", [3, 3, 3, 3]));
            assert!(out == expected, "chunk {chunk}: output differs");
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit_even_split_over_fragments() {
        let zeros = vec![0u8; 10 << 20];
        let packed = compress(&zeros);
        assert!(packed.len() < 20_000, "{}", packed.len());
        let limit = 1_000_000;
        let mut whole =
            InflateStream::new(Role::Server, Inflater::new(Role::Server, both_off(), limit));
        let err = whole
            .feed(
                &client_frame(true, true, 2, &packed, [1, 1, 1, 1]),
                &mut Vec::new(),
            )
            .unwrap_err();
        assert_eq!(err, InflateError::TooBig { limit });
        let mut split =
            InflateStream::new(Role::Server, Inflater::new(Role::Server, both_off(), limit));
        let mut stream = Vec::new();
        let parts: Vec<_> = packed.chunks(100).collect();
        for (i, part) in parts.iter().enumerate() {
            stream.extend(client_frame(
                i + 1 == parts.len(),
                i == 0,
                if i == 0 { 2 } else { 0 },
                part,
                [2, 2, 2, 2],
            ));
        }
        assert_eq!(
            split.feed(&stream, &mut Vec::new()).unwrap_err(),
            InflateError::TooBig { limit }
        );
    }

    #[test]
    fn protocol_violations_are_errors() {
        let reader =
            || InflateStream::new(Role::Server, Inflater::new(Role::Server, both_off(), 1000));
        let packed = compress(&b"hello ".repeat(20));
        let unmasked = [&[0xc1u8, packed.len() as u8][..], &packed].concat();
        assert!(matches!(
            reader().feed(&unmasked, &mut Vec::new()),
            Err(InflateError::Protocol(_))
        ));
        let mut stream = client_frame(false, true, 1, &packed, [0; 4]);
        stream.extend(client_frame(true, false, 1, b"x", [0; 4]));
        assert!(matches!(
            reader().feed(&stream, &mut Vec::new()),
            Err(InflateError::Protocol(_))
        ));
        let mut stream = client_frame(false, true, 1, &packed, [0; 4]);
        stream.extend(client_frame(true, true, 0, b"x", [0; 4]));
        assert!(matches!(
            reader().feed(&stream, &mut Vec::new()),
            Err(InflateError::Protocol(_))
        ));
        let garbage = client_frame(true, true, 1, &[0xff; 40], [0; 4]);
        assert!(matches!(
            reader().feed(&garbage, &mut Vec::new()),
            Err(InflateError::Corrupt(_))
        ));
        // A frame announcing more than the limit is refused before any byte is collected.
        let mut huge = vec![0xc2, 0x80 | 127];
        huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert!(matches!(
            reader().feed(&huge, &mut Vec::new()),
            Err(InflateError::TooBig { .. })
        ));
    }

    #[test]
    fn context_takeover_shares_the_window_across_messages() {
        let agreed = Negotiated {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
        };
        let config = DeflateConfig {
            threshold: 0,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            ..DeflateConfig::default()
        };
        let mut deflater = Deflater::new(Role::Server, agreed, &config);
        let mut inflater = Inflater::new(Role::Client, agreed, 1 << 20);
        let message = b"the same message, again and again".repeat(4);
        let first = deflater.compress(&message).unwrap();
        let second = deflater.compress(&message).unwrap();
        assert!(
            second.len() < first.len(),
            "{} vs {}",
            second.len(),
            first.len()
        );
        assert_eq!(inflater.inflate(&first).unwrap(), message);
        assert_eq!(inflater.inflate(&second).unwrap(), message);
    }

    #[test]
    fn small_or_incompressible_messages_stay_plain() {
        let mut deflater = Deflater::new(Role::Server, both_off(), &DeflateConfig::default());
        assert_eq!(deflater.compress(b"short"), None);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert_eq!(deflater.compress(&noise), None);
    }
}
