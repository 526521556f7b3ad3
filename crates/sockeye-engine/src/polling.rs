//! HTTP long-polling: the handshake GET, the data GET (one pending per session), the POST,
//! and the per-session driver task that runs the heartbeat while the session polls.

use std::sync::Arc;

use bytes::Bytes;
use http::header;
use http::{Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use sockeye_protocol::engine::{Message, Packet, decode_payload};
use tokio::time::Instant;
use tracing::Instrument;

use crate::close::CloseReason;
use crate::engine::{BoxError, Inner, Open, new_sid};
use crate::handler::EngineHandler;
use crate::http_util::{self, EngineBody, RequestError};
use crate::payload::{AnswerStyle, PayloadOut, Protocol};
use crate::session::{Session, Tick, Transport, Upgrade};

/// Opens a polling session: the answer carries the OPEN packet (and whatever `on_open`
/// queued), and the heartbeat task starts.
pub(crate) fn handshake<H: EngineHandler>(
    inner: &Arc<Inner<H>>,
    parts: http::request::Parts,
    open: Open,
) -> Response<EngineBody> {
    let sid = new_sid();
    let session = inner.create_session(sid, parts, Transport::Polling, (open.protocol, open.b64));
    let handshake = inner.handshake_packet(session.sid(), true).encode();
    if !inner.open_guarded(&session) {
        inner.finalize(&session);
        return http_util::status(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let jsonp = open.style.jsonp.is_some();
    let body = {
        let mut state = session.lock();
        let mut body = session.payload_out(&state, jsonp);
        body.text(&handshake);
        state.drain_polling(&mut body, session.protocol().heartbeat());
        body
    };
    let span = tracing::info_span!("engine.session", sid = %session.sid(), transport = "polling", remote = ?session.remote_addr());
    let cookie = inner.cookie(session.sid());
    inner
        .tracker
        .spawn(drive(Arc::clone(inner), session).instrument(span));
    let mut res = open.style.respond(body);
    if let Some(cookie) = cookie {
        res.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    res
}

/// Heartbeat of a polling session. Ends when the session closes (and finalises it) or when
/// a WebSocket took over (which then owns the heartbeat).
async fn drive<H: EngineHandler>(inner: Arc<Inner<H>>, session: Arc<Session<H::Data>>) {
    let mut close_deadline = None;
    loop {
        let wake = session.wake_driver.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let (closing, transport, delivered) = {
            let state = session.lock();
            (state.closing, state.transport, state.close_delivered)
        };
        if transport == Transport::Websocket {
            tracing::trace!("upgraded: the WebSocket task owns the heartbeat now");
            return;
        }
        if let Some(reason) = closing {
            if delivered || !tells_client(reason) {
                break;
            }
            // As the reference server does, keep the session until the next poll carries
            // the CLOSE packet (and what was queued before it), for a bounded time.
            let wait = if reason == CloseReason::ServerShutdown {
                inner.config.ping_timeout.min(inner.config.shutdown_timeout)
            } else {
                inner.config.ping_timeout
            };
            let deadline = *close_deadline.get_or_insert_with(|| Instant::now() + wait);
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                () = &mut wake => continue,
            }
        }
        match session.tick(Instant::now()) {
            Tick::Timeout => {
                session.close(CloseReason::PingTimeout);
                break;
            }
            Tick::Sleep(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = &mut wake => {}
                }
            }
        }
    }
    inner.finalize(&session);
}

/// Closes the server decided on, which a polling client should hear about from its next GET.
fn tells_client(reason: CloseReason) -> bool {
    matches!(
        reason,
        CloseReason::ServerClose | CloseReason::ServerShutdown | CloseReason::SlowReader
    )
}

/// Resets a request flag when the request ends, however it ends. A GET dropped before it
/// was answered means the client went away mid-poll (hyper drops the request's future when
/// its connection closes): the session ends with `TransportClose`, as in the reference
/// server, instead of lingering until the ping timeout.
struct ActiveGuard<D> {
    session: Arc<Session<D>>,
    post: bool,
    answered: bool,
}

impl<D> ActiveGuard<D> {
    fn answer(mut self, res: Response<EngineBody>) -> Response<EngineBody> {
        self.answered = true;
        res
    }
}

impl<D> Drop for ActiveGuard<D> {
    fn drop(&mut self) {
        let mut state = self.session.lock();
        if self.post {
            state.post_active = false;
            return;
        }
        state.get_active = false;
        let abandoned = !self.answered && state.closing.is_none();
        drop(state);
        if abandoned {
            tracing::debug!("pending poll cancelled by the client, closing the session");
            self.session.close(CloseReason::TransportClose);
        }
    }
}

/// Claims the GET or POST slot; a second concurrent request of the same kind breaks the
/// session, as in the reference server.
fn claim<D>(session: &Arc<Session<D>>, post: bool) -> Option<ActiveGuard<D>> {
    let mut state = session.lock();
    let slot = if post {
        &mut state.post_active
    } else {
        &mut state.get_active
    };
    if *slot {
        drop(state);
        tracing::debug!(post, "overlapping polling request, closing the session");
        session.close(CloseReason::TransportError);
        return None;
    }
    *slot = true;
    drop(state);
    Some(ActiveGuard {
        session: Arc::clone(session),
        post,
        answered: post,
    })
}

/// A data GET: answers at once with what is queued, or waits for something to send.
pub(crate) async fn get<H: EngineHandler>(
    inner: &Arc<Inner<H>>,
    session: &Arc<Session<H::Data>>,
    style: AnswerStyle,
) -> Response<EngineBody> {
    let Some(guard) = claim(session, false) else {
        return RequestError::BadRequest.response();
    };
    // A ping comes every interval, so this only bounds a GET on a session whose heartbeat
    // has stopped.
    let deadline = Instant::now() + inner.config.ping_interval + inner.config.ping_timeout;
    loop {
        let wake = session.wake_writer.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let jsonp = style.jsonp.is_some();
        let heartbeat = session.protocol().heartbeat();
        let body = {
            let mut state = session.lock();
            let mut body = session.payload_out(&state, jsonp);
            if state.closing == Some(CloseReason::PayloadTooLarge) {
                // Answered below, after the lock is released.
            } else if let Some(reason) = state.closing {
                state.close_delivered = true;
                session.wake_driver.notify_waiters();
                match reason {
                    // The reference server answers a pending poll with NOOP when the client
                    // closed, and with CLOSE otherwise.
                    CloseReason::ClientClose => body.text(b"6"),
                    CloseReason::SlowReader => body.text(b"1"),
                    _ => {
                        state.drain_polling(&mut body, heartbeat);
                        body.text(b"1");
                    }
                }
            } else if state.transport == Transport::Websocket {
                body.text(b"6");
            } else if state.has_output() {
                state.drain_polling(&mut body, heartbeat);
            } else if state.upgrade == Upgrade::Probed {
                body.text(b"6");
            }
            body
        };
        if !body.is_empty() {
            session.drained.notify_waiters();
            return guard.answer(style.respond(body));
        }
        if session.lock().closing == Some(CloseReason::PayloadTooLarge) {
            // The oversize POST gets 413; the pending poll gets NOOP, never CLOSE: the client
            // must see the POST's failure (`transport error`), as with the reference server
            // (which keeps the session, so that poll later gets a PING). A CLOSE here raced
            // the 413 and made the JavaScript client report `transport close`, and held until
            // its deadline it made python-socketio report a server disconnect. After NOOP the
            // JavaScript client's next poll gets 400 (`transport error`), and python-engineio,
            // whose write loop stopped on the 413, ends with `transport error` too.
            return guard.answer(style.respond(single(session, jsonp, b"6")));
        }
        tokio::select! {
            () = &mut wake => {}
            () = tokio::time::sleep_until(deadline) => {
                return guard.answer(style.respond(single(session, jsonp, b"6")));
            }
        }
    }
}

/// A payload of one text packet.
fn single<D>(session: &Session<D>, jsonp: bool, packet: &[u8]) -> PayloadOut {
    let mut out = PayloadOut::new(session.polling_format(jsonp), false);
    out.text(packet);
    out
}

/// What a POST body is: an XHR2 binary payload (v3, `application/octet-stream`), a JSONP form
/// (v3, `j`), or a text payload.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "eio3"), allow(dead_code))]
pub(crate) struct PostKind {
    pub(crate) binary: bool,
    pub(crate) jsonp: bool,
}

/// Decodes a POST body in the session's protocol.
fn decode_body(protocol: Protocol, kind: PostKind, bytes: Bytes) -> Result<Vec<Packet>, String> {
    match protocol {
        #[cfg(feature = "eio3")]
        Protocol::V3 => {
            use sockeye_protocol::eio3;
            let result = if kind.binary {
                eio3::decode_binary_payload(bytes)
            } else if kind.jsonp {
                eio3::decode_jsonp_body(&bytes).and_then(eio3::decode_payload)
            } else {
                eio3::decode_payload(bytes)
            };
            result.map_err(|e| e.to_string())
        }
        _ => {
            let _ = kind;
            decode_payload(bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())
        }
    }
}

/// A POST: reads the body up to `max_payload`, decodes every packet first (one bad packet
/// refuses the whole body and closes the session), then delivers the messages in order.
pub(crate) async fn post<H, B>(
    inner: &Arc<Inner<H>>,
    session: &Arc<Session<H::Data>>,
    body: B,
    kind: PostKind,
) -> Response<EngineBody>
where
    H: EngineHandler,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let Some(guard) = claim(session, true) else {
        return RequestError::BadRequest.response();
    };
    let config = &inner.config;
    let limited = Limited::new(body, config.max_payload_usize());
    let read_timeout = config.ping_interval + config.ping_timeout;
    let bytes = match tokio::time::timeout(read_timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => {
            tracing::debug!(limit = config.max_payload, "polling body over max_payload");
            session.close(CloseReason::PayloadTooLarge);
            return http_util::status(StatusCode::PAYLOAD_TOO_LARGE);
        }
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "polling body could not be read");
            session.close(CloseReason::TransportError);
            return RequestError::BadRequest.response();
        }
        Err(_) => {
            tracing::debug!(?read_timeout, "polling body not received in time");
            session.close(CloseReason::TransportError);
            return RequestError::BadRequest.response();
        }
    };
    let packets = match decode_body(session.protocol(), kind, bytes) {
        Ok(packets) => packets,
        Err(err) => {
            tracing::debug!(error = %err, "invalid polling payload");
            session.close(CloseReason::ParseError);
            return RequestError::BadRequest.response();
        }
    };
    // Handlers run in their own task: a client dropping the request must not cancel a
    // handler halfway (the layer above may be assembling a packet from several messages).
    let task_inner = Arc::clone(inner);
    let task_session = Arc::clone(session);
    let delivery = inner.tracker.spawn(
        async move {
            deliver_all(&task_inner, &task_session, packets).await;
            drop(guard);
        }
        .in_current_span(),
    );
    if delivery.await.is_err() {
        return http_util::status(StatusCode::INTERNAL_SERVER_ERROR);
    }
    http_util::ok()
}

