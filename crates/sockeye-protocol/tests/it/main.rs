//! sockeye-protocol's integration tests, in one test binary (one link for the whole suite):
//! one module per area; those that exercise the msgpack parser too need the `msgpack` feature.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(feature = "msgpack")]
mod args;
#[cfg(feature = "msgpack")]
mod bad_input;
#[cfg(feature = "msgpack")]
mod cross_impl;
mod golden;
#[cfg(feature = "msgpack")]
mod roundtrip;
