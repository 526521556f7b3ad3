//! WebSocket: the HTTP upgrade, the probe of a polling session's upgrade, and the one task
//! per connection that reads, writes and runs the heartbeat.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use sockeye_protocol::engine::{Frame, Message, Packet};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tracing::Instrument;

use crate::close::CloseReason;
use crate::engine::{Inner, new_sid, remote_addr_of};
use crate::handler::EngineHandler;
use crate::http_util::{EngineBody, RequestError};
use crate::payload::Protocol;
use crate::session::{Session, State, Tick, Transport, Upgrade};
use crate::ws_io::{Deflate, TooManyFragments, WsIo};
use sockeye_protocol::deflate::{
    self, Deflater, InflateError, InflateStream, Inflater, Role as DeflateRole,
};

type Ws = WebSocketStream<WsIo<TokioIo<Upgraded>>>;

/// Longest time spent closing a WebSocket politely.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the WebSocket is for.
pub(crate) enum Mode<D> {
    /// A new session that starts on WebSocket, in this protocol.
    Handshake(Protocol),
    /// The upgrade of an existing polling session (its state is already `Upgrade::Pending`).
    Upgrade(Arc<Session<D>>),
    /// A WebSocket for a session that already has one (or is getting one): the handshake is
    /// answered and the socket closed at once. The reference server does the same, and a
    /// client that sees an HTTP 400 here reports an error instead of a plain close.
    Refuse,
}

