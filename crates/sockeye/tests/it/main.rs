//! sockeye's integration tests, in one test binary (one link for the whole suite): one module
//! per area, the shared harness in `common`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod ack_rules;
mod adapter_contract;
mod adapter_seam;
#[cfg(feature = "admin")]
mod admin;
mod bad_input;
mod bench;
mod compat;
mod extractors;
mod faults_advisories;
mod faults_cleanup;
mod faults_input;
mod faults_network;
mod features;
#[cfg(feature = "axum")]
mod handlers;
#[cfg(feature = "eio3")]
mod legacy;
mod lifecycle;
mod memory;
#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "msgpack")]
mod msgpack;
mod recovery;
mod room_events;
mod rooms;
#[cfg(feature = "metrics")]
mod spans;
mod ui;
mod wire;
