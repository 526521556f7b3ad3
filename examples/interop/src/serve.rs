//! Accept loop: HTTP/1.1 and HTTP/2 with upgrades on a TCP listener, one task per connection,
//! connections started in accept order (`example_serve::accept_loop`).

use std::net::SocketAddr;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use sockeye::SocketIo;
use tokio::net::TcpListener;

/// Serves `io` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, io: SocketIo) {
    example_serve::accept_loop(listener, move |tcp, peer| {
        connection(tcp, peer, TowerToHyperService::new(io.service()))
    })
    .await;
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    service: TowerToHyperService<sockeye::SocketIoService>,
) {
    if let Err(e) = Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(tcp), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
