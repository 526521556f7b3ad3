//! An inbound event and its explicit ack handle.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sockeye_protocol::socketio::Str;

use crate::error::EmitError;
use crate::handler::{IntoReply, Reply};
use crate::packet::{self, Args};
use crate::socket::SocketRef;

/// One event received from a client.
#[derive(Debug)]
pub struct Event {
    /// The event name, JSON-decoded (escapes such as `\u00fc` are resolved).
    pub name: Str,
    /// The arguments after the name, with their binary attachments.
    pub args: Args,
    ack: Option<AckSender>,
}

impl Event {
    pub(crate) fn new(name: Str, args: Args, ack: Option<AckSender>) -> Event {
        Event { name, args, ack }
    }

    /// True when the client asked for an acknowledgement.
    pub fn ack_requested(&self) -> bool {
        self.ack.is_some()
    }

    /// The client's ack id, if it asked for an ack.
    pub fn ack_id(&self) -> Option<u64> {
        self.ack.as_ref().map(|a| a.inner.id)
    }

    /// A second handle on the ack (the dispatcher's), without marking it taken.
    pub(crate) fn ack_handle(&self) -> Option<AckSender> {
        self.ack.clone()
    }

    /// Takes the explicit ack handle, to acknowledge later (from another task, after other
    /// work). Once taken, the handler's return value no longer becomes the ack; dropping the
    /// handle without sending sends nothing.
    pub fn take_ack(&mut self) -> Option<AckSender> {
        let ack = self.ack.take()?;
        ack.inner.taken.store(true, Ordering::Release);
        Some(ack)
    }
}

/// Sends the acknowledgement of one event, once.
#[derive(Debug, Clone)]
pub struct AckSender {
    inner: Arc<AckInner>,
}

#[derive(Debug)]
struct AckInner {
    socket: SocketRef,
    id: u64,
    taken: AtomicBool,
    sent: AtomicBool,
}

impl AckSender {
    pub(crate) fn new(socket: SocketRef, id: u64) -> AckSender {
        AckSender {
            inner: Arc::new(AckInner {
                socket,
                id,
                taken: AtomicBool::new(false),
                sent: AtomicBool::new(false),
            }),
        }
    }

    /// Acknowledges with `reply` ([`Args`], `()`, [`crate::AckValue`], ...). A second send on
    /// the same event (or a clone of this handle) does nothing and returns `Ok`.
    pub fn send(self, reply: impl IntoReply) -> Result<(), EmitError> {
        self.send_reply(reply.into_reply())
    }

    /// True once the handle was taken out of its event with [`Event::take_ack`].
    pub(crate) fn was_taken(&self) -> bool {
        self.inner.taken.load(Ordering::Acquire)
    }

    pub(crate) fn send_reply(&self, reply: Reply) -> Result<(), EmitError> {
        let args = match reply {
            Reply::Ack(args) => args,
            Reply::Empty => Args::empty(),
            Reply::None => return Ok(()),
        };
        if self.inner.sent.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let socket = &self.inner.socket;
        let frames = packet::ack(socket.parser(), socket.ns_str(), self.inner.id, args)?;
        socket.send_encoded(&frames, false)
    }
}
