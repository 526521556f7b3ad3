//! One input for the Redis streams mode's decoders (`sockeye_fuzz::redis_streams`): a stream
//! entry, a pub/sub message or a stored session. The body lives in `crates/sockeye-fuzz`, so
//! that `tests/replay.rs` there replays this target's inputs on the stable toolchain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::redis_streams(data));
