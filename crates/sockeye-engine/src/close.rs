//! Why a session ended, and why a frame could not be queued.

use std::fmt;

/// Why a session closed. Passed once to [`crate::EngineHandler::on_close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The WebSocket or HTTP connection went away without an Engine.IO CLOSE.
    TransportClose,
    /// The transport failed: a network error, a WebSocket protocol violation (bad frame,
    /// non-UTF-8 text), or a polling request used in a way that breaks the session (two
    /// concurrent GETs, a concurrent POST).
    TransportError,
    /// No PONG arrived within `ping_timeout` after a PING.
    PingTimeout,
    /// The client sent an Engine.IO CLOSE packet.
    ClientClose,
    /// The application closed the session ([`crate::Session::close`]).
    ServerClose,
    /// The engine is shutting down ([`crate::Engine::close`]).
    ServerShutdown,
    /// A polling body or WebSocket message exceeded `max_payload`.
    PayloadTooLarge,
    /// The client sent bytes that are not Engine.IO packets.
    ParseError,
    /// The outgoing queue was full when a frame was sent, or the client kept it full for
    /// longer than `slow_reader_timeout`: the client does not read what it is sent.
    SlowReader,
    /// An [`crate::EngineHandler`] callback panicked while handling this session; the panic
    /// is contained to the session.
    HandlerPanic,
}

impl CloseReason {
    /// A short stable name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ClientClose => "client close",
            CloseReason::ServerClose => "server close",
            CloseReason::ServerShutdown => "server shutdown",
            CloseReason::PayloadTooLarge => "payload too large",
            CloseReason::ParseError => "parse error",
            CloseReason::SlowReader => "slow reader",
            CloseReason::HandlerPanic => "handler panic",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`crate::Session::send`] refused a frame. The frame was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The session's outgoing queue holds `max_queued_frames` frames: the client does not
    /// read fast enough. The session is being closed with [`CloseReason::SlowReader`]; the
    /// client will reconnect. Raise `max_queued_frames` if bursts are expected.
    #[error(
        "outgoing queue full ({0} frames): the client does not read fast enough and the session is being closed"
    )]
    QueueFull(usize),
    /// The session is closed or closing; nothing more can be sent on it.
    #[error("session closed ({0}): nothing more can be sent on it")]
    Closed(CloseReason),
}
