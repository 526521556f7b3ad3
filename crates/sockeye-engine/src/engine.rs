//! The shared core: configuration, handler, the sessions map, request dispatch and shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use http::{Method, Request, Response, StatusCode, header};
use http_body::Body;
use rand::RngCore;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::close::CloseReason;
use crate::compress::Encoding;
use crate::config::EngineConfig;
use crate::handler::EngineHandler;
use crate::http_util::{self, EngineBody, Query, RequestError};
use crate::payload::{AnswerStyle, Protocol};
use crate::service::{EngineLayer, EngineService, NotFound};
use crate::session::{Session, SessionInit, Transport, Upgrade};
use crate::{polling, ws};
use sockeye_protocol::engine::Message;

/// A boxed error, as request bodies report them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The peer address of a connection, put in request extensions by the server loop so that
/// [`Session::remote_addr`] can report it (a plain `SocketAddr` extension works too; with
/// feature `axum`, so does the `axum::extract::ConnectInfo<SocketAddr>` that
/// `into_make_service_with_connect_info::<SocketAddr>()` adds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// The Engine.IO server core, cheap to clone (an `Arc`): configuration, handler and sessions.
///
/// Mount it with [`Engine::layer`] (beside other routes) or [`Engine::service`] (alone).
pub struct Engine<H: EngineHandler> {
    pub(crate) inner: Arc<Inner<H>>,
}

impl<H: EngineHandler> Clone for Engine<H> {
    fn clone(&self) -> Self {
        Engine {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<H: EngineHandler> std::fmt::Debug for Engine<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .field("sessions", &self.session_count())
            .finish_non_exhaustive()
    }
}

/// A handle on an [`Engine`] that does not keep it alive (for what the engine itself owns,
/// such as its handler, to reach it without a reference cycle).
pub struct WeakEngine<H: EngineHandler> {
    inner: std::sync::Weak<Inner<H>>,
}

impl<H: EngineHandler> WeakEngine<H> {
    /// The engine, if it is still alive.
    pub fn upgrade(&self) -> Option<Engine<H>> {
        self.inner.upgrade().map(|inner| Engine { inner })
    }
}

impl<H: EngineHandler> Clone for WeakEngine<H> {
    fn clone(&self) -> Self {
        WeakEngine {
            inner: self.inner.clone(),
        }
    }
}

impl<H: EngineHandler> std::fmt::Debug for WeakEngine<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakEngine").finish_non_exhaustive()
    }
}

type Map<D> = HashMap<Box<str>, Arc<Session<D>>>;
pub(crate) type SessionMap<D> = RwLock<Map<D>>;

pub(crate) struct Inner<H: EngineHandler> {
    pub(crate) config: EngineConfig,
    pub(crate) handler: H,
    sessions: SessionMap<H::Data>,
    pub(crate) tracker: TaskTracker,
    shutting_down: AtomicBool,
}

