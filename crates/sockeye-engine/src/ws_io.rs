//! The byte stream under tungstenite: adaptive read sizes and the fragment count.
//!
//! tungstenite never reads more than its configured read buffer size at once
//! (`ws_read_buffer_size`, kept small so an idle client stays small: 256 bytes by default), which
//! made a 4 KiB message cost 2–3 `read(2)` calls and a 64 KiB one over 30 with the former
//! 2 KiB. [`WsIo`] sits between tungstenite and the socket: while reads come back short it
//! passes tungstenite's own buffer to the socket (no copy); once a read fills that buffer it
//! reads up to [`SCRATCH_SIZE`] bytes into a buffer shared by every connection of the runtime
//! thread and hands tungstenite the bytes from there. What tungstenite cannot take yet is
//! kept in a per-connection spill that is freed as soon as it is drained, so an idle
//! connection holds no extra buffer.
//!
//! Every byte also passes a WebSocket frame-header scanner that counts the frames of the
//! message being received, zero-length continuations included, and fails the read once a
//! message has more than `ws_max_fragments` of them: tungstenite bounds the sum of fragment
//! sizes, not their number.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use sockeye_protocol::deflate::{Deflater, InflateStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest single read once a connection's reads fill tungstenite's buffer: a 64 KiB binary
/// echo then takes one or two `read(2)` calls. Allocated once per runtime thread.
pub(crate) const SCRATCH_SIZE: usize = 64 * 1024;

