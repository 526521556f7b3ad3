//! Building the Engine.IO request URLs from the user's URL and options.

use url::Url;

use crate::error::ConnectionError;

/// The parts of an Engine.IO endpoint: `http(s)://host:port/<path>/?<user query>`.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The HTTP form, with the Engine.IO path and the user's query.
    http: Url,
}

impl Endpoint {
    /// Parses the user's URL; its path is ignored (namespaces are given as options, not in the
    /// URL), its query is kept and forwarded on every request.
    pub(crate) fn new(url: &str, path: &str) -> Result<Endpoint, ConnectionError> {
        let invalid = |reason: &str| ConnectionError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parsed = Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        let scheme = match parsed.scheme() {
            "http" | "ws" => "http",
            "https" | "wss" => "https",
            _ => return Err(invalid("the scheme must be http, https, ws or wss")),
        };
        if parsed.host_str().is_none() {
            return Err(invalid("the URL has no host"));
        }
        parsed
            .set_scheme(scheme)
            .map_err(|()| invalid("cannot change the scheme"))?;
        let trimmed = path.trim_matches('/');
        let path = if trimmed.is_empty() {
            "/".to_owned()
        } else {
            format!("/{trimmed}/")
        };
        parsed.set_path(&path);
        parsed.set_fragment(None);
        Ok(Endpoint { http: parsed })
    }

    /// True for `https`/`wss`: the connection needs TLS.
    pub(crate) fn is_secure(&self) -> bool {
        self.http.scheme() == "https"
    }

    /// The URL of a polling request: EIO, transport, the session id once known and a
    /// cache-busting timestamp.
    pub(crate) fn polling(&self, sid: Option<&str>) -> Url {
        let mut url = self.with_engine_query("polling", sid);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        url.query_pairs_mut()
            .append_pair("t", &format!("{stamp:x}"));
        url
    }

    /// The URL of the WebSocket transport (`ws`/`wss`).
    pub(crate) fn websocket(&self, sid: Option<&str>) -> Url {
        let mut url = self.with_engine_query("websocket", sid);
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        // http(s) -> ws(s) is always a valid change for a URL with a host.
        let _ = url.set_scheme(scheme);
        url
    }

    /// The `http`/`https` form of a request URL, under which cookies are kept (a `ws` URL
    /// shares the cookies of its `http` twin).
    pub(crate) fn cookie_url(&self, url: &Url) -> Url {
        let mut url = url.clone();
        let scheme = match url.scheme() {
            "wss" | "https" => "https",
            _ => "http",
        };
        let _ = url.set_scheme(scheme);
        url
    }

    fn with_engine_query(&self, transport: &str, sid: Option<&str>) -> Url {
        let mut url = self.http.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("EIO", "4");
            query.append_pair("transport", transport);
            if let Some(sid) = sid {
                query.append_pair("sid", sid);
            }
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_query_and_replaces_path() {
        let endpoint =
            Endpoint::new("http://localhost:3000/chat?token=a%20b", "socket.io").unwrap();
        let ws = endpoint.websocket(Some("abc"));
        assert_eq!(
            ws.as_str(),
            "ws://localhost:3000/socket.io/?token=a%20b&EIO=4&transport=websocket&sid=abc"
        );
        let polling = endpoint.polling(None);
        assert!(
            polling.as_str().starts_with(
                "http://localhost:3000/socket.io/?token=a%20b&EIO=4&transport=polling&t="
            ),
            "{polling}"
        );
    }

    #[test]
    fn secure_schemes_map_both_ways() {
        let endpoint = Endpoint::new("wss://example.invalid", "/custom/").unwrap();
        assert!(
            endpoint
                .polling(None)
                .as_str()
                .starts_with("https://example.invalid/custom/?")
        );
        assert!(
            endpoint
                .websocket(None)
                .as_str()
                .starts_with("wss://example.invalid/custom/?")
        );
    }

    #[test]
    fn rejects_unusable_urls() {
        assert!(matches!(
            Endpoint::new("ftp://x", "/socket.io"),
            Err(ConnectionError::InvalidUrl { .. })
        ));
        assert!(matches!(
            Endpoint::new("not a url", "/socket.io"),
            Err(ConnectionError::InvalidUrl { .. })
        ));
    }
}
