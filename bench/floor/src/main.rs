//! The floor of sockeye's benchmark: the least work a Socket.IO echo and broadcast can cost
//! on this stack. Every report states sockeye's distance to it, not only to the peers.
//!
//! `floor [PORT]` (default 4005) listens on 127.0.0.1, prints `listening on 127.0.0.1:PORT`
//! and serves the sio-bench bench-app contract on namespace `/` over WebSocket only: `echo`
//! with an ack (text, and binary with attachments) and `broadcast` (re-emitted to every
//! connected socket, sender included, then acked with no arguments). SIGINT or SIGTERM ends
//! it with exit status 0, so callgrind writes its counts.
//!
//! What it does per message, and why that is the floor:
//!
//! - **One runtime thread**: a current-thread tokio runtime with a `LocalSet`. The servers
//!   under test run pinned to one CPU, so a second worker could only add cross-thread wakeups;
//!   on one thread the socket table is a plain `RefCell<Vec<_>>`, with no locks and no atomics
//!   on the message path.
//! - **One read syscall per batch of input**: each connection task owns its read half and
//!   reads with `read_buf` into spare capacity (no zeroing). tokio clears the read readiness
//!   after a short read, so a drained socket is not read again just to see `EAGAIN`; a frame
//!   whose header announces more bytes than are buffered gets room for all of them at once.
//! - **One write syscall per batch of output**: every reply produced from one read (acks, the
//!   sender's own copy of a broadcast, pongs) is built into one buffer and written once.
//! - **Broadcast = one frame, one `write` per receiver and read**: the frame is built once,
//!   then the broadcasting task writes it to each receiver itself with `try_write`. No channel,
//!   no wakeup of the receiver's task, no copy per receiver. The broadcasts of one read (a
//!   sender with several in flight) are built back to back and go out in that one `write` per
//!   receiver: a syscall per frame and receiver would cost more than everything else a
//!   delivery needs, and it is what a busy server batches anyway. Only when a receiver's kernel buffer
//!   is full does the rest go to that receiver's backlog, and a flush task is started for it
//!   that waits until the socket is writable; while a backlog exists every later write to that
//!   receiver is appended to it, so bytes stay in order. The backlog is bounded
//!   ([`MAX_BACKLOG`]): a client that does not read is dropped, not buffered without end.
//! - **No parsing beyond the prefix**: replies are made by rewriting the packet's first bytes
//!   (`42<id>["echo",<args>]` → `43<id>[<args>]`); the JSON is never decoded.
//! - **No heartbeat**: the open packet's `pingInterval` is 2 000 000 000 ms (23 days), so no
//!   timer runs per connection and no ping is ever sent. A benchmark run lasts seconds, well
//!   inside the 25 s default interval of the peers, so they send no pings in a run either; the
//!   value stays below 2^31 - 1 ms together with `pingTimeout`, because browsers' `setTimeout`
//!   fires at once for longer delays and a JavaScript client would then time out at once.
//!
//! Not served: HTTP long-polling (and so the polling-to-WebSocket upgrade), other namespaces
//! (their CONNECT is refused), fragmented WebSocket messages (the connection is closed),
//! binary attachments of anything but `echo` (read and discarded).

use std::cell::{Cell, RefCell};
use std::io::{self, ErrorKind};
use std::process::ExitCode;
use std::rc::Rc;

use base64::Engine as _;
use sha1::{Digest, Sha1};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::{AbortHandle, LocalSet};

/// Largest WebSocket payload accepted (also the `maxPayload` the open packet announces).
const MAX_PAYLOAD: usize = 1 << 20;
/// Most bytes queued for one client whose socket buffer is full; beyond it the client is dropped.
const MAX_BACKLOG: usize = 4 << 20;
/// Largest HTTP upgrade request accepted.
const MAX_REQUEST: usize = 8 << 10;
/// Free room the read buffer has before each read. Small, because it is held by every idle
/// connection; a larger frame gets room for its whole length once its header is in.
const READ_ROOM: usize = 4 << 10;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

