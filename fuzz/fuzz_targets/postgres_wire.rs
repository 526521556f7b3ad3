//! One notification or attachment row for sockeye-postgres's decoders
//! (`sockeye_fuzz::postgres_wire`). The body lives in `crates/sockeye-fuzz`, so that
//! `tests/replay.rs` there replays this target's inputs on the stable toolchain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::postgres_wire(data));
