//! The socket, the server handle, the namespace, the transport, the disconnect reason.

use sockeye_engine::Transport;

use super::{DisconnectContext, FromDisconnectParts, Rejection, from_socket};
use crate::io::SocketIo;
use crate::operators::BroadcastOperator;
use crate::pattern::NsParams;
use crate::reason::DisconnectReason;
use crate::socket::SocketRef;

from_socket!(SocketRef, |socket| Ok(socket.clone()));
from_socket!(SocketIo, |socket| socket.server().ok_or_else(|| {
    Rejection::server(
        "server_closed",
        "the server handle is gone: the server was closed or dropped while this handler ran",
    )
}));
from_socket!(Transport, |socket| Ok(socket.transport()));
from_socket!(Namespace, |socket| Ok(Namespace {
    socket: socket.clone()
}));

impl FromDisconnectParts for DisconnectReason {
    type Rejection = std::convert::Infallible;
    fn from_disconnect_parts(cx: &DisconnectContext) -> Result<Self, Self::Rejection> {
        Ok(cx.reason())
    }
}

/// The namespace the socket belongs to: its name, the captures of a dynamic namespace
/// pattern, and an operator to emit to all of its sockets.
#[derive(Debug, Clone)]
pub struct Namespace {
    socket: SocketRef,
}

impl Namespace {
    /// The namespace name (`/`, `/chat`, `/room-42`).
    pub fn name(&self) -> &str {
        self.socket.ns()
    }

    /// The values a dynamic namespace pattern captured (empty for a static namespace).
    pub fn params(&self) -> &NsParams {
        self.socket.ns_params()
    }

    /// An operator on every socket of this namespace (the sender included). A broadcast
    /// through it fans out from the socket the extractor was taken from, like
    /// `socket.broadcast()`: that socket's later events run in a task of its own (see
    /// `docs/server.md`, "Where a socket's events run").
    pub fn broadcast(&self) -> BroadcastOperator {
        self.socket.namespace_operator()
    }
}
