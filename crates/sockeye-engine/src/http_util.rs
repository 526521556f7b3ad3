//! HTTP answers of the engine: errors as the reference server words them, and query parsing.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

/// The engine's own response body.
pub(crate) type EngineBody = Full<Bytes>;

/// The reference server's numbered request errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestError {
    UnknownTransport,
    UnknownSid,
    BadHandshakeMethod,
    BadRequest,
    Forbidden,
    UnsupportedProtocolVersion,
}

impl RequestError {
    fn code(self) -> u8 {
        match self {
            RequestError::UnknownTransport => 0,
            RequestError::UnknownSid => 1,
            RequestError::BadHandshakeMethod => 2,
            RequestError::BadRequest => 3,
            RequestError::Forbidden => 4,
            RequestError::UnsupportedProtocolVersion => 5,
        }
    }

    fn message(self) -> &'static str {
        match self {
            RequestError::UnknownTransport => "Transport unknown",
            RequestError::UnknownSid => "Session ID unknown",
            RequestError::BadHandshakeMethod => "Bad handshake method",
            RequestError::BadRequest => "Bad request",
            RequestError::Forbidden => "Forbidden",
            RequestError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    pub(crate) fn response(self) -> Response<EngineBody> {
        let status = if self == RequestError::Forbidden {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        let body = format!(
            r#"{{"code":{},"message":"{}"}}"#,
            self.code(),
            self.message()
        );
        let mut res = Response::new(Full::new(Bytes::from(body)));
        *res.status_mut() = status;
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res
    }
}

pub(crate) fn status(status: StatusCode) -> Response<EngineBody> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = status;
    res
}

/// The answer to an accepted polling POST.
pub(crate) fn ok() -> Response<EngineBody> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"ok")));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    res
}

/// The engine's query parameters. Unknown keys are ignored; the first occurrence of a key
/// wins; values are used as sent (the engine's values never need percent-decoding).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Query<'a> {
    pub(crate) eio: Option<&'a str>,
    pub(crate) transport: Option<&'a str>,
    pub(crate) sid: Option<&'a str>,
    /// v3: `b64=1` (any value) asks for base64 binary instead of XHR2 binary payloads.
    pub(crate) b64: Option<&'a str>,
    /// JSONP polling: the client's callback index.
    pub(crate) j: Option<&'a str>,
}

impl<'a> Query<'a> {
    pub(crate) fn parse(query: Option<&'a str>) -> Query<'a> {
        let mut out = Query::default();
        for pair in query.unwrap_or("").split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match key {
                "EIO" => &mut out.eio,
                "transport" => &mut out.transport,
                "sid" => &mut out.sid,
                "b64" => &mut out.b64,
                "j" => &mut out.j,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_takes_first_and_tolerates_garbage() {
        let q = Query::parse(Some(
            "EIO=4&&=&transport=polling&transport=websocket&sid&x=%zz",
        ));
        assert_eq!(q.eio, Some("4"));
        assert_eq!(q.transport, Some("polling"));
        assert_eq!(q.sid, Some(""));
        assert_eq!(Query::parse(None), Query::default());
    }

    #[test]
    fn errors_are_worded_like_the_reference_server() {
        let res = RequestError::Forbidden.response();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = RequestError::UnknownSid.response();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    }
}
