//! The HTTP request that opened the connection: headers, URI, query, cookies, peer address,
//! request extensions.

use std::any::type_name;
use std::net::SocketAddr;

use http::{HeaderMap, Uri};
use serde::de::DeserializeOwned;
use sockeye::SocketRef;

use super::from_any_parts;
use super::session::generic_any_parts;
use crate::rejection::Rejection;

from_any_parts!(HeaderMap, |socket, io| Ok(socket.request().headers.clone()));
from_any_parts!(Uri, |socket, io| Ok(socket.request().uri.clone()));
from_any_parts!(Cookies, |socket, io| Ok(Cookies::from_headers(
    &socket.request().headers
)));
from_any_parts!(RemoteAddr, |socket, io| {
    socket
    .remote_addr()
    .map(RemoteAddr)
    .ok_or_else(|| Rejection::server(
        "no_remote_addr",
        "the peer address is unknown: put a sockeye_engine::RemoteAddr or a SocketAddr in the request extensions, or serve with axum's into_make_service_with_connect_info::<SocketAddr>() and enable the `axum` feature"
    ))
});

/// The query string of the handshake request, deserialised as `T` (it also holds Engine.IO's
/// own `EIO`, `transport` and `t` parameters; unknown fields are ignored by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> Query<T> {
    fn parse(socket: &SocketRef) -> Result<Query<T>, Rejection> {
        let query = socket.request().uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query).map(Query).map_err(|e| {
            Rejection::client(
                "invalid_query",
                format!(
                    "the query string is not a valid `{}`: {e}",
                    type_name::<T>()
                ),
            )
        })
    }
}

impl<T: DeserializeOwned> super::FromConnectParts for Query<T> {
    type Rejection = Rejection;
    fn from_connect_parts(cx: &super::ConnectContext) -> Result<Self, Rejection> {
        Query::parse(cx.socket())
    }
}

impl<T: DeserializeOwned> super::FromEventParts for Query<T> {
    type Rejection = Rejection;
    fn from_event_parts(cx: &mut super::EventContext) -> Result<Self, Rejection> {
        Query::parse(cx.socket())
    }
}

impl<T: DeserializeOwned> super::FromDisconnectParts for Query<T> {
    type Rejection = Rejection;
    fn from_disconnect_parts(cx: &super::DisconnectContext) -> Result<Self, Rejection> {
        Query::parse(cx.socket())
    }
}

/// The cookies of the handshake request (`Cookie` headers), by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cookies {
    pairs: Vec<(String, String)>,
}

impl Cookies {
    /// Parses every `Cookie` header (`a=1; b=2`); malformed pairs are skipped.
    pub fn from_headers(headers: &HeaderMap) -> Cookies {
        let pairs = headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                let name = name.trim();
                let value = value.trim().trim_matches('"');
                (!name.is_empty()).then(|| (name.to_owned(), value.to_owned()))
            })
            .collect();
        Cookies { pairs }
    }

    /// The value of cookie `name` (the first one, if it was sent twice).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every cookie, in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// The peer address of the connection, when the server loop recorded it: a
/// `sockeye_engine::RemoteAddr` or a `SocketAddr` in the request extensions, or, with this
/// crate's `axum` feature, the `ConnectInfo<SocketAddr>` that axum's
/// `into_make_service_with_connect_info::<SocketAddr>()` adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// A value of type `T` from the extensions of the handshake request only (for instance
/// `HttpExtension<axum::extract::ConnectInfo<SocketAddr>>`). Rejected (server-side, code
/// `missing_http_extension`) when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpExtension<T>(pub T);

fn http_extension<T: Clone + Send + Sync + 'static>(
    socket: &SocketRef,
) -> Result<HttpExtension<T>, Rejection> {
    socket
        .request()
        .extensions
        .get::<T>()
        .cloned()
        .map(HttpExtension)
        .ok_or_else(|| {
            Rejection::server(
                "missing_http_extension",
                format!(
                    "the handshake request has no extension of type `{}`",
                    type_name::<T>()
                ),
            )
        })
}

generic_any_parts!(HttpExtension, http_extension);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_split_and_trimmed() {
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::COOKIE,
            "a=1; b=\"two\" ;junk".parse().unwrap(),
        );
        headers.append(http::header::COOKIE, "c=3".parse().unwrap());
        let cookies = Cookies::from_headers(&headers);
        assert_eq!(cookies.get("a"), Some("1"));
        assert_eq!(cookies.get("b"), Some("two"));
        assert_eq!(cookies.get("c"), Some("3"));
        assert_eq!(cookies.get("junk"), None);
        assert_eq!(cookies.iter().count(), 3);
    }
}
