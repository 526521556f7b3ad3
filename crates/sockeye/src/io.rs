//! The server handle [`SocketIo`], its builder and namespace registration.

use std::future::Future;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use serde::Serialize;
use sockeye_engine::{
    DeflateConfig, Engine, EngineConfig, EngineConfigBuilder, EngineService, NotFound, Transports,
    WeakEngine,
};
use sockeye_protocol::socketio::{Limits, ParserKind, Str};

use crate::adapter::{AckStream, AdapterFactory, MemoryAdapterFactory};
use crate::config::Config;
use crate::connection::SocketIoHandler;
use crate::error::{EmitError, NamespaceNotFound, RegisterError};
use crate::extract::Registration;
use crate::handler::class::{Class, NamespaceHandler};
use crate::handler::{ConnectHandler, DisconnectHandler, Erased, EventHandler, EventMiddleware};
use crate::id::SocketId;
use crate::layer::SocketIoLayer;
use crate::ns::{Namespace, NamespaceSpec, Route, SharedHandlers};
use crate::operators::{BroadcastOperator, IntoRooms};
use crate::packet::{Args, BroadcastPacket};
use crate::pattern::{NsParams, NsPattern};
use crate::recovery::{RecoveryConfig, RecoveryStats};
use crate::registry::{self, Matcher, SharedRegistry};
use crate::server_event::ServerEvent;
use crate::socket::SocketRef;

/// The standalone tower service: Socket.IO under the path, 404 elsewhere (for bare hyper).
pub type SocketIoService = EngineService<NotFound, SocketIoHandler>;

/// What the server is, apart from its engine: settings, namespaces, the adapter factory.
///
/// The engine's handler holds it strongly; namespaces hold it weakly, and it holds the engine
/// weakly, so that nothing the server owns keeps the server alive.
pub(crate) struct ServerCore {
    pub(crate) config: Arc<Config>,
    pub(crate) registry: SharedRegistry,
    pub(crate) factory: Arc<dyn AdapterFactory>,
    /// The main namespace `/`, which always exists.
    root: Arc<Namespace>,
    engine: OnceLock<WeakEngine<SocketIoHandler>>,
    me: Weak<ServerCore>,
}

impl ServerCore {
    pub(crate) fn new_namespace(&self, spec: NamespaceSpec) -> Arc<Namespace> {
        Namespace::new(
            spec,
            self.config.clone(),
            self.me.clone(),
            self.factory.as_ref(),
        )
    }

    /// The server handle, while the server is alive.
    pub(crate) fn handle(&self) -> Option<SocketIo> {
        let core = self.me.upgrade()?;
        let engine = self.engine.get()?.upgrade()?;
        Some(SocketIo { core, engine })
    }
}