/// Answers the HTTP upgrade (101) and spawns the connection task.
pub(crate) fn accept<H: EngineHandler, B>(
    inner: &Arc<Inner<H>>,
    mut req: Request<B>,
    mode: Mode<H::Data>,
) -> Response<EngineBody> {
    let kind = websocket_kind(&req);
    let checked = match kind {
        Some(kind) => validate(&req, kind),
        None => Err(Refusal::BadRequest),
    };
    let accept_key = match checked {
        Ok(key) => key,
        Err(refused) => {
            if let Mode::Upgrade(session) = &mode {
                session.lock().upgrade = Upgrade::None;
            }
            return refused.response();
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, _) = req.into_parts();
    let mut res = Response::new(Full::new(Bytes::new()));
    if let Some(accept) = accept_key {
        // HTTP/1.1: 101 Switching Protocols (RFC 6455 §4.2.2).
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = res.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    // HTTP/2 extended CONNECT: 200, and no Upgrade, Connection or Accept (RFC 8441 §5).
    let config = WebSocketConfig::default()
        .read_buffer_size(inner.config.ws_read_buffer_size)
        .write_buffer_size(inner.config.ws_write_buffer_size)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(inner.config.max_payload_usize()))
        .max_frame_size(Some(inner.config.max_payload_usize()));
    let upgrade_timeout = inner.config.upgrade_timeout;
    let max_fragments = inner.config.ws_max_fragments;
    let deflate = negotiate_deflate(inner, &parts.headers, res.headers_mut());
    let task_inner = Arc::clone(inner);
    match mode {
        Mode::Handshake(protocol) => {
            let sid = new_sid();
            if let Some(cookie) = inner.cookie(&sid) {
                res.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            let span = tracing::info_span!("engine.session", sid = %sid, transport = "websocket", remote = ?remote_addr_of(&parts));
            let start = Box::new(WsStart {
                sid,
                protocol,
                deflate,
                parts,
                config,
                max_fragments,
                upgrade_timeout,
                on_upgrade: Some(on_upgrade),
            });
            inner
                .tracker
                .spawn(open_on_websocket(task_inner, start).instrument(span));
        }
        Mode::Upgrade(session) => {
            let span = tracing::info_span!("engine.upgrade", sid = %session.sid(), remote = ?session.remote_addr());
            // Started here, not in the task: captured, the config and the rest kept a slot
            // in the connection's task for its whole life.
            let deadline = Instant::now() + upgrade_timeout;
            let upgraded = complete_upgrade(on_upgrade, deadline, config, max_fragments, deflate);
            inner.tracker.spawn(
                async move {
                    let Some(mut ws) = upgraded.await else {
                        tracing::debug!("WebSocket upgrade did not complete");
                        abandon_upgrade(&session);
                        return;
                    };
                    // Boxed for the same reason as `complete_upgrade`: needed once.
                    if Box::pin(probe(&mut ws, &session, deadline)).await {
                        tracing::debug!("upgraded to WebSocket");
                        run(&task_inner, &mut ws, &session).await;
                    } else {
                        abandon_upgrade(&session);
                        Box::pin(close_ws(&mut ws, CloseCode::Normal)).await;
                    }
                }
                .instrument(span),
            );
        }
        Mode::Refuse => {
            let span = tracing::debug_span!("engine.refuse", remote = ?remote_addr_of(&parts));
            // Started here, not in the task: captured, the config and the rest kept a slot
            // in the connection's task for its whole life.
            let deadline = Instant::now() + upgrade_timeout;
            let upgraded = complete_upgrade(on_upgrade, deadline, config, max_fragments, deflate);
            inner.tracker.spawn(
                async move {
                    let Some(mut ws) = upgraded.await else {
                        return;
                    };
                    tracing::debug!("second WebSocket for a session, closing it");
                    Box::pin(close_ws(&mut ws, CloseCode::Normal)).await;
                }
                .instrument(span),
            );
        }
    }
    res
}

/// How a WebSocket is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `GET` with `Upgrade: websocket` (RFC 6455).
    Http1,
    /// Extended `CONNECT` with `:protocol websocket` on an HTTP/2 stream (RFC 8441).
    Http2,
}

/// Whether the request asks for a WebSocket, and how. Its other fields are checked by
/// [`validate`].
pub(crate) fn websocket_kind<B>(req: &Request<B>) -> Option<Kind> {
    if req.method() == Method::CONNECT {
        return req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .filter(|p| p.as_str().eq_ignore_ascii_case("websocket"))
            .map(|_| Kind::Http2);
    }
    (req.method() == Method::GET && has_token(req.headers(), header::UPGRADE, "websocket"))
        .then_some(Kind::Http1)
}

/// True when a comma-separated header (all its lines) lists `token`, without case.
fn has_token(headers: &http::HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Why a WebSocket handshake request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A missing or malformed field: 400 `{"code":3,...}`.
    BadRequest,
    /// A `Sec-WebSocket-Version` other than 13: 426 with `Sec-WebSocket-Version: 13` (RFC 6455
    /// §4.4).
    Version,
}

impl Refusal {
    fn response(self) -> Response<EngineBody> {
        let mut res = RequestError::BadRequest.response();
        if self == Refusal::Version {
            *res.status_mut() = StatusCode::UPGRADE_REQUIRED;
            res.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        res
    }
}

/// Checks every field of a WebSocket handshake request: RFC 6455 §4.2.1 over HTTP/1.1, RFC
/// 8441 §4-5 over HTTP/2. On success, the `Sec-WebSocket-Accept` value for HTTP/1.1 (none for
/// HTTP/2, which does not use the key).
fn validate<B>(req: &Request<B>, kind: Kind) -> Result<Option<HeaderValue>, Refusal> {
    let headers = req.headers();
    let bad = |why: &str| {
        tracing::debug!(why, "invalid WebSocket handshake");
        Refusal::BadRequest
    };
    match kind {
        Kind::Http1 => {
            // 1. An HTTP/1.1 (or later) GET; `websocket_kind` checked GET and `Upgrade`.
            if req.version() < http::Version::HTTP_11 {
                return Err(bad("HTTP version before 1.1"));
            }
            // 2. A Host header.
            if !headers.contains_key(header::HOST) {
                return Err(bad("no Host header"));
            }
            // 4. `Connection` includes the token `Upgrade`.
            if !has_token(headers, header::CONNECTION, "upgrade") {
                return Err(bad("Connection does not include Upgrade"));
            }
        }
        Kind::Http2 => {
            // RFC 8441 §4: `:scheme`, `:path` and `:authority` with `:protocol`.
            let uri = req.uri();
            if uri.scheme().is_none() || uri.authority().is_none() || uri.path().is_empty() {
                return Err(bad("extended CONNECT without :scheme, :authority or :path"));
            }
        }
    }
    // 6. `Sec-WebSocket-Version: 13`, exactly one.
    let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    match (versions.next(), versions.next()) {
        (Some(v), None) if v.as_bytes() == b"13" => {}
        (None, _) => return Err(bad("no Sec-WebSocket-Version")),
        _ => {
            tracing::debug!("unsupported Sec-WebSocket-Version");
            return Err(Refusal::Version);
        }
    }
    if kind == Kind::Http2 {
        return Ok(None);
    }
    // 5. `Sec-WebSocket-Key`: exactly one, base64 of 16 bytes.
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key,
        _ => return Err(bad("no or several Sec-WebSocket-Key")),
    };
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.as_bytes());
    if decoded.map(|k| k.len()) != Ok(16) {
        return Err(bad("Sec-WebSocket-Key is not base64 of 16 bytes"));
    }
    HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map(Some)
        .map_err(|_| bad("unusable key"))
}

