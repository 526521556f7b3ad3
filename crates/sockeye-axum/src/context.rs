//! What a handler's extractors read from: one context per handler kind.

use serde_json::Value;
use sockeye::{AckSender, Args, ConnectResult, DisconnectReason, Event, Reply, SocketRef, Str};

use crate::io::SocketIo;
use crate::rejection::Rejection;

/// The input of a connect handler (and of a connect middleware): the socket, with its
/// handshake, and the CONNECT payload.
#[derive(Debug)]
pub struct ConnectContext {
    socket: SocketRef,
    auth: Option<Value>,
    io: SocketIo,
}

impl ConnectContext {
    pub(crate) fn new(socket: SocketRef, auth: Option<Value>, io: SocketIo) -> ConnectContext {
        ConnectContext { socket, auth, io }
    }

    /// The connecting socket.
    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }

    /// The CONNECT payload (the client's `auth` option), `None` when it sent none.
    pub fn auth(&self) -> Option<&Value> {
        self.auth.as_ref()
    }

    /// The server handle (with its states).
    pub fn io(&self) -> &SocketIo {
        &self.io
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
    io: SocketIo,
    name: Str,
    args: Args,
    ack: Option<AckSender>,
    ack_extracted: bool,
}

impl EventContext {
    pub(crate) fn new(socket: SocketRef, mut event: Event, io: SocketIo) -> EventContext {
        // The context owns the ack from the start, so that a rejection can still answer it even
        // when an earlier argument already extracted the ack handle.
        let ack = event.take_ack();
        EventContext {
            socket,
            io,
            name: event.name,
            args: event.args,
            ack,
            ack_extracted: false,
        }
    }

    /// The socket that sent the event.
    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }

    /// The server handle (with its states).
    pub fn io(&self) -> &SocketIo {
        &self.io
    }

    /// The event name.
    pub fn event_name(&self) -> &str {
        self.name.as_str()
    }

    /// The event's arguments, binary attachments included.
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// True when the client asked for an ack.
    pub fn ack_requested(&self) -> bool {
        self.ack.is_some()
    }

    /// Hands the ack out to the handler: its return value no longer becomes the ack.
    /// `None` when the client asked for no ack.
    pub fn take_ack(&mut self) -> Option<AckSender> {
        let ack = self.ack.clone()?;
        self.ack_extracted = true;
        Some(ack)
    }

    /// The handler returned `reply`: it is the ack, unless the handler took the ack handle.
    pub(crate) fn finish(self, reply: Reply) {
        if self.ack_extracted {
            return;
        }
        if let Some(ack) = self.ack
            && let Err(e) = ack.send(reply)
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
    io: SocketIo,
}

impl DisconnectContext {
    pub(crate) fn new(socket: SocketRef, reason: DisconnectReason, io: SocketIo) -> Self {
        DisconnectContext { socket, reason, io }
    }

    /// The socket that left.
    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }

    /// Why it left.
    pub fn reason(&self) -> DisconnectReason {
        self.reason
    }

    /// The server handle (with its states).
    pub fn io(&self) -> &SocketIo {
        &self.io
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
