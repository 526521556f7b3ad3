//! A raw Socket.IO-over-WebSocket test client, shared by the example crates' tests through
//! `#[path]`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous: the machine is shared and loaded.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Sio {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Sio {
    /// Opens an Engine.IO session over WebSocket and sends CONNECT with `auth` (JSON or "").
    /// Returns the client and the server's reply to CONNECT.
    pub async fn connect(addr: SocketAddr, auth: &str) -> (Sio, String) {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("websocket connect timed out")
            .expect("websocket connect failed");
        let mut sio = Sio { ws };
        let open = sio.recv().await;
        assert!(open.starts_with("0{"), "expected OPEN, got {open}");
        sio.send(&format!("40{auth}")).await;
        let reply = sio.recv().await;
        (sio, reply)
    }

    pub async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    /// The next text frame that is not an engine PING (pings are answered).
    pub async fn recv(&mut self) -> String {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection closed")
                .expect("websocket error");
            match msg {
                Message::Text(t) if t.as_str() == "2" => self.send("3").await,
                Message::Text(t) => return t.as_str().to_owned(),
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// The next event, as `[name, args...]`.
    pub async fn recv_event(&mut self) -> serde_json::Value {
        let text = self.recv().await;
        let json = text
            .strip_prefix("42")
            .unwrap_or_else(|| panic!("expected an event, got {text}"));
        serde_json::from_str(json).unwrap()
    }

    /// Checks that nothing but pings arrives for `for_`.
    pub async fn expect_silence(&mut self, for_: Duration) {
        if let Ok(Some(Ok(msg))) = tokio::time::timeout(for_, self.ws.next()).await {
            assert!(
                matches!(&msg, Message::Text(t) if t.as_str() == "2"),
                "expected silence, got {msg:?}"
            );
        }
    }
}
