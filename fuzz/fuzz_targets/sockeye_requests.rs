//! The Socket.IO server's handling of polling requests (`sockeye_fuzz::sockeye_requests`). The body lives in `crates/sockeye-fuzz`, so that
//! `tests/replay.rs` there replays this target's inputs on the stable toolchain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::sockeye_requests(data));