/// Waits until `deadline` for the HTTP upgrade to complete, then speaks WebSocket on it as
/// the server; `None` if the client went away or the deadline passed first.
///
/// Boxed: awaited in place, its state (the upgrade timeout, the handshake future and the
/// stream being built: about 690 bytes) sized every connection task for its whole life,
/// though it is only needed until the upgrade completes. One short-lived allocation per
/// WebSocket instead.
fn complete_upgrade(
    on_upgrade: hyper::upgrade::OnUpgrade,
    deadline: Instant,
    config: WebSocketConfig,
    max_fragments: u32,
    deflate: Option<Box<Deflate>>,
) -> Pin<Box<impl std::future::Future<Output = Option<Ws>> + Send>> {
    Box::pin(upgrade_stream(
        on_upgrade,
        deadline,
        config,
        max_fragments,
        deflate,
    ))
}

async fn upgrade_stream(
    on_upgrade: hyper::upgrade::OnUpgrade,
    deadline: Instant,
    config: WebSocketConfig,
    max_fragments: u32,
    deflate: Option<Box<Deflate>>,
) -> Option<Ws> {
    let upgraded = tokio::time::timeout_at(deadline, on_upgrade)
        .await
        .ok()?
        .ok()?;
    let io = WsIo::new(TokioIo::new(upgraded), max_fragments, deflate);
    Some(WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await)
}

/// permessage-deflate for this handshake, when configured and offered: adds the answer to
/// `response` and returns the connection's state.
fn negotiate_deflate<H: EngineHandler>(
    inner: &Inner<H>,
    request: &http::HeaderMap,
    response: &mut http::HeaderMap,
) -> Option<Box<Deflate>> {
    let config = inner.config.ws_deflate.as_ref()?;
    let offers = request
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let (answer, agreed) = deflate::negotiate(offers, config)?;
    response.insert(
        header::SEC_WEBSOCKET_EXTENSIONS,
        HeaderValue::from_str(&answer).ok()?,
    );
    let limit = inner.config.max_payload_usize();
    Some(Box::new(Deflate::new(
        InflateStream::new(
            DeflateRole::Server,
            Inflater::new(DeflateRole::Server, agreed, limit),
        ),
        Deflater::new(DeflateRole::Server, agreed, config),
    )))
}

fn abandon_upgrade<D>(session: &Session<D>) {
    let mut state = session.lock();
    if state.transport == Transport::Polling {
        state.upgrade = Upgrade::None;
    }
}

