//! Raw WebSocket (RFC 6455) client framing over a plain `TcpStream`, for hostile inputs.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Frame opcodes used by the tests.
pub mod opcode {
    /// A continuation fragment.
    pub const CONTINUATION: u8 = 0x0;
    /// A text frame.
    pub const TEXT: u8 = 0x1;
    /// A binary frame.
    pub const BINARY: u8 = 0x2;
    /// A close frame.
    pub const CLOSE: u8 = 0x8;
}

/// One client frame (masked, as a client must send it) with the given FIN bit and opcode.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_frame_rsv1(fin, false, opcode, payload)
}

/// One client frame with the RSV1 bit as given: set on the first frame of a message
/// compressed with permessage-deflate (RFC 7692).
pub fn client_frame_rsv1(fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | if rsv1 { 0x40 } else { 0 } | (opcode & 0x0f));
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | u8::try_from(len).unwrap_or(0));
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask: [u8; 4] = rand::random();
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// Opens a TCP connection and performs the WebSocket handshake on `path_and_query`
/// (`extra_headers` are raw `Name: value` lines). Returns the stream and the response head.
pub async fn handshake(
    addr: std::net::SocketAddr,
    path_and_query: &str,
    extra_headers: &[&str],
) -> std::io::Result<(TcpStream, String)> {
    let mut tcp = TcpStream::connect(addr).await?;
    let mut req = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for h in extra_headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).await?;
    // Read the head byte by byte: the first frame may follow it in the same segment.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = tcp.read_u8().await?;
        head.push(b);
        if head.len() > 16 * 1024 {
            return Err(std::io::Error::other("response head over 16 KiB"));
        }
    }
    Ok((tcp, String::from_utf8_lossy(&head).into_owned()))
}

/// Reads one server frame (unmasked): `(fin, opcode, payload)`. Payloads over `max` are an
/// error rather than an allocation.
pub async fn read_frame<R: AsyncRead + Unpin>(
    tcp: &mut R,
    max: usize,
) -> std::io::Result<(bool, u8, Vec<u8>)> {
    let (first, payload) = read_raw_frame(tcp, max).await?;
    Ok((first & 0x80 != 0, first & 0x0f, payload))
}

/// Reads one server frame (unmasked): its first header byte (FIN, RSV1-3, opcode) and its
/// payload. Payloads over `max` are an error rather than an allocation.
pub async fn read_raw_frame<R: AsyncRead + Unpin>(
    tcp: &mut R,
    max: usize,
) -> std::io::Result<(u8, Vec<u8>)> {
    let b0 = tcp.read_u8().await?;
    let b1 = tcp.read_u8().await?;
    let len = match b1 & 0x7f {
        126 => u64::from(tcp.read_u16().await?),
        127 => tcp.read_u64().await?,
        n => u64::from(n),
    };
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| std::io::Error::other(format!("frame of {len} bytes over {max}")))?;
    let mut payload = vec![0; len];
    tcp.read_exact(&mut payload).await?;
    Ok((b0, payload))
}
