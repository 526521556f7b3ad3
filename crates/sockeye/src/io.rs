//! The server handle [`SocketIo`], its builder and namespace registration.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sockeye_engine::{
    Engine, EngineConfig, EngineConfigBuilder, EngineLayer, EngineService, NotFound, Transports,
};
use sockeye_protocol::socketio::{Limits, ParserKind, Str};

use crate::adapter::{AdapterFactory, MemoryAdapterFactory};
use crate::client::SocketIoHandler;
use crate::config::Config;
use crate::error::{EmitError, NamespaceNotFound, RegisterError};
use crate::handler::{
    ConnectHandler, ConnectMiddleware, DisconnectHandler, EventHandler, EventMiddleware,
};
use crate::id::SocketId;
use crate::ns::{Namespace, Route, SharedHandlers};
use crate::operators::{BroadcastOperator, IntoRooms};
use crate::packet::{Args, BroadcastPacket};
use crate::pattern::NsPattern;
use crate::registry::{self, Matcher, SharedRegistry};
use crate::socket::SocketRef;

/// The tower layer serving Socket.IO under the configured path (default `/socket.io/`).
pub type SocketIoLayer = EngineLayer<SocketIoHandler>;

/// The standalone tower service: Socket.IO under the path, 404 elsewhere.
pub type SocketIoService = EngineService<NotFound, SocketIoHandler>;

pub(crate) struct ServerInner {
    pub(crate) config: Arc<Config>,
    pub(crate) registry: SharedRegistry,
    pub(crate) factory: Arc<dyn AdapterFactory>,
}

/// The server handle: register namespaces, emit, look sockets up. Cheap to clone.
#[derive(Clone)]
pub struct SocketIo {
    inner: Arc<ServerInner>,
    engine: Engine<SocketIoHandler>,
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo")
            .field("namespaces", &self.namespaces())
            .finish_non_exhaustive()
    }
}

impl SocketIo {
    /// A builder with the defaults of the official server (path `/socket.io/`, ping every
    /// 25 s, 20 s ping timeout, 1 MB max payload, 45 s connect timeout).
    pub fn builder() -> SocketIoBuilder {
        SocketIoBuilder::default()
    }

    /// Registers static namespace `name` (a leading `/` is added if missing) with its connect
    /// handler, and returns the handle to register its event handlers. Registering the same
    /// name again replaces the connect handler and keeps the other handlers.
    pub fn ns<H: ConnectHandler>(&self, name: &str, handler: H) -> NsHandle {
        let name = normalize(name);
        let handlers = registry::write(&self.inner.registry).fixed_handlers(
            &name,
            &self.inner.config,
            self.inner.factory.as_ref(),
        );
        handlers.write().connect = Some(Arc::new(handler));
        NsHandle { handlers }
    }

    /// Registers dynamic namespaces matching `pattern` (`/room-{id}`: each `{name}` matches one
    /// or more characters other than `/`). Each matching name becomes its own namespace (own
    /// sockets and rooms) on first connect and is removed when its last socket leaves; all
    /// share the handlers registered on the returned handle. Captures are in
    /// [`SocketRef::ns_params`].
    pub fn dyn_ns<H: ConnectHandler>(
        &self,
        pattern: &str,
        handler: H,
    ) -> Result<NsHandle, RegisterError> {
        let pattern = NsPattern::parse(pattern)?;
        Ok(self.add_dynamic(Matcher::Pattern(pattern), handler))
    }

    /// Registers dynamic namespaces whose name satisfies `predicate`. See
    /// [`SocketIo::dyn_ns`].
    pub fn dyn_ns_fn<P, H>(&self, predicate: P, handler: H) -> NsHandle
    where
        P: Fn(&str) -> bool + Send + Sync + 'static,
        H: ConnectHandler,
    {
        self.add_dynamic(Matcher::Predicate(Arc::new(predicate)), handler)
    }

    /// Registers a catch-all: any namespace that matches nothing else is accepted (static
    /// namespaces and earlier dynamic registrations are tried first).
    pub fn ns_any<H: ConnectHandler>(&self, handler: H) -> NsHandle {
        self.dyn_ns_fn(|_| true, handler)
    }

    fn add_dynamic<H: ConnectHandler>(&self, matcher: Matcher, handler: H) -> NsHandle {
        let handlers = registry::write(&self.inner.registry).add_dynamic(matcher);
        handlers.write().connect = Some(Arc::new(handler));
        NsHandle { handlers }
    }

    /// An operator on namespace `name` (static, or a live dynamic one).
    pub fn of(&self, name: &str) -> Result<BroadcastOperator, NamespaceNotFound> {
        let ns = self.namespace(name)?;
        Ok(BroadcastOperator::new(ns, self.inner.config.ack_timeout))
    }

