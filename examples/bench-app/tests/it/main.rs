//! The bench app's integration tests, in one test binary (one link for the whole suite): one
//! module per area; `harness` is the interop tests' shared process harness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../../tests/interop/harness.rs"]
mod harness;

mod bench_app;
mod faults_cluster;
mod hot_room;
