//! The instrumentation hooks: points on the data path where an observer (the Admin UI support,
//! metrics) is told what happens.
//!
//! Off by default: the server then holds no observer and every hook point is one branch on an
//! `Option` that is `None`. The observer is called synchronously on the data path, so it must
//! only count or queue, never block or emit itself.

use std::sync::Arc;
use std::time::Duration;

use sockeye_engine::{CloseReason, Frame, Transport};

use crate::adapter::Room;
use crate::id::SocketId;
use crate::packet::Args;
use crate::reason::DisconnectReason;
use crate::socket::SocketRef;

/// What an observer of the server is told. Every method has an empty default.
pub(crate) trait Instrument: Send + Sync + 'static {
    /// An Engine.IO session opened with `transport`.
    fn session_opened(&self, _transport: Transport) {}
    /// An Engine.IO session closed (`reason` is what its sockets are told).
    fn session_closed(&self, _close: CloseReason, _reason: DisconnectReason) {}
    /// One inbound Engine.IO message of `bytes` bytes.
    fn message_in(&self, _bytes: usize) {}
    /// Frames of one packet queued for a client.
    fn frames_out(&self, _frames: &[Frame]) {}
    /// A socket finished its connect step and is connected.
    fn socket_connected(&self, _socket: &SocketRef) {}
    /// A connected socket left its namespace.
    fn socket_disconnected(&self, _socket: &SocketRef, _reason: DisconnectReason) {}
    /// Socket `id` of namespace `ns` joined `room` (called once per room it was not in).
    fn room_joined(&self, _ns: &str, _id: &SocketId, _room: &Room) {}
    /// Socket `id` of namespace `ns` left `room`.
    fn room_left(&self, _ns: &str, _id: &SocketId, _room: &str) {}
    /// An event from the client, before its handler.
    fn event_received(&self, _socket: &SocketRef, _event: &str, _args: &Args) {}
    /// An event the socket itself emitted to its client (not broadcasts).
    fn event_sent(&self, _socket: &SocketRef, _event: &str, _args: &Args) {}
    /// The socket's session value changed.
    fn session_changed(&self, _socket: &SocketRef) {}
    /// An event handler of `socket` finished after `elapsed`.
    fn handler_done(&self, _socket: &SocketRef, _elapsed: Duration) {}
    /// A wait for a client's ack in namespace `ns` timed out.
    fn ack_timeout(&self, _ns: &str) {}
    /// An adapter operation of namespace `ns` failed.
    fn adapter_failed(&self, _ns: &str, _operation: &'static str) {}
    /// A reconnection asked to recover its session in `ns`: `recovered`, `unknown_pid`,
    /// `failed` or `error`.
    fn recovery(&self, _ns: &str, _outcome: &'static str) {}
}

/// The server's observer, if any.
#[derive(Clone, Default)]
pub(crate) struct Hooks(Option<Arc<dyn Instrument>>);

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Hooks(on)"
        } else {
            "Hooks(off)"
        })
    }
}

impl Hooks {
    /// The observer, when instrumentation is on.
    #[inline]
    pub(crate) fn get(&self) -> Option<&Arc<dyn Instrument>> {
        self.0.as_ref()
    }

    /// Adds `observer` beside the current one (both are called, the current one first).
    #[cfg_attr(not(any(feature = "admin", feature = "metrics")), allow(dead_code))]
    pub(crate) fn add(&mut self, observer: Arc<dyn Instrument>) {
        self.0 = Some(match self.0.take() {
            None => observer,
            Some(first) => Arc::new(Both(first, observer)),
        });
    }
}

/// Two observers, called in order.
#[cfg_attr(not(any(feature = "admin", feature = "metrics")), allow(dead_code))]
struct Both(Arc<dyn Instrument>, Arc<dyn Instrument>);

impl Instrument for Both {
    fn session_opened(&self, transport: Transport) {
        self.0.session_opened(transport);
        self.1.session_opened(transport);
    }
    fn session_closed(&self, close: CloseReason, reason: DisconnectReason) {
        self.0.session_closed(close, reason);
        self.1.session_closed(close, reason);
    }
    fn message_in(&self, bytes: usize) {
        self.0.message_in(bytes);
        self.1.message_in(bytes);
    }
    fn frames_out(&self, frames: &[Frame]) {
        self.0.frames_out(frames);
        self.1.frames_out(frames);
    }
    fn socket_connected(&self, socket: &SocketRef) {
        self.0.socket_connected(socket);
        self.1.socket_connected(socket);
    }
    fn socket_disconnected(&self, socket: &SocketRef, reason: DisconnectReason) {
        self.0.socket_disconnected(socket, reason);
        self.1.socket_disconnected(socket, reason);
    }
    fn room_joined(&self, ns: &str, id: &SocketId, room: &Room) {
        self.0.room_joined(ns, id, room);
        self.1.room_joined(ns, id, room);
    }
    fn room_left(&self, ns: &str, id: &SocketId, room: &str) {
        self.0.room_left(ns, id, room);
        self.1.room_left(ns, id, room);
    }
    fn event_received(&self, socket: &SocketRef, event: &str, args: &Args) {
        self.0.event_received(socket, event, args);
        self.1.event_received(socket, event, args);
    }
    fn event_sent(&self, socket: &SocketRef, event: &str, args: &Args) {
        self.0.event_sent(socket, event, args);
        self.1.event_sent(socket, event, args);
    }
    fn session_changed(&self, socket: &SocketRef) {
        self.0.session_changed(socket);
        self.1.session_changed(socket);
    }
    fn handler_done(&self, socket: &SocketRef, elapsed: Duration) {
        self.0.handler_done(socket, elapsed);
        self.1.handler_done(socket, elapsed);
    }
    fn ack_timeout(&self, ns: &str) {
        self.0.ack_timeout(ns);
        self.1.ack_timeout(ns);
    }
    fn adapter_failed(&self, ns: &str, operation: &'static str) {
        self.0.adapter_failed(ns, operation);
        self.1.adapter_failed(ns, operation);
    }
    fn recovery(&self, ns: &str, outcome: &'static str) {
        self.0.recovery(ns, outcome);
        self.1.recovery(ns, outcome);
    }
}

/// Bytes of a frame as the Admin UI counts them (the whole Engine.IO packet).
#[cfg_attr(not(any(feature = "admin", feature = "metrics")), allow(dead_code))]
pub(crate) fn frame_len(frame: &Frame) -> usize {
    match frame {
        Frame::Text(bytes) | Frame::Binary(bytes) => bytes.len(),
    }
}
