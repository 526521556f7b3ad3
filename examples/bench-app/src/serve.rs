//! Accept loop: HTTP/1.1 with upgrades, one task per connection, connections started in accept
//! order (`example_serve::accept_loop`).

use std::net::SocketAddr;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use sockeye::{SocketIo, SocketIoService};
use tokio::net::{TcpListener, TcpStream};

/// Serves `io` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, io: SocketIo) {
    example_serve::accept_loop(listener, move |tcp, peer| {
        connection(tcp, peer, TowerToHyperService::new(io.service()))
    })
    .await;
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    service: TowerToHyperService<SocketIoService>,
) {
    // HTTP/1.1 only: Engine.IO clients never speak HTTP/2 in the clear, and skipping the
    // protocol sniffing of the auto builder saves work on every polling request.
    if let Err(e) = http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades()
        .await
    {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
