//! Engine options and their builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use sockeye_protocol::deflate::DeflateConfig;

/// Which transports the engine accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transports {
    /// HTTP long-polling only: WebSocket requests are refused with "Transport unknown".
    PollingOnly,
    /// WebSocket only: polling requests are refused with "Transport unknown".
    WebsocketOnly,
    /// Both (the default): clients may start on either, and polling sessions may upgrade.
    #[default]
    Both,
}

impl Transports {
    /// True when long-polling requests are accepted.
    pub fn polling(self) -> bool {
        matches!(self, Transports::PollingOnly | Transports::Both)
    }

    /// True when WebSocket requests are accepted.
    pub fn websocket(self) -> bool {
        matches!(self, Transports::WebsocketOnly | Transports::Both)
    }
}

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict`
    Strict,
    /// `SameSite=Lax`
    Lax,
    /// `SameSite=None` (browsers then require `Secure`)
    None,
}

/// A cookie holding the session id, set on the handshake response (for sticky load balancing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// Cookie name (the Node server uses `io`).
    pub name: String,
    /// `Path` attribute; `None` omits it.
    pub path: Option<String>,
    /// Adds `HttpOnly`.
    pub http_only: bool,
    /// `SameSite` attribute; `None` omits it.
    pub same_site: Option<SameSite>,
    /// Adds `Secure`.
    pub secure: bool,
    /// `Max-Age` attribute, in seconds; `None` makes a session cookie.
    pub max_age: Option<u64>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "io".into(),
            path: Some("/".into()),
            http_only: true,
            same_site: Some(SameSite::Lax),
            secure: false,
            max_age: None,
        }
    }
}

impl CookieConfig {
    /// The `Set-Cookie` header value for a session id.
    pub(crate) fn header_value(&self, sid: &str) -> String {
        let mut out = format!("{}={}", self.name, sid);
        if let Some(path) = &self.path {
            out.push_str("; Path=");
            out.push_str(path);
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if let Some(same_site) = self.same_site {
            out.push_str(match same_site {
                SameSite::Strict => "; SameSite=Strict",
                SameSite::Lax => "; SameSite=Lax",
                SameSite::None => "; SameSite=None",
            });
        }
        if self.secure {
            out.push_str("; Secure");
        }
        if let Some(max_age) = self.max_age {
            out.push_str(&format!("; Max-Age={max_age}"));
        }
        out
    }
}

/// A hook deciding whether a handshake request is admitted (origin checks, auth, rate limits).
///
/// It sees the request head of the handshake for both transports; returning `false` answers
/// `403 {"code":4,"message":"Forbidden"}` and opens no session.
pub type AllowRequest = Arc<dyn Fn(&http::request::Parts) -> bool + Send + Sync>;

/// Engine options. Build with [`EngineConfig::builder`]; `EngineConfig::default()` gives the
/// reference server's defaults at path `/engine.io/`.
#[derive(Clone)]
pub struct EngineConfig {
    pub(crate) path: String,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    pub(crate) max_payload: u64,
    pub(crate) transports: Transports,
    pub(crate) allow_upgrades: bool,
    pub(crate) upgrade_timeout: Duration,
    pub(crate) cookie: Option<CookieConfig>,
    pub(crate) allow_request: Option<AllowRequest>,
    pub(crate) allowed_origins: Option<Arc<[String]>>,
    pub(crate) max_queued_frames: usize,
    pub(crate) slow_reader_timeout: Duration,
    pub(crate) ws_read_buffer_size: usize,
    pub(crate) ws_write_buffer_size: usize,
    pub(crate) ws_max_fragments: u32,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) allow_eio3: bool,
    pub(crate) http_compression: Option<usize>,
    pub(crate) ws_deflate: Option<DeflateConfig>,
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("path", &self.path)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("max_payload", &self.max_payload)
            .field("transports", &self.transports)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("cookie", &self.cookie)
            .field("allow_request", &self.allow_request.is_some())
            .field("allowed_origins", &self.allowed_origins)
            .field("max_queued_frames", &self.max_queued_frames)
            .field("slow_reader_timeout", &self.slow_reader_timeout)
            .field("ws_read_buffer_size", &self.ws_read_buffer_size)
            .field("ws_write_buffer_size", &self.ws_write_buffer_size)
            .field("ws_max_fragments", &self.ws_max_fragments)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("allow_eio3", &self.allow_eio3)
            .field("http_compression", &self.http_compression)
            .field("ws_deflate", &self.ws_deflate)
            .finish()
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/engine.io/".into(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            transports: Transports::Both,
            allow_upgrades: true,
            upgrade_timeout: Duration::from_secs(10),
            cookie: None,
            allow_request: None,
            allowed_origins: None,
            max_queued_frames: 1024,
            slow_reader_timeout: Duration::from_secs(20),
            ws_read_buffer_size: 256,
            ws_write_buffer_size: 16 * 1024,
            ws_max_fragments: 16_384,
            shutdown_timeout: Duration::from_secs(5),
            allow_eio3: false,
            http_compression: Some(1024),
            ws_deflate: None,
        }
    }
}

impl EngineConfig {
    /// False when an origin allow-list is set and the request's `Origin` is not on it.
    pub(crate) fn origin_allowed(&self, headers: &http::HeaderMap) -> bool {
        let (Some(list), Some(origin)) = (&self.allowed_origins, headers.get(http::header::ORIGIN))
        else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.trim().trim_end_matches('/');
        list.iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }

    /// Starts a builder from the defaults.
    pub fn builder() -> EngineConfigBuilder {
        EngineConfigBuilder {
            config: EngineConfig::default(),
        }
    }

    /// The path the engine answers (always with a trailing slash).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Time between two server pings.
    pub fn ping_interval(&self) -> Duration {
        self.ping_interval
    }

    /// Time the server waits for a pong after a ping.
    pub fn ping_timeout(&self) -> Duration {
        self.ping_timeout
    }

    /// Largest accepted polling body or WebSocket message, in bytes.
    pub fn max_payload(&self) -> u64 {
        self.max_payload
    }

    /// The accepted transports.
    pub fn transports(&self) -> Transports {
        self.transports
    }

    /// Whether Engine.IO v3 clients are accepted (`allow_eio3`, crate feature `eio3`).
    pub fn allow_eio3(&self) -> bool {
        self.allow_eio3
    }

    /// The size from which polling answers are compressed, `None` when HTTP compression is
    /// off.
    pub fn http_compression(&self) -> Option<usize> {
        self.http_compression
    }

    /// The WebSocket permessage-deflate options, `None` when it is off (the default).
    pub fn ws_deflate(&self) -> Option<&DeflateConfig> {
        self.ws_deflate.as_ref()
    }

    /// The bound of each session's outgoing queue, in frames.
    pub fn max_queued_frames(&self) -> usize {
        self.max_queued_frames
    }

    pub(crate) fn max_payload_usize(&self) -> usize {
        usize::try_from(self.max_payload).unwrap_or(usize::MAX)
    }
}

/// Builder of [`EngineConfig`].
#[derive(Debug, Clone)]
pub struct EngineConfigBuilder {
    config: EngineConfig,
}

impl EngineConfigBuilder {
    /// Path under which requests are Engine.IO requests (default `/engine.io/`; `sockeye` uses
    /// `/socket.io/`). A trailing slash is added when missing; only that exact path matches.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let mut path = path.into();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        if !path.ends_with('/') {
            path.push('/');
        }
        self.config.path = path;
        self
    }

    /// Time between two server pings (default 25 s). The first ping goes out exactly one
    /// interval after the handshake.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.config.ping_interval = interval;
        self
    }

    /// Time the server waits for a pong before it closes the session (default 20 s).
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.config.ping_timeout = timeout;
        self
    }

    /// Largest polling POST body and WebSocket message, in bytes (default 1 000 000). It is
    /// announced in the handshake; over it the session is closed (413 / WebSocket close 1009).
    pub fn max_payload(mut self, bytes: u64) -> Self {
        self.config.max_payload = bytes.max(1);
        self
    }

    /// Accepted transports (default both).
    pub fn transports(mut self, transports: Transports) -> Self {
        self.config.transports = transports;
        self
    }

    /// Whether polling sessions may upgrade to WebSocket (default true).
    pub fn allow_upgrades(mut self, allow: bool) -> Self {
        self.config.allow_upgrades = allow;
        self
    }

    /// Time a WebSocket upgrade may take from its HTTP request to the UPGRADE packet (default
    /// 10 s); past it the WebSocket is closed and the session stays on polling.
    pub fn upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.config.upgrade_timeout = timeout;
        self
    }

    /// Sets a session cookie on handshake responses (off by default).
    pub fn cookie(mut self, cookie: CookieConfig) -> Self {
        self.config.cookie = Some(cookie);
        self
    }

    /// Admission hook run on every handshake request (both transports); `false` refuses it
    /// with 403 Forbidden.
    pub fn allow_request<F>(mut self, hook: F) -> Self
    where
        F: Fn(&http::request::Parts) -> bool + Send + Sync + 'static,
    {
        self.config.allow_request = Some(Arc::new(hook));
        self
    }

    /// Browser origins allowed to use the engine (exact `scheme://host[:port]`, compared
    /// without case). When set, every request that carries an `Origin` header not in the list
    /// (polling handshakes and requests, WebSocket handshakes and upgrades alike: CORS does
    /// not protect WebSockets) is refused with 403 `{"code":4,"message":"Forbidden"}`;
    /// requests without `Origin` (non-browser clients) are unaffected. A `*` entry is ignored
    /// with a warning: a wildcard admits every site to the user's cookies, so list origins.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list: Vec<String> = origins
            .into_iter()
            .map(Into::into)
            .filter(|o| {
                let wildcard = o.trim() == "*";
                if wildcard {
                    tracing::warn!("allowed_origins: `*` ignored; list the allowed origins");
                }
                !wildcard
            })
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .collect();
        self.config.allowed_origins = Some(list.into());
        self
    }

    /// Bound of each session's outgoing queue, in frames (default 1024). See the crate docs
    /// for what happens when it is reached.
    pub fn max_queued_frames(mut self, frames: usize) -> Self {
        self.config.max_queued_frames = frames.max(2);
        self
    }

    /// How long inbound reading may stay paused because the client does not read what it is
    /// sent, before the session is closed as a slow reader (default 20 s).
    pub fn slow_reader_timeout(mut self, timeout: Duration) -> Self {
        self.config.slow_reader_timeout = timeout;
        self
    }

    /// Read buffer of each WebSocket connection, in bytes (default and minimum 256; it grows
    /// for large messages, up to `max_payload`). It is touched at the first read, so it is a
    /// large part of an idle client's memory. It no longer bounds the size of a socket read:
    /// once a read fills it, the connection reads up to 64 KiB at a time through a buffer
    /// shared by the runtime thread, so a large message still takes one or two `read` calls.
    /// tungstenite still takes the bytes in chunks of this size: with mostly multi-KiB
    /// messages, 1024 costs ~6 % fewer instructions per 4 KiB or 64 KiB message for ~0.85 KiB
    /// more per idle client (`docs/benchmarks.md`, issue 19).
    pub fn ws_read_buffer_size(mut self, bytes: usize) -> Self {
        self.config.ws_read_buffer_size = bytes.max(256);
        self
    }

    /// Bytes a WebSocket writer gathers before writing to the socket (default 16 KiB; every
    /// batch is flushed anyway). 0 makes one `write` call per frame: a broadcast burst then
    /// costs a syscall per queued frame per client (about 6x fewer deliveries per CPU-second
    /// broadcasting to 1 000 clients, `docs/benchmarks.md`). The buffer starts empty, so idle
    /// clients pay nothing for it.
    pub fn ws_write_buffer_size(mut self, bytes: usize) -> Self {
        self.config.ws_write_buffer_size = bytes;
        self
    }

    /// Most frames one WebSocket message may arrive in, zero-length continuation frames
    /// included (default 16 384, at least 1). A message with more closes the session with
    /// [`crate::CloseReason::PayloadTooLarge`] and close code 1009. `max_payload` bounds the
    /// sum of the fragments' sizes; this bounds their number, which a flood of empty
    /// continuation frames would otherwise keep growing without adding a byte.
    pub fn ws_max_fragments(mut self, fragments: u32) -> Self {
        self.config.ws_max_fragments = fragments.max(1);
        self
    }

    /// How long [`crate::Engine::close`] waits for sessions to finish (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// Also accepts Engine.IO v3 clients (`EIO=3`: the JavaScript clients 2.x, and other
    /// clients of that protocol), as the reference server's `allowEIO3` (default false: a v3
    /// handshake gets 400 "Unsupported protocol version"). Their sessions follow v3: the
    /// client pings and the server answers (a session without a client PING for
    /// `ping_interval + ping_timeout` is closed as `PingTimeout`), polling payloads count
    /// UTF-16 code units, binary goes out as `b4` + base64 or, when the client did not ask for
    /// `b64=1`, as XHR2 binary payloads, and JSONP polling (query parameter `j`) is served.
    /// Only `EIO=3` selects v3; a missing or other `EIO` is still refused (the reference takes
    /// anything but `4` for 3).
    #[cfg(feature = "eio3")]
    pub fn allow_eio3(mut self, allow: bool) -> Self {
        self.config.allow_eio3 = allow;
        self
    }

    /// HTTP compression of polling answers (GET payloads): `Some(threshold)` compresses every
    /// answer of at least `threshold` bytes with the best coding the client's
    /// `Accept-Encoding` allows (gzip, brotli or deflate); `None` turns it off. Default
    /// `Some(1024)`, on as in the reference server. POST answers (`ok`) and errors are never
    /// compressed.
    pub fn http_compression(mut self, threshold: Option<usize>) -> Self {
        self.config.http_compression = threshold;
        self
    }

    /// WebSocket permessage-deflate (RFC 7692), negotiated with clients that offer it
    /// (browsers, the Node `ws` client): `Some(config)` turns it on, `None` (the default, as in
    /// the reference server) leaves it off. Outgoing messages of at least `config.threshold`
    /// bytes are compressed when that makes them smaller. Incoming compressed messages are
    /// inflated with `max_payload` as the limit of the *inflated* size: a deflate bomb closes
    /// its connection with 1009 ([`crate::CloseReason::PayloadTooLarge`]) after at most
    /// `max_payload` bytes of output, however it is fragmented. Without context takeover (the
    /// default both ways) an idle connection holds no compression state; with it, each
    /// connection keeps an inflater (about 43 KiB) and/or a compressor (a few hundred KiB).
    pub fn ws_deflate(mut self, config: Option<DeflateConfig>) -> Self {
        self.config.ws_deflate = config;
        self
    }

    /// The finished configuration.
    pub fn build(self) -> EngineConfig {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_normalised() {
        assert_eq!(
            EngineConfig::builder().path("socket.io").build().path(),
            "/socket.io/"
        );
        assert_eq!(EngineConfig::builder().path("/x/").build().path(), "/x/");
    }

    #[test]
    fn cookie_header_has_attributes() {
        let cookie = CookieConfig {
            secure: true,
            max_age: Some(60),
            ..CookieConfig::default()
        };
        assert_eq!(
            cookie.header_value("abc"),
            "io=abc; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=60"
        );
    }
}
