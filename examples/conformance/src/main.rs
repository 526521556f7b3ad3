//! The server the official Socket.IO protocol test suite (socketio/socket.io-protocol,
//! `test-suite/`) expects, on sockeye: see `shared/reference/conformance-notes.md` §2.
//!
//! `conformance PORT` listens on `127.0.0.1:PORT` (0 picks a free port) and prints
//! `listening on 127.0.0.1:<port>` on stdout once it accepts connections. Logs go to stderr
//! (`RUST_LOG` filters them).

mod serve;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};
use sockeye::{Event, SocketIo, SocketRef};
use tokio::net::TcpListener;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let Some(port) = std::env::args().nth(1).and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: conformance PORT (a TCP port number; 0 picks a free one)");
        return ExitCode::from(2);
    };
    // One thread, like the Node reference server: the suite's "forcefully close the session"
    // sends a GET and a POST together and expects them served in arrival order, which the
    // multi-threaded scheduler's LIFO slot does not keep (docs/conformance.md).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot listen on {addr}: {e} (is the port free?)");
                return ExitCode::FAILURE;
            }
        };
        let bound = listener.local_addr().map_or(addr, |a| a);
        let io = build();
        println!("listening on {bound}");
        serve::serve(listener, io).await;
        ExitCode::SUCCESS
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
    let _ = io
        .ns("/", emit_auth)
        .on("message", |socket: SocketRef, event: Event| async move {
            if let Err(e) = socket.emit_args("message-back", event.args) {
                tracing::warn!(error = %e, "message-back not sent");
            }
        })
        .on(
            "message-with-ack",
            |_socket: SocketRef, event: Event| async move { event.args },
        );
    let _ = io.ns("/custom", emit_auth);
    io
}

/// Emits `auth` with the CONNECT payload (`{}` when there is none). The server holds it back
/// until the CONNECT reply has gone out.
async fn emit_auth(socket: SocketRef, auth: Option<Value>) {
    let payload = auth.unwrap_or_else(|| json!({}));
    if let Err(e) = socket.emit("auth", &payload) {
        tracing::warn!(error = %e, "auth event not sent");
    }
}
