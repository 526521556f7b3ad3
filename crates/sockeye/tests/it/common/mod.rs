//! Test harness: the server on an ephemeral loopback port, raw WebSocket and polling clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sockeye::SocketIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMsg;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tower::ServiceExt as _;

/// Generous: the machine is shared and loaded.
pub const WAIT: Duration = Duration::from_secs(10);

/// A builder with a ping interval long enough that no PING interleaves with test frames.
pub fn builder() -> sockeye::SocketIoBuilder {
    SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
}

/// Serves `io` on 127.0.0.1:0; returns the address.
pub async fn serve(io: &SocketIo) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = io.service();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                return;
            };
            let _ = tcp.set_nodelay(true);
            let svc = svc.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |mut req: http::Request<hyper::body::Incoming>| {
                        req.extensions_mut()
                            .insert(sockeye_engine::RemoteAddr(peer));
                        svc.clone().oneshot(req)
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

/// A raw WebSocket Engine.IO client.
pub struct Ws {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub handshake: serde_json::Value,
}

/// A frame as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum F {
    T(String),
    B(Vec<u8>),
    Closed,
}

impl Ws {
    /// Opens a WebSocket session and reads the `0{...}` handshake.
    pub async fn open(addr: SocketAddr) -> Ws {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("websocket connect timed out")
            .expect("websocket connect failed");
        let mut me = Ws {
            ws,
            handshake: serde_json::Value::Null,
        };
        match me.recv().await {
            F::T(t) if t.starts_with('0') => {
                me.handshake = serde_json::from_str(&t[1..]).unwrap();
            }
            other => panic!("expected the engine handshake, got {other:?}"),
        }
        me
    }

    /// Opens a session and connects namespace `/`; returns the socket id.
    pub async fn open_connected(addr: SocketAddr) -> (Ws, String) {
        let mut ws = Ws::open(addr).await;
        ws.send("40").await;
        let sid = ws.expect_connect("/").await;
        (ws, sid)
    }

    pub async fn send(&mut self, text: &str) {
        self.ws.send(WsMsg::text(text.to_owned())).await.unwrap();
    }

    pub async fn send_bin(&mut self, data: &[u8]) {
        self.ws.send(WsMsg::binary(data.to_vec())).await.unwrap();
    }

    /// The next data frame (pings answered and skipped), or `Closed`.
    pub async fn recv(&mut self) -> F {
        self.recv_within(WAIT).await.expect("no frame in time")
    }

    /// Like `recv`, `None` if nothing arrives within `d`.
    pub async fn recv_within(&mut self, d: Duration) -> Option<F> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match next {
                None | Some(Err(_)) => return Some(F::Closed),
                Some(Ok(WsMsg::Text(t))) => {
                    let t = t.to_string();
                    if t == "2" {
                        let _ = self.ws.send(WsMsg::text("3")).await;
                        continue;
                    }
                    if t == "1" {
                        return Some(F::Closed);
                    }
                    return Some(F::T(t));
                }
                Some(Ok(WsMsg::Binary(b))) => return Some(F::B(b.to_vec())),
                Some(Ok(WsMsg::Close(_))) => return Some(F::Closed),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next frame, which must be text.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            F::T(t) => t,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next text frame, which must be `expected`.
    pub async fn expect(&mut self, expected: &str) {
        assert_eq!(self.recv().await, F::T(expected.to_owned()));
    }

    /// Reads a CONNECT reply for `ns` and returns its sid.
    pub async fn expect_connect(&mut self, ns: &str) -> String {
        let prefix = if ns == "/" {
            "40".to_owned()
        } else {
            format!("40{ns},")
        };
        match self.recv().await {
            F::T(t) if t.starts_with(&prefix) => {
                let v: serde_json::Value = serde_json::from_str(&t[prefix.len()..]).unwrap();
                let obj = v.as_object().unwrap();
                assert_eq!(obj.len(), 1, "CONNECT reply has exactly the key sid: {t}");
                obj["sid"].as_str().unwrap().to_owned()
            }
            other => panic!("expected CONNECT for {ns}, got {other:?}"),
        }
    }

    /// Asserts the server closes the connection (within the wait).
    pub async fn expect_closed(&mut self) {
        loop {
            match self.recv().await {
                F::Closed => return,
                F::T(t) if t.starts_with("40") || t.starts_with("42") => continue,
                other => panic!("expected the connection to close, got {other:?}"),
            }
        }
    }

    /// Asserts nothing arrives within `d`.
    pub async fn expect_silence(&mut self, d: Duration) {
        if let Some(f) = self.recv_within(d).await {
            panic!("expected no frame, got {f:?}");
        }
    }
}

/// Raw long-polling requests.
pub struct Polling {
    pub http: reqwest::Client,
    pub base: String,
    pub sid: String,
}

impl Polling {
    pub async fn open(addr: SocketAddr) -> Polling {
        // When a test run also builds sockeye-client with `tls`, reqwest is unified to
        // `rustls-no-provider` and panics without a process-wide provider: install ring (the
        // workspace's one) first; a second install in the same process is a no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let base = format!("http://{addr}/socket.io/?EIO=4&transport=polling");
        let body = tokio::time::timeout(WAIT, http.get(&base).send())
            .await
            .unwrap()
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.starts_with('0'), "handshake: {body}");
        let v: serde_json::Value = serde_json::from_str(&body[1..]).unwrap();
        let sid = v["sid"].as_str().unwrap().to_owned();
        Polling { http, base, sid }
    }

    fn url(&self) -> String {
        format!("{}&sid={}", self.base, self.sid)
    }

    pub async fn post(&self, body: &str) -> u16 {
        tokio::time::timeout(
            WAIT,
            self.http.post(self.url()).body(body.to_owned()).send(),
        )
        .await
        .unwrap()
        .unwrap()
        .status()
        .as_u16()
    }

    /// One GET: status and body.
    pub async fn get(&self) -> (u16, String) {
        let resp = tokio::time::timeout(WAIT, self.http.get(self.url()).send())
            .await
            .unwrap()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }
}

/// Waits until `f` holds, polling every 10 ms, at most `WAIT`.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The ack id of a server EVENT frame on `/` (`42<id>[...]`).
pub fn ack_id(frame: &str) -> String {
    frame
        .strip_prefix("42")
        .unwrap_or_else(|| panic!("not an event on /: {frame}"))
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

/// Every disconnect reason of a namespace, by socket id: the hostile-input tests assert the
/// exact reason, since a panic on the data path would also close the connection (as
/// `transport error`, the engine's `HandlerPanic`).
#[derive(Clone, Default)]
pub struct Reasons(
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, sockeye::DisconnectReason>>>,
);

impl Reasons {
    /// Records the reasons of `ns`'s disconnects.
    pub fn record(&self, ns: sockeye::NsHandle) -> sockeye::NsHandle {
        let me = self.clone();
        ns.on_disconnect(
            move |s: sockeye::SocketRef, reason: sockeye::DisconnectReason| {
                me.0.lock()
                    .unwrap()
                    .insert(s.id().as_str().to_owned(), reason);
                async {}
            },
        )
    }

    /// The reason socket `id` left, waiting for it at most `WAIT`.
    pub async fn of(&self, id: &str) -> sockeye::DisconnectReason {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(r) = self.0.lock().unwrap().get(id) {
                return *r;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "socket {id} not disconnected within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The binary's counting global allocator (per-thread live heap), for the memory figures.
pub mod heap;

/// The harness of the axum-served tests (`handlers`): an axum app on loopback and a raw client
/// comparing exact frames.
#[cfg(feature = "axum")]
pub mod axum;