    /// Emits to every socket of the main namespace `/`.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.of("/")?.emit(event, data)
    }

    /// Sends `data` as a `message` event to every socket of the main namespace `/`.
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), EmitError> {
        self.of("/")?.send(data)
    }

    /// An operator on rooms of the main namespace `/`.
    pub fn to(&self, rooms: impl IntoRooms) -> Result<BroadcastOperator, NamespaceNotFound> {
        Ok(self.of("/")?.to(rooms))
    }

    /// Sends `event` with one argument to namespace `ns` on every *other* server of the
    /// cluster (JS `serverSideEmit`); a no-op with the in-memory adapter.
    pub async fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        ns: &str,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        let packet = self.server_packet(ns, event, data)?;
        let adapter = self.namespace(ns)?.adapter().clone();
        Ok(adapter.server_side_emit(packet).await?)
    }

    /// Like [`SocketIo::server_side_emit`], collecting each other server's answer within
    /// `timeout` (an empty stream with the in-memory adapter).
    pub async fn server_side_emit_with_ack<T: Serialize + ?Sized>(
        &self,
        ns: &str,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<crate::adapter::AckStream, EmitError> {
        let packet = self.server_packet(ns, event, data)?;
        let adapter = self.namespace(ns)?.adapter().clone();
        Ok(adapter.server_side_emit_with_ack(packet, timeout).await?)
    }

    /// Handles the events other servers of the cluster send to namespace `ns` with
    /// `server_side_emit(_with_ack)` (JS `io.of(ns).on(event, (...args, cb) => ..)` for
    /// server-side events): the handler gets the event name, its arguments and, when the sender
    /// waits for answers, a [`crate::ServerAck`] to answer once. The cluster adapter delivers
    /// them (through [`crate::adapter::LocalNamespace::server_event`]); with the in-memory
    /// adapter none ever arrive. Replaces the previous handler of `ns`; for a dynamic
    /// namespace, applies to every namespace of its registration.
    ///
    /// The handler runs on the adapter's receiving task: it must not block (spawn for anything
    /// slow). Fails when `ns` does not exist.
    pub fn on_server_event<F>(&self, ns: &str, handler: F) -> Result<(), NamespaceNotFound>
    where
        F: Fn(crate::ServerEvent) + Send + Sync + 'static,
    {
        let namespace = self.namespace(ns)?;
        namespace.handlers.write().server_event = Some(Arc::new(handler));
        Ok(())
    }

    fn server_packet<T: Serialize + ?Sized>(
        &self,
        ns: &str,
        event: &str,
        data: &T,
    ) -> Result<BroadcastPacket, EmitError> {
        crate::reserved::check(event)?;
        let args = Args::from_value(data).map_err(|e| EmitError::Serialize(e.to_string()))?;
        Ok(BroadcastPacket {
            ns: Str::from(normalize(ns).as_str()),
            event: Str::from(event),
            args,
        })
    }

    fn namespace(&self, name: &str) -> Result<Arc<Namespace>, NamespaceNotFound> {
        registry::read(&self.inner.registry)
            .get(&normalize(name))
            .ok_or_else(|| NamespaceNotFound(name.to_owned()))
    }

    /// The socket `id` of namespace `ns`, if it is connected to this node.
    pub fn get_socket(&self, ns: &str, id: &SocketId) -> Option<SocketRef> {
        registry::read(&self.inner.registry)
            .get(&normalize(ns))?
            .get(id)
    }

    /// The connection-state recovery counters of namespace `ns`; `None` when the namespace
    /// does not exist or does not recover sessions (recovery off, or an adapter without it).
    pub fn recovery_stats(&self, ns: &str) -> Option<crate::RecoveryStats> {
        let ns = registry::read(&self.inner.registry).get(&normalize(ns))?;
        ns.recovery().map(|log| log.stats())
    }

    /// The names of every existing namespace (static and live dynamic), sorted.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = registry::read(&self.inner.registry)
            .all()
            .iter()
            .map(|ns| ns.name.as_str().to_owned())
            .collect();
        names.sort();
        names
    }

    /// Disconnects every socket of every namespace on this node (each gets DISCONNECT and its
    /// disconnect handler runs with `ServerDisconnect`); Engine.IO sessions stay open.
    pub fn disconnect_all(&self) {
        let namespaces = registry::read(&self.inner.registry).all();
        for ns in namespaces {
            for socket in ns.sockets() {
                socket.disconnect();
            }
        }
    }

    /// Graceful shutdown: refuses new sessions, closes every session (disconnect handlers run
    /// with [`crate::DisconnectReason::ServerShutdown`]), waits for them up to the engine's
    /// `shutdown_timeout`, then closes every namespace's adapter.
    pub async fn close(&self) {
        self.engine.close().await;
        let namespaces = registry::read(&self.inner.registry).all();
        for ns in namespaces {
            if let Err(e) = ns.adapter().close().await {
                tracing::warn!(ns = %ns.name.as_str(), error = %e, "adapter did not close cleanly");
            }
        }
    }

    /// The underlying Engine.IO server (session count, config).
    pub fn engine(&self) -> &Engine<SocketIoHandler> {
        &self.engine
    }

    /// A layer serving this server, to wrap an application (axum router, tower service).
    pub fn layer(&self) -> SocketIoLayer {
        self.engine.layer()
    }

    /// A standalone service serving this server (404 outside the path), for bare hyper.
    pub fn service(&self) -> SocketIoService {
        self.engine.service()
    }
}

