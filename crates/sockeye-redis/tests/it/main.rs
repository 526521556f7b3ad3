//! sockeye-redis's integration tests, in one test binary (one link for the whole suite): one
//! module per area, the cluster harness in `common`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod adapter_contract;
mod admin;
mod cluster;
mod emitter;
mod faults;
mod faults_proxy;
#[cfg(feature = "metrics")]
mod metrics;
mod sentinel;
mod server_events;
mod sharded_cluster;
mod sharded_contract;
mod streams_cluster;
mod streams_contract;
mod streams_cost;
mod streams_faults;
mod streams_kill;
mod streams_kill_mixed;
mod streams_server_side;
mod throughput;
#[cfg(feature = "tls")]
mod tls;
