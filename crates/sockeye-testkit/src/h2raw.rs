//! A raw HTTP/2 client (RFC 9113) over prior-knowledge cleartext (h2c), for inputs a
//! well-behaved client library refuses to send: streams that never end, resets in the middle
//! of a message, more concurrent streams than the server allows, extended CONNECT requests
//! (RFC 8441) without their pseudo-headers.
//!
//! Header blocks are written as HPACK literals without indexing or Huffman coding; answers
//! are not decoded beyond recognising the static-table `:status 200` (every other status is
//! "not 200").

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// HTTP/2 frame types used here.
pub mod frame {
    /// DATA.
    pub const DATA: u8 = 0x0;
    /// HEADERS.
    pub const HEADERS: u8 = 0x1;
    /// RST_STREAM.
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS.
    pub const SETTINGS: u8 = 0x4;
    /// PING.
    pub const PING: u8 = 0x6;
    /// GOAWAY.
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u8 = 0x8;
}

/// Frame flags used here.
pub mod flag {
    /// END_STREAM (DATA, HEADERS).
    pub const END_STREAM: u8 = 0x1;
    /// ACK (SETTINGS, PING).
    pub const ACK: u8 = 0x1;
    /// END_HEADERS (HEADERS).
    pub const END_HEADERS: u8 = 0x4;
}

/// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3).
pub const SETTINGS_ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
/// SETTINGS_MAX_CONCURRENT_STREAMS.
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// One frame read from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Frame type.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream identifier.
    pub stream: u32,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// For a HEADERS frame: whether it starts with the static-table `:status 200`.
    pub fn is_status_200(&self) -> bool {
        self.kind == frame::HEADERS && self.payload.first() == Some(&0x88)
    }

    /// For a SETTINGS frame: the value of `id`, if present.
    pub fn setting(&self, id: u16) -> Option<u32> {
        if self.kind != frame::SETTINGS {
            return None;
        }
        self.payload.chunks_exact(6).find_map(|entry| {
            let (key, value) = entry.split_at(2);
            let key = u16::from_be_bytes(key.try_into().ok()?);
            (key == id).then(|| u32::from_be_bytes(value.try_into().unwrap_or([0; 4])))
        })
    }

    /// For RST_STREAM and GOAWAY: the error code.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            frame::RST_STREAM => 0,
            frame::GOAWAY => 4,
            _ => return None,
        };
        let bytes = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }
}

/// A raw HTTP/2 connection.
#[derive(Debug)]
pub struct RawH2 {
    tcp: TcpStream,
}

fn hpack_length(out: &mut Vec<u8>, len: usize) {
    // 7-bit prefix integer (RFC 7541 §5.1), H bit clear (no Huffman).
    if len < 127 {
        out.push(u8::try_from(len).unwrap_or(0));
        return;
    }
    out.push(127);
    let mut rest = len - 127;
    while rest >= 128 {
        out.push(u8::try_from(rest % 128).unwrap_or(0) | 0x80);
        rest /= 128;
    }
    out.push(u8::try_from(rest).unwrap_or(0));
}

/// An HPACK header block of literal fields without indexing (RFC 7541 §6.2.2).
pub fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        hpack_length(&mut out, name.len());
        out.extend_from_slice(name.as_bytes());
        hpack_length(&mut out, value.len());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

impl RawH2 {
    /// Connects, sends the client preface and empty SETTINGS; the server's frames are left
    /// to [`RawH2::read_frame`].
    pub async fn connect(addr: SocketAddr) -> std::io::Result<RawH2> {
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
        let mut raw = RawH2 { tcp };
        raw.send(frame::SETTINGS, 0, 0, &[]).await?;
        Ok(raw)
    }

    /// Writes one frame.
    pub async fn send(
        &mut self,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: &[u8],
    ) -> std::io::Result<()> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|l| *l < 1 << 24)
            .ok_or_else(|| std::io::Error::other("frame payload over 16 MiB"))?;
        let mut out = Vec::with_capacity(9 + payload.len());
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        out.extend_from_slice(payload);
        self.tcp.write_all(&out).await
    }

    /// HEADERS with `fields` (pseudo-headers first, as given), END_HEADERS set.
    pub async fn headers(
        &mut self,
        stream: u32,
        fields: &[(&str, &str)],
        end_stream: bool,
    ) -> std::io::Result<()> {
        let flags = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
        self.send(frame::HEADERS, flags, stream, &header_block(fields))
            .await
    }

    /// A WebSocket extended CONNECT (RFC 8441) on `path` (path and query), with `extra`
    /// fields after the pseudo-headers.
    pub async fn websocket_connect(
        &mut self,
        stream: u32,
        path: &str,
        extra: &[(&str, &str)],
    ) -> std::io::Result<()> {
        let mut fields = vec![
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "localhost"),
            ("sec-websocket-version", "13"),
        ];
        fields.extend_from_slice(extra);
        self.headers(stream, &fields, false).await
    }

    /// DATA on `stream`.
    pub async fn data(
        &mut self,
        stream: u32,
        data: &[u8],
        end_stream: bool,
    ) -> std::io::Result<()> {
        let flags = if end_stream { flag::END_STREAM } else { 0 };
        self.send(frame::DATA, flags, stream, data).await
    }

    /// RST_STREAM with `code` (0x8: CANCEL).
    pub async fn reset(&mut self, stream: u32, code: u32) -> std::io::Result<()> {
        self.send(frame::RST_STREAM, 0, stream, &code.to_be_bytes())
            .await
    }

    /// Acknowledges the server's SETTINGS.
    pub async fn ack_settings(&mut self) -> std::io::Result<()> {
        self.send(frame::SETTINGS, flag::ACK, 0, &[]).await
    }

    /// Reads the next frame; payloads over 1 MiB are an error.
    pub async fn read_frame(&mut self) -> std::io::Result<Frame> {
        let mut head = [0u8; 9];
        self.tcp.read_exact(&mut head).await?;
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        if len > 1 << 20 {
            return Err(std::io::Error::other(format!("frame of {len} bytes")));
        }
        let mut payload = vec![0; len];
        self.tcp.read_exact(&mut payload).await?;
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        Ok(Frame {
            kind: head[3],
            flags: head[4],
            stream,
            payload,
        })
    }

    /// Reads frames until one matches `pred` (SETTINGS and PING from the server are
    /// acknowledged on the way); `None` when the connection ends first.
    pub async fn wait_for(&mut self, mut pred: impl FnMut(&Frame) -> bool) -> Option<Frame> {
        loop {
            let frame = self.read_frame().await.ok()?;
            if frame.kind == frame::SETTINGS && frame.flags & flag::ACK == 0 {
                self.ack_settings().await.ok()?;
            }
            if frame.kind == frame::PING && frame.flags & flag::ACK == 0 {
                self.send(frame::PING, flag::ACK, 0, &frame.payload.clone())
                    .await
                    .ok()?;
            }
            if pred(&frame) {
                return Some(frame);
            }
        }
    }
}
