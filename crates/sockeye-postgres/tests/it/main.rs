//! Tests of the PostgreSQL adapter against the PostgreSQL at 127.0.0.1:5432 (trust auth,
//! database `test`), and, for the mixed cluster, the official Node packages in `tests/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod adapter_contract;
mod common;
mod emitter;
mod faults;
mod mixed;
mod pipeline;
mod restart;
mod slow;
mod throughput;
