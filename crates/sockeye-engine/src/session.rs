//! One Engine.IO session: its identity, its bounded outgoing queue and its heartbeat state.
//!
//! The state lives behind one short-lived `std::sync::Mutex` (never held across an await).
//! Exactly one task owns the session's I/O at a time — the polling driver (heartbeat only) or
//! the WebSocket connection task — and that owner finalises the session when it closes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

#[cfg(test)]
use bytes::Bytes;
use sockeye_protocol::engine::Frame;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::close::{CloseReason, SendError};
use crate::payload::{PayloadOut, PollingFormat, Protocol};

/// The transport a session currently uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    Websocket,
}

impl Transport {
    /// The name used in the `transport` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::Websocket => "websocket",
        }
    }
}

/// Where a polling session stands in its switch to WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upgrade {
    /// No WebSocket is attached.
    None,
    /// A WebSocket is open for this sid but has not probed yet.
    Pending,
    /// The probe succeeded: pending and new GETs are answered with NOOP.
    Probed,
}

pub(crate) struct State {
    queue: VecDeque<Frame>,
    pub(crate) transport: Transport,
    pub(crate) upgrade: Upgrade,
    pub(crate) closing: Option<CloseReason>,
    /// A heartbeat (v4: PING; v3: the PONG answering the client's PING) must be written
    /// before any queued data.
    pub(crate) ping_due: bool,
    pub(crate) next_ping: Instant,
    pub(crate) pong_deadline: Option<Instant>,
    pub(crate) get_active: bool,
    pub(crate) post_active: bool,
    /// A polling GET carried the CLOSE packet to the client.
    pub(crate) close_delivered: bool,
}

impl State {
    pub(crate) fn pop_frame(&mut self) -> Option<Frame> {
        self.queue.pop_front()
    }

    /// Drains the heartbeat (first) and every queued frame into one polling payload.
    pub(crate) fn drain_polling(&mut self, out: &mut PayloadOut, heartbeat: &[u8]) {
        if self.ping_due {
            self.ping_due = false;
            out.text(heartbeat);
        }
        for frame in self.queue.drain(..) {
            out.frame(&frame);
        }
    }

    /// True when a queued frame is binary (a v3 client may then get an XHR2 binary payload).
    pub(crate) fn has_binary(&self) -> bool {
        self.queue.iter().any(|f| matches!(f, Frame::Binary(_)))
    }

    pub(crate) fn has_output(&self) -> bool {
        self.ping_due || !self.queue.is_empty()
    }
}

/// What the heartbeat timer decided.
/// How late a PING timer may fire and still count as on time (see [`Session::tick`]).
const PING_SLACK: Duration = Duration::from_millis(10);

pub(crate) enum Tick {
    /// Nothing to do before this instant.
    Sleep(Instant),
    /// No pong in time: close.
    Timeout,
}

/// One Engine.IO session, shared by the engine and the layer above (`Arc<Session<D>>`).
///
/// `D` is the layer above's per-session state ([`crate::EngineHandler::Data`]).
pub struct Session<D> {
    sid: Box<str>,
    protocol: Protocol,
    /// v3 polling: the client asked for `b64=1`.
    b64: bool,
    request: crate::head::RequestHead,
    remote_addr: Option<SocketAddr>,
    max_queued: usize,
    ping_interval: Duration,
    ping_timeout: Duration,
    state: Mutex<State>,
    /// Wakes whoever writes to the client (the pending GET or the WebSocket task).
    pub(crate) wake_writer: Notify,
    /// Wakes the polling driver (heartbeat change, close, upgrade).
    pub(crate) wake_driver: Notify,
    /// Wakes readers paused because the outgoing queue was above its low watermark.
    pub(crate) drained: Notify,
    finalized: AtomicBool,
    /// The layer above's per-session state.
    pub data: D,
}

impl<D> std::fmt::Debug for Session<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.sid)
            .field("transport", &self.transport())
            .field("remote_addr", &self.remote_addr)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

pub(crate) struct SessionInit {
    pub(crate) sid: Box<str>,
    pub(crate) request: http::request::Parts,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) transport: Transport,
    pub(crate) protocol: Protocol,
    pub(crate) b64: bool,
    pub(crate) max_queued: usize,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
}

