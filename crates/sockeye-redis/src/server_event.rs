//! Server-side events: messages between the servers of a cluster (JS `serverSideEmit`), not
//! seen by clients.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use serde::Serialize;
use serde_json::json;
use sockeye::Args;

use crate::broker::{Broker, Outgoing};
use crate::wire::{self, kind};

/// An event another server of the cluster sent with `serverSideEmit`.
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

/// The answer slot of a [`ServerEvent`]; the sender counts one answer per server.
#[derive(Debug)]
pub struct ServerAck {
    broker: Weak<Broker>,
    channel: String,
    request_id: String,
}

impl ServerAck {
    pub(crate) fn new(broker: Weak<Broker>, channel: String, request_id: String) -> ServerAck {
        ServerAck {
            broker,
            channel,
            request_id,
        }
    }

    /// Answers with `value` (JSON, as the official adapter sends it). Fails if the value is not
    /// serialisable or the publish queue is full.
    pub fn send<T: Serialize + ?Sized>(self, value: &T) -> Result<(), sockeye::AdapterError> {
        let data = serde_json::to_value(value)
            .map_err(|e| sockeye::AdapterError::with_source("the answer is not JSON", e))?;
        let Some(broker) = self.broker.upgrade() else {
            return Err(sockeye::AdapterError::new("the Redis adapter is closed"));
        };
        broker.publish(Outgoing {
            channel: self.channel,
            payload: wire::encode_json(vec![
                ("type", json!(kind::SERVER_SIDE_EMIT)),
                ("requestId", json!(self.request_id)),
                ("data", data),
            ]),
            what: "SERVER_SIDE_EMIT response",
        })
    }
}

/// A handler of server-side events; runs on the subscriber task, so it must not block (spawn
/// for anything slow).
pub type ServerEventHandler = Arc<dyn Fn(ServerEvent) + Send + Sync>;

/// Handlers by namespace name.
#[derive(Default)]
pub(crate) struct ServerHandlers(Mutex<HashMap<String, ServerEventHandler>>);

impl ServerHandlers {
    pub(crate) fn set(&self, ns: &str, handler: ServerEventHandler) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(ns.to_owned(), handler);
    }

    pub(crate) fn dispatch(&self, ns: &str, event: ServerEvent) {
        let handler = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(ns)
            .cloned();
        match handler {
            Some(h) => h(event),
            None => tracing::debug!(%ns, event = %event.event, "server-side event with no handler"),
        }
    }
}