fn normalize(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}

/// Registers the handlers of a namespace (or of a dynamic registration). Handlers are stored
/// once, as `Arc<dyn ...>`, and shared by every socket.
#[derive(Clone)]
pub struct NsHandle {
    handlers: Arc<SharedHandlers>,
}

impl std::fmt::Debug for NsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NsHandle").finish_non_exhaustive()
    }
}

impl NsHandle {
    /// Handles event `event`; its events run in arrival order with the socket's other events.
    pub fn on<H: EventHandler>(self, event: &str, handler: H) -> NsHandle {
        self.route(event, handler, false)
    }

    /// Handles event `event`, each occurrence in its own task, concurrently with the socket's
    /// other events (still bounded by the socket's inbox capacity).
    pub fn on_concurrent<H: EventHandler>(self, event: &str, handler: H) -> NsHandle {
        self.route(event, handler, true)
    }

    fn route<H: EventHandler>(self, event: &str, handler: H, concurrent: bool) -> NsHandle {
        self.handlers.write().events.insert(
            event.to_owned(),
            Route {
                handler: Arc::new(handler),
                concurrent,
            },
        );
        self
    }

    /// Handles every event that has no handler of its own (`event.name` says which).
    pub fn on_any<H: EventHandler>(self, handler: H) -> NsHandle {
        self.handlers.write().any = Some(Route {
            handler: Arc::new(handler),
            concurrent: false,
        });
        self
    }

    /// Runs when a socket leaves, after its queued events; its rooms, session and extensions
    /// are still there.
    pub fn on_disconnect<H: DisconnectHandler>(self, handler: H) -> NsHandle {
        self.handlers.write().disconnect = Some(Arc::new(handler));
        self
    }

    /// Adds a connect middleware (runs before the connect handler, in order; may refuse).
    pub fn use_connect<M: ConnectMiddleware>(self, middleware: M) -> NsHandle {
        self.handlers.write().connect_mw.push(Arc::new(middleware));
        self
    }

    /// Adds an event middleware (runs before each event's handler, in order; may reject).
    pub fn use_event<M: EventMiddleware>(self, middleware: M) -> NsHandle {
        self.handlers.write().event_mw.push(Arc::new(middleware));
        self
    }

    /// Lets every event of this namespace run concurrently (see [`NsHandle::on_concurrent`]).
    pub fn concurrent(self, concurrent: bool) -> NsHandle {
        self.handlers.write().concurrent = concurrent;
        self
    }
}

/// Builds a [`SocketIo`] and its layer or service.
#[must_use]
pub struct SocketIoBuilder {
    engine: EngineConfigBuilder,
    config: Config,
    max_payload: u64,
    factory: Arc<dyn AdapterFactory>,
}

impl Default for SocketIoBuilder {
    fn default() -> Self {
        SocketIoBuilder {
            engine: EngineConfig::builder()
                .path("/socket.io/")
                .ping_interval(Duration::from_secs(25))
                .ping_timeout(Duration::from_secs(20)),
            config: Config::default(),
            max_payload: 1_000_000,
            factory: Arc::new(MemoryAdapterFactory),
        }
    }
}

