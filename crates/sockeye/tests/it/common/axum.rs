//! Test harness: an axum app with the Socket.IO layer on 127.0.0.1:0 and a raw WebSocket
//! Socket.IO client that compares exact frames.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMsg;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous: the machine is shared and loaded.
pub const WAIT: Duration = Duration::from_secs(10);

/// Serves `app` on an ephemeral loopback port.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// A raw Socket.IO-over-WebSocket client.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// One received WebSocket frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

impl Client {
    /// Opens an Engine.IO session (reads the OPEN packet).
    pub async fn open(addr: SocketAddr) -> Client {
        Client::open_with(addr, "").await
    }

    /// Opens a session with extra query parameters (`&a=b`) and a cookie header.
    pub async fn open_with(addr: SocketAddr, query: &str) -> Client {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket{query}");
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("cookie", "session=abc; theme=dark".parse().unwrap());
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("websocket connect timed out")
            .expect("websocket connect failed");
        let mut client = Client { ws };
        let open = client.recv_text().await;
        assert!(open.starts_with("0{"), "expected OPEN, got {open:?}");
        client
    }

    /// The client side of the TCP connection (what the server sees as the peer address).
    pub fn local_addr(&self) -> SocketAddr {
        match self.ws.get_ref() {
            MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap(),
            _ => panic!("the test client only speaks plain TCP"),
        }
    }

    /// Opens a session and connects to `/` with `auth`; returns the CONNECT reply.
    pub async fn connect(addr: SocketAddr, auth: &str) -> (Client, String) {
        let mut client = Client::open(addr).await;
        client.send(&format!("40{auth}")).await;
        let reply = client.recv_text().await;
        (client, reply)
    }

    pub async fn send(&mut self, text: &str) {
        self.ws.send(WsMsg::text(text.to_owned())).await.unwrap();
    }

    pub async fn send_binary(&mut self, data: &[u8]) {
        self.ws.send(WsMsg::binary(data.to_vec())).await.unwrap();
    }

    /// The next Socket.IO frame (engine pings are answered and skipped).
    pub async fn recv(&mut self) -> Frame {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection closed")
                .expect("websocket error");
            match msg {
                WsMsg::Text(t) if t.as_str() == "2" => self.send("3").await,
                WsMsg::Text(t) => return Frame::Text(t.as_str().to_owned()),
                WsMsg::Binary(b) => return Frame::Binary(b.to_vec()),
                _ => {}
            }
        }
    }

    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Frame::Text(t) => t,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The JSON payload of the next text frame after the given packet prefix (`431`, `42`).
    pub async fn recv_json(&mut self, prefix: &str) -> serde_json::Value {
        let text = self.recv_text().await;
        let rest = text
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected a frame starting with {prefix:?}, got {text:?}"));
        serde_json::from_str(rest).unwrap()
    }

    /// Asserts that nothing arrives for a short while (used only to check that a handler
    /// that must not answer did not).
    pub async fn expect_silence(&mut self, for_: Duration) {
        if let Ok(Some(Ok(msg))) = tokio::time::timeout(for_, self.ws.next()).await {
            assert!(
                matches!(&msg, WsMsg::Text(t) if t.as_str() == "2"),
                "expected silence, got {msg:?}"
            );
        }
    }
}

/// A minimal HTTP/1.1 POST with a JSON body; returns (status, body).
/// One HTTP/1.1 request on its own connection (`connection: close`); returns the client's
/// local address, the status and the body.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (SocketAddr, u16, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: text/plain;charset=UTF-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw))
        .await
        .expect("HTTP response timed out")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (local, status, body.to_owned())
}

pub async fn post_json(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut out))
        .await
        .expect("HTTP response timed out")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}