thread_local! {
    /// The shared read buffer of this thread. Only borrowed inside one `poll_read`, never
    /// across an await, so connections on the same thread never see each other's bytes.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// A WebSocket message had more fragments than `ws_max_fragments`. Returned as the source
/// of an `io::Error` from the stream, so tungstenite hands it back unchanged.
#[derive(Debug, thiserror::Error)]
#[error("WebSocket message of more than {max} fragments")]
pub(crate) struct TooManyFragments {
    /// The configured limit.
    pub(crate) max: u32,
}

/// The socket of a WebSocket connection as tungstenite sees it (see the module docs).
///
/// Kept small on purpose: it lives in every connection task, idle ones included.
pub(crate) struct WsIo<S> {
    inner: S,
    /// Bytes read from the socket that tungstenite has not taken yet; `None` (nothing
    /// allocated) most of the time.
    spill: Option<Box<Spill>>,
    frames: FrameScanner,
    /// Whether the next read goes through the thread's scratch buffer: set when a read
    /// filled tungstenite's buffer (more bytes are likely waiting), cleared when a scratch
    /// read brought less than half of what tungstenite asked for (small messages again).
    wide: bool,
    /// permessage-deflate, when negotiated: compressed messages are inflated here, below
    /// tungstenite (which refuses RSV1), and outgoing messages compressed.
    deflate: Option<Box<Deflate>>,
}

/// The permessage-deflate state of a connection.
pub(crate) struct Deflate {
    inflate: InflateStream,
    /// Transformed bytes tungstenite has not taken yet, from `pos` on.
    pending: Vec<u8>,
    pos: usize,
    pub(crate) deflater: Deflater,
}

impl Deflate {
    pub(crate) fn new(inflate: InflateStream, deflater: Deflater) -> Self {
        Deflate {
            inflate,
            pending: Vec::new(),
            pos: 0,
            deflater,
        }
    }
}

/// Bytes read past what tungstenite asked for.
struct Spill {
    bytes: Box<[u8]>,
    /// Bytes of `bytes` already handed over.
    pos: usize,
}

impl<S> WsIo<S> {
    /// Wraps `inner`; messages of more than `max_fragments` frames fail the read.
    pub(crate) fn new(inner: S, max_fragments: u32, deflate: Option<Box<Deflate>>) -> Self {
        WsIo {
            inner,
            spill: None,
            frames: FrameScanner::new(max_fragments),
            wide: false,
            deflate,
        }
    }

    /// The compressor of outgoing messages, when permessage-deflate was negotiated.
    pub(crate) fn deflater(&mut self) -> Option<&mut Deflater> {
        self.deflate.as_mut().map(|d| &mut d.deflater)
    }

    /// Hands over spilled bytes, if any; frees the spill once drained (an idle connection
    /// must not keep a read's worth of memory). False when there was nothing spilled.
    fn take_spill(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let Some(spill) = self.spill.as_mut() else {
            return false;
        };
        let rest = spill.bytes.get(spill.pos..).unwrap_or_default();
        let n = rest.len().min(buf.remaining());
        buf.put_slice(rest.get(..n).unwrap_or_default());
        spill.pos += n;
        if spill.pos >= spill.bytes.len() {
            self.spill = None;
        }
        true
    }
}

impl<S: AsyncRead + Unpin> WsIo<S> {
    /// Reads straight into tungstenite's buffer.
    fn read_direct(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let want = buf.remaining();
        std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let got = buf.filled().get(before..).unwrap_or_default();
        self.frames.scan(got)?;
        self.wide = want > 0 && got.len() == want;
        Poll::Ready(Ok(()))
    }

    /// Reads up to [`SCRATCH_SIZE`] bytes into `scratch`, hands tungstenite what fits and
    /// spills the rest.
    fn read_wide(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
        scratch: &mut [u8],
    ) -> Poll<io::Result<()>> {
        let mut wide = ReadBuf::new(scratch);
        std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, &mut wide))?;
        let got = wide.filled();
        self.frames.scan(got)?;
        let room = buf.remaining();
        // Back to direct reads once messages are clearly small again; staying wide for
        // messages just over the buffer saves a read each.
        self.wide = got.len() > room / 2;
        let fits = got.len().min(room);
        let (now, later) = got.split_at(fits);
        buf.put_slice(now);
        if !later.is_empty() {
            self.spill = Some(Box::new(Spill {
                bytes: later.into(),
                pos: 0,
            }));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> WsIo<S> {
    /// A read with permessage-deflate: socket bytes go through the frame scanner and the
    /// inflating transformer; tungstenite gets the transformed stream.
    fn read_inflating(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(deflate) = self.deflate.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        loop {
            let rest = deflate.pending.get(deflate.pos..).unwrap_or_default();
            if !rest.is_empty() {
                let n = rest.len().min(buf.remaining());
                buf.put_slice(rest.get(..n).unwrap_or_default());
                deflate.pos += n;
                if deflate.pos >= deflate.pending.len() {
                    deflate.pos = 0;
                    deflate.pending.clear();
                    if deflate.pending.capacity() > SCRATCH_SIZE {
                        deflate.pending = Vec::new();
                    }
                }
                return Poll::Ready(Ok(()));
            }
            let mut raw = [0u8; 4096];
            let mut read = ReadBuf::new(&mut raw);
            std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, &mut read))?;
            let got = read.filled();
            if got.is_empty() {
                // End of stream.
                return Poll::Ready(Ok(()));
            }
            self.frames.scan(got)?;
            deflate
                .inflate
                .feed(got, &mut deflate.pending)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WsIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.deflate.is_some() {
            return this.read_inflating(cx, buf);
        }
        if this.take_spill(buf) {
            return Poll::Ready(Ok(()));
        }
        if !this.wide || buf.remaining() >= SCRATCH_SIZE {
            return this.read_direct(cx, buf);
        }
        // `try_with` and `try_borrow_mut`: neither a thread being torn down nor a nested
        // borrow (not reachable: the borrow never outlives this call) may panic here; a
        // direct read is always correct.
        let polled = SCRATCH.try_with(|cell| {
            let mut scratch = cell.try_borrow_mut().ok()?;
            Some(this.read_wide(cx, buf, &mut scratch))
        });
        match polled {
            Ok(Some(poll)) => poll,
            _ => this.read_direct(cx, buf),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WsIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Where the scanner is in the frame it is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Expecting the first header byte (FIN, RSV, opcode).
    First,
    /// Expecting the second header byte (MASK, 7-bit length).
    Second,
    /// Reading `left` more bytes of the extended length.
    Length,
    /// Skipping `left` more bytes of the masking key.
    Mask,
    /// Skipping `payload` more bytes of payload.
    Payload,
}

/// Follows the frame headers in the client's byte stream (RFC 6455 §5.2) to count the
/// frames of the message being received. It only counts: tungstenite validates the frames.
#[derive(Debug)]
struct FrameScanner {
    /// Extended length being assembled, then the payload bytes left to skip.
    payload: u64,
    /// Frames of the current fragmented message (0 between messages).
    fragments: u32,
    max_fragments: u32,
    stage: Stage,
    /// Bytes left in the current header field.
    left: u8,
    /// Whether the frame being read has a masking key.
    masked: bool,
}

impl FrameScanner {
    fn new(max_fragments: u32) -> Self {
        FrameScanner {
            payload: 0,
            fragments: 0,
            max_fragments: max_fragments.max(1),
            stage: Stage::First,
            left: 0,
            masked: false,
        }
    }

    /// Feeds the bytes just read; fails once a message has too many fragments.
    fn scan(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while let Some((&byte, rest)) = bytes.split_first() {
            if self.stage == Stage::Payload {
                // Skip the payload in one step: this is the common case for large frames.
                let skip = usize::try_from(self.payload)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                bytes = bytes.get(skip..).unwrap_or_default();
                self.payload -= skip as u64;
                if self.payload == 0 {
                    self.stage = Stage::First;
                }
                continue;
            }
            bytes = rest;
            match self.stage {
                Stage::First => {
                    self.count_frame(byte & 0x80 != 0, byte & 0x0f)?;
                    self.stage = Stage::Second;
                }
                Stage::Second => {
                    self.masked = byte & 0x80 != 0;
                    match byte & 0x7f {
                        126 => self.start_length(2),
                        127 => self.start_length(8),
                        len => {
                            self.payload = u64::from(len);
                            self.after_length();
                        }
                    }
                }
                Stage::Length => {
                    self.payload = (self.payload << 8) | u64::from(byte);
                    self.left -= 1;
                    if self.left == 0 {
                        self.after_length();
                    }
                }
                Stage::Mask => {
                    self.left -= 1;
                    if self.left == 0 {
                        self.after_header();
                    }
                }
                Stage::Payload => {}
            }
        }
        Ok(())
    }

    fn start_length(&mut self, bytes: u8) {
        self.payload = 0;
        self.left = bytes;
        self.stage = Stage::Length;
    }

    fn after_length(&mut self) {
        if self.masked {
            self.left = 4;
            self.stage = Stage::Mask;
        } else {
            self.after_header();
        }
    }

    fn after_header(&mut self) {
        self.stage = if self.payload == 0 {
            Stage::First
        } else {
            Stage::Payload
        };
    }

    /// Counts a frame by its FIN bit and opcode. Control frames (opcode 8 and above) may sit
    /// between fragments and are not part of the message.
    fn count_frame(&mut self, fin: bool, opcode: u8) -> io::Result<()> {
        if opcode >= 8 {
            return Ok(());
        }
        // A data opcode starts a message, a continuation (0) extends it.
        self.fragments = if opcode == 0 {
            self.fragments.saturating_add(1)
        } else {
            1
        };
        if self.fragments > self.max_fragments {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                TooManyFragments {
                    max: self.max_fragments,
                },
            ));
        }
        if fin {
            self.fragments = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
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
        let mask = [1u8, 2, 3, 4];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    /// Scans `bytes` in chunks of `chunk` bytes; the number of frames of the open message,
    /// or the error.
    fn scan_in_chunks(max: u32, bytes: &[u8], chunk: usize) -> Result<u32, io::Error> {
        let mut scanner = FrameScanner::new(max);
        for part in bytes.chunks(chunk) {
            scanner.scan(part)?;
        }
        Ok(scanner.fragments)
    }

    #[test]
    fn counts_every_fragment_at_every_split() {
        let mut stream = frame(true, 1, b"whole");
        stream.extend(frame(false, 2, &[7; 300]));
        stream.extend(frame(false, 0, b""));
        stream.extend(frame(true, 9, b"ping"));
        stream.extend(frame(false, 0, &[1; 70_000]));
        stream.extend(frame(false, 0, b""));
        for chunk in [1, 2, 3, 7, 13, 4096, usize::MAX] {
            assert_eq!(
                scan_in_chunks(4, &stream, chunk).unwrap(),
                4,
                "chunk {chunk}"
            );
        }
        let mut finished = stream.clone();
        finished.extend(frame(true, 0, b""));
        assert_eq!(scan_in_chunks(5, &finished, 5).unwrap(), 0);
        let err = scan_in_chunks(3, &stream, 11).unwrap_err();
        assert!(err.get_ref().unwrap().is::<TooManyFragments>(), "{err}");
    }

    #[test]
    fn endless_empty_continuations_fail() {
        let mut stream = frame(false, 1, b"4");
        for _ in 0..100 {
            stream.extend(frame(false, 0, b""));
        }
        assert!(scan_in_chunks(100, &stream, 64).is_err());
        assert_eq!(scan_in_chunks(101, &stream, 64).unwrap(), 101);
    }

    /// A reader that returns at most `chunk` bytes per call and counts its calls.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        calls: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.calls += 1;
            let n = (this.data.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.data[this.pos..this.pos + n]);
            this.pos += n;
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn large_messages_take_few_socket_reads_and_every_byte_arrives_once() {
        let mut data = frame(
            true,
            2,
            &(0..=255u8).cycle().take(65_536).collect::<Vec<_>>(),
        );
        data.extend(frame(true, 1, b"small"));
        let expected = data.clone();
        let mut io = WsIo::new(
            Trickle {
                data,
                pos: 0,
                calls: 0,
            },
            16,
            None,
        );
        let mut out = Vec::new();
        let mut chunk = [0u8; 2048];
        loop {
            let n = io.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(out, expected);
        // One 2 KiB read fills the caller's buffer, then 64 KiB reads: 3 socket reads and the
        // final end-of-stream, against 34 at 2 KiB each.
        assert!(io.inner.calls <= 4, "{} socket reads", io.inner.calls);
        assert!(io.spill.is_none(), "spill kept after draining");
    }
}
