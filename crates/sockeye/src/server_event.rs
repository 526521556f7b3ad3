//! Server-side events: messages another server of the cluster sent with
//! [`crate::SocketIo::server_side_emit`] (JS `serverSideEmit`), never seen by clients.
//!
//! The cluster adapter receives them and hands them to [`crate::adapter::LocalNamespace`],
//! which runs the handler registered with [`crate::SocketIo::on_server_event`]; so any adapter
//! can deliver them and handler code does not depend on the adapter type.

use std::sync::Arc;

use serde::Serialize;

use crate::error::AdapterError;
use crate::packet::Args;

/// An event another server of the cluster sent to this namespace.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerEvent {
    /// The namespace it was sent in.
    pub ns: String,
    /// The event name.
    pub event: String,
    /// Its arguments.
    pub args: Args,
    /// Present when the sender waits for an answer: call [`ServerAck::send`] once.
    pub ack: Option<ServerAck>,
}

impl ServerEvent {
    /// An event as an adapter received it (`ack` when the sender waits for an answer).
    pub fn new(
        ns: impl Into<String>,
        event: impl Into<String>,
        args: Args,
        ack: Option<ServerAck>,
    ) -> ServerEvent {
        ServerEvent {
            ns: ns.into(),
            event: event.into(),
            args,
            ack,
        }
    }
}

type Responder = Box<dyn FnOnce(serde_json::Value) -> Result<(), AdapterError> + Send>;

/// The answer slot of a [`ServerEvent`]: the sender counts one answer per server.
pub struct ServerAck {
    respond: Responder,
}

impl std::fmt::Debug for ServerAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAck").finish_non_exhaustive()
    }
}

impl ServerAck {
    /// An answer slot that hands the answer (as JSON) to `respond`; built by the adapter that
    /// received the event, which knows how to route the answer back to its sender.
    pub fn new<F>(respond: F) -> ServerAck
    where
        F: FnOnce(serde_json::Value) -> Result<(), AdapterError> + Send + 'static,
    {
        ServerAck {
            respond: Box::new(respond),
        }
    }

    /// Answers with `value` (the one argument the sender's ack stream yields for this server).
    /// Fails if the value is not serialisable to JSON or the adapter cannot send it now.
    pub fn send<T: Serialize + ?Sized>(self, value: &T) -> Result<(), AdapterError> {
        let value = serde_json::to_value(value)
            .map_err(|e| AdapterError::with_source("the server-side answer is not JSON", e))?;
        (self.respond)(value)
    }
}

/// A handler of server-side events. It runs on the adapter's receiving task, so it must not
/// block: spawn a task for anything slow.
pub type ServerEventHandler = Arc<dyn Fn(ServerEvent) + Send + Sync>;
