//! A minimal Socket.IO v5 client over WebSocket (Engine.IO v4): the handshake on `/`, pings
//! answered, text packets handed over as they come. Only what the bench needs.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

/// How long a handshake may take before the connection counts as failed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// TCP connect failed (server not listening, out of file descriptors).
    #[error(
        "TCP connect to 127.0.0.1:{port} failed: {source}; is the server up, and `ulimit -n` high enough?"
    )]
    Tcp {
        /// The server's port.
        port: u16,
        /// The OS error.
        source: std::io::Error,
    },
    /// The WebSocket layer failed.
    #[error("WebSocket error: {0}")]
    Ws(#[from] tungstenite::Error),
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// The server did not follow the handshake.
    #[error(
        "unexpected handshake packet {0:?} (wanted Engine.IO OPEN then Socket.IO CONNECT on `/`)"
    )]
    Handshake(String),
    /// The handshake took too long.
    #[error("no Socket.IO CONNECT within {HANDSHAKE_TIMEOUT:?}")]
    Timeout,
}

/// One Socket.IO client connected to `/`.
pub struct Conn {
    ws: WebSocketStream<TcpStream>,
}

impl Conn {
    /// Opens a WebSocket session at `127.0.0.1:port` and connects to `/`.
    pub async fn connect(port: u16) -> Result<Conn, ConnError> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, Conn::handshake(port))
            .await
            .map_err(|_| ConnError::Timeout)?
    }

    async fn handshake(port: u16) -> Result<Conn, ConnError> {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|source| ConnError::Tcp { port, source })?;
        // Small frames both ways: Nagle would add latency to every one.
        let _ = tcp.set_nodelay(true);
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::client_async(url, tcp).await?;
        let mut conn = Conn { ws };
        let open = conn.next_packet().await?;
        if !open.starts_with('0') {
            return Err(ConnError::Handshake(open.to_string()));
        }
        conn.send("40").await?;
        let connect = conn.next_packet().await?;
        if !connect.starts_with("40") {
            return Err(ConnError::Handshake(connect.to_string()));
        }
        Ok(conn)
    }

    /// The next text packet other than a ping (pings are answered here).
    pub async fn next_packet(&mut self) -> Result<Utf8Bytes, ConnError> {
        loop {
            match self.ws.next().await {
                None => return Err(ConnError::Closed),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(text))) => {
                    if text.as_str() == "2" {
                        self.send("3").await?;
                    } else if text.as_str() == "1" {
                        return Err(ConnError::Closed);
                    } else {
                        return Ok(text);
                    }
                }
                Some(Ok(Message::Close(_))) => return Err(ConnError::Closed),
                // Binary frames (attachments) and WebSocket pings: tungstenite answers the
                // latter; the bench sends no binary.
                Some(Ok(_)) => {}
            }
        }
    }

    /// Sends one text packet.
    pub async fn send(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), ConnError> {
        self.ws.send(Message::Text(text.into())).await?;
        Ok(())
    }

    /// Closes the session (best effort).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
