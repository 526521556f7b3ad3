//! An Engine.IO v3 XHR2 binary payload and binary frame (`sockeye_fuzz::eio3_binary`). The body lives in `crates/sockeye-fuzz`, so that
//! `tests/replay.rs` there replays this target's inputs on the stable toolchain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::eio3_binary(data));