fn main() -> ExitCode {
    let port = match std::env::args().nth(1).map(|p| p.parse::<u16>()) {
        None => 4005,
        Some(Ok(port)) => port,
        Some(Err(e)) => {
            eprintln!("usage: floor [PORT] ({e})");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("floor: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match LocalSet::new().block_on(&runtime, serve(port)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Accepts connections until SIGINT or SIGTERM.
async fn serve(port: u16) -> io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    // The bench scripts wait for this line (or for the port) before they start a run.
    println!("listening on {}", listener.local_addr()?);
    let sockets = Rc::new(Sockets::default());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                // A failed accept (e.g. out of file descriptors) loses that client only.
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let (rx, tx) = tcp.into_split();
                let peer = Rc::new(Peer::new(tx, sockets.next_id()));
                let task = tokio::task::spawn_local(connection(sockets.clone(), peer.clone(), rx));
                peer.reader.set(Some(task.abort_handle()));
            }
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        }
    }
    eprintln!(
        "floor: {} connections, {} dropped for not reading",
        sockets.next_id.get(),
        sockets.dropped.get()
    );
    Ok(())
}

/// One client connection, as seen from any task that writes to it.
struct Peer {
    tx: OwnedWriteHalf,
    id: u64,
    /// Bytes the kernel did not take yet, oldest first; empty unless a flush task runs.
    backlog: RefCell<Vec<u8>>,
    /// Index in [`Sockets::list`] while connected to namespace `/`.
    slot: Cell<Option<usize>>,
    /// The connection's reading task and its flush task (if any), to end them on a drop.
    reader: Cell<Option<AbortHandle>>,
    flusher: Cell<Option<AbortHandle>>,
}

impl Peer {
    fn new(tx: OwnedWriteHalf, id: u64) -> Self {
        Self {
            tx,
            id,
            backlog: RefCell::default(),
            slot: Cell::new(None),
            reader: Cell::new(None),
            flusher: Cell::new(None),
        }
    }
}

/// The sockets connected to namespace `/`: the receivers of a broadcast.
#[derive(Default)]
struct Sockets {
    list: RefCell<Vec<Rc<Peer>>>,
    next_id: Cell<u64>,
    dropped: Cell<u64>,
}

impl Sockets {
    fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    fn join(&self, peer: &Rc<Peer>) {
        if peer.slot.get().is_none() {
            let mut list = self.list.borrow_mut();
            peer.slot.set(Some(list.len()));
            list.push(peer.clone());
        }
    }

    fn leave(&self, peer: &Peer) {
        if let Some(slot) = peer.slot.take() {
            let mut list = self.list.borrow_mut();
            list.swap_remove(slot);
            if let Some(moved) = list.get(slot) {
                moved.slot.set(Some(slot));
            }
        }
    }

    /// Writes `bytes` to `peer` now, or queues what its socket did not take. `false`: the
    /// peer is broken or does not read and must be dropped (see [`Sockets::drop_peer`]).
    fn send(self: &Rc<Self>, peer: &Rc<Peer>, bytes: &[u8]) -> bool {
        let mut backlog = peer.backlog.borrow_mut();
        if !backlog.is_empty() {
            // A flush task is running; writing now would overtake the queued bytes.
            if backlog.len() + bytes.len() > MAX_BACKLOG {
                return false;
            }
            backlog.extend_from_slice(bytes);
            return true;
        }
        let written = match peer.tx.try_write(bytes) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
            Err(_) => return false,
        };
        if written < bytes.len() {
            if bytes.len() - written > MAX_BACKLOG {
                return false;
            }
            backlog.extend_from_slice(&bytes[written..]);
            let task = tokio::task::spawn_local(flush(self.clone(), peer.clone()));
            peer.flusher.set(Some(task.abort_handle()));
        }
        true
    }

    /// Ends a connection: out of the broadcast list, backlog freed, its tasks aborted (which
    /// drops their handles on the socket and so closes it).
    fn drop_peer(&self, peer: &Peer) {
        self.leave(peer);
        *peer.backlog.borrow_mut() = Vec::new();
        if let Some(task) = peer.flusher.take() {
            task.abort();
        }
        if let Some(task) = peer.reader.take() {
            task.abort();
        }
    }
}

