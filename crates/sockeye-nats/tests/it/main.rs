//! sockeye-nats's integration tests against the NATS server at 127.0.0.1:4222, in one test
//! binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod contract_core;
mod contract_jetstream;
mod faults;
mod restart;
