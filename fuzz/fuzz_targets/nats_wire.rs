//! One input for the NATS adapter's decoders (`sockeye_fuzz::nats_wire`): a message from a
//! subject or a stored session. The body lives in `crates/sockeye-fuzz`, so that
//! `tests/replay.rs` there replays this target's inputs on the stable toolchain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::nats_wire(data));
