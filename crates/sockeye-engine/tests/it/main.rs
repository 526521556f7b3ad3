//! sockeye-engine's integration tests, in one test binary (one link for the whole suite): one
//! module per area, the test server in `common`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

mod bad_input;
mod compose;
mod interop;
mod options;
mod origins;
mod shutdown;
