//! Test harness for sockeye's fault tests (not published).
//!
//! - [`FaultProxy`]: a TCP proxy on 127.0.0.1 between a client and a server (or a node and
//!   Redis) that can pause, delay, throttle or blackhole each direction, half-close it, or
//!   reset every connection.
//! - [`ws`]: raw WebSocket framing, for inputs a well-behaved client library refuses to send
//!   (fragment floods, truncated frames).
//! - [`sio`]: a minimal Socket.IO client that shows exactly what a server sends.
//! - [`contract`]: the adapter contract suite every adapter runs
//!   ([`adapter_contract!`]).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod contract;
mod proxy;
pub mod sio;
pub mod ws;

pub use proxy::{Direction, Fault, FaultProxy};