impl std::fmt::Debug for SocketIoBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SocketIoBuilder {
    /// The URL path served (default `/socket.io/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.engine = self.engine.path(path);
        self
    }

    /// Time between two server pings (default 25 s).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.engine = self.engine.ping_interval(interval);
        self
    }

    /// How long the server waits for a pong (default 20 s).
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.engine = self.engine.ping_timeout(timeout);
        self
    }

    /// Largest message or polling body accepted, in bytes (default 1 000 000); also bounds
    /// a Socket.IO packet with its attachments.
    pub fn max_payload(mut self, bytes: u64) -> Self {
        self.engine = self.engine.max_payload(bytes);
        self.max_payload = bytes;
        self
    }

    /// The transports offered (default polling and WebSocket).
    pub fn transports(mut self, transports: Transports) -> Self {
        self.engine = self.engine.transports(transports);
        self
    }

    /// Any other engine setting.
    pub fn engine(mut self, f: impl FnOnce(EngineConfigBuilder) -> EngineConfigBuilder) -> Self {
        self.engine = f(self.engine);
        self
    }

    /// A session with no namespace connected after this long is closed (default 45 s). Also
    /// bounds the connect step (middlewares plus handler) of each socket.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Longest wait for the binary attachments of a packet after its header (default 30 s):
    /// past it the session is closed (`ParseError`), so a client cannot park a partial packet
    /// (up to `max_packet_size` bytes) for the life of its session.
    pub fn attachment_timeout(mut self, timeout: Duration) -> Self {
        self.config.attachment_timeout = timeout;
        self
    }

    /// python-socketio's `always_connect` (default off). Off, the CONNECT reply waits for the
    /// connect middlewares and handler, and a refusal is a CONNECT_ERROR. On, the reply is
    /// sent first, so emits from the connect handler go out at once; a refusal (or a timeout
    /// or panic of the connect step) is then a DISCONNECT packet: the client sees connect,
    /// then disconnect. The refusal's message and data are not sent (a DISCONNECT carries no
    /// payload) and the disconnect handler does not run, as for any refusal.
    pub fn always_connect(mut self, on: bool) -> Self {
        self.config.always_connect = on;
        self
    }

    /// Default timeout of [`SocketRef::call_default`] and of broadcasts with ack (default 60 s).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.config.ack_timeout = timeout;
        self
    }

    /// Events of one socket that may wait for (or run in) their handlers at once (default 64).
    pub fn inbox_capacity(mut self, events: usize) -> Self {
        self.config.inbox_capacity = events.max(1);
        self
    }

    /// How long reading from a client waits for room in its full inbox before the client is
    /// closed (default 10 s). Keep it below the ping timeout: the client's pongs are not read
    /// meanwhile.
    pub fn inbox_timeout(mut self, timeout: Duration) -> Self {
        self.config.inbox_timeout = timeout;
        self
    }

    /// Decoder limits (attachments, depth, ack id, namespace length). The packet size limit
    /// is capped at `max_payload`.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// The wire format (default JSON).
    pub fn parser(mut self, parser: ParserKind) -> Self {
        self.config.parser = parser;
        self
    }

    /// Enables connection-state recovery (Socket.IO v4.6+; off by default, and when off nothing
    /// changes on the wire). A client whose transport dropped and that comes back within
    /// `max_disconnection_duration` gets its socket back (same id, rooms and session value)
    /// and the packets it missed, in order; [`SocketRef::recovered`] is then true.
    ///
    /// Every CONNECT reply then carries a private `pid`, and every event packet sent without
    /// ack and not volatile carries its offset as its last argument (clients see it as one
    /// more argument, as with the official server). The in-memory adapter supports it; with
    /// an adapter that does not (the classic Redis adapter), `build` logs a warning and
    /// recovery stays off. See `docs/server.md`.
    pub fn connection_state_recovery(mut self, config: crate::RecoveryConfig) -> Self {
        self.config.recovery = Some(config);
        self
    }

    /// The adapter factory (default: in-memory).
    pub fn adapter<F: AdapterFactory>(mut self, factory: F) -> Self {
        self.factory = Arc::new(factory);
        self
    }

    /// Builds the server; the main namespace `/` always exists.
    pub fn build(mut self) -> SocketIo {
        let payload = usize::try_from(self.max_payload).unwrap_or(usize::MAX);
        self.config.limits.max_packet_size = self.config.limits.max_packet_size.min(payload).max(1);
        let inner = Arc::new(ServerInner {
            config: Arc::new(self.config),
            registry: SharedRegistry::default(),
            factory: self.factory,
        });
        registry::write(&inner.registry).fixed_handlers("/", &inner.config, inner.factory.as_ref());
        if inner.config.recovery.is_some()
            && registry::read(&inner.registry)
                .get("/")
                .is_some_and(|ns| ns.recovery().is_none())
        {
            tracing::warn!(
                "connection-state recovery is enabled but the adapter cannot recover sessions: \
                 recovery stays off (CONNECT replies carry no pid; use the in-memory adapter)"
            );
        }
        let handler = SocketIoHandler {
            server: inner.clone(),
        };
        let engine = Engine::new(handler, self.engine.build());
        SocketIo { inner, engine }
    }

    /// Builds the server and its tower layer.
    pub fn build_layer(self) -> (SocketIoLayer, SocketIo) {
        let io = self.build();
        (io.layer(), io)
    }

    /// Builds the server and a standalone tower service (404 outside the path).
    pub fn build_svc(self) -> (SocketIoService, SocketIo) {
        let io = self.build();
        (io.service(), io)
    }
}
