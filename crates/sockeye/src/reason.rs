//! Why a socket left its namespace.

use std::fmt;

/// The reason a socket was disconnected, given to the namespace's disconnect handler.
///
/// The text forms ([`DisconnectReason::as_str`]) are the ones the official JavaScript server
/// uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client sent a DISCONNECT packet for this namespace.
    ClientDisconnect,
    /// The server called [`crate::SocketRef::disconnect`] (or disconnected all sockets).
    ServerDisconnect,
    /// The client closed the Engine.IO session, or its connection went away cleanly.
    TransportClose,
    /// The connection failed (I/O error, oversize message, invalid Engine.IO packet).
    TransportError,
    /// The client stopped answering pings.
    PingTimeout,
    /// The client sent a packet that is not valid Socket.IO; the whole session is closed.
    ParseError,
    /// The server is shutting down.
    ServerShutdown,
    /// An event handler or event middleware of this socket panicked. The panic is contained:
    /// the server disconnects this socket only (the client receives a DISCONNECT and may
    /// connect again), and every other socket goes on.
    HandlerPanic,
}

impl DisconnectReason {
    /// The reason as the JavaScript server names it (`"client namespace disconnect"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientDisconnect => "client namespace disconnect",
            DisconnectReason::ServerDisconnect => "server namespace disconnect",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ServerShutdown => "server shutting down",
            DisconnectReason::HandlerPanic => "handler panic",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
