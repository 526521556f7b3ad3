//! One Engine.IO v4 packet (`sockeye_fuzz::engine_packet`). The body lives in `crates/sockeye-fuzz`, so that
//! `tests/replay.rs` there replays this target's inputs on the stable toolchain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::engine_packet(data));
