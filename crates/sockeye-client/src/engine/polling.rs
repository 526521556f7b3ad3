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
    /// Largest response body read (`max_payload`).
    max_body: usize,
}

impl Http {
    /// Builds the client: the connection's headers, its TLS, its proxy (or none: the
    /// environment is read by `ProxySetting`, never by reqwest itself, so that both transports
    /// make the same choice) and its cookie jar. The request timeout bounds connecting; each
    /// request gets its own bound from the caller (a long-poll GET may last `pingInterval`).
    pub(crate) fn new(options: &EngineOptions) -> Result<Http, ConnectionError> {
        let mut builder = reqwest::Client::builder()
            .default_headers(options.headers.clone())
            .connect_timeout(options.limits.connect_timeout)
            // The default policy (10 hops) already bounds a redirect loop; said here so that
            // it stays bounded whatever reqwest's default becomes.
            .redirect(reqwest::redirect::Policy::limited(10))
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
        Ok(Http {
            client,
            max_body: options.limits.max_payload,
        })
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
            .map_err(|e| transport_error(e, timeout))?;
        let body = checked_body(response, self.max_body, timeout).await?;
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
            .map_err(|e| transport_error(e, timeout))?;
        checked_body(response, self.max_body, timeout)
            .await
            .map(drop)
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

/// The body of a successful answer, read chunk by chunk so that a body longer than `limit`
/// (announced or not) fails before it is buffered; an error status keeps only the start of
/// its body for the message.
async fn checked_body(
    mut response: reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ConnectionError> {
    let status = response.status();
    let keep = if status.is_success() {
        limit
    } else {
        ERROR_BODY_LIMIT
    };
    if status.is_success()
        && response
            .content_length()
            .is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(ConnectionError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(e, timeout))?
    {
        let room = keep.saturating_sub(body.len());
        if chunk.len() > room {
            if status.is_success() {
                return Err(ConnectionError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(chunk.get(..room).unwrap_or_default());
            break;
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_success() {
        Ok(body.freeze())
    } else {
        Err(ConnectionError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

fn transport_error(error: reqwest::Error, timeout: Duration) -> ConnectionError {
    if error.is_timeout() {
        return ConnectionError::Timeout {
            what: "an HTTP request".into(),
            after: timeout,
        };
    }
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