/// What a WebSocket that opens a session needs once the HTTP upgrade completes. Boxed on
/// purpose: arguments and captures of a future keep their slot in it for its whole life, so
/// passed by value the request head, the tungstenite config and the stream took space in
/// every connection task, idle ones included (about 400 bytes each).
struct WsStart {
    sid: Box<str>,
    protocol: Protocol,
    deflate: Option<Box<Deflate>>,
    parts: http::request::Parts,
    config: WebSocketConfig,
    max_fragments: u32,
    upgrade_timeout: Duration,
    /// Taken when the upgrade starts.
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl WsStart {
    /// The fields, with the box freed.
    fn unbox(start: Box<WsStart>) -> WsStart {
        *start
    }
}

/// Waits for the HTTP upgrade, sends the OPEN packet on the new WebSocket and runs the
/// session.
async fn open_on_websocket<H: EngineHandler>(inner: Arc<Inner<H>>, start: Box<WsStart>) {
    // The request head and the sid stay in the box until the session is created: locals
    // alive across several awaits get a slot of their own for the task's whole life.
    let mut start = start;
    let Some(on_upgrade) = start.on_upgrade.take() else {
        return;
    };
    let deadline = Instant::now() + start.upgrade_timeout;
    let upgraded = complete_upgrade(
        on_upgrade,
        deadline,
        start.config,
        start.max_fragments,
        start.deflate.take(),
    );
    let Some(mut ws) = upgraded.await else {
        tracing::debug!("WebSocket upgrade did not complete");
        return;
    };
    let open = inner.handshake_packet(&start.sid, false).encode();
    let Ok(open) = Utf8Bytes::try_from(open) else {
        return;
    };
    // Boxed: needed once, and in place its timer and message sized the task for good.
    let sent = Box::pin(tokio::time::timeout(
        inner.config.slow_reader_timeout,
        ws.send(WsMessage::Text(open)),
    ));
    if !matches!(sent.await, Ok(Ok(()))) {
        tracing::debug!("client left before the OPEN packet");
        return;
    }
    // Moved out through a call that consumes the box: a box destructured in place (`*start`)
    // is only freed when the function returns, which kept its 344 bytes with every
    // connection for its whole life.
    let WsStart {
        sid,
        protocol,
        parts,
        ..
    } = WsStart::unbox(start);
    let session = inner.create_session(sid, parts, Transport::Websocket, (protocol, false));
    // A panicking on_open leaves the session closing: `run` then closes the socket.
    inner.open_guarded(&session);
    run(&inner, &mut ws, &session).await;
}

/// The probe of an upgrade: `2probe` → `3probe`, then `5`. Anything else, a close of the
/// session or the deadline abandons the upgrade (the session stays on polling).
async fn probe<D>(ws: &mut Ws, session: &Session<D>, deadline: Instant) -> bool {
    loop {
        let wake = session.wake_driver.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        if session.is_closed() {
            return false;
        }
        let next = tokio::select! {
            msg = ws.next() => msg,
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!("upgrade not completed in time");
                return false;
            }
            () = &mut wake => continue,
        };
        let text = match next {
            Some(Ok(WsMessage::Text(text))) => text,
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            _ => return false,
        };
        match text.as_str() {
            "2probe" => {
                let pong = ws.send(WsMessage::Text(Utf8Bytes::from_static("3probe")));
                if !matches!(tokio::time::timeout_at(deadline, pong).await, Ok(Ok(()))) {
                    return false;
                }
                session.lock().upgrade = Upgrade::Probed;
                // A pending GET now ends with NOOP so the client can pause polling.
                session.wake_writer.notify_waiters();
            }
            "5" => {
                let mut state = session.lock();
                if state.upgrade != Upgrade::Probed || state.closing.is_some() {
                    return false;
                }
                state.transport = Transport::Websocket;
                state.upgrade = Upgrade::None;
                drop(state);
                session.wake_writer.notify_waiters();
                session.wake_driver.notify_waiters();
                return true;
            }
            other => {
                tracing::debug!(packet = %other.chars().take(16).collect::<String>(), "unexpected packet during upgrade");
                return false;
            }
        }
    }
}

