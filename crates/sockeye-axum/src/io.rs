//! [`SocketIo`]: sockeye's server handle with states and extractor-based handler registration.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sockeye::{
    ConnectResult, DisconnectReason, EngineConfigBuilder, Event, EventMiddleware, HandlerFuture,
    Limits, ParserKind, RegisterError, Reply, SocketRef, Transports,
};

use sockeye::adapter::AdapterFactory;

use crate::context::{ConnectContext, DisconnectContext, EventContext};
use crate::handler::{ConnectHandler, DisconnectHandler, EventHandler};
use crate::layer::SocketIoLayer;
use crate::state::StateMap;

struct Shared {
    core: sockeye::SocketIo,
    states: StateMap,
}

/// The server handle: sockeye's [`sockeye::SocketIo`] (every method of it is available through
/// `Deref`: `emit`, `to`, `of`, `get_socket`, ...) plus the shared states, and namespace
/// registration that takes extractor-based handler functions. Cheap to clone.
///
/// In an axum HTTP handler, take it as an argument (`async fn send(io: SocketIo)`): the
/// [`SocketIoLayer`] puts it in every request's extensions.
#[derive(Clone)]
pub struct SocketIo {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo")
            .field("core", &self.shared.core)
            .field("states", &self.shared.states)
            .finish()
    }
}

impl Deref for SocketIo {
    type Target = sockeye::SocketIo;
    fn deref(&self) -> &sockeye::SocketIo {
        &self.shared.core
    }
}

impl From<sockeye::SocketIo> for SocketIo {
    fn from(core: sockeye::SocketIo) -> SocketIo {
        SocketIo::with_states(core, StateMap::default())
    }
}

impl SocketIo {
    /// A builder: sockeye's settings plus [`SocketIoBuilder::with_state`].
    pub fn builder() -> SocketIoBuilder {
        SocketIoBuilder::default()
    }

    fn with_states(core: sockeye::SocketIo, states: StateMap) -> SocketIo {
        SocketIo {
            shared: Arc::new(Shared { core, states }),
        }
    }

    /// The core server handle.
    pub fn core(&self) -> &sockeye::SocketIo {
        &self.shared.core
    }

    /// A clone of the state of type `T`, if one was registered.
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.shared.states.get()
    }

    pub(crate) fn states(&self) -> &StateMap {
        &self.shared.states
    }

    /// Registers static namespace `name` with its connect handler (any function of connect
    /// extractors); returns the handle to register its event and disconnect handlers.
    pub fn ns<H, T>(&self, name: &str, handler: H) -> NsHandle
    where
        H: ConnectHandler<T>,
        T: 'static,
    {
        let core = self.shared.core.ns(name, self.connect_adapter(handler));
        self.wrap(core)
    }

    /// Registers dynamic namespaces matching `pattern` (`/room-{id}`); see
    /// [`sockeye::SocketIo::dyn_ns`].
    pub fn dyn_ns<H, T>(&self, pattern: &str, handler: H) -> Result<NsHandle, RegisterError>
    where
        H: ConnectHandler<T>,
        T: 'static,
    {
        let core = self
            .shared
            .core
            .dyn_ns(pattern, self.connect_adapter(handler))?;
        Ok(self.wrap(core))
    }

    /// Accepts any namespace that matches no other registration; see
    /// [`sockeye::SocketIo::ns_any`].
    pub fn ns_any<H, T>(&self, handler: H) -> NsHandle
    where
        H: ConnectHandler<T>,
        T: 'static,
    {
        let core = self.shared.core.ns_any(self.connect_adapter(handler));
        self.wrap(core)
    }

    /// Registers namespace `name` served by a class-style handler (see
    /// [`crate::NamespaceHandler`]).
    pub fn ns_class<N: crate::NamespaceHandler>(&self, name: &str, handler: N) -> NsHandle {
        let handler = Arc::new(handler);
        let core = self
            .shared
            .core
            .ns(name, crate::class::ClassConnect(handler.clone()))
            .on_any(crate::class::ClassEvent(handler.clone()))
            .on_disconnect(crate::class::ClassDisconnect(handler));
        self.wrap(core)
    }

    /// The layer to add to an axum `Router` (after its routes) or any tower service: serves
    /// Socket.IO under the path and gives the other requests this handle as an extension.
    pub fn layer(&self) -> SocketIoLayer {
        SocketIoLayer::new(self.clone())
    }

    fn wrap(&self, core: sockeye::NsHandle) -> NsHandle {
        NsHandle {
            core,
            io: self.clone(),
        }
    }

    fn connect_adapter<H: ConnectHandler<T>, T: 'static>(
        &self,
        handler: H,
    ) -> ConnectAdapter<H, T> {
        ConnectAdapter {
            handler: Arc::new(handler),
            io: self.clone(),
            marker: PhantomData,
        }
    }
}

