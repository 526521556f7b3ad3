//! The WebSocket transport: connecting (directly or through a proxy's CONNECT tunnel, TLS
//! for `wss`), the cookies and permessage-deflate of the handshake, and converting frames.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::HeaderValue;
use reqwest::cookie::CookieStore as _;
use sockeye_protocol::deflate::{self, DeflateConfig, Deflater, InflateStream, Inflater, Role};
use sockeye_protocol::engine::{Frame, Packet};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};
use url::Url;

use super::EngineOptions;
use crate::error::ConnectionError;

/// An open WebSocket to the server.
pub(crate) type Ws = WebSocketStream<ClientIo>;

/// Longest handshake answer head the client reads.
const MAX_HEAD: usize = 16 * 1024;

/// The byte stream under tungstenite.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The connection under tungstenite: TCP (tunnelled or not), TLS for `wss`, and
/// permessage-deflate's inflating reader once the handshake answer accepted it.
pub(crate) struct ClientIo {
    inner: Box<dyn Io>,
    deflate: DeflateState,
    /// Largest message inflated (`max_payload`).
    max_inflated: usize,
}

enum DeflateState {
    /// Not offered: bytes pass through.
    Off,
    /// Offered: reading the handshake answer to see whether the server accepted.
    Handshake {
        config: DeflateConfig,
        head: Vec<u8>,
        pending: Vec<u8>,
    },
    /// Accepted: compressed messages are inflated into plain frames.
    On(Box<Active>),
    /// Declined, with bytes read past the answer head still to hand over.
    Declined { pending: Vec<u8>, pos: usize },
}

struct Active {
    inflate: InflateStream,
    deflater: Deflater,
    pending: Vec<u8>,
    pos: usize,
}

impl ClientIo {
    /// The compressor for outgoing messages, once permessage-deflate is on.
    pub(crate) fn deflater(&mut self) -> Option<&mut Deflater> {
        match &mut self.deflate {
            DeflateState::On(active) => Some(&mut active.deflater),
            _ => None,
        }
    }

    /// Hands over pending bytes, if any; true when it did.
    fn serve_pending(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let (pending, pos) = match &mut self.deflate {
            DeflateState::On(active) => (&mut active.pending, &mut active.pos),
            DeflateState::Declined { pending, pos } => (pending, pos),
            DeflateState::Handshake { pending, .. } => {
                if pending.is_empty() {
                    return false;
                }
                let n = pending.len().min(buf.remaining());
                buf.put_slice(pending.get(..n).unwrap_or_default());
                pending.drain(..n);
                return true;
            }
            DeflateState::Off => return false,
        };
        let rest = pending.get(*pos..).unwrap_or_default();
        if rest.is_empty() {
            return false;
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(rest.get(..n).unwrap_or_default());
        *pos += n;
        if *pos >= pending.len() {
            pending.clear();
            *pos = 0;
        }
        true
    }

    /// Feeds bytes read from the socket through the state machine.
    fn absorb(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        loop {
            match &mut self.deflate {
                DeflateState::Off => return Ok(()),
                DeflateState::Declined { pending, .. } => {
                    pending.extend_from_slice(bytes);
                    return Ok(());
                }
                DeflateState::On(active) => {
                    return active
                        .inflate
                        .feed(bytes, &mut active.pending)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
                }
                DeflateState::Handshake {
                    config,
                    head,
                    pending,
                } => {
                    let Some((&byte, rest)) = bytes.split_first() else {
                        return Ok(());
                    };
                    bytes = rest;
                    head.push(byte);
                    pending.push(byte);
                    if head.len() > MAX_HEAD {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "WebSocket handshake answer head over 16 KiB",
                        ));
                    }
                    if !head.ends_with(b"\r\n\r\n") {
                        continue;
                    }
                    let answer = extension_answer(head);
                    let agreed = deflate::client_accept(answer.as_deref(), config)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    let handed = std::mem::take(pending);
                    self.deflate = match agreed {
                        Some(agreed) => {
                            tracing::debug!(?agreed, "permessage-deflate on");
                            let config = *config;
                            DeflateState::On(Box::new(Active {
                                inflate: InflateStream::new(
                                    Role::Client,
                                    Inflater::new(Role::Client, agreed, self.max_inflated),
                                ),
                                deflater: Deflater::new(Role::Client, agreed, &config),
                                pending: handed,
                                pos: 0,
                            }))
                        }
                        None => DeflateState::Declined {
                            pending: handed,
                            pos: 0,
                        },
                    };
                }
            }
        }
    }
}

