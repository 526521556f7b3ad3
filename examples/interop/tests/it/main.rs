//! The interop app's tests, in one test binary: the official clients against the interop app
//! (`interop`), in a mixed cluster with the Node server (`cluster`), and against its recovery
//! binary (`recovery`).

#[path = "../../../../tests/interop/harness.rs"]
mod harness;

mod cluster;
mod interop;
mod recovery;
