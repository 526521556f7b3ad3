//! An inbound event and its explicit ack handle.

use sockeye_protocol::socketio::Str;

use crate::error::EmitError;
use crate::packet::{self, Args};
use crate::reply::{IntoAck, Reply};
use crate::socket::SocketRef;

/// One event received from a client: its name, its arguments, and whether the client asked for
/// an ack. Also an extractor (the whole event, for catch-all handlers and middlewares).
#[derive(Debug, Clone)]
pub struct Event {
    /// The event name, JSON-decoded (escapes such as `\u00fc` are resolved).
    pub name: Str,
    /// The arguments after the name, with their binary attachments.
    pub args: Args,
    ack: Option<u64>,
}

impl Event {
    /// An event with no ack requested (for tests and middlewares that build one).
    pub fn new(name: impl Into<Str>, args: Args) -> Event {
        Event {
            name: name.into(),
            args,
            ack: None,
        }
    }

    pub(crate) fn received(name: Str, args: Args, ack: Option<u64>) -> Event {
        Event { name, args, ack }
    }

    /// True when the client asked for an acknowledgement.
    pub fn ack_requested(&self) -> bool {
        self.ack.is_some()
    }

    /// The client's ack id, if it asked for an ack.
    pub fn ack_id(&self) -> Option<u64> {
        self.ack
    }
}

/// Sends the acknowledgement of one event: the explicit ack handle, for acknowledging later
/// (from another task, after other work) instead of with the handler's return value.
///
/// It acknowledges at most once: [`AckSender::send`] consumes it. Dropping it without sending
/// sends nothing (the client's callback then waits for its own timeout).
#[derive(Debug)]
#[must_use = "dropping an AckSender without sending leaves the client waiting for its ack"]
pub struct AckSender {
    socket: SocketRef,
    id: u64,
}

impl AckSender {
    pub(crate) fn new(socket: SocketRef, id: u64) -> AckSender {
        AckSender { socket, id }
    }

    /// The client's ack id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Acknowledges with `ack`: anything [`IntoAck`], with the same rule as a handler's return
    /// value (`()`, `Json(x)`, a tuple, `Bytes`, [`Args`], `NoAck`, ...).
    pub fn send(self, ack: impl IntoAck) -> Result<(), EmitError> {
        let args = match ack.into_ack() {
            Reply::Ack(args) => args,
            Reply::Empty => Args::empty(),
            Reply::None => return Ok(()),
        };
        let socket = &self.socket;
        let frames = packet::ack(socket.parser(), socket.ns_str(), self.id, args)?;
        socket.send_encoded(&frames, false)
    }
}
