//! HTTP proxies: the one the user gave, or the one the environment names (`HTTPS_PROXY`,
//! `HTTP_PROXY`, `ALL_PROXY` and their lower-case forms, minus `NO_PROXY`), used by both
//! transports: polling through reqwest's proxy support (requests in absolute form for `http`
//! endpoints, a CONNECT tunnel for `https`), the WebSocket through a CONNECT tunnel for both.

use std::time::Duration;

use base64::Engine as _;
use http::HeaderValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use crate::error::ConnectionError;

/// Longest CONNECT answer head read from a proxy.
const MAX_ANSWER_HEAD: usize = 16 * 1024;

/// Where the proxy setting comes from.
#[derive(Debug, Clone, Default)]
pub(crate) enum ProxySetting {
    /// The environment's variables (the default).
    #[default]
    FromEnv,
    /// This proxy for every endpoint (`http://[user:password@]host:port`).
    Explicit(String),
    /// No proxy, whatever the environment says.
    Off,
}

/// A proxy to reach one endpoint through.
#[derive(Clone)]
pub(crate) struct Proxy {
    /// `http://host:port` of the proxy.
    url: Url,
    /// `Proxy-Authorization` value, from the proxy URL's user and password.
    auth: Option<HeaderValue>,
    /// The credentials, for reqwest.
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.debug_struct("Proxy")
            .field("host", &self.url.host_str())
            .field("port", &self.url.port_or_known_default())
            .field("auth", &self.auth.is_some())
            .finish()
    }
}

impl ProxySetting {
    /// The proxy for `target` (the endpoint's `http`/`https` URL), reading variables from the
    /// process environment.
    pub(crate) fn resolve(&self, target: &Url) -> Result<Option<Proxy>, ConnectionError> {
        self.resolve_with(target, |name| std::env::var(name).ok())
    }

