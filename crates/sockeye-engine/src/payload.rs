//! The bytes of one polling answer, in the session's protocol: a v4 payload (packets joined
//! with 0x1e), or (feature `eio3`) a v3 text or XHR2 binary payload; optionally wrapped for
//! JSONP and compressed for the client's `Accept-Encoding`.

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Response, header};
use sockeye_protocol::engine::{Frame, SEPARATOR};

use crate::compress::Encoding;
use crate::http_util::EngineBody;

/// The Engine.IO protocol revision of a session, from the `EIO` query parameter of its
/// handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// Engine.IO v3, the protocol of the JavaScript clients 2.x (accepted with `allow_eio3`,
    /// crate feature `eio3`): the client pings, payloads count UTF-16 code units.
    V3,
    /// Engine.IO v4: the server pings, payloads are joined with 0x1e.
    V4,
}

impl Protocol {
    /// The heartbeat packet the server writes: PING in v4, the PONG answering the client's
    /// PING in v3.
    pub(crate) fn heartbeat(self) -> &'static [u8] {
        match self {
            Protocol::V3 => b"3",
            Protocol::V4 => b"2",
        }
    }
}

/// How a session's polling answers are framed (fixed at the handshake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PollingFormat {
    pub(crate) protocol: Protocol,
    /// v3 only: the client asked for `b64=1` (no XHR2 binary payloads).
    pub(crate) b64: bool,
}

/// One payload being written.
pub(crate) struct PayloadOut {
    inner: Inner,
}

enum Inner {
    V4(BytesMut),
    #[cfg(feature = "eio3")]
    V3 {
        writer: sockeye_protocol::eio3::PayloadWriter,
        empty: bool,
    },
}

impl PayloadOut {
    /// A payload in `format`; `has_binary` says whether a binary frame will be written (a v3
    /// client without `b64` then gets an XHR2 binary payload).
    pub(crate) fn new(format: PollingFormat, has_binary: bool) -> PayloadOut {
        let _ = has_binary;
        let inner = match format.protocol {
            #[cfg(feature = "eio3")]
            Protocol::V3 => Inner::V3 {
                writer: sockeye_protocol::eio3::PayloadWriter::new(
                    sockeye_protocol::eio3::PollingFormat { b64: format.b64 },
                    has_binary,
                ),
                empty: true,
            },
            _ => Inner::V4(BytesMut::new()),
        };
        PayloadOut { inner }
    }

    /// True while nothing was written.
    pub(crate) fn is_empty(&self) -> bool {
        match &self.inner {
            Inner::V4(buf) => buf.is_empty(),
            #[cfg(feature = "eio3")]
            Inner::V3 { empty, .. } => *empty,
        }
    }

    /// Appends a whole text packet (type digit included).
    pub(crate) fn text(&mut self, packet: &[u8]) {
        match &mut self.inner {
            Inner::V4(buf) => {
                if !buf.is_empty() {
                    buf.put_u8(SEPARATOR);
                }
                buf.extend_from_slice(packet);
            }
            #[cfg(feature = "eio3")]
            Inner::V3 { writer, empty } => {
                *empty = false;
                writer.text(packet);
            }
        }
    }

    /// Appends a queued frame.
    pub(crate) fn frame(&mut self, frame: &Frame) {
        match &mut self.inner {
            Inner::V4(buf) => {
                if !buf.is_empty() {
                    buf.put_u8(SEPARATOR);
                }
                frame.write_polling(buf);
            }
            #[cfg(feature = "eio3")]
            Inner::V3 { writer, empty } => {
                *empty = false;
                writer.frame(frame);
            }
        }
    }

    /// The payload bytes, and whether they are an XHR2 binary payload.
    pub(crate) fn finish(self) -> (Bytes, bool) {
        match self.inner {
            Inner::V4(buf) => (buf.freeze(), false),
            #[cfg(feature = "eio3")]
            Inner::V3 { writer, .. } => {
                let binary = writer.is_binary();
                (writer.finish(), binary)
            }
        }
    }
}

/// What a polling GET answer needs from its request: the JSONP index, and the encoding the
/// client accepts (when HTTP compression is on).
#[derive(Debug, Default)]
pub(crate) struct AnswerStyle {
    /// The `j` query parameter of a JSONP request (feature `eio3`).
    pub(crate) jsonp: Option<Box<str>>,
    /// The content coding to use for answers at or over the threshold.
    pub(crate) encoding: Option<Encoding>,
    /// The compression threshold in bytes.
    pub(crate) threshold: usize,
}

impl AnswerStyle {
    /// The HTTP answer carrying `payload`.
    pub(crate) fn respond(&self, payload: PayloadOut) -> Response<EngineBody> {
        let (body, binary) = payload.finish();
        let body = self.wrap_jsonp(body);
        let content_type = if binary {
            "application/octet-stream"
        } else {
            "text/plain; charset=UTF-8"
        };
        let (body, coding) = match self.encoding {
            Some(encoding) if body.len() >= self.threshold => match encoding.compress(&body) {
                Some(compressed) => (compressed, Some(encoding)),
                None => (body, None),
            },
            _ => (body, None),
        };
        let mut res = Response::new(EngineBody::new(body));
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(coding) = coding {
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(coding.as_str()),
            );
        }
        if self.encoding.is_some() {
            headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        res
    }

    #[cfg(feature = "eio3")]
    fn wrap_jsonp(&self, body: Bytes) -> Bytes {
        match &self.jsonp {
            Some(index) => sockeye_protocol::eio3::jsonp_wrap(index, &body),
            None => body,
        }
    }

    #[cfg(not(feature = "eio3"))]
    fn wrap_jsonp(&self, body: Bytes) -> Bytes {
        body
    }
}