impl<D: Default> Session<D> {
    pub(crate) fn new(init: SessionInit) -> Session<D> {
        // v4: the first PING goes out exactly one interval after the handshake. v3: the client
        // pings, and the session ends when no PING came within interval + timeout.
        let (next_ping, pong_deadline) = match init.protocol {
            Protocol::V3 => (
                Instant::now(),
                Some(Instant::now() + init.ping_interval + init.ping_timeout),
            ),
            Protocol::V4 => (Instant::now() + init.ping_interval, None),
        };
        Session {
            sid: init.sid,
            protocol: init.protocol,
            b64: init.b64,
            request: crate::head::RequestHead::new(init.request),
            remote_addr: init.remote_addr,
            max_queued: init.max_queued,
            ping_interval: init.ping_interval,
            ping_timeout: init.ping_timeout,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                transport: init.transport,
                upgrade: Upgrade::None,
                closing: None,
                ping_due: false,
                next_ping,
                pong_deadline,
                get_active: false,
                post_active: false,
                close_delivered: false,
            }),
            wake_writer: Notify::new(),
            wake_driver: Notify::new(),
            drained: Notify::new(),
            finalized: AtomicBool::new(false),
            data: D::default(),
        }
    }
}

impl<D> Session<D> {
    /// The Engine.IO session id. It authorises the session's polling requests: never show it
    /// to other clients.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The Engine.IO protocol revision the client speaks (from the handshake's `EIO`).
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// How this session's polling answers are framed; a JSONP request always gets base64.
    pub(crate) fn polling_format(&self, jsonp: bool) -> PollingFormat {
        PollingFormat {
            protocol: self.protocol,
            b64: self.b64 || jsonp,
        }
    }

    /// A payload for the next polling answer, framed for what is queued now.
    pub(crate) fn payload_out(&self, state: &State, jsonp: bool) -> PayloadOut {
        PayloadOut::new(self.polling_format(jsonp), state.has_binary())
    }

    /// The transport in use now (it changes from polling to WebSocket on upgrade).
    pub fn transport(&self) -> Transport {
        self.lock().transport
    }

    /// The head of the handshake request (headers, URI with its query, extensions).
    ///
    /// Kept packed and built on the first call (see `head.rs`): most sessions are never
    /// asked.
    pub fn request(&self) -> &http::request::Parts {
        self.request.parts()
    }

    /// The peer address, when the server put it in the request extensions (as a
    /// [`crate::RemoteAddr`] or a plain `SocketAddr`; with feature `axum`, axum's
    /// `ConnectInfo<SocketAddr>` too).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// Queues one frame for the client. Never blocks.
    ///
    /// When the queue already holds `max_queued_frames` frames the frame is refused with
    /// [`SendError::QueueFull`] and the session is closed with [`CloseReason::SlowReader`]
    /// (see the crate docs: the slow-reader policy).
    pub fn send(&self, frame: Frame) -> Result<(), SendError> {
        self.send_batch(std::iter::once(frame))
    }

    /// Queues several frames (a packet and its binary attachments) together: either all of
    /// them are queued, or none is and the same errors as [`Session::send`] apply.
    pub fn send_batch(&self, frames: impl IntoIterator<Item = Frame>) -> Result<(), SendError> {
        let mut state = self.lock();
        if let Some(reason) = state.closing {
            return Err(SendError::Closed(reason));
        }
        let before = state.queue.len();
        if state.queue.capacity() == 0 {
            // The first send of most sessions is one frame (the CONNECT reply), and an idle
            // client keeps the queue's buffer: room for one, not the default four. Busy
            // sessions grow it by doubling as before.
            state.queue.reserve_exact(1);
        }
        for frame in frames {
            if state.queue.len() >= self.max_queued {
                state.queue.truncate(before);
                state.closing = Some(CloseReason::SlowReader);
                drop(state);
                tracing::warn!(sid = %self.sid, limit = self.max_queued, "outgoing queue full, closing slow reader");
                self.wake_all();
                return Err(SendError::QueueFull(self.max_queued));
            }
            state.queue.push_back(frame);
        }
        let queued = state.queue.len() > before;
        drop(state);
        if queued {
            self.wake_writer.notify_waiters();
        }
        Ok(())
    }

    /// Closes the session: the client is told (polling: CLOSE packet; WebSocket: close
    /// frame) after the frames already queued, and `on_close` runs once. Idempotent; the
    /// first reason wins.
    pub fn close(&self, reason: CloseReason) {
        let mut state = self.lock();
        if state.closing.is_none() {
            state.closing = Some(reason);
            drop(state);
            tracing::debug!(sid = %self.sid, %reason, "session closing");
            self.wake_all();
        }
    }

    /// True once the session is closing or closed: sends are refused.
    pub fn is_closed(&self) -> bool {
        self.lock().closing.is_some()
    }

