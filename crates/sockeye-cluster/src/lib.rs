//! The cluster protocol of `socket.io-adapter` 2.5, shared by sockeye's broker adapters
//! (`sockeye-redis`, classic and streams, and `sockeye-postgres`): the checked wire types and
//! their decoding and encoding ([`wire`]), and the bookkeeping of the requests a node sends
//! and answers ([`requests`]). No broker I/O happens here; each adapter crate puts
//! these messages on its broker in its own framing.
//!
//! An implementation crate of those adapters, not an API of its own: its items change with
//! them.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod requests;
pub mod wire;
