//! python-socketio's pub/sub bus for sockeye: the JSON messages of python-socketio 5.x's
//! `PubSubManager`, over Redis as its `AsyncRedisManager` (`PUBLISH`/`SUBSCRIBE` on channel
//! `socketio`) or, with feature `amqp`, over AMQP as its `AsyncAioPikaManager` (a fanout
//! exchange named after the channel, one queue per node). sockeye nodes and python-socketio
//! nodes using that manager form one cluster, so a python-socketio cluster can be migrated
//! node by node.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use sockeye_pybus::{PyBusConfig, PyBusFactory};
//! let bus = PyBusFactory::connect(PyBusConfig::new("redis://127.0.0.1:6379/0")).await?;
//! let (layer, io) = sockeye::SocketIo::builder().adapter(bus.clone()).build_layer();
//! io.to("room").emit("hello", "on every node").await?;
//! # let _ = layer; Ok(()) }
//! ```
//!
//! What crosses nodes: broadcasts (`to`, `except`, binary arguments in python's base64 form),
//! broadcasts with acks (every answer until the timeout; sockeye nodes also report the sockets
//! that did not answer), join, leave and disconnect of one socket id or one room, and
//! `in(room).leave(room)` as python's `close_room`.
//!
//! What the bus cannot express returns [`Unsupported`] (never an answer covering only this
//! node): `fetch_sockets`, `server_count`, server-side emits, join/leave/disconnect of several
//! rooms or with `except`, and connection-state recovery (off, as with python-socketio).
//! `.local()` operations work. See `docs/python-bus.md`.
//!
//! Bus input is untrusted: size- and depth-limited, schema-checked; bad messages are dropped
//! and counted ([`PyBusFactory::stats`]), never a panic.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod adapter;
#[cfg(feature = "amqp")]
mod amqp_bus;
mod bus;
mod config;
mod error;
mod factory;
mod redis_bus;
mod stats;
mod wire;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz;

pub use adapter::PyBusAdapter;
pub use config::PyBusConfig;
pub use error::{PyBusError, Unsupported};
pub use factory::PyBusFactory;
pub use stats::StatsSnapshot;

/// The examples of `docs/python-bus.md`, compiled as doctests so they stay true.
#[doc = include_str!("../../../docs/python-bus.md")]
#[cfg(doctest)]
pub struct PyBusDocDoctest;
