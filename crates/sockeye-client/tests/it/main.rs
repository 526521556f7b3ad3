//! sockeye-client's integration tests, in one test binary (one link for the whole suite): one
//! module per area (the msgpack and TLS ones behind their features), the shared harness in
//! `common`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

mod hostile;

#[cfg(feature = "msgpack")]
mod msgpack;
mod networks;
mod node_server;
mod own_server;
mod recovery;
#[cfg(feature = "tls")]
mod tls;
