//! The errors of the server API.

use serde::Serialize;
use serde_json::Value;

/// Refuses a namespace connection, from a connect middleware or the connect handler.
///
/// The client receives CONNECT_ERROR with exactly this payload, as the official JavaScript
/// server sends it: `44{"message":"..."}`, or `44{"message":"...","data":...}` when `data` is
/// set (`err.message` and `err.data` in socket.io-client, the whole object in python-socketio).
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[error("connection refused: {message}")]
pub struct ConnectionRefusedError {
    /// The text the client sees as the error message.
    pub message: String,
    /// Extra data for the client; omitted from the packet when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ConnectionRefusedError {
    /// A refusal with a message and no data.
    pub fn new(message: impl Into<String>) -> ConnectionRefusedError {
        ConnectionRefusedError {
            message: message.into(),
            data: None,
        }
    }

    /// A refusal with a message and data. Data that cannot be serialised as JSON becomes
    /// `null` (and is logged), so a refusal always reaches the client.
    pub fn with_data(message: impl Into<String>, data: impl Serialize) -> ConnectionRefusedError {
        let data = serde_json::to_value(data).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "connection refusal data is not JSON-serialisable");
            Value::Null
        });
        ConnectionRefusedError {
            message: message.into(),
            data: Some(data),
        }
    }
}

impl Default for ConnectionRefusedError {
    /// `{"message":"Connection rejected by server"}`, the python-socketio default.
    fn default() -> Self {
        ConnectionRefusedError::new("Connection rejected by server")
    }
}

/// Why an emit (or an ack) could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The socket has disconnected from its namespace (python-socketio `DisconnectedError`).
    /// Its handle is stale: stop using it.
    #[error("the socket is disconnected: nothing can be sent to it any more")]
    Disconnected,
    /// The namespace was never registered on this server (python-socketio
    /// `BadNamespaceError`). Register it with `SocketIo::ns` first.
    #[error("namespace {0:?} is not registered on this server")]
    BadNamespace(String),
    /// The data could not be serialised as Socket.IO arguments.
    #[error("could not serialise the event data: {0}")]
    Serialize(String),
    /// The event name is reserved by Socket.IO (`connect`, `connect_error`, `disconnect`,
    /// `disconnecting`, `newListener`, `removeListener`): clients would not deliver it.
    #[error("event name {0:?} is reserved by Socket.IO: choose another name")]
    ReservedEvent(String),
    /// The client's outgoing queue is full: it does not read what it is sent, and its session
    /// is being closed.
    #[error("the client's outgoing queue is full; its session is being closed: {0}")]
    QueueFull(String),
    /// The adapter (e.g. a cluster backend) failed to broadcast.
    #[error(transparent)]
    Adapter(#[from] AdapterError),
}

/// Why an awaited acknowledgement did not arrive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The client did not answer within the timeout. A late answer is ignored.
    #[error("the client did not acknowledge within {0:?}")]
    Timeout(std::time::Duration),
    /// The socket disconnected before answering.
    #[error("the socket disconnected before acknowledging")]
    Disconnected,
    /// The request could not be sent.
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// The ack arrived but its arguments do not deserialise into the requested type.
    #[error("the ack's arguments do not match the expected type: {0}")]
    Decode(String),
}

/// `SocketIo::of` (or an emit) named a namespace that was never registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "namespace {0:?} is not registered on this server: register it with SocketIo::ns, or check the name (it starts with '/')"
)]
pub struct NamespaceNotFound(pub String);

impl From<NamespaceNotFound> for EmitError {
    fn from(e: NamespaceNotFound) -> EmitError {
        EmitError::BadNamespace(e.0)
    }
}

/// A failure of the [`crate::adapter::Adapter`] (for a cluster adapter: the backend).
#[derive(Debug, thiserror::Error)]
#[error("adapter error: {message}")]
pub struct AdapterError {
    /// What went wrong, and what to check.
    pub message: String,
    /// The underlying error, if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl AdapterError {
    /// An adapter error with a message.
    pub fn new(message: impl Into<String>) -> AdapterError {
        AdapterError {
            message: message.into(),
            source: None,
        }
    }

    /// An adapter error wrapping its cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> AdapterError {
        AdapterError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// A namespace could not be registered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// The dynamic namespace pattern is malformed.
    #[error(transparent)]
    Pattern(#[from] crate::pattern::PatternError),
    /// A namespace name must start with '/'.
    #[error("namespace name {0:?} must start with '/'")]
    InvalidName(String),
    /// A handler takes `State<T>` but no state of type `T` was registered: it could never run.
    #[error(
        "a handler takes State<{0}>, but no state of that type was registered: add it with SocketIo::builder().with_state(value) before build()"
    )]
    MissingState(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_serialises_like_the_js_server() {
        let plain = ConnectionRefusedError::new("auth failed");
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"message":"auth failed"}"#
        );
        let with =
            ConnectionRefusedError::with_data("auth failed", serde_json::json!({"code": 401}));
        assert_eq!(
            serde_json::to_string(&with).unwrap(),
            r#"{"message":"auth failed","data":{"code":401}}"#
        );
    }
}