/// The connection loop of a WebSocket session: writes what is queued (ping first), reads
/// the next packet once the previous message was handled, and runs the heartbeat.
async fn run<H: EngineHandler>(
    inner: &Arc<Inner<H>>,
    ws: &mut Ws,
    session: &Arc<Session<H::Data>>,
) {
    let config = &inner.config;
    let mut inflight = InflightSlot { fut: None };
    let mut paused_since: Option<Instant> = None;
    let mut close_code = CloseCode::Normal;
    // In a block: the timer is dropped with it, so it takes no room beside the close path's
    // state in the connection task.
    {
        // One timer for the whole connection, moved only when the heartbeat deadline changes: a
        // new `sleep_until` per loop turn inserted and removed a timer-wheel entry per message.
        let timer_sleep = tokio::time::sleep_until(Instant::now() + config.ping_interval);
        tokio::pin!(timer_sleep);
        // Registered before the state is read, so a send in between is not missed; kept
        // across loop turns and renewed only once it fired (a new registration per turn was
        // ~200 instructions per echo round trip).
        let wake = session.wake_writer.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        // Whether the last turn ran the handler (or this is the first turn).
        let mut handler_ran = true;
        loop {
            // A wake-up for frames queued since (the ack of a handler that just ran) would
            // otherwise cost a whole extra turn. Polled with the task's own waker: a no-op
            // waker here replaced the registered one, and the `select!` below put it back, a
            // waker clone and drop each way on every turn. Only after the handler ran: after
            // any other branch a wake-up is rarely pending, and the `select!` sees it anyway
            // (each poll of a waiting `Notified` takes the notify lock).
            let woken = handler_ran
                && std::future::poll_fn(|cx| Poll::Ready(wake.as_mut().poll(cx).is_ready())).await;
            handler_ran = false;
            if woken {
                wake.set(session.wake_writer.notified());
                wake.as_mut().enable();
            }
            // The closing check and the first frame to write under one lock.
            let first = match closing_or_next_outgoing(session) {
                Err(reason) => {
                    if reason != CloseReason::SlowReader {
                        let first = next_outgoing(session);
                        let _ =
                            write_queued(ws, session, first, CLOSE_TIMEOUT, timer_sleep.as_mut())
                                .await;
                    }
                    if reason == CloseReason::PayloadTooLarge {
                        close_code = CloseCode::Size;
                    }
                    break;
                }
                Ok(first) => first,
            };
            let timeout = config.slow_reader_timeout;
            if let Err(reason) =
                write_queued(ws, session, first, timeout, timer_sleep.as_mut()).await
            {
                session.close(reason);
                continue;
            }
            let now = Instant::now();
            let (tick, backpressured) = session.tick_and_watermark(now);
            let timer = match tick {
                Tick::Sleep(at) => at,
                Tick::Timeout => {
                    session.close(CloseReason::PingTimeout);
                    continue;
                }
            };
            let timer = if backpressured {
                let since = *paused_since.get_or_insert(now);
                if now.duration_since(since) >= config.slow_reader_timeout {
                    session.close(CloseReason::SlowReader);
                    continue;
                }
                timer.min(since + config.slow_reader_timeout)
            } else {
                paused_since = None;
                timer
            };
            if timer_sleep.deadline() != timer {
                timer_sleep.as_mut().reset(timer);
            }
            let can_read = inflight.is_idle() && !backpressured;
            // `biased`: no random start (a thread-local RNG draw per turn). No branch can
            // starve another: every turn writes what is queued and runs the heartbeat check
            // above whichever branch woke it, and the handler and the read exclude each other.
            tokio::select! {
                biased;
                () = inflight.finish() => handler_ran = true,
                msg = ws.next(), if can_read => {
                    match incoming(msg, session.protocol()) {
                        Incoming::Message(message) => {
                            inflight.start(inner.deliver(session, message));
                        }
                        Incoming::Pong => {
                            if !session.on_pong() {
                                tracing::debug!("PONG from a v3 client: invalid heartbeat direction");
                                session.close(CloseReason::TransportError);
                            }
                        }
                        Incoming::Ping => {
                            if !session.on_client_ping() {
                                tracing::trace!("PING from a v4 client, ignored");
                            }
                        }
                        Incoming::Ignore => {}
                        Incoming::Close(reason, code) => {
                            close_code = code;
                            session.close(reason);
                        }
                    }
                }
                () = &mut timer_sleep => {}
                () = &mut wake => {
                    wake.set(session.wake_writer.notified());
                    wake.as_mut().enable();
                }
            }
        }
    }
    // The close path runs once per connection: boxed, its timeouts do not size every
    // connection task. A handler still running gets a bounded chance to finish rather than
    // being cancelled halfway; `on_close` comes after it.
    Box::pin(async move {
        if tokio::time::timeout(CLOSE_TIMEOUT, inflight.settle())
            .await
            .is_err()
        {
            tracing::warn!("message handler still running at close, cancelled");
        }
        close_ws(ws, close_code).await;
    })
    .await;
    inner.finalize(session);
}