    /// Number of frames waiting in the outgoing queue.
    pub fn queued_frames(&self) -> usize {
        self.lock().queue.len()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere while holding it; the state itself
        // is always consistent between statements, so keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn wake_all(&self) {
        self.wake_writer.notify_waiters();
        self.wake_driver.notify_waiters();
        self.drained.notify_waiters();
    }

    /// Marks the session finalised; true only for the first caller.
    pub(crate) fn claim_finalize(&self) -> bool {
        !self.finalized.swap(true, Ordering::AcqRel)
    }

    /// True while inbound reading should pause: the queue is above half its bound.
    pub(crate) fn above_low_watermark(&self) -> bool {
        let state = self.lock();
        self.queue_above_low_watermark(&state)
    }

    fn queue_above_low_watermark(&self, state: &State) -> bool {
        state.queue.len() > self.max_queued / 2
    }

    /// Advances the heartbeat; schedules a ping when one is due. A v3 session only waits for
    /// the client's next PING (its deadline is `pong_deadline`).
    pub(crate) fn tick(&self, now: Instant) -> Tick {
        self.tick_and_watermark(now).0
    }

    /// [`Session::tick`] and [`Session::above_low_watermark`] under one lock: the WebSocket
    /// task needs both on every loop turn, and each lock is an atomic round trip.
    pub(crate) fn tick_and_watermark(&self, now: Instant) -> (Tick, bool) {
        let mut state = self.lock();
        let (tick, ping_scheduled) = self.tick_locked(&mut state, now);
        let backpressured = self.queue_above_low_watermark(&state);
        drop(state);
        if ping_scheduled {
            self.wake_writer.notify_waiters();
        }
        (tick, backpressured)
    }

    /// The heartbeat step of [`Session::tick`]; true when it scheduled a ping (the writer
    /// must then be woken, after the lock is released).
    fn tick_locked(&self, state: &mut State, now: Instant) -> (Tick, bool) {
        if self.protocol == Protocol::V3 {
            let tick = match state.pong_deadline {
                Some(deadline) if now >= deadline => Tick::Timeout,
                Some(deadline) => Tick::Sleep(deadline),
                None => Tick::Sleep(now + self.ping_interval + self.ping_timeout),
            };
            return (tick, false);
        }
        if let Some(deadline) = state.pong_deadline {
            if now >= deadline {
                return (Tick::Timeout, false);
            }
            return (Tick::Sleep(deadline), false);
        }
        if now >= state.next_ping {
            state.ping_due = true;
            // Timers fire a little after their instant (rounded up to the millisecond, then
            // the task must run). Counting the timeout from the scheduled PING keeps that
            // lateness from adding up, so a silent client is gone interval + timeout after
            // the handshake, as on the reference server. A wake much later than scheduled
            // (an overloaded runtime) counts from now, so a client never loses more than
            // `PING_SLACK` of its timeout.
            let sent_at = if now.saturating_duration_since(state.next_ping) <= PING_SLACK {
                state.next_ping
            } else {
                now
            };
            let deadline = sent_at + self.ping_timeout;
            state.pong_deadline = Some(deadline);
            return (Tick::Sleep(deadline), true);
        }
        (Tick::Sleep(state.next_ping), false)
    }

    /// True once the PONG deadline has passed: the session is over even if its heartbeat
    /// task has not woken up yet to close it.
    pub(crate) fn heartbeat_expired(&self, now: Instant) -> bool {
        self.lock()
            .pong_deadline
            .is_some_and(|deadline| now >= deadline)
    }

    /// A PING arrived from a v3 client: its heartbeat deadline moves to interval + timeout
    /// from now, and a PONG is due (written before queued data). A v4 client must not ping:
    /// false, and the caller closes the session ("invalid heartbeat direction", as the
    /// reference server).
    pub(crate) fn on_client_ping(&self) -> bool {
        if self.protocol != Protocol::V3 {
            return false;
        }
        let mut state = self.lock();
        state.pong_deadline = Some(Instant::now() + self.ping_interval + self.ping_timeout);
        state.ping_due = true;
        drop(state);
        self.wake_writer.notify_waiters();
        self.wake_driver.notify_waiters();
        true
    }

