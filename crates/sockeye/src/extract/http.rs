//! The HTTP request that opened the connection: headers, URI, query, cookies, peer address,
//! request extensions.

use std::any::type_name;

use http::{HeaderMap, Uri};
use serde::de::DeserializeOwned;
use sockeye_engine::RemoteAddr;

use super::{
    Rejection, from_socket, generic_from_socket, generic_optional_from_socket, optional_from_socket,
};
use crate::socket::SocketRef;

from_socket!(HeaderMap, |socket| Ok(socket.request().headers.clone()));
from_socket!(Uri, |socket| Ok(socket.request().uri.clone()));
from_socket!(Cookies, |socket| Ok(Cookies::from_headers(
    &socket.request().headers
)));

// The peer address: the same `RemoteAddr` type that a server loop puts in request extensions.
from_socket!(RemoteAddr, |socket| {
    socket
    .remote_addr()
    .map(RemoteAddr)
    .ok_or_else(|| Rejection::server(
        "no_remote_addr",
        "the peer address is unknown: put a sockeye::RemoteAddr or a SocketAddr in the request extensions, or serve with axum's into_make_service_with_connect_info::<SocketAddr>() and enable the `axum` feature; take Option<RemoteAddr> where it may be unknown"
    ))
});
optional_from_socket!(RemoteAddr, |socket| Ok(socket
    .remote_addr()
    .map(RemoteAddr)));

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

generic_from_socket!(Query, [DeserializeOwned], Query::parse);

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

/// A value of type `T` from the extensions of the handshake request only (for instance
/// `HttpExtension<axum::extract::ConnectInfo<SocketAddr>>`). Rejected (server-side, code
/// `missing_http_extension`) when absent; `Option<HttpExtension<T>>` is `None` then.
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

generic_from_socket!(
    HttpExtension,
    [Clone + Send + Sync + 'static],
    http_extension
);
generic_optional_from_socket!(
    HttpExtension,
    [Clone + Send + Sync + 'static],
    |socket: &SocketRef| Ok(socket
        .request()
        .extensions
        .get::<T>()
        .cloned()
        .map(HttpExtension))
);

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