    /// [`ProxySetting::resolve`] with the environment given as a lookup function.
    pub(crate) fn resolve_with(
        &self,
        target: &Url,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>, ConnectionError> {
        match self {
            ProxySetting::Off => Ok(None),
            ProxySetting::Explicit(url) => Proxy::parse(url).map(Some),
            ProxySetting::FromEnv => {
                let var = |names: &[&str]| {
                    names
                        .iter()
                        .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
                };
                if var(&["no_proxy", "NO_PROXY"]).is_some_and(|no| bypassed(&no, target)) {
                    return Ok(None);
                }
                let chosen = if target.scheme() == "https" {
                    var(&["https_proxy", "HTTPS_PROXY"])
                } else if env("REQUEST_METHOD").is_some() {
                    // Under CGI, HTTP_PROXY may come from a request's `Proxy:` header
                    // ("httpoxy"): only the lower-case form is trusted there.
                    var(&["http_proxy"])
                } else {
                    var(&["http_proxy", "HTTP_PROXY"])
                };
                chosen
                    .or_else(|| var(&["all_proxy", "ALL_PROXY"]))
                    .map(|url| Proxy::parse(&url))
                    .transpose()
            }
        }
    }
}

/// True when `NO_PROXY` (comma-separated: `*`, host names, `.domain` or `domain` suffixes,
/// IP addresses, each optionally with `:port`) covers `target`.
fn bypassed(no_proxy: &str, target: &Url) -> bool {
    let Some(host) = target.host_str() else {
        return false;
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = target.port_or_known_default();
    no_proxy.split(',').map(str::trim).any(|entry| {
        if entry == "*" {
            return true;
        }
        let (name, entry_port) = match entry.rsplit_once(':') {
            Some((name, p)) if !name.contains(':') || name.ends_with(']') => {
                (name, p.parse::<u16>().ok())
            }
            _ => (entry, None),
        };
        if entry_port.is_some_and(|p| Some(p) != port) {
            return false;
        }
        let name = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .to_ascii_lowercase();
        !name.is_empty() && (host == name || host.ends_with(&format!(".{name}")))
    })
}

impl Proxy {
    /// Parses `http://[user:password@]host[:port]` (port 80 by default; a bare `host:port`
    /// means http).
    pub(crate) fn parse(text: &str) -> Result<Proxy, ConnectionError> {
        let invalid = |reason: &str| {
            ConnectionError::InvalidOption(format!("proxy {}: {reason}", redact(text)))
        };
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let url = Url::parse(&with_scheme).map_err(|e| invalid(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(invalid(
                "only http:// proxies are supported (the tunnel to https endpoints is still \
                 TLS end to end)",
            ));
        }
        if url.host_str().is_none() {
            return Err(invalid("no host"));
        }
        let credentials = (!url.username().is_empty()).then(|| {
            let decode = |s: &str| percent_decode(s);
            (
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            )
        });
        let auth = credentials
            .as_ref()
            .map(|(user, password)| {
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                HeaderValue::from_str(&format!("Basic {token}"))
                    .map(|mut v| {
                        v.set_sensitive(true);
                        v
                    })
                    .map_err(|_| invalid("credentials are not valid header text"))
            })
            .transpose()?;
        let mut bare = url.clone();
        let _ = bare.set_username("");
        let _ = bare.set_password(None);
        Ok(Proxy {
            url: bare,
            auth,
            credentials,
        })
    }

    /// The proxy for reqwest (polling).
    pub(crate) fn reqwest(&self) -> Result<reqwest::Proxy, ConnectionError> {
        let proxy = reqwest::Proxy::all(self.url.as_str())
            .map_err(|e| ConnectionError::InvalidOption(format!("proxy {}: {e}", self.url)))?;
        Ok(match &self.credentials {
            Some((user, password)) => proxy.basic_auth(user, password),
            None => proxy,
        })
    }

    /// Opens a TCP connection to `host:port` through the proxy (HTTP CONNECT), within
    /// `timeout`. A refusal (407 for missing or wrong credentials, 403, 502...) is
    /// [`ConnectionError::Status`] with the proxy's status line.
    pub(crate) async fn tunnel(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<TcpStream, ConnectionError> {
        tokio::time::timeout(timeout, self.tunnel_inner(host, port))
            .await
            .map_err(|_| {
                ConnectionError::Transport(format!(
                    "proxy tunnel to {host}:{port} not open within {timeout:?}"
                ))
            })?
    }

    async fn tunnel_inner(&self, host: &str, port: u16) -> Result<TcpStream, ConnectionError> {
        let proxy_host = self.url.host_str().unwrap_or_default();
        let proxy_port = self.url.port_or_known_default().unwrap_or(80);
        let transport = |e: std::io::Error| {
            ConnectionError::Transport(format!("proxy {proxy_host}:{proxy_port}: {e}"))
        };
        let mut tcp = TcpStream::connect((proxy_host, proxy_port))
            .await
            .map_err(transport)?;
        let _ = tcp.set_nodelay(true);
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(auth) = &self.auth {
            request.push_str("Proxy-Authorization: ");
            request.push_str(auth.to_str().unwrap_or_default());
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).await.map_err(transport)?;
        // Read the answer head byte by byte: nothing of the tunnelled stream may be consumed.
        let mut head = Vec::with_capacity(128);
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() >= MAX_ANSWER_HEAD {
                return Err(ConnectionError::Protocol(format!(
                    "proxy answer head over {MAX_ANSWER_HEAD} bytes"
                )));
            }
            head.push(tcp.read_u8().await.map_err(transport)?);
        }
        let text = String::from_utf8_lossy(&head);
        let status_line = text.lines().next().unwrap_or_default().to_owned();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        if (200..300).contains(&status) {
            tracing::debug!(proxy = %proxy_host, target = %authority, "proxy tunnel open");
            return Ok(tcp);
        }
        Err(ConnectionError::Status {
            status,
            body: format!("proxy refused CONNECT {authority}: {status_line}"),
        })
    }
}

/// Percent-decoding of a URL's user or password.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = (b == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A proxy URL without its password, for messages.
fn redact(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn proxy_host(setting: &ProxySetting, target: &str, vars: &[(&str, &str)]) -> Option<String> {
        setting
            .resolve_with(&Url::parse(target).unwrap(), env(vars))
            .unwrap()
            .map(|p| p.url.host_str().unwrap().to_owned())
    }

    #[test]
    fn the_environment_picks_the_proxy_by_scheme() {
        let vars = [
            ("HTTPS_PROXY", "http://secure-proxy:3128"),
            ("HTTP_PROXY", "http://plain-proxy:3128"),
        ];
        let setting = ProxySetting::FromEnv;
        assert_eq!(
            proxy_host(&setting, "https://example.com", &vars).as_deref(),
            Some("secure-proxy")
        );
        assert_eq!(
            proxy_host(&setting, "http://example.com", &vars).as_deref(),
            Some("plain-proxy")
        );
        // Lower case first, ALL_PROXY as the fallback, nothing when unset.
        assert_eq!(
            proxy_host(
                &setting,
                "http://example.com",
                &[("http_proxy", "lower:1"), ("HTTP_PROXY", "upper:1")]
            )
            .as_deref(),
            Some("lower")
        );
        assert_eq!(
            proxy_host(&setting, "https://example.com", &[("ALL_PROXY", "all:1")]).as_deref(),
            Some("all")
        );
        assert_eq!(proxy_host(&setting, "https://example.com", &[]), None);
        // Under CGI the upper-case HTTP_PROXY is not trusted.
        assert_eq!(
            proxy_host(
                &setting,
                "http://example.com",
                &[("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "evil:1")]
            ),
            None
        );
    }

    #[test]
    fn no_proxy_entries() {
        let vars = |no: &'static str| [("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", no)];
        let setting = ProxySetting::FromEnv;
        for (no_proxy, target, bypass) in [
            ("*", "https://a.example.com", true),
            ("example.com", "https://a.example.com", true),
            (".example.com", "https://example.com", true),
            ("example.com", "https://notexample.com", false),
            ("localhost,127.0.0.1", "https://127.0.0.1:8443", true),
            ("127.0.0.1:9999", "https://127.0.0.1:8443", false),
            ("127.0.0.1:8443", "https://127.0.0.1:8443", true),
            ("[::1]", "https://[::1]:8443", true),
            ("", "https://example.com", false),
        ] {
            let got = proxy_host(&setting, target, &vars(no_proxy));
            assert_eq!(got.is_none(), bypass, "NO_PROXY={no_proxy} {target}");
        }
    }

    #[test]
    fn explicit_and_off_ignore_the_environment() {
        let vars = [("HTTPS_PROXY", "http://env:1")];
        assert_eq!(
            proxy_host(
                &ProxySetting::Explicit("http://mine:8080".into()),
                "https://x",
                &vars
            )
            .as_deref(),
            Some("mine")
        );
        assert_eq!(proxy_host(&ProxySetting::Off, "https://x", &vars), None);
    }

    #[test]
    fn credentials_become_basic_auth_and_stay_out_of_messages() {
        let proxy = Proxy::parse("http://us%40er:p%3Ass@proxy:3128").unwrap();
        // base64("us@er:p:ss")
        assert_eq!(proxy.auth.unwrap(), "Basic dXNAZXI6cDpzcw==");
        assert!(!format!("{:?}", Proxy::parse("http://u:secret@h:1").unwrap()).contains("secret"));
        let err = Proxy::parse("socks5://u:secret@h:1")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
        assert!(Proxy::parse("proxy.internal:3128").is_ok());
    }
}
