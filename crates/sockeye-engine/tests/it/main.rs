//! sockeye-engine's integration tests, in one test binary (one link for the whole suite): one
//! module per area, the test server in `common`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

/// The heap counted per thread, for `memory`.
#[global_allocator]
static ALLOC: sockeye_testkit::heap::Counting = sockeye_testkit::heap::Counting;

mod bad_input;
mod browser;
mod compose;
mod compression;
mod deflate;
#[cfg(feature = "eio3")]
mod eio3;
mod handshake;
mod http2;
mod interop;
mod max_payload;
mod memory;
mod options;
mod origins;
mod shutdown;