/// The server: register namespaces and their handlers, emit, look sockets up, mount it on an
/// axum `Router` or any tower service. Cheap to clone.
///
/// Handlers reach it as an extractor (`io: SocketIo`), and axum HTTP handlers too with the
/// `axum` feature (the layer puts it in each request's extensions). Dropping the last handle
/// (and the layer and the services it made) frees the server: its engine, sessions, tasks and
/// adapters. [`SocketIo::close`] does it at once. A handler that captures a clone of the handle
/// keeps the server alive until `close`: take the `SocketIo` extractor instead.
#[derive(Clone)]
pub struct SocketIo {
    core: Arc<ServerCore>,
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
    ///
    /// # Panics
    ///
    /// When the handler takes an argument that can never be extracted, such as a `State<T>` of
    /// a type no state was registered for (see [`NsHandle::try_on`] for the same check without
    /// panicking).
    #[track_caller]
    pub fn ns<H: ConnectHandler<T>, T: 'static>(&self, name: &str, handler: H) -> NsHandle {
        // Checked before anything is registered: a refused handler leaves no namespace behind.
        registered(handler.check(&self.registration()));
        let name = normalize(name);
        let handlers = registry::write(&self.core.registry).fixed_handlers(&name, &self.core);
        self.handle(handlers).with_connect(handler)
    }

    /// Registers dynamic namespaces matching `pattern` (`/room-{id}`: each `{name}` matches one
    /// or more characters other than `/`). Each matching name becomes its own namespace (own
    /// sockets and rooms) on first connect and is removed when its last socket leaves; all
    /// share the handlers registered on the returned handle. Captures are in
    /// [`SocketRef::ns_params`].
    pub fn dyn_ns<H: ConnectHandler<T>, T: 'static>(
        &self,
        pattern: &str,
        handler: H,
    ) -> Result<NsHandle, RegisterError> {
        let pattern = NsPattern::parse(pattern)?;
        // Checked before the pattern is registered: on an error nothing is left that would
        // accept connections without this connect handler.
        handler.check(&self.registration())?;
        let handlers = registry::write(&self.core.registry).add_dynamic(Matcher::Pattern(pattern));
        self.handle(handlers).try_with_connect(handler)
    }

    /// Registers dynamic namespaces whose name satisfies `predicate`. See
    /// [`SocketIo::dyn_ns`].
    ///
    /// # Panics
    ///
    /// As [`SocketIo::ns`], when the handler takes an argument that can never be extracted.
    #[track_caller]
    pub fn dyn_ns_fn<P, H, T>(&self, predicate: P, handler: H) -> NsHandle
    where
        P: Fn(&str) -> bool + Send + Sync + 'static,
        H: ConnectHandler<T>,
        T: 'static,
    {
        registered(handler.check(&self.registration()));
        let handlers = registry::write(&self.core.registry)
            .add_dynamic(Matcher::Predicate(Arc::new(predicate)));
        self.handle(handlers).with_connect(handler)
    }

    /// Registers a catch-all: any namespace that matches nothing else is accepted (static
    /// namespaces and earlier dynamic registrations are tried first).
    #[track_caller]
    pub fn ns_any<H: ConnectHandler<T>, T: 'static>(&self, handler: H) -> NsHandle {
        self.dyn_ns_fn(|_| true, handler)
    }

    /// Registers namespace `name` served by a class-style handler (see [`NamespaceHandler`]).
    pub fn ns_class<N: NamespaceHandler>(&self, name: &str, handler: N) -> NsHandle {
        let name = normalize(name);
        let handlers = registry::write(&self.core.registry).fixed_handlers(&name, &self.core);
        let class = Arc::new(Class(Arc::new(handler)));
        {
            let mut h = handlers.write();
            h.connect = Some(class.clone());
            h.any = Some(Route {
                handler: class.clone(),
                concurrent: false,
            });
            h.disconnect = Some(class);
        }
        self.handle(handlers)
    }

    fn registration(&self) -> Registration<'_> {
        Registration {
            states: &self.core.config.states,
        }
    }

    fn handle(&self, handlers: Arc<SharedHandlers>) -> NsHandle {
        NsHandle {
            handlers,
            config: self.core.config.clone(),
        }
    }

    /// An operator on namespace `name` (static, or a live dynamic one).
    pub fn of(&self, name: &str) -> Result<BroadcastOperator, NamespaceNotFound> {
        Ok(BroadcastOperator::new(self.namespace(name)?))
    }

    /// An operator on the main namespace `/`.
    pub fn root(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.core.root.clone())
    }

    /// An operator on rooms of the main namespace `/`.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.root().to(rooms)
    }

    /// An operator on every socket of the main namespace `/` except those in `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.root().except(rooms)
    }

    /// Emits `event` with one argument to every socket of the main namespace `/`; resolves
    /// once every local recipient has it queued and the adapter accepted the rest.
    pub fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> impl Future<Output = Result<(), EmitError>> + Send + 'static {
        self.root().emit(event, data)
    }

    /// Sends `data` as a `message` event to every socket of the main namespace `/`.
    pub fn send<T: Serialize + ?Sized>(
        &self,
        data: &T,
    ) -> impl Future<Output = Result<(), EmitError>> + Send + 'static {
        self.root().send(data)
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
    ) -> Result<AckStream, EmitError> {
        let packet = self.server_packet(ns, event, data)?;
        let adapter = self.namespace(ns)?.adapter().clone();
        Ok(adapter.server_side_emit_with_ack(packet, timeout).await?)
    }

    /// How many servers of the cluster serve namespace `ns` (1 with the in-memory adapter).
    pub async fn server_count(&self, ns: &str) -> Result<usize, EmitError> {
        let adapter = self.namespace(ns)?.adapter().clone();
        Ok(adapter.server_count().await?)
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
        F: Fn(ServerEvent) + Send + Sync + 'static,
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
        Ok(BroadcastPacket::new(
            Str::from(normalize(ns).as_str()),
            Str::from(event),
            args,
        ))
    }

    fn namespace(&self, name: &str) -> Result<Arc<Namespace>, NamespaceNotFound> {
        registry::read(&self.core.registry)
            .get(&normalize(name))
            .ok_or_else(|| NamespaceNotFound(name.to_owned()))
    }

    /// The socket `id` of namespace `ns`, if it is connected to this node.
    pub fn get_socket(&self, ns: &str, id: &SocketId) -> Option<SocketRef> {
        registry::read(&self.core.registry)
            .get(&normalize(ns))?
            .get(id)
    }

    /// A clone of the state of type `T`, if one was registered with
    /// [`SocketIoBuilder::with_state`].
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.core.config.states.get()
    }

    /// The connection-state recovery counters of namespace `ns`; `None` when the namespace
    /// does not exist or does not recover sessions (recovery off, or an adapter without it).
    pub fn recovery_stats(&self, ns: &str) -> Option<RecoveryStats> {
        let ns = self.namespace(ns).ok()?;
        ns.recovers().then(|| ns.recovery_stats.snapshot())
    }

    /// The names of every existing namespace (static and live dynamic), sorted.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = registry::read(&self.core.registry)
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
        let namespaces = registry::read(&self.core.registry).all();
        for ns in namespaces {
            for socket in ns.sockets() {
                socket.disconnect();
            }
        }
    }

    /// Graceful shutdown: refuses new sessions, closes every session (disconnect handlers run
    /// with [`crate::DisconnectReason::ServerShutdown`]), waits for them up to the engine's
    /// `shutdown_timeout`, closes every namespace's adapter, then drops every handler and
    /// dynamic namespace (so a handler that captured this handle no longer keeps the server
    /// alive). The handle stays usable for reading; emits after `close` reach nobody, or fail.
    pub async fn close(&self) {
        self.engine.close().await;
        let namespaces = registry::read(&self.core.registry).all();
        for ns in &namespaces {
            if let Err(e) = ns.adapter().close().await {
                tracing::warn!(ns = %ns.name.as_str(), error = %e, "adapter did not close cleanly");
            }
        }
        drop(namespaces);
        let closed = registry::write(&self.core.registry).close();
        drop(closed);
    }

    /// Every namespace that exists on this node.
    #[cfg(feature = "admin")]
    pub(crate) fn local_namespaces(&self) -> Vec<Arc<Namespace>> {
        registry::read(&self.core.registry).all()
    }

    /// The underlying Engine.IO server (session count, config).
    pub fn engine(&self) -> &Engine<SocketIoHandler> {
        &self.engine
    }

    /// The layer to add to an axum `Router` (after its routes) or any tower service: serves
    /// Socket.IO under the path and passes other requests on, with this handle in their
    /// extensions.
    pub fn layer(&self) -> SocketIoLayer {
        SocketIoLayer::new(self.clone())
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
/// once and shared by every socket.
///
/// Not `#[must_use]`: the usual chain `io.ns(..).on(..).on_disconnect(..);` ends by dropping
/// it.
#[derive(Clone)]
pub struct NsHandle {
    handlers: Arc<SharedHandlers>,
    config: Arc<Config>,
}

impl std::fmt::Debug for NsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NsHandle").finish_non_exhaustive()
    }
}