enum Incoming {
    Message(Message),
    Pong,
    Ping,
    Ignore,
    Close(CloseReason, CloseCode),
}

/// Decodes a text frame in the session's protocol (tungstenite has checked its UTF-8).
fn decode_text(protocol: Protocol, text: Utf8Bytes) -> Result<Packet, String> {
    match protocol {
        #[cfg(feature = "eio3")]
        Protocol::V3 => {
            sockeye_protocol::eio3::decode_text(Bytes::from(text)).map_err(|e| e.to_string())
        }
        _ => Packet::decode_str(text).map_err(|e| e.to_string()),
    }
}

/// Decodes a binary frame in the session's protocol (v3 frames start with the type byte).
fn decode_binary(protocol: Protocol, data: Bytes) -> Result<Packet, String> {
    match protocol {
        #[cfg(feature = "eio3")]
        Protocol::V3 => sockeye_protocol::eio3::decode_binary(data).map_err(|e| e.to_string()),
        _ => Ok(Packet::Binary(data)),
    }
}

fn incoming(msg: Option<Result<WsMessage, WsError>>, protocol: Protocol) -> Incoming {
    let packet = match msg {
        Some(Ok(WsMessage::Text(text))) => decode_text(protocol, text),
        Some(Ok(WsMessage::Binary(data))) => decode_binary(protocol, data),
        other => return incoming_other(other),
    };
    match packet {
        Ok(Packet::Message(data)) => Incoming::Message(Message::Text(data)),
        Ok(Packet::Binary(data)) => Incoming::Message(Message::Binary(data)),
        Ok(Packet::Pong(_)) => Incoming::Pong,
        Ok(Packet::Ping(_)) => Incoming::Ping,
        Ok(Packet::Close) => Incoming::Close(CloseReason::ClientClose, CloseCode::Normal),
        Ok(other) => {
            tracing::trace!(kind = %other.type_char(), "ignored WebSocket packet");
            Incoming::Ignore
        }
        Err(err) => {
            tracing::debug!(error = %err, "invalid WebSocket packet");
            Incoming::Close(CloseReason::ParseError, CloseCode::Policy)
        }
    }
}