/// Writes a peer's backlog out as its socket drains, then ends.
async fn flush(sockets: Rc<Sockets>, peer: Rc<Peer>) {
    loop {
        if peer.tx.writable().await.is_err() {
            break;
        }
        let mut backlog = peer.backlog.borrow_mut();
        match peer.tx.try_write(&backlog) {
            Ok(n) if n == backlog.len() => {
                // Give the memory back: most connections never need a backlog again.
                *backlog = Vec::new();
                peer.flusher.take();
                return;
            }
            Ok(n) => {
                backlog.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    sockets.dropped.set(sockets.dropped.get() + 1);
    sockets.drop_peer(&peer);
}

/// The reading task of one connection.
async fn connection(sockets: Rc<Sockets>, peer: Rc<Peer>, rx: OwnedReadHalf) {
    if let Err(e) = run_connection(&sockets, &peer, rx).await
        && e.kind() == ErrorKind::OutOfMemory
    {
        sockets.dropped.set(sockets.dropped.get() + 1);
    }
    sockets.drop_peer(&peer);
}

/// The error of a write that could not be done or queued (see [`Sockets::send`]).
fn not_reading() -> io::Error {
    io::Error::new(ErrorKind::OutOfMemory, "client does not read its messages")
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, what)
}

async fn run_connection(
    sockets: &Rc<Sockets>,
    peer: &Rc<Peer>,
    mut rx: OwnedReadHalf,
) -> io::Result<()> {
    let mut input = Vec::with_capacity(READ_ROOM);
    let mut out = Vec::with_capacity(256);

    // The HTTP upgrade request, answered together with the Engine.IO open packet.
    let request_len = loop {
        if rx.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
        if let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if input.len() >= MAX_REQUEST {
            return Err(invalid("HTTP request too large"));
        }
    };
    let Some(accept) = upgrade_accept(&input[..request_len]) else {
        let _ = peer.tx.try_write(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return Ok(());
    };
    input.drain(..request_len);
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    let open = format!(
        "0{{\"sid\":\"floor{}\",\"upgrades\":[],\"pingInterval\":2000000000,\"pingTimeout\":20000,\"maxPayload\":{MAX_PAYLOAD}}}",
        peer.id
    );
    push_frame(&mut out, OP_TEXT, open.as_bytes());
    if !sockets.send(peer, &out) {
        return Err(not_reading());
    }

    let mut session = Session {
        id: peer.id,
        ..Session::default()
    };
    let mut broadcast = Vec::new();
    loop {
        out.clear();
        broadcast.clear();
        let mut used = 0;
        let mut closing = false;
        let want = loop {
            match parse_frame(&mut input[used..])? {
                Parsed::Frame(frame) => {
                    let payload = &input[used + frame.payload.0..used + frame.payload.1];
                    used += frame.len;
                    let reply = session.on_frame(frame.opcode, payload, &mut out, &mut broadcast);
                    match reply {
                        Reply::Done => {}
                        Reply::Join => sockets.join(peer),
                        Reply::Leave => sockets.leave(peer),
                        Reply::Close => {
                            closing = true;
                            break 0;
                        }
                    }
                }
                Parsed::Need(total) => break total,
            }
        };
        if !broadcast.is_empty() {
            // To every other socket on `/`; the sender's own copies ride in `out`, with the acks.
            let list = sockets.list.borrow();
            let mut gone = Vec::new();
            for other in list.iter().filter(|p| !Rc::ptr_eq(p, peer)) {
                if !sockets.send(other, &broadcast) {
                    gone.push(other.clone());
                }
            }
            drop(list);
            for other in gone {
                sockets.dropped.set(sockets.dropped.get() + 1);
                sockets.drop_peer(&other);
            }
        }
        if !out.is_empty() && !sockets.send(peer, &out) {
            return Err(not_reading());
        }
        if closing {
            return Ok(());
        }
        // Keep the unparsed tail; the common case is that everything was used.
        if used == input.len() {
            input.clear();
        } else {
            input.drain(..used);
        }
        let room = want.saturating_sub(input.len()).max(READ_ROOM);
        input.reserve(room);
        if rx.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
    }
}

/// `Sec-WebSocket-Accept` for a valid `GET /socket.io/?EIO=4&transport=websocket` upgrade
/// request; `None` for anything else (polling, a session id to upgrade, no key).
fn upgrade_accept(request: &[u8]) -> Option<String> {
    let request = std::str::from_utf8(request).ok()?;
    let mut lines = request.split("\r\n");
    let target = lines.next()?.strip_prefix("GET ")?.split(' ').next()?;
    let query = target.strip_prefix("/socket.io/?")?;
    let mut websocket = false;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("transport", t)) => websocket = t == "websocket",
            Some(("EIO", v)) if v != "4" => return None,
            Some(("sid", _)) => return None,
            _ => {}
        }
    }
    if !websocket {
        return None;
    }
    let key = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then_some(value.trim())
    })?;
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    Some(base64::engine::general_purpose::STANDARD.encode(sha.finalize()))
}

