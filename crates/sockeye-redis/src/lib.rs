//! Redis adapter and emitter for sockeye, wire-compatible with the official
//! `@socket.io/redis-adapter` **8.3** (classic `createAdapter`; its `createShardedAdapter` for a
//! Redis Cluster is [`sharded`]) and `@socket.io/redis-emitter` **5.1**: sockeye nodes, Node
//! `socket.io` nodes using that adapter, and emitters form one cluster. [`streams`] speaks
//! `@socket.io/redis-streams-adapter`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use sockeye_redis::{RedisAdapterFactory, RedisConfig};
//!
//! let redis = RedisAdapterFactory::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
//! let (layer, io) = sockeye::SocketIo::builder().adapter(redis.clone()).build_layer();
//! redis.ready(Duration::from_secs(5)).await;
//! io.emit("hello", "every client of every node").await?;
//! # let _ = layer; Ok(()) }
//! ```
//!
//! What crosses nodes: broadcasts with every operator (`to`, `except`; `local` stays local),
//! `join`/`leave`/`disconnect` by operator, `fetch_sockets` (id, rooms, handshake), broadcasts
//! with acks (collected from every node within the timeout), server-side events with acks
//! (sent with `SocketIo::server_side_emit(_with_ack)`, received by the handler registered with
//! `SocketIo::on_server_event`).
//!
//! Outages: when Redis goes away, each node keeps serving its own clients (local delivery never
//! waits for Redis); the subscriber reconnects with exponential backoff and resubscribes. Redis
//! pub/sub stores nothing, so messages published while a node is disconnected are lost for it,
//! and messages a node could not publish are dropped, logged and counted
//! ([`RedisAdapterFactory::stats`]). See `docs/redis.md`.
//!
//! Errors say what happened: a broadcast whose copy for the other nodes could not be queued
//! fails with a [`NotPublished`] source telling that the local sockets got it (retry only the
//! remote copy with [`RedisAdapterFactory::publish_again`]); a cluster request that did not
//! get every answer in time fails with a [`RequestTimeout`] source holding the answers that
//! came.
//!
//! Broker input is untrusted: size-limited, depth-limited, schema-checked, versioned (an extra
//! `sockeyeWire` key the official packages ignore; absent means their format); malformed
//! messages are dropped and counted, never a panic.
//!
//! Feature `tls`: `rediss://` URLs. Feature `metrics`: the publish lag and lost publishes through
//! the `metrics` facade, with sockeye's own metrics (`docs/admin.md`).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod adapter;
mod broker;
mod config;
mod emitter;
mod error;
mod factory;
mod metrics;
mod server_event;
pub mod sharded;
mod stats;
pub mod streams;
mod wire;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz;

pub use adapter::RedisAdapter;
pub use config::RedisConfig;
pub use emitter::{Emitter, EmitterOperator};
pub use error::{
    LocalOutcome, NotPublished, NotPublishedReason, Partial, RedisError, RequestTimeout,
};
pub use factory::RedisAdapterFactory;
pub use stats::StatsSnapshot;

/// The examples of `docs/redis.md`, compiled as doctests so they stay true.
#[doc = include_str!("../../../docs/redis.md")]
#[cfg(doctest)]
pub struct RedisDocDoctest;
