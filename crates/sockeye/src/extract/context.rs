//! What a handler's extractors read from: one context per handler kind.

use serde_json::Value;
use sockeye_protocol::socketio::Str;

use super::rejection::Rejection;
use super::state::StateMap;
use crate::event::{AckSender, Event};
use crate::handler::ConnectResult;
use crate::packet::Args;
use crate::reason::DisconnectReason;
use crate::reply::{IntoAck, Reply};
use crate::socket::SocketRef;

/// What the server knows when a handler is registered, for [`super::FromEventParts::check`]
/// and its siblings: a requirement that can never be met is refused then, not at the first
/// event.
#[derive(Debug)]
pub struct Registration<'a> {
    pub(crate) states: &'a StateMap,
}

impl Registration<'_> {
    /// True when a state of type `T` was registered with
    /// [`crate::SocketIoBuilder::with_state`].
    pub fn has_state<T: Send + Sync + 'static>(&self) -> bool {
        self.states.contains::<T>()
    }
}

/// The input of a connect handler (and of a connect middleware): the socket, with its
/// handshake, and the CONNECT payload.
#[derive(Debug)]
pub struct ConnectContext {
    socket: SocketRef,
    auth: Option<Value>,
}

impl ConnectContext {
    pub(crate) fn new(socket: SocketRef, auth: Option<Value>) -> ConnectContext {
        ConnectContext { socket, auth }
    }

    /// The connecting socket.
    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }

    /// The CONNECT payload (the client's `auth` option), `None` when it sent none.
    pub fn auth(&self) -> Option<&Value> {
        self.auth.as_ref()
    }

    /// An extractor failed: the handler is not called and the connection is refused.
    pub(crate) fn reject(&self, rejection: Rejection) -> ConnectResult {
        tracing::warn!(
            socket = %self.socket.id(),
            ns = self.socket.ns(),
            code = rejection.code(),
            error = rejection.message(),
            "connect handler not called: an extractor rejected the connection; refusing it"
        );
        Err(rejection.to_refusal())
    }
}

/// The input of an event handler: the socket, the event's name and arguments, its ack handle.
#[derive(Debug)]
pub struct EventContext {
    socket: SocketRef,
    name: Str,
    args: Args,
    ack: Option<AckSender>,
}

impl EventContext {
    pub(crate) fn new(socket: SocketRef, event: Event) -> EventContext {
        // The context owns the ack from the start, so that a rejection can still answer it.
        let ack = event.ack_id().map(|id| AckSender::new(socket.clone(), id));
        EventContext {
            socket,
            name: event.name,
            args: event.args,
            ack,
        }
    }

    /// The socket that sent the event.
    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }

    /// The event name.
    pub fn event_name(&self) -> &str {
        self.name.as_str()
    }

    /// The event (name and arguments) as received, with whether an ack was asked.
    pub(crate) fn event(&self) -> Event {
        let ack = self.ack.as_ref().map(AckSender::id);
        Event::received(self.name.clone(), self.args.clone(), ack)
    }

    /// The event's arguments, binary attachments included.
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// True while the ack is still here to send: the client asked for one and no extractor
    /// took the handle.
    pub fn ack_requested(&self) -> bool {
        self.ack.is_some()
    }

    /// Hands the ack out to the handler: its return value no longer becomes the ack. `None`
    /// when the client asked for no ack (or the handle was taken already).
    pub fn take_ack(&mut self) -> Option<AckSender> {
        self.ack.take()
    }

    /// The handler returned `value`: it is the ack, unless the handler took the ack handle.
    pub(crate) fn finish(self, value: impl IntoAck) {
        if let Some(ack) = self.ack
            && let Err(e) = ack.send(value)
        {
            tracing::debug!(socket = %self.socket.id(), event = self.name.as_str(), error = %e, "ack not sent");
        }
    }

    /// An extractor failed: the handler is not called; a requested ack carries the error.
    pub(crate) fn reject(self, rejection: Rejection) {
        tracing::warn!(
            socket = %self.socket.id(),
            ns = self.socket.ns(),
            event = self.name.as_str(),
            code = rejection.code(),
            error = rejection.message(),
            "event handler not called: an extractor rejected the event"
        );
        let Some(ack) = self.ack else { return };
        let reply = match Args::from_value(&rejection.to_ack_value()) {
            Ok(args) => Reply::Ack(args),
            Err(e) => {
                tracing::error!(error = %e, "error ack could not be encoded");
                return;
            }
        };
        if let Err(e) = ack.send(reply) {
            tracing::debug!(socket = %self.socket.id(), error = %e, "error ack not sent");
        }
    }
}

/// The input of a disconnect handler: the socket (rooms and session still readable) and why it
/// left.
#[derive(Debug)]
pub struct DisconnectContext {
    socket: SocketRef,
    reason: DisconnectReason,
}

impl DisconnectContext {
    pub(crate) fn new(socket: SocketRef, reason: DisconnectReason) -> Self {
        DisconnectContext { socket, reason }
    }

    /// The socket that left.
    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }

    /// Why it left.
    pub fn reason(&self) -> DisconnectReason {
        self.reason
    }

    /// An extractor failed: the handler is not called.
    pub(crate) fn reject(&self, rejection: Rejection) {
        tracing::warn!(
            socket = %self.socket.id(),
            ns = self.socket.ns(),
            code = rejection.code(),
            error = rejection.message(),
            "disconnect handler not called: an extractor rejected it"
        );
    }
}
