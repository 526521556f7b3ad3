//! One message of python-socketio's bus for sockeye-pybus's decoder (`sockeye_fuzz::pybus_wire`).
//! The body lives in `crates/sockeye-fuzz`, so that `tests/replay.rs` there replays this
//! target's inputs on the stable toolchain.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::pybus_wire(data));
