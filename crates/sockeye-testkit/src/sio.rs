//! A minimal Socket.IO v5 client over one WebSocket (JSON parser, text packets only), for
//! tests that need to see exactly what a server sends: packets, acks, offsets, refusals.
//!
//! Every wait is bounded by the caller's timeout; pings are answered while waiting.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the server sent on the client's namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// An EVENT: its name, its arguments, and the ack id when the server asks for an ack.
    Event {
        /// The event name.
        name: String,
        /// The arguments after the name.
        args: Vec<Value>,
        /// The ack id the server waits for, if any.
        ack: Option<u64>,
    },
    /// An ACK of one of the client's emits.
    Ack {
        /// The ack id.
        id: u64,
        /// Its arguments.
        args: Vec<Value>,
    },
    /// The server disconnected the socket from the namespace.
    Disconnect,
    /// The connection closed.
    Closed,
}

/// How a CONNECT went.
#[derive(Debug)]
pub enum Connect {
    /// Accepted.
    Ok(Box<SioClient>),
    /// Refused with this CONNECT_ERROR payload.
    Refused(Value),
}

/// A Socket.IO client connected to one namespace over WebSocket.
pub struct SioClient {
    ws: Stream,
    ns: String,
    /// The socket id of the CONNECT reply.
    pub sid: String,
    /// The private recovery id of the CONNECT reply, when the server recovers sessions.
    pub pid: Option<String>,
    /// The offset of the last event that carried one (the last argument of events sent
    /// while recovery is on), as a recovering client tracks it.
    pub offset: Option<String>,
    next_ack: u64,
}

impl std::fmt::Debug for SioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SioClient")
            .field("ns", &self.ns)
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

fn prefix(ns: &str) -> String {
    if ns == "/" {
        String::new()
    } else {
        format!("{ns},")
    }
}

/// Splits `[id]json` after the type digit and namespace: the ack id, if any, and the JSON.
fn split_id(rest: &str) -> (Option<u64>, &str) {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (id, json) = rest.split_at(digits);
    (id.parse().ok(), json)
}

