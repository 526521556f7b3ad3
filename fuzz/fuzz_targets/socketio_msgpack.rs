//! One Socket.IO message for the msgpack parser (`sockeye_fuzz::socketio_msgpack`). The body lives in `crates/sockeye-fuzz`, so that
//! `tests/replay.rs` there replays this target's inputs on the stable toolchain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::socketio_msgpack(data));
