//! One Engine.IO v4 polling payload (`sockeye_fuzz::engine_payload`). The body lives in `crates/sockeye-fuzz`, so that
//! `tests/replay.rs` there replays this target's inputs on the stable toolchain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::engine_payload(data));
