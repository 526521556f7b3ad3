//! The socket, the server handle, the namespace, the transport, the disconnect reason.

use sockeye::{
    BroadcastOperator, DisconnectReason, NamespaceNotFound, NsParams, SocketRef, Transport,
};

use super::{DisconnectContext, FromDisconnectParts, from_any_parts};
use crate::io::SocketIo;
use crate::rejection::Rejection;

from_any_parts!(SocketRef, |socket, io| Ok(socket.clone()));
from_any_parts!(SocketIo, |socket, io| Ok(io.clone()));
from_any_parts!(sockeye::SocketIo, |socket, io| Ok(io.core().clone()));
from_any_parts!(Transport, |socket, io| Ok(socket.transport()));
from_any_parts!(Namespace, |socket, io| Ok(Namespace {
    socket: socket.clone(),
    io: io.core().clone(),
}));

impl FromDisconnectParts for DisconnectReason {
    type Rejection = Rejection;
    fn from_disconnect_parts(cx: &DisconnectContext) -> Result<Self, Rejection> {
        Ok(cx.reason())
    }
}

/// The namespace the socket belongs to: its name, the captures of a dynamic namespace
/// pattern, and an operator to emit to all of its sockets.
#[derive(Debug, Clone)]
pub struct Namespace {
    socket: SocketRef,
    io: sockeye::SocketIo,
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

    /// An operator on every socket of this namespace (the sender included).
    pub fn broadcast(&self) -> Result<BroadcastOperator, NamespaceNotFound> {
        self.io.of(self.name())
    }
}
