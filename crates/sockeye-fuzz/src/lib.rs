//! The bodies of sockeye's fuzz targets.
//!
//! Each public function takes one fuzzer input and panics when it finds a defect (a panic in
//! the code under test, a round trip that changes the data, a request left unanswered). The
//! cargo-fuzz binaries in `fuzz/fuzz_targets/` call them, and so does `tests/replay.rs`, which
//! replays every committed input on the stable toolchain: the hand-written seeds
//! (`fuzz/seeds/TARGET`), the minimised corpora of the long runs (`fuzz/corpus-min/TARGET`)
//! and every past finding (`fuzz/regressions/TARGET`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc
)]

mod deflate;
mod eio3;
mod engine;
mod requests;
mod socketio;

pub use deflate::ws_inflate;
pub use eio3::{eio3_binary, eio3_payload};
pub use engine::{engine_packet, engine_payload};
pub use requests::{engine_requests, sockeye_requests};
pub use socketio::{socketio_json, socketio_msgpack};

/// One Redis broker message for the Redis adapter's decoders: the first byte picks the
/// channel it arrived on (broadcast, room broadcast, request, response, or the msgpack to JSON
/// conversion), the rest is the payload. Nothing may panic.
pub fn redis_wire(data: &[u8]) {
    use sockeye_redis::__fuzz;
    let Some((&channel, payload)) = data.split_first() else {
        return;
    };
    match channel % 5 {
        0 => {
            __fuzz::broadcast(payload, None);
        }
        1 => {
            __fuzz::broadcast(payload, Some("room"));
        }
        2 => {
            __fuzz::request(payload);
        }
        3 => {
            __fuzz::response(payload);
        }
        _ => __fuzz::to_json(payload),
    }
}

/// One message of python-socketio's bus (`sockeye_pybus`), as read from the channel: the
/// decoder must refuse it or accept it, never panic, and what it accepts must encode again
/// and read back the same.
pub fn pybus_wire(data: &[u8]) {
    sockeye_pybus::__fuzz::message(data);
}

/// One input for the Redis streams mode's decoders: the first byte picks what it is (a stream
/// entry, fields separated by NUL bytes; a pub/sub message; a stored session blob), the rest
/// is the bytes Redis would hand over. Nothing may panic; what is accepted round-trips.
pub fn redis_streams(data: &[u8]) {
    use sockeye_redis::__fuzz;
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            __fuzz::streams_entry(payload);
        }
        1 => {
            __fuzz::streams_pubsub(payload);
        }
        _ => {
            __fuzz::streams_session(payload);
        }
    }
}

/// One notification or attachment row of the PostgreSQL adapter (`sockeye_postgres`): the
/// first byte picks which (even: notification text, odd: attachment bytes); the decoder must
/// refuse it or accept it, never panic, and an accepted notification round-trips.
pub fn postgres_wire(data: &[u8]) {
    sockeye_postgres::__fuzz::message(data);
}

/// One input for the NATS adapter's decoders: the first byte picks what it is (a message from
/// a subject, or a stored session from the session stream), the rest is the payload NATS would
/// hand over. Nothing may panic.
pub fn nats_wire(data: &[u8]) {
    use sockeye_nats::__fuzz;
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    if kind % 2 == 0 {
        __fuzz::message(payload);
    } else {
        __fuzz::session(payload);
    }
}

/// The body of a fuzz target: one input, a panic on a defect.
pub type Target = fn(&[u8]);

/// Every target by name, for the replay test and the fuzz binaries.
pub const TARGETS: &[(&str, Target)] = &[
    ("engine_packet", engine_packet),
    ("engine_payload", engine_payload),
    ("eio3_payload", eio3_payload),
    ("eio3_binary", eio3_binary),
    ("ws_inflate", ws_inflate),
    ("socketio_json", socketio_json),
    ("socketio_msgpack", socketio_msgpack),
    ("engine_requests", engine_requests),
    ("sockeye_requests", sockeye_requests),
    ("redis_wire", redis_wire),
    ("pybus_wire", pybus_wire),
    ("redis_streams", redis_streams),
    ("postgres_wire", postgres_wire),
    ("nats_wire", nats_wire),
];