    /// A PONG arrived. Unsolicited pongs are ignored, so a flood of them changes nothing.
    /// A v3 client must not send one: false, and the caller closes the session.
    pub(crate) fn on_pong(&self) -> bool {
        if self.protocol == Protocol::V3 {
            return false;
        }
        let mut state = self.lock();
        if state.pong_deadline.take().is_some() {
            state.next_ping = Instant::now() + self.ping_interval;
            drop(state);
            self.wake_driver.notify_waiters();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polling_payload(s: &Session<()>, state: &mut State) -> Bytes {
        let mut out = s.payload_out(state, false);
        state.drain_polling(&mut out, s.protocol().heartbeat());
        out.finish().0
    }

    fn session(max: usize) -> Session<()> {
        let (parts, ()) = http::Request::new(()).into_parts();
        Session::new(SessionInit {
            sid: "abc".into(),
            request: parts,
            remote_addr: None,
            transport: Transport::Polling,
            protocol: Protocol::V4,
            b64: false,
            max_queued: max,
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
        })
    }

    #[test]
    fn full_queue_refuses_and_closes() {
        let s = session(2);
        s.send(Frame::message("a")).unwrap();
        s.send(Frame::message("b")).unwrap();
        assert_eq!(s.send(Frame::message("c")), Err(SendError::QueueFull(2)));
        assert!(s.is_closed());
        assert_eq!(
            s.send(Frame::message("d")),
            Err(SendError::Closed(CloseReason::SlowReader))
        );
    }

    #[test]
    fn batch_is_all_or_nothing() {
        let s = session(3);
        s.send(Frame::message("a")).unwrap();
        let batch = [
            Frame::message("b"),
            Frame::message("c"),
            Frame::message("d"),
        ];
        assert!(s.send_batch(batch).is_err());
        assert_eq!(
            s.queued_frames(),
            1,
            "a refused batch leaves nothing behind"
        );
    }

    #[test]
    fn ping_goes_before_data_in_a_payload() {
        let s = session(8);
        s.send(Frame::message("x")).unwrap();
        s.send(Frame::Binary(Bytes::from_static(&[1, 2]))).unwrap();
        let mut state = s.lock();
        state.ping_due = true;
        assert_eq!(
            polling_payload(&s, &mut state),
            Bytes::from_static(b"2\x1e4x\x1ebAQI=")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn first_ping_one_interval_after_handshake_and_timeout_after_it() {
        let s = session(8);
        let start = Instant::now();
        match s.tick(start) {
            Tick::Sleep(at) => assert_eq!(at - start, Duration::from_millis(300)),
            Tick::Timeout => panic!("no timeout before the first ping"),
        }
        assert!(!s.lock().ping_due);
        let at_ping = start + Duration::from_millis(300);
        assert!(matches!(s.tick(at_ping), Tick::Sleep(_)));
        assert!(s.lock().ping_due);
        assert!(matches!(
            s.tick(at_ping + Duration::from_millis(200)),
            Tick::Timeout
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_ping_timer_does_not_push_the_timeout_back() {
        let s = session(8);
        let start = Instant::now();
        // The timer fired 3 ms late: the deadline still counts from the scheduled PING.
        let late = start + Duration::from_millis(303);
        match s.tick(late) {
            Tick::Sleep(at) => assert_eq!(at - start, Duration::from_millis(500)),
            Tick::Timeout => panic!("no timeout at the ping"),
        }
        assert!(!s.heartbeat_expired(start + Duration::from_millis(499)));
        assert!(s.heartbeat_expired(start + Duration::from_millis(500)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_very_late_ping_still_gets_its_whole_timeout() {
        let s = session(8);
        let start = Instant::now();
        let stalled = start + Duration::from_millis(400);
        match s.tick(stalled) {
            Tick::Sleep(at) => assert_eq!(at - stalled, Duration::from_millis(200)),
            Tick::Timeout => panic!("no timeout at the ping"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tick_and_watermark_agrees_with_tick_and_the_watermark() {
        let s = session(8);
        let start = Instant::now();
        for n in 0..=5 {
            let (tick, backpressured) = s.tick_and_watermark(start);
            assert!(matches!(tick, Tick::Sleep(at) if at - start == Duration::from_millis(300)));
            assert_eq!(backpressured, s.above_low_watermark());
            assert_eq!(backpressured, n > 4, "{n} queued of 8");
            s.send(Frame::message("x")).unwrap();
        }
        let at_ping = start + Duration::from_millis(300);
        assert!(matches!(s.tick_and_watermark(at_ping).0, Tick::Sleep(_)));
        assert!(s.lock().ping_due);
        assert!(matches!(
            s.tick_and_watermark(at_ping + Duration::from_millis(200)).0,
            Tick::Timeout
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn unsolicited_pongs_do_not_move_the_next_ping() {
        let s = session(8);
        let before = s.lock().next_ping;
        for _ in 0..1000 {
            s.on_pong();
        }
        assert_eq!(s.lock().next_ping, before);
    }
}
