//! The WebSocket transport: connecting with the user's headers and converting frames.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http::HeaderMap;
use sockeye_protocol::engine::{Frame, Packet};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use crate::error::ConnectionError;
use crate::tls::Tls;

/// An open WebSocket to the server.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `url` with `headers`, within `timeout`.
pub(crate) async fn connect(
    url: &Url,
    headers: &HeaderMap,
    timeout: Duration,
    tls: &Tls,
) -> Result<Ws, ConnectionError> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectionError::InvalidOption(format!("bad WebSocket request: {e}")))?;
    for (name, value) in headers {
        request.headers_mut().append(name, value.clone());
    }
    #[cfg(feature = "tls")]
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, tls.websocket());
    #[cfg(not(feature = "tls"))]
    let connecting = {
        // Secure endpoints were refused when the options were built.
        let _ = tls;
        tokio_tungstenite::connect_async(request)
    };
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(ConnectionError::Transport(format!(
            "WebSocket connection not established within {timeout:?}"
        ))),
        Ok(Err(tungstenite::Error::Http(response))) => {
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
        Ok(Err(e)) => Err(ConnectionError::Transport(format!("WebSocket: {e}"))),
        Ok(Ok((ws, _response))) => Ok(ws),
    }
}

/// Sends one frame (without flushing).
pub(crate) async fn feed(
    ws: &mut (impl SinkExtWs + ?Sized),
    frame: &Frame,
) -> Result<(), ConnectionError> {
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

/// The sink half the transport writes to.
pub(crate) trait SinkExtWs:
    futures_util::Sink<WsMessage, Error = tungstenite::Error> + Unpin
{
}
impl<T: futures_util::Sink<WsMessage, Error = tungstenite::Error> + Unpin> SinkExtWs for T {}

/// Reads the next Engine.IO packet; `None` when the socket closed cleanly.
pub(crate) async fn next_packet(
    ws: &mut (impl futures_util::Stream<Item = Result<WsMessage, tungstenite::Error>> + Unpin),
) -> Option<Result<Packet, ConnectionError>> {
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
pub(crate) async fn send_packet(
    ws: &mut (impl SinkExtWs + ?Sized),
    packet: &Packet,
) -> Result<(), ConnectionError> {
    feed(ws, &Frame::from(packet)).await?;
    ws.flush().await.map_err(ws_error)
}

pub(crate) fn ws_error(error: tungstenite::Error) -> ConnectionError {
    ConnectionError::Transport(format!("WebSocket: {error}"))
}
