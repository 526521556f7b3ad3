//! PostgreSQL adapter for sockeye, wire-compatible with the official
//! `@socket.io/postgres-adapter` **0.5** and `@socket.io/postgres-emitter` **0.1**: sockeye
//! nodes, Node `socket.io` nodes using that adapter, and emitters form one cluster.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use sockeye_postgres::{PostgresAdapterFactory, PostgresConfig};
//!
//! let config = PostgresConfig::new("postgres://postgres@127.0.0.1:5432/test");
//! let pg = PostgresAdapterFactory::connect(config).await?;
//! let (layer, io) = sockeye::SocketIo::builder().adapter(pg.clone()).build_layer();
//! pg.ready(Duration::from_secs(5)).await;
//! io.emit("hello", "every client of every node").await?;
//! # let _ = layer; Ok(()) }
//! ```
//!
//! How: every namespace has a channel, `<prefix>#<namespace>` (`socket.io#/`), on which each
//! node `LISTEN`s and `NOTIFY`s the messages of `socket.io-adapter`'s cluster protocol as JSON;
//! a message that carries binary or whose JSON exceeds the payload threshold (8000 bytes) is
//! stored as msgpack in the attachments table (`socket_io_attachments`, created if missing)
//! and only its row id is notified. Nodes count each other by heartbeats (`server_count`).
//!
//! What crosses nodes: broadcasts with every operator (`to`, `except`; `local` stays local),
//! `join`/`leave`/`disconnect` by operator, `fetch_sockets`, broadcasts with acks, server-side
//! events with acks, and the emitter's broadcasts and room operations.
//!
//! Outages: `NOTIFY` stores nothing for a node that is not listening. When the listening
//! connection is lost the node keeps serving its own clients, reconnects and listens again on
//! every channel; what was notified in between is lost for it ([`StatsSnapshot::listen_losses`]
//! counts the gaps). A publish that PostgreSQL does not take is an error the caller sees. See
//! `docs/postgres.md`.
//!
//! Database input is untrusted: size-limited, depth-limited, schema-checked; malformed
//! notifications and bad attachment rows are dropped and counted, never a panic.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod adapter;
mod config;
mod error;
mod node;
mod stats;
mod wire;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz;

use std::sync::Arc;
use std::time::Duration;

use sockeye::adapter::{Adapter, AdapterFactory, LocalNamespace};

pub use adapter::PostgresAdapter;
pub use config::PostgresConfig;
pub use error::PostgresError;
pub use stats::StatsSnapshot;

/// Builds the PostgreSQL adapter of each namespace; all of them share one node's connections
/// (a listener, a publisher and an attachment reader).
#[derive(Clone, Debug)]
pub struct PostgresAdapterFactory {
    node: Arc<node::Node>,
}

impl PostgresAdapterFactory {
    /// Connects to PostgreSQL and creates the attachments table if it is missing (see
    /// [`PostgresConfig::create_table`]); fails when the database cannot be reached now
    /// (later outages are survived: see `docs/postgres.md`).
    pub async fn connect(config: PostgresConfig) -> Result<PostgresAdapterFactory, PostgresError> {
        Ok(PostgresAdapterFactory {
            node: node::Node::connect(config).await?,
        })
    }

    /// This node's uid in cluster messages.
    pub fn uid(&self) -> &str {
        &self.node.uid
    }

    /// Waits until the channel of every namespace created so far is listened on; false if
    /// that did not happen within `timeout`.
    pub async fn ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.node.all_listening() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The counters: received, dropped (malformed, oversized, bad attachments), published,
    /// lost, connection losses and reconnects.
    pub fn stats(&self) -> StatsSnapshot {
        self.node.stats.snapshot()
    }

    /// How many nodes this node counts in namespace `ns`, itself included (`None` when it has
    /// no adapter for `ns`): the answer of `server_count`.
    pub fn server_count(&self, ns: &str) -> Option<usize> {
        self.node.adapter(ns).map(|a| a.node_count())
    }

    /// The `application_name` of this node's connections (`sockeye-postgres <uid>`), to find
    /// them in `pg_stat_activity`.
    pub fn application_name(&self) -> String {
        format!("sockeye-postgres {}", self.node.uid)
    }
}

impl AdapterFactory for PostgresAdapterFactory {
    fn create(&self, local: LocalNamespace) -> Arc<dyn Adapter> {
        PostgresAdapter::new(self.node.clone(), local)
    }
}

/// The examples of `docs/postgres.md`, compiled as doctests so they stay true.
#[doc = include_str!("../../../docs/postgres.md")]
#[cfg(doctest)]
pub struct PostgresDocDoctest;