/// The `Sec-WebSocket-Extensions` value of a handshake answer head, if any.
fn extension_answer(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let values: Vec<&str> = text
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("sec-websocket-extensions")
                .then_some(value.trim())
        })
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if matches!(this.deflate, DeflateState::Off) {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        loop {
            if this.serve_pending(buf) {
                return Poll::Ready(Ok(()));
            }
            let mut raw = [0u8; 4096];
            let mut read = ReadBuf::new(&mut raw);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let got = read.filled();
            if got.is_empty() {
                return Poll::Ready(Ok(()));
            }
            this.absorb(got)?;
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Opens a WebSocket to `url` within the request timeout: TCP (through the proxy's CONNECT
/// tunnel when one applies), TLS for `wss`, then the handshake with the user's headers, the
/// cookies of the jar (and the answer's `Set-Cookie` into it), and the permessage-deflate
/// offer when configured.
pub(crate) async fn connect(options: &EngineOptions, url: &Url) -> Result<Ws, ConnectionError> {
    let timeout = options
        .limits
        .connect_timeout
        .saturating_add(options.request_timeout);
    tokio::time::timeout(timeout, connect_inner(options, url))
        .await
        .map_err(|_| ConnectionError::Timeout {
            what: "the WebSocket connection".into(),
            after: timeout,
        })?
}

async fn connect_inner(options: &EngineOptions, url: &Url) -> Result<Ws, ConnectionError> {
    let host = url
        .host_str()
        .ok_or_else(|| ConnectionError::InvalidOption("the URL has no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let connect_timeout = options.limits.connect_timeout;
    let opening = async {
        let tcp = match &options.proxy {
            Some(proxy) => proxy.tunnel(&host, port, connect_timeout).await?,
            None => TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| {
                    ConnectionError::Transport(format!("WebSocket: {host}:{port}: {e}"))
                })?,
        };
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = if url.scheme() == "wss" {
            options.tls.wrap(tcp, &host).await?
        } else {
            Box::new(tcp)
        };
        Ok::<_, ConnectionError>(stream)
    };
    let stream = tokio::time::timeout(connect_timeout, opening)
        .await
        .map_err(|_| ConnectionError::Timeout {
            what: "opening the WebSocket's connection (TCP, proxy tunnel, TLS)".into(),
            after: connect_timeout,
        })??;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectionError::InvalidOption(format!("bad WebSocket request: {e}")))?;
    for (name, value) in &options.headers {
        request.headers_mut().append(name, value.clone());
    }
    let cookie_url = options.endpoint.cookie_url(url);
    if let Some(cookies) = options
        .jar
        .as_ref()
        .and_then(|jar| jar.cookies(&cookie_url))
    {
        request.headers_mut().insert(http::header::COOKIE, cookies);
    }
    let deflate = match &options.deflate {
        Some(config) => {
            let offer = HeaderValue::from_str(&deflate::client_offer(config)).map_err(|e| {
                ConnectionError::InvalidOption(format!("permessage-deflate offer: {e}"))
            })?;
            request
                .headers_mut()
                .insert(http::header::SEC_WEBSOCKET_EXTENSIONS, offer);
            DeflateState::Handshake {
                config: *config,
                head: Vec::new(),
                pending: Vec::new(),
            }
        }
        None => DeflateState::Off,
    };
    let io = ClientIo {
        inner: stream,
        deflate,
        max_inflated: options.limits.max_payload,
    };
    let limit = Some(options.limits.max_payload);
    let config = WebSocketConfig::default()
        .max_message_size(limit)
        .max_frame_size(limit);
    match tokio_tungstenite::client_async_with_config(request, io, Some(config)).await {
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err(ConnectionError::Status {
                status: response.status().as_u16(),
                body,
            })
        }
        Err(e) => Err(ConnectionError::Transport(format!("WebSocket: {e}"))),
        Ok((ws, response)) => {
            if let Some(jar) = &options.jar {
                let mut set = response.headers().get_all(http::header::SET_COOKIE).iter();
                jar.set_cookies(&mut set, &cookie_url);
            }
            Ok(ws)
        }
    }
}

/// Sends one frame (without flushing), compressed when permessage-deflate is on and it pays.
pub(crate) async fn feed(ws: &mut Ws, frame: &Frame) -> Result<(), ConnectionError> {
    let (data, kind): (&Bytes, Data) = match frame {
        Frame::Text(text) => (text, Data::Text),
        Frame::Binary(data) => (data, Data::Binary),
    };
    if let Some(packed) = ws.get_mut().deflater().and_then(|d| d.compress(data)) {
        let mut compressed = WsFrame::message(packed, OpCode::Data(kind), true);
        compressed.header_mut().rsv1 = true;
        return ws
            .feed(WsMessage::Frame(compressed))
            .await
            .map_err(ws_error);
    }
    let message = match frame {
        Frame::Text(text) => {
            WsMessage::Text(Utf8Bytes::try_from(text.clone()).map_err(|_| {
                ConnectionError::Protocol("outbound text frame is not UTF-8".into())
            })?)
        }
        Frame::Binary(data) => WsMessage::Binary(data.clone()),
    };
    ws.feed(message).await.map_err(ws_error)
}

/// Reads the next Engine.IO packet; `None` when the socket closed cleanly.
pub(crate) async fn next_packet(ws: &mut Ws) -> Option<Result<Packet, ConnectionError>> {
    loop {
        let message = match ws.next().await? {
            Ok(message) => message,
            Err(e) => return Some(Err(ws_error(e))),
        };
        return Some(match message {
            WsMessage::Text(text) => Packet::decode_text(Bytes::from(text))
                .map_err(|e| ConnectionError::Protocol(e.to_string())),
            WsMessage::Binary(data) => Ok(Packet::Binary(data)),
            WsMessage::Close(_) => return None,
            // WebSocket-level pings are answered by tungstenite itself.
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => continue,
        });
    }
}

/// Sends one packet and flushes.
pub(crate) async fn send_packet(ws: &mut Ws, packet: &Packet) -> Result<(), ConnectionError> {
    feed(ws, &Frame::from(packet)).await?;
    ws.flush().await.map_err(ws_error)
}

pub(crate) fn ws_error(error: tungstenite::Error) -> ConnectionError {
    match error {
        tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong {
            max_size,
            ..
        }) => ConnectionError::PayloadTooLarge { limit: max_size },
        tungstenite::Error::Protocol(e) => ConnectionError::Protocol(format!("WebSocket: {e}")),
        other => ConnectionError::Transport(format!("WebSocket: {other}")),
    }
}

/// Shared so that the engine options stay cheap to clone.
pub(crate) type Jar = Arc<reqwest::cookie::Jar>;

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_answer_is_read_from_the_head() {
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nsec-websocket-extensions: permessage-deflate\r\n\r\n";
        assert_eq!(
            extension_answer(head).as_deref(),
            Some("permessage-deflate")
        );
        assert_eq!(extension_answer(b"HTTP/1.1 101 OK\r\n\r\n"), None);
    }

    #[test]
    fn bytes_after_the_head_are_inflated_once_accepted() {
        let config = DeflateConfig {
            threshold: 0,
            ..DeflateConfig::default()
        };
        let mut io = ClientIo {
            max_inflated: 1 << 20,
            inner: Box::new(tokio::io::empty()),
            deflate: DeflateState::Handshake {
                config,
                head: Vec::new(),
                pending: Vec::new(),
            },
        };
        let agreed = deflate::Negotiated {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
        };
        let packed = Deflater::new(Role::Server, agreed, &config)
            .compress(b"4hello hello hello hello hello")
            .unwrap();
        let mut stream = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n".to_vec();
        let head_len = stream.len();
        stream.push(0xc1);
        stream.push(u8::try_from(packed.len()).unwrap());
        stream.extend_from_slice(&packed);
        io.absorb(&stream).unwrap();
        let DeflateState::On(active) = &io.deflate else {
            panic!("deflate not on");
        };
        let mut expected = stream[..head_len].to_vec();
        expected.extend_from_slice(&[0x81, 30]);
        expected.extend_from_slice(b"4hello hello hello hello hello");
        assert_eq!(active.pending, expected);
    }
}
