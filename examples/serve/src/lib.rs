//! What the example servers (`interop`, `conformance`, `engine-conformance`, `bench-app`) share:
//! the accept loop ([`accept_loop`]: one task per TCP connection, `TCP_NODELAY` set, accept
//! errors backed off, and every connection's task polled once before the next connection is
//! accepted), serving a tower service over HTTP on it ([`serve_http`]), the `NAME PORT`
//! command-line entry point ([`main_on_port`]) and its parts for a server with its own `main`
//! ([`init_logging`], [`Runtime::build`], [`listen_on_loopback`]).
//!
//! Why the last point: on tokio's multi-threaded runtime a task spawned from a worker goes to
//! that worker's LIFO slot, and a second spawn pushes the first one out to the back of the run
//! queue. When two connections are waiting in the backlog, the loop accepts both before it
//! yields, and the connection accepted second is served first. A client that opens two
//! connections at once and relies on the order (the official Engine.IO suite's "forcefully
//! closes the session": a long-poll `GET`, then a `POST` with `1`) then sees the `POST` close the
//! session before the `GET` exists. Yielding after each spawn lets the worker run the task in its
//! LIFO slot, the connection just accepted, before the loop takes the next one. The cost is one
//! extra scheduling round per accepted connection.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};

/// How long the loop waits after a failed `accept` (out of file descriptors and the like)
/// before trying again, instead of spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections on `listener` until the returned future is dropped, and runs
/// `connection(tcp, peer)` in its own task for each one, in accept order (see the crate docs).
///
/// `TCP_NODELAY` is set on every connection: small request/response exchanges (polling, acks)
/// must not wait for delayed ACKs.
pub async fn accept_loop<F, Fut>(listener: TcpListener, mut connection: F)
where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        tokio::spawn(connection(tcp, peer));
        // The task just spawned sits in this worker's LIFO slot: let it run before the next
        // accept can push it out of the slot (see the crate docs).
        tokio::task::yield_now().await;
    }
}

/// Serves `service` on `listener` until the returned future is dropped: HTTP/1.1 and HTTP/2
/// with upgrades (WebSocket), one clone of the service per connection, connections started in
/// accept order ([`accept_loop`]).
pub async fn serve_http<S, B>(listener: TcpListener, service: S)
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    accept_loop(listener, move |tcp, peer| {
        let service = TowerToHyperService::new(service.clone());
        async move {
            if let Err(e) = Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
    })
    .await;
}

/// The runtime an example server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// tokio's multi-threaded runtime (one worker per CPU of the affinity mask).
    MultiThread,
    /// One thread, like the Node reference server: connections and their reads are served in
    /// the order the kernel reports them (what the official suites' timing tests assume).
    CurrentThread,
}

impl Runtime {
    /// Builds the runtime with I/O and timers enabled.
    pub fn build(self) -> std::io::Result<tokio::runtime::Runtime> {
        match self {
            Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build(),
            Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `warn`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Binds `127.0.0.1:port` (0 picks a free port); returns the listener and the address it got,
/// or a message saying what failed.
pub async fn listen_on_loopback(port: u16) -> Result<(TcpListener, SocketAddr), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e} (is the port free?)"))?;
    let bound = listener.local_addr().unwrap_or(addr);
    Ok((listener, bound))
}

/// The entry point of a `NAME PORT` example server: logs to stderr (`RUST_LOG`, default `warn`),
/// reads the port from the first argument (0 picks a free one), binds `127.0.0.1:PORT`, builds
/// the service with `make` inside the runtime, prints `listening on 127.0.0.1:<port>` on stdout
/// (tests and scripts wait for that line), then serves it with [`serve_http`] until the process
/// ends.
pub fn main_on_port<M, S, B>(name: &str, runtime: Runtime, make: M) -> ExitCode
where
    M: FnOnce() -> S,
    S: tower_service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    init_logging();
    let Some(port) = std::env::args().nth(1).and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: {name} PORT (a TCP port number; 0 picks a free one)");
        return ExitCode::from(2);
    };
    let rt = match runtime.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let (listener, bound) = match listen_on_loopback(port).await {
            Ok(bound) => bound,
            Err(e) => {
                eprintln!("{name}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let service = make();
        println!("listening on {bound}");
        serve_http(listener, service).await;
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Pass: 8 connections already waiting in the backlog when the loop starts are started in
    /// the order they connected, in each of 20 rounds. Without the yield, the first of each
    /// batch is pushed out of the LIFO slot and starts after the others.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_waiting_together_start_in_accept_order() {
        let mut out_of_order = Vec::new();
        for _ in 0..20 {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            // Connected (handshake done by the kernel, queued in the backlog) before the loop
            // runs: the loop finds all 8 ready at once.
            let mut clients = Vec::new();
            for _ in 0..8 {
                clients.push(TcpStream::connect(addr).await.unwrap());
            }
            let connected: Vec<u16> = clients
                .iter()
                .map(|c| c.local_addr().unwrap().port())
                .collect();
            let started: Arc<Mutex<Vec<u16>>> = Arc::default();
            let log = started.clone();
            let server = tokio::spawn(accept_loop(listener, move |_tcp, peer| {
                let log = log.clone();
                async move { log.lock().unwrap().push(peer.port()) }
            }));
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while started.lock().unwrap().len() < clients.len() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "only {} of 8 connections started",
                    started.lock().unwrap().len()
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            server.abort();
            let order = started.lock().unwrap().clone();
            if order != connected {
                out_of_order.push(order);
            }
        }
        assert!(
            out_of_order.is_empty(),
            "{} of 20 rounds started out of accept order: {out_of_order:?}",
            out_of_order.len()
        );
    }
}
