//! The interop app's tests, in one test binary: the official clients against the interop app
//! (`interop`) and against its recovery binary (`recovery`).

#[path = "../../../../tests/interop/harness.rs"]
mod harness;

mod interop;
mod recovery;