impl SioClient {
    /// Opens a WebSocket session to `addr` (path `/socket.io/`) and connects namespace `ns`
    /// with `auth`. Fails (with the reason) when the server does not answer within `within`.
    pub async fn connect(
        addr: SocketAddr,
        ns: &str,
        auth: Option<Value>,
        within: Duration,
    ) -> Result<Connect, String> {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (mut ws, _) = tokio::time::timeout(within, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| "WebSocket connect timed out".to_owned())?
            .map_err(|e| format!("WebSocket connect failed: {e}"))?;
        let open = next_text(&mut ws, within).await?;
        if !open.starts_with('0') {
            return Err(format!("expected the Engine.IO handshake, got {open:?}"));
        }
        let payload = auth.map(|a| a.to_string()).unwrap_or_default();
        let connect = format!("40{}{payload}", prefix(ns));
        ws.send(Message::text(connect))
            .await
            .map_err(|e| format!("CONNECT not sent: {e}"))?;
        let reply = next_text(&mut ws, within).await?;
        let ok = format!("40{}", prefix(ns));
        let refused = format!("44{}", prefix(ns));
        if let Some(json) = reply.strip_prefix(&refused) {
            let value =
                serde_json::from_str(json).map_err(|e| format!("bad CONNECT_ERROR: {e}"))?;
            return Ok(Connect::Refused(value));
        }
        let Some(json) = reply.strip_prefix(&ok) else {
            return Err(format!("expected a CONNECT reply for {ns}, got {reply:?}"));
        };
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("bad CONNECT reply {json:?}: {e}"))?;
        let sid = value
            .get("sid")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("CONNECT reply without sid: {json}"))?
            .to_owned();
        let pid = value.get("pid").and_then(Value::as_str).map(str::to_owned);
        Ok(Connect::Ok(Box::new(SioClient {
            ws,
            ns: ns.to_owned(),
            sid,
            pid,
            offset: None,
            next_ack: 0,
        })))
    }

    /// Like [`SioClient::connect`], failing unless the server accepts.
    pub async fn connected(
        addr: SocketAddr,
        ns: &str,
        auth: Option<Value>,
        within: Duration,
    ) -> Result<SioClient, String> {
        match SioClient::connect(addr, ns, auth, within).await? {
            Connect::Ok(client) => Ok(*client),
            Connect::Refused(payload) => Err(format!("connection refused: {payload}")),
        }
    }

    /// The auth payload a client that wants its session back sends: `{pid, offset}`.
    pub fn recovery_auth(&self) -> Option<Value> {
        let pid = self.pid.as_ref()?;
        let mut auth = serde_json::Map::new();
        auth.insert("pid".into(), Value::String(pid.clone()));
        if let Some(offset) = &self.offset {
            auth.insert("offset".into(), Value::String(offset.clone()));
        }
        Some(Value::Object(auth))
    }

    /// The next packet for this namespace within `within` (`None`: nothing came).
    pub async fn next(&mut self, within: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            let text = match frame {
                None | Some(Err(_) | Ok(Message::Close(_))) => return Some(Received::Closed),
                Some(Ok(Message::Text(t))) => t.to_string(),
                Some(Ok(_)) => continue,
            };
            if text == "2" {
                // An Engine.IO PING: answered, not shown.
                let _ = self.ws.send(Message::text("3")).await;
                continue;
            }
            if text == "1" {
                return Some(Received::Closed);
            }
            if let Some(packet) = self.parse(&text) {
                return Some(packet);
            }
        }
    }

    fn parse(&mut self, text: &str) -> Option<Received> {
        let body = text.strip_prefix('4')?;
        let (kind, rest) = body.split_at_checked(1)?;
        let rest = rest.strip_prefix(&prefix(&self.ns))?;
        match kind {
            "1" => Some(Received::Disconnect),
            "2" => {
                let (ack, json) = split_id(rest);
                let mut array: Vec<Value> = serde_json::from_str(json).ok()?;
                if array.is_empty() {
                    return None;
                }
                let name = array.remove(0).as_str()?.to_owned();
                Some(Received::Event {
                    name,
                    args: array,
                    ack,
                })
            }
            "3" => {
                let (id, json) = split_id(rest);
                Some(Received::Ack {
                    id: id?,
                    args: serde_json::from_str(json).ok()?,
                })
            }
            _ => None,
        }
    }

    /// The next event named `name` within `within`, skipping everything else; with recovery
    /// on, its offset (the last argument) is recorded and removed from the arguments.
    pub async fn event(&mut self, name: &str, within: Duration) -> Option<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Received::Event {
                    name: got,
                    mut args,
                    ack: None,
                } if got == name => {
                    if self.pid.is_some()
                        && let Some(Value::String(offset)) = args.last()
                    {
                        self.offset = Some(offset.clone());
                        args.pop();
                    }
                    return Some(args);
                }
                Received::Closed => return None,
                _ => continue,
            }
        }
    }

    /// Emits `event` with `args`, no ack asked.
    pub async fn emit(&mut self, event: &str, args: &[Value]) -> Result<(), String> {
        let mut array = vec![Value::String(event.to_owned())];
        array.extend_from_slice(args);
        let text = format!("42{}{}", prefix(&self.ns), Value::Array(array));
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| format!("emit not sent: {e}"))
    }

    /// Emits `event` with `args` asking for an ack; returns its id.
    pub async fn emit_with_ack(&mut self, event: &str, args: &[Value]) -> Result<u64, String> {
        let id = self.next_ack;
        self.next_ack += 1;
        let mut array = vec![Value::String(event.to_owned())];
        array.extend_from_slice(args);
        let text = format!("42{}{id}{}", prefix(&self.ns), Value::Array(array));
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| format!("emit not sent: {e}"))?;
        Ok(id)
    }

    /// Acknowledges the server's event `id` with `args`.
    pub async fn ack(&mut self, id: u64, args: &[Value]) -> Result<(), String> {
        let text = format!("43{}{id}{}", prefix(&self.ns), Value::Array(args.to_vec()));
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| format!("ack not sent: {e}"))
    }

    /// Drops the connection without a close handshake, as a lost network does: the server
    /// sees a transport error, not a client disconnect.
    pub fn drop_transport(self) {
        drop(self.ws);
    }
}

async fn next_text(ws: &mut Stream, within: Duration) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err("no answer in time".to_owned()),
            Ok(None | Some(Err(_) | Ok(Message::Close(_)))) => {
                return Err("the connection closed".to_owned());
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                let t = t.to_string();
                if t == "2" {
                    continue;
                }
                return Ok(t);
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}