/// A complete client frame, unmasked in place.
struct Frame {
    opcode: u8,
    /// Payload start and end, relative to the frame's first byte.
    payload: (usize, usize),
    /// Header and payload.
    len: usize,
}

enum Parsed {
    Frame(Frame),
    /// The frame is incomplete: this many bytes are needed from its start.
    Need(usize),
}

/// Parses (and unmasks) the client frame at the start of `buf`.
fn parse_frame(buf: &mut [u8]) -> io::Result<Parsed> {
    if buf.len() < 2 {
        return Ok(Parsed::Need(2));
    }
    let (fin, opcode) = (buf[0] & 0x80 != 0, buf[0] & 0x0F);
    if buf[0] & 0x70 != 0 {
        return Err(invalid("reserved WebSocket bits set"));
    }
    if !fin || opcode == OP_CONTINUATION {
        return Err(invalid("fragmented WebSocket messages are not served"));
    }
    if buf[1] & 0x80 == 0 {
        return Err(invalid("unmasked client frame"));
    }
    let (len, mut at) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4),
        127 if buf.len() >= 10 => {
            let mut n = [0; 8];
            n.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(n), 10)
        }
        126 => return Ok(Parsed::Need(4)),
        127 => return Ok(Parsed::Need(10)),
        n => (u64::from(n), 2),
    };
    if len > MAX_PAYLOAD as u64 {
        return Err(invalid("WebSocket frame larger than maxPayload"));
    }
    let total = at + 4 + len as usize;
    if buf.len() < total {
        return Ok(Parsed::Need(total));
    }
    let mask = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
    at += 4;
    unmask(&mut buf[at..total], mask);
    Ok(Parsed::Frame(Frame {
        opcode,
        payload: (at, total),
        len: total,
    }))
}

/// XORs the payload with the 4-byte mask, eight bytes at a time.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // The tail starts at a multiple of 8, so the mask phase restarts at 0.
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// Appends an unmasked server frame.
fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    push_header(out, opcode, payload.len());
    out.extend_from_slice(payload);
}

fn push_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// What the connection must do after a frame, besides writing `out`.
#[derive(Debug, PartialEq)]
enum Reply {
    Done,
    Join,
    Leave,
    /// Write `out`, then close.
    Close,
}

/// Engine.IO / Socket.IO state of one connection.
#[derive(Default)]
struct Session {
    id: u64,
    /// Binary attachments still to come for the last binary packet.
    attachments: usize,
    /// Whether those attachments are echoed back (an `echo` with an ack).
    echo_attachments: bool,
}

impl Session {
    /// Handles one frame: replies go to `out`; a broadcast frame is appended to `broadcast`
    /// (written to every other socket on `/` once the whole read is handled).
    fn on_frame(
        &mut self,
        opcode: u8,
        payload: &[u8],
        out: &mut Vec<u8>,
        broadcast: &mut Vec<u8>,
    ) -> Reply {
        match opcode {
            OP_TEXT => match payload.split_first() {
                Some((b'4', packet)) => self.on_packet(packet, out, broadcast),
                Some((b'1', _)) => Reply::Close,
                _ => Reply::Done, // pong, noop, upgrade: nothing to answer
            },
            OP_BINARY if self.attachments > 0 => {
                self.attachments -= 1;
                if self.echo_attachments {
                    push_frame(out, OP_BINARY, payload);
                }
                Reply::Done
            }
            OP_PING => {
                push_frame(out, OP_PONG, payload);
                Reply::Done
            }
            OP_CLOSE => {
                // Echo the status code, as the close handshake asks.
                push_frame(out, OP_CLOSE, payload.get(..2).unwrap_or_default());
                Reply::Close
            }
            _ => Reply::Done,
        }
    }