/// What is not a data frame: the end of the stream, control frames, errors.
fn incoming_other(msg: Option<Result<WsMessage, WsError>>) -> Incoming {
    match msg {
        None => Incoming::Close(CloseReason::TransportClose, CloseCode::Normal),
        Some(Ok(WsMessage::Close(_))) => {
            Incoming::Close(CloseReason::TransportClose, CloseCode::Normal)
        }
        // Data frames are decoded by `incoming`; pings and pongs are tungstenite's.
        Some(Ok(_)) => Incoming::Ignore,
        Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
            tracing::debug!(size, max_size, "WebSocket message over max_payload");
            Incoming::Close(CloseReason::PayloadTooLarge, CloseCode::Size)
        }
        Some(Err(WsError::Io(err)))
            if err
                .get_ref()
                .is_some_and(<dyn std::error::Error + Send + Sync>::is::<TooManyFragments>) =>
        {
            tracing::debug!(error = %err, "WebSocket message over ws_max_fragments");
            Incoming::Close(CloseReason::PayloadTooLarge, CloseCode::Size)
        }
        Some(Err(WsError::Io(err)))
            if err
                .get_ref()
                .and_then(|e| e.downcast_ref::<InflateError>())
                .is_some() =>
        {
            tracing::debug!(error = %err, "compressed WebSocket message refused");
            match err.get_ref().and_then(|e| e.downcast_ref::<InflateError>()) {
                Some(InflateError::TooBig { .. }) => {
                    Incoming::Close(CloseReason::PayloadTooLarge, CloseCode::Size)
                }
                Some(InflateError::Corrupt(_)) => {
                    Incoming::Close(CloseReason::TransportError, CloseCode::Invalid)
                }
                _ => Incoming::Close(CloseReason::TransportError, CloseCode::Protocol),
            }
        }
        Some(Err(WsError::Utf8(_))) => {
            tracing::debug!("WebSocket text frame is not UTF-8");
            Incoming::Close(CloseReason::TransportError, CloseCode::Invalid)
        }
        // A peer that goes away without the closing handshake has still just gone away.
        Some(Err(
            WsError::ConnectionClosed
            | WsError::AlreadyClosed
            | WsError::Io(_)
            | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
        )) => Incoming::Close(CloseReason::TransportClose, CloseCode::Normal),
        Some(Err(err)) => {
            tracing::debug!(error = %err, "WebSocket protocol error");
            Incoming::Close(CloseReason::TransportError, CloseCode::Protocol)
        }
    }
}

