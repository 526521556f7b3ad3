//! sockeye-testkit's integration tests, in one test binary: one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod proxy;