impl<H: EngineHandler> Engine<H> {
    /// A new engine with its handler and options.
    pub fn new(handler: H, config: EngineConfig) -> Engine<H> {
        Engine {
            inner: Arc::new(Inner {
                config,
                handler,
                sessions: RwLock::new(HashMap::new()),
                tracker: TaskTracker::new(),
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    /// A handle that does not keep the engine alive.
    pub fn downgrade(&self) -> WeakEngine<H> {
        WeakEngine {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// The options the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The handler given to [`Engine::new`].
    pub fn handler(&self) -> &H {
        &self.inner.handler
    }

    /// The open session with this id, if any.
    pub fn session(&self, sid: &str) -> Option<Arc<Session<H::Data>>> {
        self.inner.get(sid)
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.inner.read_map().len()
    }

    /// A tower layer that answers requests under the engine path and passes every other
    /// request to the wrapped service.
    pub fn layer(&self) -> EngineLayer<H> {
        EngineLayer::new(self.clone())
    }

    /// A standalone service: the engine path, and 404 for everything else.
    pub fn service(&self) -> EngineService<NotFound, H> {
        EngineService::new(NotFound, self.clone())
    }

    /// True when a request for this URI path is an Engine.IO request.
    pub fn matches(&self, path: &str) -> bool {
        let own = self.inner.config.path.as_str();
        path == own || Some(path) == own.strip_suffix('/')
    }

    /// Graceful shutdown: refuses new handshakes, closes every session (they are told so),
    /// and waits for their tasks up to `shutdown_timeout`; sessions still running after it
    /// are finalised anyway so that `on_close` runs exactly once for each.
    pub async fn close(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        let sessions: Vec<_> = self.inner.read_map().values().cloned().collect();
        tracing::info!(sessions = sessions.len(), "engine shutting down");
        for session in &sessions {
            session.close(CloseReason::ServerShutdown);
        }
        self.inner.tracker.close();
        let deadline = self.inner.config.shutdown_timeout;
        if tokio::time::timeout(deadline, self.inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                ?deadline,
                "sessions still running after the shutdown deadline"
            );
        }
        let left: Vec<_> = self.inner.read_map().values().cloned().collect();
        for session in &left {
            self.inner.finalize(session);
        }
    }

    /// Answers one Engine.IO request (the caller checked [`Engine::matches`]).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<EngineBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let inner = &self.inner;
        let config = &inner.config;
        if !config.origin_allowed(req.headers()) {
            tracing::debug!(origin = ?req.headers().get(http::header::ORIGIN), "origin not allowed");
            return RequestError::Forbidden.response();
        }
        let query = Query::parse(req.uri().query());
        let ws_request = ws::websocket_kind(&req).is_some();
        let transport = match query.transport {
            Some("polling") if config.transports.polling() => Transport::Polling,
            Some("websocket") if config.transports.websocket() => Transport::Websocket,
            _ => return RequestError::UnknownTransport.response(),
        };
        let Some(sid) = query.sid.map(str::to_owned) else {
            let protocol = self.protocol_of(query.eio);
            let style = self.answer_style(req.headers(), protocol, query.j);
            let b64 = query.b64.is_some();
            return self.handshake(req, transport, protocol, ws_request, (b64, style));
        };
        let Some(session) = inner.get(&sid) else {
            return RequestError::UnknownSid.response();
        };
        if session.heartbeat_expired(Instant::now()) {
            // Its heartbeat task may not have run yet; the session is over all the same.
            session.close(CloseReason::PingTimeout);
            return RequestError::UnknownSid.response();
        }
        let span =
            tracing::debug_span!("engine", sid = %session.sid(), transport = transport.as_str());
        match transport {
            Transport::Polling => {
                if ws_request || session.transport() != Transport::Polling {
                    return RequestError::BadRequest.response();
                }
                let style = self.answer_style(req.headers(), Some(session.protocol()), query.j);
                match *req.method() {
                    Method::GET => polling::get(inner, &session, style).instrument(span).await,
                    Method::POST => {
                        let kind = polling::PostKind {
                            binary: req
                                .headers()
                                .get(header::CONTENT_TYPE)
                                .is_some_and(|v| v.as_bytes() == b"application/octet-stream"),
                            jsonp: style.jsonp.is_some(),
                        };
                        polling::post(inner, &session, req.into_body(), kind)
                            .instrument(span)
                            .await
                    }
                    _ => RequestError::BadRequest.response(),
                }
            }
            Transport::Websocket => {
                if !ws_request || !config.allow_upgrades {
                    return RequestError::BadRequest.response();
                }
                {
                    let mut state = session.lock();
                    if state.closing.is_some() {
                        return RequestError::BadRequest.response();
                    }
                    if state.transport != Transport::Polling || state.upgrade != Upgrade::None {
                        drop(state);
                        return ws::accept(inner, req, ws::Mode::Refuse);
                    }
                    state.upgrade = Upgrade::Pending;
                }
                ws::accept(inner, req, ws::Mode::Upgrade(session))
            }
        }
    }

    /// The protocol a handshake's `EIO` asks for, if the engine accepts it.
    fn protocol_of(&self, eio: Option<&str>) -> Option<Protocol> {
        match eio {
            Some("4") => Some(Protocol::V4),
            #[cfg(feature = "eio3")]
            Some("3") if self.inner.config.allow_eio3 => Some(Protocol::V3),
            _ => None,
        }
    }

    /// How polling answers to this request are written: JSONP (v3 sessions only: a legacy
    /// transport whose answers any page can read with a `<script>` tag, so it is not offered
    /// to v4 clients, which never use it) and the HTTP compression the client accepts.
    fn answer_style(
        &self,
        headers: &http::HeaderMap,
        protocol: Option<Protocol>,
        j: Option<&str>,
    ) -> AnswerStyle {
        let config = &self.inner.config;
        let jsonp = match protocol {
            #[cfg(feature = "eio3")]
            Some(Protocol::V3) => j.map(Box::from),
            _ => {
                let _ = j;
                None
            }
        };
        AnswerStyle {
            jsonp,
            encoding: config
                .http_compression
                .and_then(|_| Encoding::negotiate(headers)),
            threshold: config.http_compression.unwrap_or(usize::MAX),
        }
    }

    fn handshake<B>(
        &self,
        req: Request<B>,
        transport: Transport,
        protocol: Option<Protocol>,
        ws_request: bool,
        (b64, style): (bool, AnswerStyle),
    ) -> Response<EngineBody> {
        let inner = &self.inner;
        if inner.shutting_down.load(Ordering::Acquire) {
            return http_util::status(StatusCode::SERVICE_UNAVAILABLE);
        }
        // GET, or an HTTP/2 extended CONNECT for a WebSocket (RFC 8441).
        let h2_websocket = ws::websocket_kind(&req) == Some(ws::Kind::Http2);
        if req.method() != Method::GET && !h2_websocket {
            return RequestError::BadHandshakeMethod.response();
        }
        let Some(protocol) = protocol else {
            return RequestError::UnsupportedProtocolVersion.response();
        };
        let open = Open {
            protocol,
            b64,
            style,
        };
        if ws_request != (transport == Transport::Websocket) {
            return RequestError::BadRequest.response();
        }
        if let Some(allow) = &inner.config.allow_request {
            let (parts, body) = req.into_parts();
            if !allow(&parts) {
                tracing::debug!(uri = %parts.uri, "handshake refused by allow_request");
                return RequestError::Forbidden.response();
            }
            return self.open(Request::from_parts(parts, body), transport, open);
        }
        self.open(req, transport, open)
    }

    fn open<B>(&self, req: Request<B>, transport: Transport, open: Open) -> Response<EngineBody> {
        match transport {
            Transport::Polling => {
                let (parts, _) = req.into_parts();
                polling::handshake(&self.inner, parts, open)
            }
            Transport::Websocket => {
                ws::accept(&self.inner, req, ws::Mode::Handshake(open.protocol))
            }
        }
    }
}

impl<H: EngineHandler> Inner<H> {
    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, Map<H::Data>> {
        self.sessions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, sid: &str) -> Option<Arc<Session<H::Data>>> {
        self.read_map().get(sid).cloned()
    }

    /// Creates and registers a session. The caller sends the OPEN packet, then calls
    /// `on_open` and starts the session's task.
    pub(crate) fn create_session(
        &self,
        sid: Box<str>,
        request: http::request::Parts,
        transport: Transport,
        (protocol, b64): (Protocol, bool),
    ) -> Arc<Session<H::Data>> {
        let remote_addr = remote_addr_of(&request);
        let session = Arc::new(Session::new(SessionInit {
            sid: sid.clone(),
            request,
            remote_addr,
            transport,
            protocol,
            b64,
            max_queued: self.config.max_queued_frames,
            ping_interval: self.config.ping_interval,
            ping_timeout: self.config.ping_timeout,
        }));
        self.sessions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(sid, Arc::clone(&session));
        tracing::debug!(sid = %session.sid(), transport = transport.as_str(), remote = ?remote_addr, "session opened");
        session
    }

    /// Removes the session and runs `on_close`, once, whoever calls first.
    pub(crate) fn finalize(&self, session: &Arc<Session<H::Data>>) {
        if !session.claim_finalize() {
            return;
        }
        let reason = {
            let mut state = session.lock();
            *state.closing.get_or_insert(CloseReason::TransportClose)
        };
        session.wake_all();
        {
            let mut map = self
                .sessions
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if map
                .get(session.sid())
                .is_some_and(|s| Arc::ptr_eq(s, session))
            {
                map.remove(session.sid());
            }
        }
        tracing::debug!(sid = %session.sid(), %reason, "session closed");
        let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.handler.on_close(session, reason);
        }));
        if closed.is_err() {
            tracing::error!(sid = %session.sid(), "on_close panicked");
        }
    }

    /// Runs `on_open`; a panic closes the session (`HandlerPanic`) and returns false.
    pub(crate) fn open_guarded(&self, session: &Arc<Session<H::Data>>) -> bool {
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.handler.on_open(session);
        }));
        if opened.is_err() {
            tracing::error!(sid = %session.sid(), "on_open panicked, closing the session");
            session.close(CloseReason::HandlerPanic);
            return false;
        }
        true
    }

    /// Runs `on_message`; a panic closes the session (`HandlerPanic`).
    pub(crate) async fn deliver(&self, session: &Arc<Session<H::Data>>, message: Message) {
        use futures_util::FutureExt;
        let handled = std::panic::AssertUnwindSafe(self.handler.on_message(session, message))
            .catch_unwind()
            .await;
        if handled.is_err() {
            tracing::error!(sid = %session.sid(), "on_message panicked, closing the session");
            session.close(CloseReason::HandlerPanic);
        }
    }

    /// Handshake data common to both transports.
    pub(crate) fn handshake_packet(
        &self,
        sid: &str,
        upgrades: bool,
    ) -> sockeye_protocol::engine::Packet {
        let config = &self.config;
        sockeye_protocol::engine::Packet::Open(sockeye_protocol::engine::Handshake {
            sid: sid.to_owned(),
            upgrades: if upgrades && config.allow_upgrades && config.transports.websocket() {
                vec!["websocket".to_owned()]
            } else {
                Vec::new()
            },
            ping_interval: millis(config.ping_interval),
            ping_timeout: millis(config.ping_timeout),
            max_payload: config.max_payload,
        })
    }

    /// The `Set-Cookie` header for a new session, when configured.
    pub(crate) fn cookie(&self, sid: &str) -> Option<http::HeaderValue> {
        let cookie = self.config.cookie.as_ref()?;
        http::HeaderValue::from_str(&cookie.header_value(sid)).ok()
    }
}

/// The peer address the server loop put in the request extensions, if any: a [`RemoteAddr`],
/// a plain `SocketAddr`, or (feature `axum`) axum's `ConnectInfo<SocketAddr>`.
pub(crate) fn remote_addr_of(parts: &http::request::Parts) -> Option<SocketAddr> {
    let ext = &parts.extensions;
    ext.get::<RemoteAddr>()
        .map(|r| r.0)
        .or_else(|| ext.get::<SocketAddr>().copied())
        .or_else(|| axum_connect_info(ext))
}

#[cfg(feature = "axum")]
fn axum_connect_info(ext: &http::Extensions) -> Option<SocketAddr> {
    ext.get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

#[cfg(not(feature = "axum"))]
fn axum_connect_info(_ext: &http::Extensions) -> Option<SocketAddr> {
    None
}

/// What a handshake settled: the session's protocol, v3's `b64`, and how to answer.
pub(crate) struct Open {
    pub(crate) protocol: Protocol,
    pub(crate) b64: bool,
    pub(crate) style: AnswerStyle,
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A fresh session id: 128 random bits from a CSPRNG, base64url without padding.
pub(crate) fn new_sid() -> Box<str> {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(raw)
        .into_boxed_str()
}
