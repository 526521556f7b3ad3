//! Accept loop: HTTP/1.1 with upgrades on a TCP listener, one task per connection.

use std::net::SocketAddr;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use sockeye::SocketIo;
use tokio::net::TcpListener;

/// Serves `io` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, io: SocketIo) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small request/response exchanges must not wait for delayed ACKs.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let service = TowerToHyperService::new(io.service());
        tokio::spawn(connection(tcp, peer, service));
    }
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
