//! A bare Engine.IO echo server configured as the official Engine.IO test suite expects:
//! path `/engine.io/`, ping interval 300 ms, ping timeout 200 ms, max payload 1 000 000, and
//! every message echoed back with its type (text as text, binary as binary).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use sockeye_engine::{
    CloseReason, Engine, EngineConfig, EngineHandler, Frame, Message, RemoteAddr, Session,
};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::cors::CorsLayer;

/// Echoes every message back on the same session with the same type.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl EngineHandler for Echo {
    type Data = ();

    fn on_open(&self, session: &Arc<Session<()>>) {
        tracing::debug!(sid = session.sid(), "open");
    }

    async fn on_message(&self, session: &Arc<Session<()>>, message: Message) {
        let frame = match message {
            Message::Text(text) => {
                let mut packet = Vec::with_capacity(text.len() + 1);
                packet.push(b'4');
                packet.extend_from_slice(&text);
                Frame::Text(packet.into())
            }
            Message::Binary(data) => Frame::Binary(data),
        };
        if let Err(err) = session.send(frame) {
            tracing::debug!(%err, "echo not sent");
        }
    }

    fn on_close(&self, session: &Arc<Session<()>>, reason: CloseReason) {
        tracing::debug!(sid = session.sid(), %reason, "close");
    }
}

/// The suite's configuration.
pub fn config() -> EngineConfig {
    EngineConfig::builder()
        .path("/engine.io/")
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1_000_000)
        .build()
}

/// Serves `engine` on `listener` until the task is dropped: HTTP/1 and HTTP/2 with upgrades,
/// TCP_NODELAY on every connection, CORS allow-all (the suite also runs in a browser), and
/// connections started in accept order (the suite's "forcefully closes the session" sends a
/// `GET` and a `POST` at once and needs the `GET` served first; see `example_serve`).
pub async fn serve(listener: TcpListener, engine: Engine<Echo>) {
    example_serve::accept_loop(listener, move |tcp, peer| {
        let service = ServiceBuilder::new()
            .layer(CorsLayer::very_permissive())
            .map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(RemoteAddr(peer));
                req
            })
            .service(engine.service());
        async move {
            let result = Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(
                    TokioIo::new(tcp),
                    TowerToHyperService::new(service),
                )
                .await;
            if let Err(err) = result {
                tracing::debug!(%err, "connection ended with an error");
            }
        }
    })
    .await;
}

/// Binds `127.0.0.1:port` (0 for an ephemeral port) and serves the echo engine in a task.
pub async fn spawn(port: u16) -> std::io::Result<(SocketAddr, Engine<Echo>)> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let engine = Engine::new(Echo, config());
    tokio::spawn(serve(listener, engine.clone()));
    Ok((addr, engine))
}
