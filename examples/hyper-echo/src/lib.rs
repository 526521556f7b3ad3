//! The hyper-echo example: sockeye on bare hyper 1 and tower, no axum. Every event is echoed back
//! to its sender (same name, same arguments, binary included) and its arguments are the ack.

use std::net::SocketAddr;

use hyper_util::rt::{TokioExecutor, TokioIo};
use sockeye::prelude::*;
use sockeye::{Args, SocketIoService};
use tower::ServiceExt as _;

/// Echoes any event: `on_any` handlers see the name with [`EventName`].
fn echo(socket: SocketRef, EventName(name): EventName, args: Args) -> Args {
    if let Err(e) = socket.emit_args(&name, args.clone()) {
        tracing::debug!(error = %e, event = %name, "echo not sent");
    }
    args
}

/// The server: a standalone tower service (404 outside `/socket.io/`).
pub fn service() -> SocketIoService {
    let (svc, io) = SocketIo::builder().build_svc();
    io.ns("/", || ()).on_any(echo);
    svc
}

/// Accepts connections forever. Each connection is served by hyper's auto (HTTP/1 + HTTP/2)
/// builder *with upgrades* (without them the WebSocket upgrade never completes), TCP_NODELAY
/// set, the peer address put in the request extensions for `RemoteAddr`, and connections
/// started in the order they were accepted.
pub async fn run(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let svc = service();
    loop {
        let (tcp, peer) = listener.accept().await?;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "TCP_NODELAY not set");
        }
        let svc = svc.clone();
        tokio::spawn(async move {
            let hyper_svc =
                hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert::<SocketAddr>(peer);
                    svc.clone().oneshot(req)
                });
            let served = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tcp), hyper_svc)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
        // On the multi-threaded runtime the task just spawned sits in this worker's LIFO slot,
        // and spawning the next connection's task would push it to the back of the queue: two
        // connections arriving together would start in reverse order. Yielding lets it run
        // first (see examples/serve and docs/conformance.md).
        tokio::task::yield_now().await;
    }
}
