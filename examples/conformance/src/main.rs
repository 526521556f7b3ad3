//! The server the official Socket.IO protocol test suite (socketio/socket.io-protocol,
//! `test-suite/`) expects, on sockeye: see `shared/reference/conformance-notes.md` §2.
//!
//! `conformance PORT` listens on `127.0.0.1:PORT` (0 picks a free port) and prints
//! `listening on 127.0.0.1:<port>` on stdout once it accepts connections. Logs go to stderr
//! (`RUST_LOG` filters them).

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};
use sockeye::Args;
use sockeye::prelude::*;

fn main() -> ExitCode {
    // One thread, like the Node reference server: the suite's "forcefully close the session"
    // sends a GET and a POST together and expects them served in arrival order, which the
    // multi-threaded scheduler's LIFO slot does not keep (docs/conformance.md).
    example_serve::main_on_port("conformance", example_serve::Runtime::CurrentThread, || {
        build().service()
    })
}

/// The suite's configuration: fast heartbeat, 1 s connect timeout, `/` and `/custom`.
fn build() -> SocketIo {
    let io = SocketIo::builder()
        .path("/socket.io/")
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1_000_000)
        .connect_timeout(Duration::from_millis(1000))
        .build();
    io.ns("/", emit_auth)
        .on("message", message)
        .on("message-with-ack", message_with_ack);
    io.ns("/custom", emit_auth);
    io
}

/// Emits `message-back` with the received arguments.
async fn message(socket: SocketRef, args: Args) {
    if let Err(e) = socket.emit_args("message-back", args) {
        tracing::warn!(error = %e, "message-back not sent");
    }
}

/// Acknowledges with the received arguments.
async fn message_with_ack(args: Args) -> Args {
    args
}

/// Emits `auth` with the CONNECT payload (`{}` when there is none). The server holds it back
/// until the CONNECT reply has gone out.
async fn emit_auth(socket: SocketRef, auth: Option<Auth<Value>>) {
    let payload = auth.map_or_else(|| json!({}), |Auth(auth)| auth);
    if let Err(e) = socket.emit("auth", &payload) {
        tracing::warn!(error = %e, "auth event not sent");
    }
}