/// Panics with the registration error: a handler that could never run is a programming error,
/// caught at startup.
#[track_caller]
fn registered<T>(result: Result<T, RegisterError>) -> T {
    match result {
        Ok(value) => value,
        #[allow(clippy::panic)]
        Err(e) => panic!("{e}"),
    }
}

impl NsHandle {
    fn registration(&self) -> Registration<'_> {
        Registration {
            states: &self.config.states,
        }
    }

    #[track_caller]
    fn with_connect<H: ConnectHandler<T>, T: 'static>(self, handler: H) -> NsHandle {
        registered(self.try_with_connect(handler))
    }

    fn try_with_connect<H: ConnectHandler<T>, T: 'static>(
        self,
        handler: H,
    ) -> Result<NsHandle, RegisterError> {
        handler.check(&self.registration())?;
        self.handlers.write().connect = Some(Erased::new(handler));
        Ok(self)
    }

    /// Handles event `event`; a socket's events run one at a time, in arrival order.
    ///
    /// # Panics
    ///
    /// When the handler takes an argument that can never be extracted (see
    /// [`NsHandle::try_on`]).
    #[track_caller]
    pub fn on<H: EventHandler<T>, T: 'static>(self, event: &str, handler: H) -> NsHandle {
        registered(self.try_on(event, handler))
    }

    /// Like [`NsHandle::on`], returning the registration error instead of panicking: for
    /// instance [`RegisterError::MissingState`] for a `State<T>` argument of a type no state
    /// was registered for.
    pub fn try_on<H: EventHandler<T>, T: 'static>(
        self,
        event: &str,
        handler: H,
    ) -> Result<NsHandle, RegisterError> {
        self.route(Some(event), handler, false)
    }

    /// Handles event `event`, each occurrence in its own task, concurrently with the socket's
    /// other events (still bounded by the socket's inbox capacity).
    #[track_caller]
    pub fn on_concurrent<H: EventHandler<T>, T: 'static>(
        self,
        event: &str,
        handler: H,
    ) -> NsHandle {
        registered(self.route(Some(event), handler, true))
    }

    /// Handles every event that has no handler of its own (the [`crate::extract::EventName`]
    /// or [`crate::Event`] extractor says which).
    #[track_caller]
    pub fn on_any<H: EventHandler<T>, T: 'static>(self, handler: H) -> NsHandle {
        registered(self.route(None, handler, false))
    }

    fn route<H: EventHandler<T>, T: 'static>(
        self,
        event: Option<&str>,
        handler: H,
        concurrent: bool,
    ) -> Result<NsHandle, RegisterError> {
        handler.check(&self.registration())?;
        let route = Route {
            handler: Erased::new(handler),
            concurrent,
        };
        {
            let mut h = self.handlers.write();
            h.any_concurrent |= concurrent;
            match event {
                Some(event) => {
                    h.events.insert(event.to_owned(), route);
                }
                None => h.any = Some(route),
            }
        }
        Ok(self)
    }

    /// Runs when a socket leaves, after its queued events; its rooms, session and extensions
    /// are still there.
    #[track_caller]
    pub fn on_disconnect<H: DisconnectHandler<T>, T: 'static>(self, handler: H) -> NsHandle {
        registered(handler.check(&self.registration()));
        self.handlers.write().disconnect = Some(Erased::new(handler));
        self
    }

    /// Adds a connect middleware: a function of connect extractors, run before the connect
    /// handler in registration order, that may refuse the connection the same way.
    #[track_caller]
    pub fn use_connect<H: ConnectHandler<T>, T: 'static>(self, middleware: H) -> NsHandle {
        registered(middleware.check(&self.registration()));
        self.handlers
            .write()
            .connect_mw
            .push(Erased::new(middleware));
        self
    }

    /// Adds an event middleware (runs before each event's handler, in order; may rewrite or
    /// reject the event).
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
    #[cfg(feature = "admin")]
    admin: Option<crate::admin::AdminOptions>,
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
            #[cfg(feature = "admin")]
            admin: None,
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

    /// Also accepts Engine.IO v3 / Socket.IO v4 clients (`socket.io-client` 2.x), as the
    /// reference server's `allowEIO3` (default false; crate feature `eio3`). Such a client is
    /// connected to `/` as soon as its session opens, its CONNECT replies carry no `sid`, a
    /// refusal sends it the error's data (or its message) alone, and it never recovers a
    /// session. Socket ids stay random (the reference derives them from the Engine.IO session
    /// id, which other clients may then see): a 2.x client's `socket.id` is not the id the
    /// server knows it by. The Engine.IO side: [`EngineConfigBuilder::allow_eio3`].
    #[cfg(feature = "eio3")]
    pub fn allow_eio3(mut self, allow: bool) -> Self {
        self.engine = self.engine.allow_eio3(allow);
        self
    }

    /// WebSocket permessage-deflate with clients that offer it (default off, as the reference
    /// server): see [`EngineConfigBuilder::ws_deflate`].
    pub fn ws_deflate(mut self, config: Option<DeflateConfig>) -> Self {
        self.engine = self.engine.ws_deflate(config);
        self
    }

    /// HTTP compression of polling answers from this size on (default `Some(1024)`; `None`
    /// turns it off): see [`EngineConfigBuilder::http_compression`].
    pub fn http_compression(mut self, threshold: Option<usize>) -> Self {
        self.engine = self.engine.http_compression(threshold);
        self
    }

    /// Any other Engine.IO setting (CORS origins, cookies, upgrade timeout, queue bounds,
    /// shutdown timeout, ...): see [`EngineConfigBuilder`].
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

    /// The wire format (default JSON; `ParserKind::MsgPack` with the `msgpack` feature).
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
    /// more argument, as with the official server). The adapter keeps the state: the in-memory
    /// adapter does; with an adapter that cannot ([`crate::adapter::Adapter::supports_recovery`]),
    /// `build` logs a warning and recovery stays off. See `docs/server.md`.
    pub fn connection_state_recovery(mut self, config: RecoveryConfig) -> Self {
        self.config.recovery = Some(config);
        self
    }

    /// Registers a shared state, read by handlers with [`crate::extract::State<T>`] and by
    /// [`SocketIo::state`]; one value per type (a second value of the same type replaces the
    /// first). `T` is cloned per extraction: wrap large or mutable state in an `Arc`.
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.config.states.insert(state);
        self
    }

    /// The adapter factory (default: in-memory).
    pub fn adapter<F: AdapterFactory>(mut self, factory: F) -> Self {
        self.factory = Arc::new(factory);
        self
    }

    /// Serves the official Socket.IO Admin UI's protocol on its namespace (`/admin` by
    /// default): see [`crate::admin`]. Crate feature `admin`.
    #[cfg(feature = "admin")]
    pub fn instrument(mut self, options: crate::admin::AdminOptions) -> Self {
        self.admin = Some(options);
        self
    }

    /// Records metrics through the `metrics` facade (crate feature `metrics`): the
    /// application installs a recorder (for instance `metrics-exporter-prometheus`); without
    /// one the calls do nothing. Names and labels: `docs/admin.md`. Off by default.
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, on: bool) -> Self {
        if on {
            self.config
                .hooks
                .add(std::sync::Arc::new(crate::metrics::Metrics));
        }
        self
    }

    /// Builds the server; the main namespace `/` always exists.
    pub fn build(mut self) -> SocketIo {
        #[cfg(feature = "admin")]
        let admin = self.admin.take().map(|options| {
            let admin = crate::admin::Admin::new(options);
            self.config.hooks.add(admin.observer.clone());
            admin
        });
        let payload = usize::try_from(self.max_payload).unwrap_or(usize::MAX);
        self.config.limits.max_packet_size = self.config.limits.max_packet_size.min(payload).max(1);
        let config = Arc::new(self.config);
        let factory = self.factory;
        let core = Arc::new_cyclic(|me: &Weak<ServerCore>| {
            let root = Namespace::new(
                NamespaceSpec {
                    name: Str::from("/"),
                    handlers: Arc::default(),
                    params: NsParams::default(),
                    registry: None,
                },
                config.clone(),
                me.clone(),
                factory.as_ref(),
            );
            let registry = SharedRegistry::default();
            registry::write(&registry).insert_fixed(root.clone());
            ServerCore {
                config,
                registry,
                factory,
                root,
                engine: OnceLock::new(),
                me: me.clone(),
            }
        });
        if core.config.recovery.is_some() && !core.root.recovers() {
            tracing::warn!(
                "connection-state recovery is enabled but the adapter cannot recover sessions: \
                 recovery stays off (CONNECT replies carry no pid)"
            );
        }
        let handler = SocketIoHandler::new(core.clone());
        let engine = Engine::new(handler, self.engine.build());
        // Set once, here: the handle is built right after.
        let _ = core.engine.set(engine.downgrade());
        let io = SocketIo { core, engine };
        #[cfg(feature = "admin")]
        if let Some(admin) = admin {
            crate::admin::install(&io, &io.core, admin);
        }
        io
    }

    /// Builds the server and its tower layer (for an axum `Router` or a tower stack).
    pub fn build_layer(self) -> (SocketIoLayer, SocketIo) {
        let io = self.build();
        (io.layer(), io)
    }

    /// Builds the server and a standalone tower service (404 outside the path), for bare
    /// hyper.
    pub fn build_svc(self) -> (SocketIoService, SocketIo) {
        let io = self.build();
        (io.service(), io)
    }
}
