//! Errors of the bus.

/// What went wrong with the bus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PyBusError {
    /// The Redis URL could not be used.
    #[error("invalid Redis URL for the python-socketio bus: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    /// Redis could not be reached when connecting.
    #[error("cannot connect to Redis for the python-socketio bus: {0}; check that it runs")]
    Connect(#[source] redis::RedisError),
    /// An `amqp://` URL, but the crate was built without its feature `amqp`.
    #[error("amqp:// URLs need sockeye-pybus's feature `amqp`")]
    AmqpDisabled,
    /// The AMQP broker could not be reached or refused a declaration.
    #[error("AMQP broker for the python-socketio bus: {0}")]
    Amqp(String),
    /// Connecting or subscribing did not finish in time.
    #[error("connecting to Redis for the python-socketio bus timed out")]
    ConnectTimeout,
    /// python-socketio's bus has no message for this operation (see [`Unsupported`]).
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// A message could not be published; `local` says what this node already did.
    #[error(
        "{what} of namespace {ns} {local}, but it was not published to the other nodes: {reason}"
    )]
    NotPublished {
        /// The operation (`broadcast`, `enter_room`, ...).
        what: &'static str,
        /// The namespace.
        ns: String,
        /// What was done on this node.
        local: &'static str,
        /// Why.
        reason: String,
    },
    /// The arguments could not be written as the bus's JSON.
    #[error("cannot encode the message for the python-socketio bus: {0}")]
    Encode(String),
}

impl PyBusError {
    /// The [`PyBusError`] behind an adapter error, if that is what it is.
    pub fn in_adapter_error(error: &sockeye::AdapterError) -> Option<&PyBusError> {
        error
            .source
            .as_deref()
            .and_then(|s| s.downcast_ref::<PyBusError>())
    }

    pub(crate) fn into_adapter(self) -> sockeye::AdapterError {
        sockeye::AdapterError::with_source(self.to_string(), self)
    }
}

/// An operation python-socketio's bus cannot express: it has no message for it, and its nodes
/// could not answer. Returned instead of an answer that would cover this node only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("python-socketio's bus cannot carry {operation}: {why}")]
pub struct Unsupported {
    /// The operation (`fetch_sockets`, `server_count`, ...).
    pub operation: &'static str,
    /// Why, and what to do instead.
    pub why: &'static str,
}

impl Unsupported {
    pub(crate) fn err(operation: &'static str, why: &'static str) -> sockeye::AdapterError {
        PyBusError::from(Unsupported { operation, why }).into_adapter()
    }

    /// The [`Unsupported`] behind an adapter error, if that is what it is.
    pub fn in_adapter_error(error: &sockeye::AdapterError) -> Option<&Unsupported> {
        match PyBusError::in_adapter_error(error)? {
            PyBusError::Unsupported(u) => Some(u),
            _ => None,
        }
    }
}
