//! The Engine.IO session as seen by a socket.
//!
//! Sockets talk to their session through this trait rather than `Session<ConnectionState>`
//! directly, which keeps the socket logic testable without a network.

use std::net::SocketAddr;

use sockeye_engine::{CloseReason, Frame, Protocol, SendError, Session, Transport};
use sockeye_protocol::socketio::Str;

use crate::connection::ConnectionState;
use crate::error::EmitError;
use crate::id::SocketId;

/// What a socket needs from its Engine.IO session.
pub(crate) trait Conn: Send + Sync + 'static {
    /// Queues a packet's frames atomically.
    fn send_batch(&self, frames: &[Frame]) -> Result<(), EmitError>;
    /// The Engine.IO session id (never shown to other clients).
    #[cfg_attr(not(feature = "admin"), allow(dead_code))]
    fn sid(&self) -> &str;
    /// Frames waiting to be written.
    fn queued_frames(&self) -> usize;
    /// Closes the whole session.
    fn close(&self, reason: CloseReason);
    /// The current transport.
    fn transport(&self) -> Transport;
    /// The handshake request head.
    fn request(&self) -> &http::request::Parts;
    /// The peer address.
    fn remote_addr(&self) -> Option<SocketAddr>;
    /// Forgets the socket of namespace `ns` with id `id` (it left the namespace).
    fn detach(&self, ns: &Str, id: &SocketId);
    /// The client speaks Engine.IO v3 / Socket.IO v4 (`socket.io-client` 2.x): CONNECT
    /// replies without `sid`, CONNECT_ERROR with the bare message or data, no recovery.
    fn legacy(&self) -> bool;
}

impl Conn for Session<ConnectionState> {
    fn send_batch(&self, frames: &[Frame]) -> Result<(), EmitError> {
        Session::send_batch(self, frames.iter().cloned()).map_err(|e| match e {
            SendError::QueueFull(_) => EmitError::QueueFull(e.to_string()),
            _ => EmitError::Disconnected,
        })?;
        if let Some(hooks) = self.data.hooks.get() {
            hooks.frames_out(frames);
        }
        Ok(())
    }

    fn sid(&self) -> &str {
        Session::sid(self)
    }

    fn queued_frames(&self) -> usize {
        Session::queued_frames(self)
    }

    fn close(&self, reason: CloseReason) {
        Session::close(self, reason);
    }

    fn transport(&self) -> Transport {
        Session::transport(self)
    }

    fn request(&self) -> &http::request::Parts {
        Session::request(self)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        Session::remote_addr(self)
    }

    fn detach(&self, ns: &Str, id: &SocketId) {
        self.data.detach(ns, id);
    }

    fn legacy(&self) -> bool {
        Session::protocol(self) == Protocol::V3
    }
}
