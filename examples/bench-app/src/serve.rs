//! Accept loop: HTTP/1.1 with upgrades, one task per connection.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use sockeye::{SocketIo, SocketIoService};
use tokio::net::{TcpListener, TcpStream};

/// Serves `io` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, io: SocketIo) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small request/response exchanges must not wait for delayed ACKs.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        tokio::spawn(connection(
            tcp,
            peer,
            TowerToHyperService::new(io.service()),
        ));
    }
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