/// Writes `first` (the due ping or the first queued frame, see [`next_outgoing`]), then
/// every queued frame, within `timeout`.
///
/// The deadline runs on `timer`, the connection's heartbeat timer (the caller moves it back
/// afterwards), and only once a write blocks: a batch the socket takes at once (the usual
/// case) neither reads the clock nor arms a timer, and the slow reader still gets the whole
/// `timeout` from the moment it blocks. A timeout of its own put a second timer in every
/// connection task, idle ones included (112 bytes, and a larger task), and one deadline for
/// the whole batch already replaced a timeout around each frame (which looked up the
/// runtime's timer handle once per recipient of a broadcast).
async fn write_queued<D>(
    ws: &mut Ws,
    session: &Session<D>,
    first: Option<WsMessage>,
    timeout: Duration,
    mut timer: Pin<&mut tokio::time::Sleep>,
) -> Result<(), CloseReason> {
    let Some(first) = first else {
        return Ok(());
    };
    let mut feed = feed_all(ws, session, first);
    let mut armed = false;
    let written = std::future::poll_fn(|cx| {
        if let Poll::Ready(done) = Pin::new(&mut feed).poll(cx) {
            return Poll::Ready(Some(done));
        }
        if !armed {
            armed = true;
            timer.as_mut().reset(Instant::now() + timeout);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
    match written {
        Some(Ok(())) => {
            session.drained.notify_waiters();
            Ok(())
        }
        Some(Err(_)) => Err(CloseReason::TransportClose),
        None => Err(CloseReason::SlowReader),
    }
}

/// Feeds `first` and everything queued after it to the socket, then flushes once.
///
/// Written with the sink's poll functions: a frame is taken from the queue only once the
/// socket can take it, so no message waits inside the future (`feed` held one, twice over,
/// and sized every connection task with it).
fn feed_all<'a, D>(
    ws: &'a mut Ws,
    session: &'a Session<D>,
    first: WsMessage,
) -> impl std::future::Future<Output = Result<(), WsError>> + Unpin + 'a {
    let mut first = Some(first);
    std::future::poll_fn(move |cx| {
        loop {
            std::task::ready!(ws.poll_ready_unpin(cx))?;
            let Some(message) = first.take().or_else(|| next_outgoing(session)) else {
                return ws.poll_flush_unpin(cx);
            };
            let message = match ws.get_mut().deflater() {
                Some(deflater) => compress(deflater, message),
                None => message,
            };
            ws.start_send_unpin(message)?;
        }
    })
}

/// A data message as a compressed frame (RSV1) when permessage-deflate makes it smaller.
fn compress(deflater: &mut Deflater, message: WsMessage) -> WsMessage {
    let (data, kind): (&[u8], Data) = match &message {
        WsMessage::Frame(frame) if frame.header().opcode == OpCode::Data(Data::Text) => {
            (frame.payload(), Data::Text)
        }
        WsMessage::Text(text) => (text.as_bytes(), Data::Text),
        WsMessage::Binary(data) => (data, Data::Binary),
        _ => return message,
    };
    let Some(packed) = deflater.compress(data) else {
        return message;
    };
    let mut frame = WsFrame::message(packed, OpCode::Data(kind), true);
    frame.header_mut().rsv1 = true;
    WsMessage::Frame(frame)
}

/// The session's close reason once it is closing, else what [`next_outgoing`] returns.
fn closing_or_next_outgoing<D>(session: &Session<D>) -> Result<Option<WsMessage>, CloseReason> {
    let mut state = session.lock();
    if let Some(reason) = state.closing {
        return Err(reason);
    }
    Ok(next_outgoing_locked(session, &mut state))
}

/// The due heartbeat (v4 PING, v3 PONG), else the next queued frame.
fn next_outgoing<D>(session: &Session<D>) -> Option<WsMessage> {
    next_outgoing_locked(session, &mut session.lock())
}

fn next_outgoing_locked<D>(session: &Session<D>, state: &mut State) -> Option<WsMessage> {
    if state.ping_due {
        state.ping_due = false;
        return Some(WsMessage::Text(match session.protocol() {
            Protocol::V4 => Utf8Bytes::from_static("2"),
            _ => Utf8Bytes::from_static("3"),
        }));
    }
    Some(match state.pop_frame()? {
        #[cfg(feature = "eio3")]
        Frame::Binary(data) if session.protocol() == Protocol::V3 => {
            WsMessage::Binary(sockeye_protocol::eio3::websocket_binary(&data))
        }
        Frame::Binary(data) => WsMessage::Binary(data),
        // Frame::Text is UTF-8 by contract; a raw frame skips re-validating it for every
        // recipient of a broadcast.
        Frame::Text(text) => {
            WsMessage::Frame(WsFrame::message(text, OpCode::Data(Data::Text), true))
        }
    })
}

async fn close_ws(ws: &mut Ws, code: CloseCode) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::default(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(Some(frame))).await;
}

/// The message being handled: at most one per session, polled beside the I/O so writes and
/// pings go on while a handler runs. Boxed on purpose: kept inline, the handler's future
/// would enlarge every connection task, idle ones included (the idle footprint matters more
/// than one allocation per inbound message).
struct InflightSlot<F> {
    fut: Option<Pin<Box<F>>>,
}

impl<F: std::future::Future<Output = ()>> InflightSlot<F> {
    fn is_idle(&self) -> bool {
        self.fut.is_none()
    }

    fn start(&mut self, fut: F) {
        self.fut = Some(Box::pin(fut));
    }

    /// Resolves when the running handler (if any) finished.
    async fn settle(&mut self) {
        if let Some(fut) = self.fut.as_mut() {
            fut.await;
            self.fut = None;
        }
    }

    /// Resolves when the handler finished; pending forever while idle.
    async fn finish(&mut self) {
        match self.fut.as_mut() {
            Some(fut) => {
                fut.await;
                self.fut = None;
            }
            None => std::future::pending().await,
        }
    }
}