/// Registers the handlers of a namespace. Every method takes extractor-based functions.
/// Not `#[must_use]`: the usual chain `io.ns(..).on(..).on_disconnect(..);` ends by dropping it.
#[derive(Clone, Debug)]
pub struct NsHandle {
    core: sockeye::NsHandle,
    io: SocketIo,
}

impl NsHandle {
    /// Handles event `event`; a socket's events run one at a time, in arrival order.
    pub fn on<H: EventHandler<T>, T: 'static>(self, event: &str, handler: H) -> NsHandle {
        let adapter = self.event_adapter(handler);
        NsHandle {
            core: self.core.on(event, adapter),
            io: self.io,
        }
    }

    /// Handles event `event`, each occurrence in its own task, concurrently with the socket's
    /// other events.
    pub fn on_concurrent<H: EventHandler<T>, T: 'static>(
        self,
        event: &str,
        handler: H,
    ) -> NsHandle {
        let adapter = self.event_adapter(handler);
        NsHandle {
            core: self.core.on_concurrent(event, adapter),
            io: self.io,
        }
    }

    /// Handles every event without a handler of its own ([`crate::extract::EventName`] says
    /// which).
    pub fn on_any<H: EventHandler<T>, T: 'static>(self, handler: H) -> NsHandle {
        let adapter = self.event_adapter(handler);
        NsHandle {
            core: self.core.on_any(adapter),
            io: self.io,
        }
    }

    /// Runs when a socket leaves (its rooms and session are still readable).
    pub fn on_disconnect<H: DisconnectHandler<T>, T: 'static>(self, handler: H) -> NsHandle {
        let adapter = DisconnectAdapter {
            handler: Arc::new(handler),
            io: self.io.clone(),
            marker: PhantomData,
        };
        NsHandle {
            core: self.core.on_disconnect(adapter),
            io: self.io,
        }
    }

    /// Adds a connect middleware: a function of connect extractors, run before the connect
    /// handler, that may refuse the connection.
    pub fn use_connect<H: ConnectHandler<T>, T: 'static>(self, middleware: H) -> NsHandle {
        let adapter = self.io.connect_adapter(middleware);
        NsHandle {
            core: self.core.use_connect(adapter),
            io: self.io,
        }
    }

    /// Adds an event middleware (sockeye's [`EventMiddleware`]: sees and may rewrite or
    /// reject each event before its handler).
    pub fn use_event<M: EventMiddleware>(self, middleware: M) -> NsHandle {
        NsHandle {
            core: self.core.use_event(middleware),
            io: self.io,
        }
    }

    /// Lets every event of this namespace run concurrently.
    pub fn concurrent(self, concurrent: bool) -> NsHandle {
        NsHandle {
            core: self.core.concurrent(concurrent),
            io: self.io,
        }
    }

    /// The core handle, to register sockeye's own handler types.
    pub fn core(self) -> sockeye::NsHandle {
        self.core
    }

    fn event_adapter<H: EventHandler<T>, T: 'static>(&self, handler: H) -> EventAdapter<H, T> {
        EventAdapter {
            handler: Arc::new(handler),
            io: self.io.clone(),
            marker: PhantomData,
        }
    }
}

// The adapters run extraction inside the returned future (not in `call`), so that a panic in
// an extractor or a plain-fn handler is caught by the server like any handler panic.

struct ConnectAdapter<H, T> {
    handler: Arc<H>,
    io: SocketIo,
    marker: PhantomData<fn() -> T>,
}

impl<H: ConnectHandler<T>, T: 'static> sockeye::ConnectHandler for ConnectAdapter<H, T> {
    fn call(&self, socket: SocketRef, auth: Option<Value>) -> HandlerFuture<ConnectResult> {
        let handler = self.handler.clone();
        let cx = ConnectContext::new(socket, auth, self.io.clone());
        Box::pin(async move { handler.call(cx).await })
    }
}

impl<H: ConnectHandler<T>, T: 'static> sockeye::ConnectMiddleware for ConnectAdapter<H, T> {
    fn call(&self, socket: SocketRef) -> HandlerFuture<ConnectResult> {
        let handler = self.handler.clone();
        let auth = socket.auth().cloned();
        let cx = ConnectContext::new(socket, auth, self.io.clone());
        Box::pin(async move { handler.call(cx).await })
    }
}

struct EventAdapter<H, T> {
    handler: Arc<H>,
    io: SocketIo,
    marker: PhantomData<fn() -> T>,
}

impl<H: EventHandler<T>, T: 'static> sockeye::EventHandler for EventAdapter<H, T> {
    fn call(&self, socket: SocketRef, event: Event) -> HandlerFuture<Reply> {
        let handler = self.handler.clone();
        let cx = EventContext::new(socket, event, self.io.clone());
        Box::pin(async move {
            handler.call(cx).await;
            // The context took the ack and answered it: nothing is left for the server to send.
            Reply::None
        })
    }
}

