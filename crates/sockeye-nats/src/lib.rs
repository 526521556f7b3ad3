//! NATS adapter for sockeye: the nodes of a cluster share broadcasts, room operations, socket
//! queries and server-side events over core NATS, and (with JetStream) recover a client's
//! connection state on any node.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use sockeye_nats::{JetStreamConfig, NatsAdapterFactory, NatsConfig};
//!
//! let config = NatsConfig::new("nats://127.0.0.1:4222").jetstream(JetStreamConfig::new());
//! let nats = NatsAdapterFactory::connect(config).await?;
//! let (layer, io) = sockeye::SocketIo::builder()
//!     .adapter(nats.clone())
//!     .connection_state_recovery(sockeye::RecoveryConfig::default())
//!     .build_layer();
//! nats.ready(Duration::from_secs(5)).await;
//! io.emit("hello", "every client of every node").await?;
//! # let _ = layer; Ok(()) }
//! ```
//!
//! There is no official NATS adapter for Socket.IO: the format is sockeye's own, versioned and
//! described in `docs/nats.md` (the cluster protocol of `socket.io-adapter`, in msgpack).
//!
//! Outages: local delivery never waits for NATS. While the connection is down, what a node
//! would publish fails at once with a [`NotPublished`] error (its own sockets got the
//! broadcast); the client reconnects and resubscribes by itself; what other nodes published
//! meanwhile is lost on core NATS and counted ([`StatsSnapshot::missed`]), and read from the
//! stream afterwards in JetStream mode. A killed node stops counting after the heartbeat
//! timeout; requests meanwhile fail with a [`RequestTimeout`] holding what did arrive.
//!
//! Broker input is untrusted: size- and depth-limited, checked field by field; malformed
//! messages and messages of another wire version are dropped and counted, never a panic.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod adapter;
mod config;
mod error;
mod jetstream;
mod node;
mod reader;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use sockeye::adapter::{Adapter, AdapterFactory, LocalNamespace};

pub use adapter::NatsAdapter;
pub use config::{JetStreamConfig, NatsConfig};
pub use error::{NatsError, NotPublished, RequestTimeout};
pub use node::StatsSnapshot;
pub use wire::WireError;

/// Builds the NATS adapter of each namespace; all of them share one connection.
#[derive(Clone, Debug)]
pub struct NatsAdapterFactory {
    node: Arc<node::Node>,
}

impl NatsAdapterFactory {
    /// Connects to NATS (and sets up the JetStream stream and bucket when configured); fails
    /// when the server cannot be reached now. Later outages are survived: see `docs/nats.md`.
    pub async fn connect(config: NatsConfig) -> Result<NatsAdapterFactory, NatsError> {
        Ok(NatsAdapterFactory {
            node: node::Node::connect(config).await?,
        })
    }

    /// This node's id in cluster messages.
    pub fn uid(&self) -> &str {
        &self.node.uid
    }

    /// Waits until every namespace created so far is subscribed (and reads its log); false if
    /// that did not happen within `timeout`.
    pub async fn ready(&self, timeout: Duration) -> bool {
        self.node.ready(timeout).await
    }

    /// How many other nodes namespace `ns` currently knows through their heartbeats; `None`
    /// when this node has no such namespace.
    pub fn known_nodes(&self, ns: &str) -> Option<usize> {
        self.node.known_nodes(ns)
    }

    /// The counters: received, dropped, published, lost, reconnects.
    pub fn stats(&self) -> StatsSnapshot {
        self.node.snapshot()
    }

    /// Tells the other nodes this one leaves, and stops every namespace's reader.
    pub async fn close(&self) {
        self.node.shutdown().await;
    }
}

impl AdapterFactory for NatsAdapterFactory {
    fn create(&self, local: LocalNamespace) -> Arc<dyn Adapter> {
        let adapter = NatsAdapter::new(self.node.clone(), local);
        self.node.register(&adapter);
        adapter
    }
}

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
/// The decoders, for the `nats_wire` fuzz target; not an API.
pub mod __fuzz {
    /// Decodes `data` as a message from a subject and reads its `data` the way the adapter
    /// does; true when every reader that applies to its type accepted it.
    pub fn message(data: &[u8]) -> bool {
        crate::wire::fuzz_message(data)
    }

    /// Decodes `data` as a stored session; true when accepted.
    pub fn session(data: &[u8]) -> bool {
        crate::wire::fuzz_session(data)
    }
}

/// The examples of `docs/nats.md`, compiled as doctests so they stay true.
#[doc = include_str!("../../../docs/nats.md")]
#[cfg(doctest)]
pub struct NatsDocDoctest;
