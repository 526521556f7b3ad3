//! Wire formats of Engine.IO v4 and Socket.IO v5, with no I/O.
//!
//! This crate is shared by the sockeye server, client and adapters. It only turns bytes into
//! packets and packets into bytes; it never blocks, spawns or allocates without a bound that the
//! caller controls.
//!
//! - [`engine`]: Engine.IO v4 packets, the long-polling payload and the handshake.
//! - [`socketio`]: Socket.IO v5 packets and binary attachments.
//! - `deflate` (feature `deflate`): WebSocket permessage-deflate without I/O.
//! - `eio3` (feature `eio3`): the Engine.IO v3 payloads, packets and JSONP of legacy clients.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

#[cfg(feature = "deflate")]
pub mod deflate;
#[cfg(feature = "eio3")]
pub mod eio3;
pub mod engine;
pub mod socketio;