struct DisconnectAdapter<H, T> {
    handler: Arc<H>,
    io: SocketIo,
    marker: PhantomData<fn() -> T>,
}

impl<H: DisconnectHandler<T>, T: 'static> sockeye::DisconnectHandler for DisconnectAdapter<H, T> {
    fn call(&self, socket: SocketRef, reason: DisconnectReason) -> HandlerFuture<()> {
        let handler = self.handler.clone();
        let cx = DisconnectContext::new(socket, reason, self.io.clone());
        Box::pin(async move { handler.call(cx).await })
    }
}

/// Builds a [`SocketIo`]: sockeye's settings plus shared states.
#[must_use]
#[derive(Debug, Default)]
pub struct SocketIoBuilder {
    core: sockeye::SocketIoBuilder,
    states: StateMap,
}

impl From<sockeye::SocketIoBuilder> for SocketIoBuilder {
    fn from(core: sockeye::SocketIoBuilder) -> SocketIoBuilder {
        SocketIoBuilder {
            core,
            states: StateMap::default(),
        }
    }
}

macro_rules! forward {
    ($($(#[$doc:meta])* $name:ident($arg:ident: $ty:ty);)*) => {$(
        $(#[$doc])*
        pub fn $name(self, $arg: $ty) -> Self {
            SocketIoBuilder { core: self.core.$name($arg), states: self.states }
        }
    )*};
}

impl SocketIoBuilder {
    /// Registers a shared state, read by handlers with [`crate::State<T>`]; one value per type
    /// (a second value of the same type replaces the first). `T` is cloned per extraction:
    /// wrap large or mutable state in an `Arc`.
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.states.insert(state);
        self
    }

    forward! {
        /// Time between two server pings (default 25 s).
        ping_interval(interval: Duration);
        /// How long the server waits for a pong (default 20 s).
        ping_timeout(timeout: Duration);
        /// Largest message or polling body accepted, in bytes (default 1 000 000).
        max_payload(bytes: u64);
        /// The transports offered (default polling and WebSocket).
        transports(transports: Transports);
        /// A session with no namespace connected after this long is closed (default 45 s).
        connect_timeout(timeout: Duration);
        /// Default timeout of acks the server waits for (default 60 s).
        ack_timeout(timeout: Duration);
        /// Events of one socket that may wait for (or run in) their handlers at once.
        inbox_capacity(events: usize);
        /// How long reading from a client waits for room in its full inbox.
        inbox_timeout(timeout: Duration);
        /// Decoder limits.
        limits(limits: Limits);
        /// The wire format (default JSON).
        parser(parser: ParserKind);
        /// Enables connection-state recovery (see `sockeye::SocketIoBuilder::connection_state_recovery`).
        connection_state_recovery(config: sockeye::RecoveryConfig);
        /// Sends the CONNECT reply before the connect handler runs; a refusal then
        /// disconnects (see `sockeye::SocketIoBuilder::always_connect`).
        always_connect(on: bool);
    }

    /// The URL path served (default `/socket.io/`).
    pub fn path(self, path: impl Into<String>) -> Self {
        SocketIoBuilder {
            core: self.core.path(path),
            states: self.states,
        }
    }

    /// Any other engine setting.
    pub fn engine(self, f: impl FnOnce(EngineConfigBuilder) -> EngineConfigBuilder) -> Self {
        SocketIoBuilder {
            core: self.core.engine(f),
            states: self.states,
        }
    }

    /// The adapter factory (default: in-memory).
    pub fn adapter<F: AdapterFactory>(self, factory: F) -> Self {
        SocketIoBuilder {
            core: self.core.adapter(factory),
            states: self.states,
        }
    }

    /// Any setting of sockeye's own builder.
    pub fn core(
        self,
        f: impl FnOnce(sockeye::SocketIoBuilder) -> sockeye::SocketIoBuilder,
    ) -> Self {
        SocketIoBuilder {
            core: f(self.core),
            states: self.states,
        }
    }

    /// Builds the server.
    pub fn build(self) -> SocketIo {
        SocketIo::with_states(self.core.build(), self.states)
    }

    /// Builds the server and its layer (for an axum `Router` or a tower stack).
    pub fn build_layer(self) -> (SocketIoLayer, SocketIo) {
        let io = self.build();
        (io.layer(), io)
    }

    /// Builds the server and a standalone tower service (404 outside the path), for bare
    /// hyper.
    pub fn build_svc(self) -> (sockeye::SocketIoService, SocketIo) {
        let io = self.build();
        (io.service(), io)
    }
}
