//! A hostile Engine.IO server on loopback, for the client's tests: it reads each HTTP request
//! and answers with whatever bytes a script says, broken or not (endless bodies, lies in
//! `Content-Length`, raw WebSocket frames of any size, silence).
//!
//! Every loop is bounded: connections accepted, requests per connection, head and body sizes,
//! bytes streamed, frames read, and each hold has a duration.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Most connections one server accepts.
const MAX_CONNECTIONS: usize = 512;
/// Most requests served on one keep-alive connection.
const MAX_REQUESTS: usize = 1024;
/// Longest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// Largest request body read.
const MAX_BODY: usize = 1 << 20;
/// Most client WebSocket frames read while waiting for one.
const MAX_FRAMES_READ: usize = 1024;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`…
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query's pairs, undecoded.
    pub query: Vec<(String, String)>,
    /// The body (at most 1 MiB is read).
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete HTTP/1.1 response with a right `Content-Length`.
    Http {
        /// The status code.
        status: u16,
        /// Extra header lines (`Name: value`).
        headers: Vec<String>,
        /// The body.
        body: Vec<u8>,
    },
    /// `head` (status line and headers, blank line included), then silence for `hold`.
    Stall {
        /// The raw response head, and any start of a body.
        head: Vec<u8>,
        /// How long the connection is held open.
        hold: Duration,
    },
    /// Accepts and says nothing for `hold`.
    Silent(Duration),
    /// `head`, then `chunk` again and again until `budget` bytes went out or the client left.
    Stream {
        /// The raw response head.
        head: Vec<u8>,
        /// What is repeated.
        chunk: Vec<u8>,
        /// Most bytes written after the head.
        budget: u64,
    },
    /// Waits `delay`, then answers with the reply.
    After(Duration, Box<Reply>),
    /// Answers once a POST whose body contains `needle` arrived (or after `within`).
    AfterPost {
        /// What the POST body must contain.
        needle: String,
        /// The longest wait.
        within: Duration,
        /// The answer.
        then: Box<Reply>,
    },
    /// Accepts a WebSocket upgrade and plays the steps.
    WebSocket(Vec<WsStep>),
}

impl Reply {
    /// `200 OK` with a text body.
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Http {
            status: 200,
            headers: vec!["Content-Type: text/plain; charset=UTF-8".into()],
            body: body.into(),
        }
    }
}

/// One step of a scripted WebSocket session.
#[derive(Debug, Clone)]
pub enum WsStep {
    /// A whole text message.
    Text(String),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// Raw bytes: frames as the test builds them with [`frame`] or [`frame_header`].
    Raw(Vec<u8>),
    /// Reads client frames until a text frame starts with `prefix` (or `within` passes).
    AwaitText {
        /// What the text must start with.
        prefix: String,
        /// The longest wait.
        within: Duration,
    },
    /// Writes `frame` again and again until `budget` bytes went out or the client left.
    Flood {
        /// The bytes repeated.
        frame: Vec<u8>,
        /// Most bytes written.
        budget: u64,
    },
    /// Keeps the connection open, reading and discarding, for this long.
    Hold(Duration),
    /// Keeps the connection open without reading, for this long: the client's writes fill
    /// the socket buffers and then block.
    Deaf(Duration),
}

/// The script: one reply per request.
pub type Script = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// What the server saw and did.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections: AtomicUsize,
    /// Requests read.
    pub requests: AtomicUsize,
    /// Bytes written to clients.
    pub bytes_written: AtomicU64,
    posts: Mutex<Vec<Vec<u8>>>,
    posted: Notify,
}

impl Stats {
    /// The POST bodies received so far.
    pub fn posts(&self) -> Vec<Vec<u8>> {
        self.posts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn posted_contains(&self, needle: &[u8]) -> bool {
        self.posts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|body| body.windows(needle.len().max(1)).any(|w| w == needle))
    }
}

/// A running hostile server; stops when dropped.
pub struct HostileServer {
    addr: SocketAddr,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl HostileServer {
    /// Binds 127.0.0.1 on an ephemeral port and serves `script`.
    pub async fn start(script: Script) -> std::io::Result<HostileServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let shared = Arc::clone(&stats);
        let task = tokio::spawn(async move {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let script = Arc::clone(&script);
                let stats = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Err(error) = serve(tcp, script, stats).await {
                        tracing::debug!(%error, "hostile server connection ended");
                    }
                });
            }
        });
        Ok(HostileServer { addr, stats, task })
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the server saw.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut tcp: TcpStream, script: Script, stats: Arc<Stats>) -> std::io::Result<()> {
    let _ = tcp.set_nodelay(true);
    let mut buffered = Vec::new();
    for _ in 0..MAX_REQUESTS {
        let Some((request, key)) = read_request(&mut tcp, &mut buffered).await? else {
            return Ok(());
        };
        stats.requests.fetch_add(1, Ordering::Relaxed);
        if request.method == "POST" {
            stats
                .posts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(request.body.clone());
            stats.posted.notify_waiters();
        }
        let reply = script(&request);
        if !answer(&mut tcp, reply, key.as_deref(), &stats).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// Writes one reply; false when the connection is done with.
async fn answer(
    tcp: &mut TcpStream,
    mut reply: Reply,
    ws_key: Option<&str>,
    stats: &Stats,
) -> std::io::Result<bool> {
    // `After` and `AfterPost` nest; each level is one wait, and scripts nest a few at most.
    for _ in 0..16 {
        match reply {
            Reply::After(delay, then) => {
                tokio::time::sleep(delay).await;
                reply = *then;
            }
            Reply::AfterPost {
                needle,
                within,
                then,
            } => {
                let wait = async {
                    loop {
                        let notified = stats.posted.notified();
                        if stats.posted_contains(needle.as_bytes()) {
                            return;
                        }
                        notified.await;
                    }
                };
                let _ = tokio::time::timeout(within, wait).await;
                reply = *then;
            }
            _ => break,
        }
    }
    match reply {
        Reply::Http {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: keep-alive\r\n",
                body.len()
            );
            for header in headers {
                head.push_str(&header);
                head.push_str("\r\n");
            }
            head.push_str("\r\n");
            write(tcp, head.as_bytes(), stats).await?;
            write(tcp, &body, stats).await?;
            Ok(true)
        }
        Reply::Stall { head, hold } => {
            write(tcp, &head, stats).await?;
            drain_for(tcp, hold).await;
            Ok(false)
        }
        Reply::Silent(hold) => {
            drain_for(tcp, hold).await;
            Ok(false)
        }
        Reply::Stream {
            head,
            chunk,
            budget,
        } => {
            write(tcp, &head, stats).await?;
            flood(tcp, &chunk, budget, stats).await;
            Ok(false)
        }
        Reply::WebSocket(steps) => {
            let Some(key) = ws_key else {
                write(tcp, b"HTTP/1.1 400 X\r\nContent-Length: 0\r\n\r\n", stats).await?;
                return Ok(false);
            };
            let head = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                derive_accept_key(key.as_bytes())
            );
            write(tcp, head.as_bytes(), stats).await?;
            for step in steps {
                if !ws_step(tcp, step, stats).await? {
                    break;
                }
            }
            Ok(false)
        }
        Reply::After(..) | Reply::AfterPost { .. } => Ok(false),
    }
}

/// Plays one step; false when the client is gone.
async fn ws_step(tcp: &mut TcpStream, step: WsStep, stats: &Stats) -> std::io::Result<bool> {
    match step {
        WsStep::Text(text) => write(tcp, &frame(true, 0x1, text.as_bytes()), stats).await?,
        WsStep::Binary(data) => write(tcp, &frame(true, 0x2, &data), stats).await?,
        WsStep::Raw(bytes) => write(tcp, &bytes, stats).await?,
        WsStep::AwaitText { prefix, within } => {
            let wait = async {
                for _ in 0..MAX_FRAMES_READ {
                    match read_client_frame(tcp).await {
                        Ok((0x1, payload)) if payload.starts_with(prefix.as_bytes()) => {
                            return true;
                        }
                        Ok(_) => {}
                        Err(_) => return false,
                    }
                }
                false
            };
            return Ok(tokio::time::timeout(within, wait).await.unwrap_or(false));
        }
        WsStep::Flood { frame, budget } => return Ok(flood(tcp, &frame, budget, stats).await),
        WsStep::Hold(hold) => drain_for(tcp, hold).await,
        WsStep::Deaf(hold) => tokio::time::sleep(hold).await,
    }
    Ok(true)
}

async fn write(tcp: &mut TcpStream, bytes: &[u8], stats: &Stats) -> std::io::Result<()> {
    tcp.write_all(bytes).await?;
    stats
        .bytes_written
        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Repeats `chunk` up to `budget` bytes; false when the client went away first.
async fn flood(tcp: &mut TcpStream, chunk: &[u8], budget: u64, stats: &Stats) -> bool {
    if chunk.is_empty() {
        return true;
    }
    let mut sent = 0u64;
    while sent < budget {
        if write(tcp, chunk, stats).await.is_err() {
            return false;
        }
        sent = sent.saturating_add(chunk.len() as u64);
    }
    true
}

/// Reads and discards for `hold`, or until the client closes.
async fn drain_for(tcp: &mut TcpStream, hold: Duration) {
    let drain = async {
        let mut sink = [0u8; 4096];
        while let Ok(n) = tcp.read(&mut sink).await {
            if n == 0 {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(hold, drain).await;
}

/// Reads one request (head and `Content-Length` body); `None` when the client closed. Also
/// returns the `Sec-WebSocket-Key` of an upgrade request.
async fn read_request(
    tcp: &mut TcpStream,
    buffered: &mut Vec<u8>,
) -> std::io::Result<Option<(Request, Option<String>)>> {
    let end = loop {
        if let Some(pos) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buffered.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too long"));
        }
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffered.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let head = String::from_utf8_lossy(buffered.get(..end).unwrap_or_default()).into_owned();
    buffered.drain(..end.saturating_add(4));
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let mut length = 0usize;
    let mut key = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            length = value.parse().unwrap_or(0).min(MAX_BODY);
        } else if name == "sec-websocket-key" {
            key = Some(value.to_owned());
        }
    }
    while buffered.len() < length {
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffered.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    let body: Vec<u8> = buffered.drain(..length).collect();
    Ok(Some((
        Request {
            method,
            path: path.to_owned(),
            query,
            body,
        },
        key,
    )))
}

/// Reads one masked client frame (payloads up to 1 MiB): its opcode and unmasked payload.
async fn read_client_frame(tcp: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await?;
    let [b0, b1] = head;
    let len = match b1 & 0x7f {
        126 => u64::from(tcp.read_u16().await?),
        127 => tcp.read_u64().await?,
        n => u64::from(n),
    };
    if len > MAX_BODY as u64 {
        return Err(std::io::Error::other("client frame too large"));
    }
    let mut mask = [0u8; 4];
    if b1 & 0x80 != 0 {
        tcp.read_exact(&mut mask).await?;
    }
    let mut payload = vec![0u8; usize::try_from(len).unwrap_or(0)];
    tcp.read_exact(&mut payload).await?;
    for (byte, m) in payload.iter_mut().zip(mask.iter().cycle()) {
        *byte ^= m;
    }
    Ok((b0 & 0x0f, payload))
}

/// An unmasked server frame.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_header(fin, opcode, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

/// Only the header of an unmasked server frame announcing `len` payload bytes (which may never
/// follow).
pub fn frame_header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | (opcode & 0x0f)];
    if len < 126 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out
}

/// An Engine.IO OPEN packet with these values, as raw JSON fields (so that absurd or missing
/// values can be written).
pub fn open_packet(fields: &str) -> String {
    format!("0{{{fields}}}")
}

/// A script for a polling session: the handshake GET gets `open`, POSTs get `ok`, the first
/// session GET gets `40{"sid":…}` (the CONNECT answer for `/`), and each later GET the next of
/// `gets`; once they are used up, GETs get a NOOP after 100 ms.
pub fn polling_script(open: String, gets: Vec<Reply>) -> Script {
    let gets = Mutex::new(VecDeque::from(gets));
    let connected = AtomicUsize::new(0);
    Arc::new(move |request: &Request| {
        if request.method == "POST" {
            return Reply::ok("ok");
        }
        if request.param("sid").is_none() {
            return Reply::ok(open.clone());
        }
        if connected.fetch_add(1, Ordering::Relaxed) == 0 {
            return Reply::ok(r#"40{"sid":"hostile-ns-sid"}"#);
        }
        let next = gets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        next.unwrap_or_else(|| Reply::After(Duration::from_millis(100), Box::new(Reply::ok("6"))))
    })
}

/// A script for a WebSocket-only session: the upgrade gets `open`, the client's CONNECT for `/`
/// its answer, then `steps`, then the connection is held for `hold`.
pub fn websocket_script(open: String, steps: Vec<WsStep>, hold: Duration) -> Script {
    Arc::new(move |_request: &Request| {
        let mut all = vec![
            WsStep::Text(open.clone()),
            WsStep::AwaitText {
                prefix: "40".into(),
                within: Duration::from_secs(5),
            },
            WsStep::Text(r#"40{"sid":"hostile-ns-sid"}"#.into()),
        ];
        all.extend(steps.iter().cloned());
        all.push(WsStep::Hold(hold));
        Reply::WebSocket(all)
    })
}
