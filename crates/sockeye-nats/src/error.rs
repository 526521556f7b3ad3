//! The errors of this crate.

use std::time::Duration;

use sockeye::adapter::SocketInfo;

/// Connecting to NATS failed.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The server could not be reached or refused the connection.
    #[error("cannot connect to NATS at {url}: {source}; check that the server runs and the URL")]
    Connect {
        /// The URL tried.
        url: String,
        /// Why.
        #[source]
        source: async_nats::ConnectError,
    },
    /// JetStream (stream or key-value bucket) could not be set up.
    #[error(
        "cannot set up JetStream {what}: {message}; check that the server runs with JetStream enabled (-js) and that the settings match an existing {what}"
    )]
    JetStream {
        /// The stream or the bucket.
        what: &'static str,
        /// The server's or client's error.
        message: String,
    },
    /// The configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A message for the other nodes was not published: the source of the
/// [`sockeye::AdapterError`] an emit or room operation then returns.
#[derive(Debug, thiserror::Error)]
#[error("{what} in namespace {ns} was not published to the other nodes ({reason}); {local}")]
pub struct NotPublished {
    /// What was not published.
    pub what: &'static str,
    /// The namespace.
    pub ns: String,
    /// Why.
    pub reason: String,
    /// What this node already did (its own sockets), so the application knows what a retry
    /// would repeat.
    pub local: String,
}

/// A cluster request did not get every node's answer within the request timeout: the source
/// of the [`sockeye::AdapterError`] it returns, with what did arrive.
#[derive(Debug, thiserror::Error)]
#[error(
    "{request} in namespace {ns}: {answered} of {expected} other nodes answered within {timeout:?} (a node is slow, partitioned or dead)"
)]
pub struct RequestTimeout {
    /// The request.
    pub request: &'static str,
    /// The namespace.
    pub ns: String,
    /// Nodes that answered.
    pub answered: usize,
    /// Nodes expected to.
    pub expected: usize,
    /// The request timeout.
    pub timeout: Duration,
    /// The sockets gathered (this node's and the answers'), for `fetch_sockets`.
    pub sockets: Vec<SocketInfo>,
}
