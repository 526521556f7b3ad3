//! The long-polling transport: one GET at a time for inbound packets, one POST at a time for
//! outbound ones.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sockeye_protocol::engine::{self, Frame, Packet, SEPARATOR};
use url::Url;

use super::EngineOptions;
use crate::error::ConnectionError;

/// How much of an error body is kept for the error message.
const ERROR_BODY_LIMIT: usize = 512;

/// An HTTP client bound to the connection's headers and timeout.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
}

impl Http {
    /// Builds the client: the connection's headers, its TLS, its proxy (or none: the
    /// environment is read by `ProxySetting`, never by reqwest itself, so that both transports
    /// make the same choice) and its cookie jar. The request timeout bounds connecting; each
    /// request gets its own bound from the caller (a long-poll GET may last `pingInterval`).
    pub(crate) fn new(options: &EngineOptions) -> Result<Http, ConnectionError> {
        let mut builder = reqwest::Client::builder()
            .default_headers(options.headers.clone())
            .connect_timeout(options.request_timeout)
            .no_proxy();
        if let Some(proxy) = &options.proxy {
            builder = builder.proxy(proxy.reqwest()?);
        }
        if let Some(jar) = &options.jar {
            builder = builder.cookie_provider(jar.clone());
        }
        let client = options.tls.http(builder).build().map_err(|e| {
            ConnectionError::InvalidOption(format!("cannot build the HTTP client: {e}"))
        })?;
        Ok(Http { client })
    }

    /// One GET: the packets the server had queued (or the handshake for the first request).
    pub(crate) async fn get(
        &self,
        url: Url,
        timeout: Duration,
    ) -> Result<Vec<Packet>, ConnectionError> {
        let response = self
            .client
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(transport_error)?;
        let body = checked_body(response).await?;
        engine::decode_payload(body)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConnectionError::Protocol(e.to_string()))
    }

    /// One POST carrying `frames` joined as a payload.
    pub(crate) async fn post(
        &self,
        url: Url,
        frames: &[Frame],
        timeout: Duration,
    ) -> Result<(), ConnectionError> {
        let body = payload(frames);
        let response = self
            .client
            .post(url)
            .timeout(timeout)
            .header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        checked_body(response).await.map(drop)
    }
}

/// Joins frames into one polling payload.
pub(crate) fn payload(frames: &[Frame]) -> Bytes {
    let mut buf = BytesMut::new();
    for (i, frame) in frames.iter().enumerate() {
        if i > 0 {
            buf.extend_from_slice(&[SEPARATOR]);
        }
        frame.write_polling(&mut buf);
    }
    buf.freeze()
}

async fn checked_body(response: reqwest::Response) -> Result<Bytes, ConnectionError> {
    let status = response.status();
    let body = response.bytes().await.map_err(transport_error)?;
    if status.is_success() {
        Ok(body)
    } else {
        let end = body.len().min(ERROR_BODY_LIMIT);
        Err(ConnectionError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(body.get(..end).unwrap_or_default()).into_owned(),
        })
    }
}

fn transport_error(error: reqwest::Error) -> ConnectionError {
    // The source chain holds the useful part ("connection refused"), the top level only says
    // "error sending request".
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    ConnectionError::Transport(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_joins_text_and_base64_binary() {
        let frames = [
            Frame::message("hello"),
            Frame::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        ];
        assert_eq!(payload(&frames), Bytes::from_static(b"4hello\x1ebAQIDBA=="));
    }
}