    /// One Socket.IO packet (the Engine.IO `4` removed).
    fn on_packet(&mut self, packet: &[u8], out: &mut Vec<u8>, broadcast: &mut Vec<u8>) -> Reply {
        match packet {
            [b'0'] | [b'0', b'{', ..] => {
                let sid = format!("40{{\"sid\":\"s{}\"}}", self.id);
                push_frame(out, OP_TEXT, sid.as_bytes());
                return Reply::Join;
            }
            [b'0', b'/', nsp @ ..] => {
                let nsp = nsp.split(|&b| b == b',').next().unwrap_or_default();
                let mut refusal = b"44/".to_vec();
                refusal.extend_from_slice(nsp);
                refusal.extend_from_slice(b",{\"message\":\"Invalid namespace\"}");
                push_frame(out, OP_TEXT, &refusal);
                return Reply::Done;
            }
            [b'1', ..] => return Reply::Leave,
            _ => {}
        }
        let (binary, rest) = match packet {
            [b'2', rest @ ..] => (false, rest),
            [b'5', rest @ ..] => (true, rest),
            _ => return Reply::Done,
        };
        // `5<n>-`: the number of attachments that follow as binary frames.
        let (count, rest) = if binary {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let Some(after) = rest[digits..].strip_prefix(b"-") else {
                return Reply::Done;
            };
            (&rest[..digits], after)
        } else {
            (&rest[..0], rest)
        };
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (ack, body) = rest.split_at(digits);
        if binary {
            self.attachments = std::str::from_utf8(count)
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            self.echo_attachments = false;
        }
        if let Some(args) = body.strip_prefix(b"[\"echo\"") {
            if ack.is_empty() {
                return Reply::Done;
            }
            // `["echo",<args>]` → `[<args>]`, behind `43<id>` or `46<n>-<id>`.
            let args = args.strip_prefix(b",").unwrap_or(args);
            let head = if binary { 3 + count.len() } else { 2 };
            push_header(out, OP_TEXT, head + ack.len() + 1 + args.len());
            if binary {
                out.extend_from_slice(b"46");
                out.extend_from_slice(count);
                out.push(b'-');
                self.echo_attachments = true;
            } else {
                out.extend_from_slice(b"43");
            }
            out.extend_from_slice(ack);
            out.push(b'[');
            out.extend_from_slice(args);
            Reply::Done
        } else if !binary && body.starts_with(b"[\"broadcast\"") {
            // `42<id>["broadcast",<args>]` → `42["broadcast",<args>]` to all, `43<id>[]` back.
            let start = broadcast.len();
            push_header(broadcast, OP_TEXT, 2 + body.len());
            broadcast.extend_from_slice(b"42");
            broadcast.extend_from_slice(body);
            out.extend_from_slice(&broadcast[start..]);
            if !ack.is_empty() {
                push_header(out, OP_TEXT, 4 + ack.len());
                out.extend_from_slice(b"43");
                out.extend_from_slice(ack);
                out.extend_from_slice(b"[]");
            }
            Reply::Done
        } else {
            Reply::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame, as a browser would send it.
    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut frame = Vec::new();
        push_header(&mut frame, opcode, payload.len());
        frame[1] |= 0x80;
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    /// Parses every server frame in `bytes` into (opcode, payload).
    fn server_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            let (len, at) = match bytes[1] {
                126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            frames.push((bytes[0] & 0x0F, bytes[at..at + len].to_vec()));
            bytes = &bytes[at + len..];
        }
        frames
    }

    fn answer(session: &mut Session, opcode: u8, payload: &[u8]) -> (Reply, Vec<(u8, Vec<u8>)>) {
        let (mut out, mut broadcast) = (Vec::new(), Vec::new());
        let reply = session.on_frame(opcode, payload, &mut out, &mut broadcast);
        (reply, server_frames(&out))
    }

    #[test]
    fn frames_of_every_length_class_parse_and_unmask() {
        for len in [0, 5, 125, 126, 65535, 65536, 100_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut wire = client_frame(OP_BINARY, &payload);
            let whole = wire.len();
            wire.extend_from_slice(b"next");
            // Every strict prefix asks for more; the whole frame parses.
            for cut in [1, 3, 9, whole - 1] {
                if cut < whole {
                    assert!(
                        matches!(parse_frame(&mut wire.clone()[..cut]), Ok(Parsed::Need(n)) if n > cut)
                    );
                }
            }
            let Ok(Parsed::Frame(frame)) = parse_frame(&mut wire) else {
                panic!("frame of {len} bytes did not parse");
            };
            assert_eq!(frame.len, whole);
            assert_eq!(&wire[frame.payload.0..frame.payload.1], &payload[..]);
        }
    }

    #[test]
    fn fragments_and_unmasked_frames_are_refused() {
        let mut fragment = client_frame(OP_TEXT, b"42");
        fragment[0] &= 0x7F;
        assert!(parse_frame(&mut fragment).is_err());
        let mut unmasked = Vec::new();
        push_frame(&mut unmasked, OP_TEXT, b"42");
        assert!(parse_frame(&mut unmasked).is_err());
    }

    #[test]
    fn upgrade_key_from_rfc_6455() {
        let request = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
                        sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        assert_eq!(
            upgrade_accept(request).as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        let polling = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n";
        assert_eq!(upgrade_accept(polling), None);
    }

    #[test]
    fn connect_echo_and_binary_echo() {
        let mut s = Session {
            id: 7,
            ..Session::default()
        };
        assert_eq!(
            answer(&mut s, OP_TEXT, b"40"),
            (Reply::Join, vec![(OP_TEXT, b"40{\"sid\":\"s7\"}".to_vec())])
        );
        let (_, frames) = answer(&mut s, OP_TEXT, b"4212[\"echo\",\"xx\",1]");
        assert_eq!(frames, vec![(OP_TEXT, b"4312[\"xx\",1]".to_vec())]);
        let (_, frames) = answer(&mut s, OP_TEXT, b"4213[\"echo\"]");
        assert_eq!(frames, vec![(OP_TEXT, b"4313[]".to_vec())]);
        let (_, frames) = answer(
            &mut s,
            OP_TEXT,
            b"451-9[\"echo\",{\"_placeholder\":true,\"num\":0}]",
        );
        assert_eq!(
            frames,
            vec![(
                OP_TEXT,
                b"461-9[{\"_placeholder\":true,\"num\":0}]".to_vec()
            )]
        );
        let (_, frames) = answer(&mut s, OP_BINARY, &[1, 2, 3]);
        assert_eq!(frames, vec![(OP_BINARY, vec![1, 2, 3])]);
        // No attachment announced: a stray binary frame gets no answer.
        assert_eq!(answer(&mut s, OP_BINARY, &[4]).1, vec![]);
    }

    #[test]
    fn broadcast_frame_and_ack() {
        let mut s = Session::default();
        let (mut out, mut broadcast) = (Vec::new(), Vec::new());
        let reply = s.on_packet(b"25[\"broadcast\",\"0001x\"]", &mut out, &mut broadcast);
        assert_eq!(reply, Reply::Done);
        assert_eq!(
            server_frames(&broadcast),
            vec![(OP_TEXT, b"42[\"broadcast\",\"0001x\"]".to_vec())]
        );
        assert_eq!(
            server_frames(&out),
            vec![
                (OP_TEXT, b"42[\"broadcast\",\"0001x\"]".to_vec()),
                (OP_TEXT, b"435[]".to_vec())
            ]
        );
        // A second broadcast of the same read joins the first: one write per receiver.
        s.on_packet(b"26[\"broadcast\",\"0002y\"]", &mut out, &mut broadcast);
        assert_eq!(server_frames(&broadcast).len(), 2);
    }

    #[test]
    fn other_namespaces_are_refused() {
        let mut s = Session::default();
        let (reply, frames) = answer(&mut s, OP_TEXT, b"40/admin,{\"token\":1}");
        assert_eq!(reply, Reply::Done);
        assert_eq!(
            frames,
            vec![(
                OP_TEXT,
                b"44/admin,{\"message\":\"Invalid namespace\"}".to_vec()
            )]
        );
    }
}