/// Hands a POST's packets to the handler in order, pausing while the client does not read.
async fn deliver_all<H: EngineHandler>(
    inner: &Arc<Inner<H>>,
    session: &Arc<Session<H::Data>>,
    packets: Vec<Packet>,
) {
    for packet in packets {
        if session.is_closed() {
            break;
        }
        let message = match packet {
            Packet::Message(text) => Message::Text(text),
            Packet::Binary(data) => Message::Binary(data),
            Packet::Pong(_) => {
                if !session.on_pong() {
                    tracing::debug!("PONG from a v3 client: invalid heartbeat direction");
                    session.close(CloseReason::TransportError);
                    break;
                }
                continue;
            }
            Packet::Ping(_) if session.protocol() == Protocol::V3 => {
                session.on_client_ping();
                continue;
            }
            Packet::Close => {
                session.close(CloseReason::ClientClose);
                break;
            }
            // A v4 client never pings over polling (ignored, as before), and OPEN, UPGRADE and
            // NOOP mean nothing here.
            other => {
                tracing::trace!(kind = %other.type_char(), "ignored polling packet");
                continue;
            }
        };
        if !wait_for_room(session, inner.config.slow_reader_timeout).await {
            break;
        }
        inner.deliver(session, message).await;
    }
}

/// Back-pressure: before the next inbound message, wait until the client has read enough
/// of what it was sent. Returns false (and closes the session) after `timeout`.
pub(crate) async fn wait_for_room<D>(session: &Session<D>, timeout: std::time::Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let drained = session.drained.notified();
        tokio::pin!(drained);
        drained.as_mut().enable();
        if session.is_closed() {
            return false;
        }
        if !session.above_low_watermark() {
            return true;
        }
        if tokio::time::timeout_at(deadline, drained).await.is_err() {
            tracing::debug!("client kept its queue full, closing it as a slow reader");
            session.close(CloseReason::SlowReader);
            return false;
        }
    }
}
