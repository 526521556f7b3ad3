//! The async [`Client`], its [`ClientBuilder`] and per-namespace [`Namespace`] handles.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sockeye_protocol::socketio::{Args, ParserKind};
use tokio::sync::{mpsc, oneshot};

use crate::conn::{COMMAND_QUEUE, Cmd, Conn, Shared, Status};
use crate::engine::{self, Transport};
use crate::error::{ConnectionError, Result, SocketIoError};
use crate::event::{DisconnectReason, Event, IntoAck, event_handler};
use crate::options::{Auth, Handlers, Options, normalise_namespace};

/// Configures and connects a [`Client`].
///
/// ```no_run
/// # async fn run() -> Result<(), sockeye_client::SocketIoError> {
/// use std::time::Duration;
/// use sockeye_client::Client;
///
/// let client = Client::builder("http://127.0.0.1:3000?room=1")
///     .namespaces(["/", "/chat"])
///     .auth(serde_json::json!({ "token": "secret" }))
///     .on("greeting", |event: sockeye_client::Event| async move {
///         let text: String = event.data().unwrap_or_default();
///         tracing::info!(%text, "greeted");
///     })
///     .connect()
///     .await?;
/// client.emit("hello", &"world").await?;
/// let reply = client.of("/chat").call("join", &"lobby", Duration::from_secs(5)).await?;
/// let accepted: bool = reply.first().unwrap_or(false);
/// client.disconnect().await;
/// # let _ = accepted; Ok(()) }
/// ```
#[must_use = "a builder does nothing until `connect` is called"]
pub struct ClientBuilder {
    options: Options,
    handlers: Handlers,
}

impl ClientBuilder {
    /// A builder for the server at `url` (`http`, `https`, `ws` or `wss`). The URL's query is
    /// sent with every request; its path is ignored: use [`ClientBuilder::namespaces`] and
    /// [`ClientBuilder::path`].
    pub fn new(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            options: Options::new(url.into()),
            handlers: Handlers::default(),
        }
    }

    /// Adds an HTTP header to every request, the WebSocket handshake included.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.headers.push((name.into(), value.into()));
        self
    }

    /// The auth object sent with each namespace CONNECT (must be a JSON object).
    pub fn auth(mut self, auth: Value) -> Self {
        self.options.auth = Auth::Value(auth);
        self
    }

    /// Computes the auth object again before every CONNECT, so reconnections send fresh
    /// credentials (a renewed token, for example).
    pub fn auth_fn<F, Fut>(mut self, auth: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Value> + Send + 'static,
    {
        self.options.auth = Auth::Callback(Arc::new(move || Box::pin(auth())));
        self
    }

    /// The transports allowed. Both (the default): long-polling first, then an upgrade to
    /// WebSocket; only `Websocket`: WebSocket from the start; only `Polling`: no upgrade.
    pub fn transports(mut self, transports: impl IntoIterator<Item = Transport>) -> Self {
        self.options.transports = transports.into_iter().collect();
        self
    }

    /// The namespaces to connect, all on the one Engine.IO connection (default: `/` only).
    pub fn namespaces<S: Into<String>>(mut self, namespaces: impl IntoIterator<Item = S>) -> Self {
        self.options.namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// The server's Engine.IO path (default `/socket.io`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.options.path = path.into();
        self
    }

    /// Trusts the certificates of this PEM document (one or more `CERTIFICATE` blocks) as
    /// roots for `https`/`wss` URLs, in addition to the built-in web PKI roots: for a private
    /// CA or a self-signed server certificate. A PEM with no certificate makes `connect` fail
    /// with [`ConnectionError::InvalidOption`](crate::ConnectionError::InvalidOption).
    #[cfg(feature = "tls")]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.options.tls.root_pems.push(pem.into());
        self
    }

    /// Keeps (the default) or drops the built-in web PKI roots (Mozilla's list, compiled in).
    /// Dropped, only the [`ClientBuilder::tls_root_certificate`] roots are trusted.
    #[cfg(feature = "tls")]
    pub fn tls_builtin_roots(mut self, enabled: bool) -> Self {
        self.options.tls.no_builtin_roots = !enabled;
        self
    }

    /// Uses this rustls configuration as is for `https`/`wss` (client certificates, custom
    /// verifiers, another crypto provider); the other `tls_*` options are then ignored. Leave
    /// its ALPN protocols empty or `http/1.1`: both transports speak HTTP/1.1.
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.options.tls.config = Some(config);
        self
    }

    /// How long `connect` waits for every namespace to answer (default 5 s).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.options.wait_timeout = timeout;
        self
    }

    /// The bound of each HTTP request, of the WebSocket handshake, of the wait for the OPEN
    /// packet and of the upgrade probe (default 5 s). A long-poll GET may last `pingInterval`
    /// plus this. Past it the attempt fails with [`ConnectionError::Timeout`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.options.request_timeout = timeout;
        self
    }

    /// The bound of opening the TCP connection, TLS and a proxy's CONNECT tunnel (default
    /// 5 s); past it the attempt fails with [`ConnectionError::Timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.limits.connect_timeout = timeout;
        self
    }

    /// The most the client accepts from the server in one piece, in bytes (default 16 MiB): a
    /// polling response body, a WebSocket frame or message (inflated, with
    /// permessage-deflate), a Socket.IO packet with its attachments. More ends the connection
    /// with [`ConnectionError::PayloadTooLarge`] (as a disconnect reason once connected).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.options.limits.max_payload = bytes;
        self
    }

    /// The most binary attachments one packet from the server may announce (default 10).
    /// A packet announcing more ends the connection.
    pub fn max_attachments(mut self, count: usize) -> Self {
        self.options.limits.max_attachments = count;
        self
    }

    /// The deepest nesting of arrays and objects accepted in the arguments of the server's
    /// events and acks (default 32). Deeper ends the connection, before any parsing.
    pub fn max_nesting_depth(mut self, depth: usize) -> Self {
        self.options.limits.max_depth = depth;
        self
    }

    /// The largest `pingInterval` and `pingTimeout` the client takes from the server's
    /// handshake (default 5 min); larger values are clamped to it, smaller than 100 ms raised
    /// to 100 ms. It bounds how long a silent server keeps the client waiting
    /// (`pingInterval + pingTimeout`) and how long a long-poll GET may last.
    pub fn max_heartbeat(mut self, bound: Duration) -> Self {
        self.options.limits.max_heartbeat = bound;
        self
    }

    /// Goes through this HTTP proxy (`http://[user:password@]host:port`), whatever the
    /// environment says: polling requests through reqwest's proxy support (absolute-form
    /// requests for `http` servers, a CONNECT tunnel for `https`), the WebSocket through a
    /// CONNECT tunnel; credentials in the URL are sent as `Proxy-Authorization: Basic`.
    /// Without this option the client uses the proxy the environment names (`HTTPS_PROXY`
    /// for `https`/`wss` servers, `HTTP_PROXY` for `http`/`ws`, `ALL_PROXY` otherwise, lower
    /// case first), unless `NO_PROXY` lists the server's host. A proxy that refuses the
    /// tunnel (407 for bad credentials) fails the connect with `ConnectionError::Status`.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.options.proxy = crate::proxy::ProxySetting::Explicit(url.into());
        self
    }

    /// Connects directly, ignoring the proxy variables of the environment.
    pub fn no_proxy(mut self) -> Self {
        self.options.proxy = crate::proxy::ProxySetting::Off;
        self
    }

    /// Keeps cookies (default true): every `Set-Cookie` the server or a load balancer sends
    /// on a polling answer or a WebSocket handshake is sent back on the following requests
    /// of this client, the upgrade and reconnections included, so that sticky sessions
    /// (an AWS ALB's `AWSALB` cookie, the Engine.IO `io` cookie) hold.
    pub fn cookies(mut self, keep: bool) -> Self {
        self.options.jar = keep.then(Arc::default);
        self
    }

    /// Offers WebSocket permessage-deflate (RFC 7692) with these options (default: not
    /// offered). When the server accepts, messages of at least `threshold` bytes go out
    /// compressed, and the server's compressed messages are inflated (at most 64 MiB each).
    pub fn ws_deflate(mut self, config: Option<crate::DeflateConfig>) -> Self {
        self.options.ws_deflate = config;
        self
    }

    /// The Socket.IO wire format (default [`ParserKind::Json`]). It must match the server's:
    /// [`ParserKind::MsgPack`] (feature `msgpack`) speaks the official
    /// `socket.io-msgpack-parser` format, one binary WebSocket message or base64 polling
    /// payload per packet.
    pub fn parser(mut self, parser: ParserKind) -> Self {
        self.options.parser = parser;
        self
    }

    /// Applies the reconnection back-off to the first connection too (default: off, a failed
    /// first attempt fails `connect`).
    pub fn retry_first_connect(mut self, retry: bool) -> Self {
        self.options.retry_first_connect = retry;
        self
    }

    /// Reconnects after a transport loss (default: on). Never after `disconnect` or a server
    /// DISCONNECT.
    pub fn reconnection(mut self, enabled: bool) -> Self {
        self.options.reconnect.enabled = enabled;
        self
    }

    /// Gives up after this many failed attempts in a row (default 0: never gives up).
    pub fn reconnection_attempts(mut self, attempts: u32) -> Self {
        self.options.reconnect.attempts = attempts;
        self
    }

    /// The first reconnection delay, doubled on each attempt (default 1 s).
    pub fn reconnection_delay(mut self, delay: Duration) -> Self {
        self.options.reconnect.delay = delay;
        self
    }

    /// The cap on the reconnection delay (default 5 s).
    pub fn reconnection_delay_max(mut self, delay: Duration) -> Self {
        self.options.reconnect.delay_max = delay;
        self
    }

    /// Each delay varies by up to ± this fraction of itself (default 0.5, clamped to 0..=1).
    pub fn randomization_factor(mut self, factor: f64) -> Self {
        self.options.reconnect.randomization = factor;
        self
    }

    /// Keeps up to `capacity` emits made while reconnecting and sends them once the namespace
    /// is back (default 0: such emits fail with [`SocketIoError::Disconnected`]).
    pub fn buffer_while_reconnecting(mut self, capacity: usize) -> Self {
        self.options.buffer = capacity;
        self
    }

    /// At-least-once delivery: every `emit` asks for an ack and is sent again, up to `retries`
    /// more times, when none arrives within [`ClientBuilder::ack_timeout`]. `emit` then returns
    /// once acknowledged, or [`SocketIoError::Timeout`]. The server may see duplicates.
    pub fn retries(mut self, retries: u32) -> Self {
        self.options.retries = retries;
        self
    }

    /// The ack wait of each delivery attempt when [`ClientBuilder::retries`] is set (default 5 s).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.options.ack_timeout = timeout;
        self
    }

    /// Handles `event` on the `/` namespace. See [`Event`] for acks.
    pub fn on<F, Fut, R>(self, event: impl Into<String>, handler: F) -> Self
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoAck,
    {
        self.on_namespace("/", event, handler)
    }

    /// Handles `event` on `namespace`.
    pub fn on_namespace<F, Fut, R>(
        mut self,
        namespace: &str,
        event: impl Into<String>,
        handler: F,
    ) -> Self
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoAck,
    {
        self.handlers.events.insert(
            (normalise_namespace(namespace), event.into()),
            event_handler(handler),
        );
        self
    }

    /// Handles every event that no specific handler matched, on any namespace.
    pub fn on_any<F, Fut, R>(mut self, handler: F) -> Self
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoAck,
    {
        self.handlers.any = Some(event_handler(handler));
        self
    }

    /// Called with the namespace each time it connects (again after each reconnection).
    pub fn on_connect<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.connect = Some(Arc::new(move |ns| Box::pin(callback(ns))));
        self
    }

    /// Called when a namespace is refused ([`SocketIoError::ConnectionRefused`]) or a
    /// (re)connection attempt fails ([`SocketIoError::Connection`]), once per namespace.
    pub fn on_connect_error<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn(String, SocketIoError) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.connect_error = Some(Arc::new(move |ns, e| Box::pin(callback(ns, e))));
        self
    }

    /// Called when a connected namespace is disconnected, with the reason.
    pub fn on_disconnect<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn(String, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.disconnect = Some(Arc::new(move |ns, r| Box::pin(callback(ns, r))));
        self
    }

    /// Connects and waits until every namespace answered. Fails with
    /// [`SocketIoError::Connection`] if the server cannot be reached,
    /// [`SocketIoError::ConnectionRefused`] if a namespace was refused (the client then
    /// disconnects), or [`SocketIoError::Timeout`] after the wait timeout.
    pub async fn connect(self) -> Result<Client> {
        let options = Arc::new(self.options);
        let handlers = Arc::new(self.handlers);
        let engine = first_engine(&options, &handlers).await?;
        let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (first_tx, first_rx) = oneshot::channel();
        let shared = Arc::new(Shared::new());
        let conn = Conn::new(
            Arc::clone(&options),
            handlers,
            Arc::clone(&shared),
            command_rx,
            command_tx.downgrade(),
            first_tx,
        );
        tokio::spawn(conn.run(engine));
        let client = Client {
            inner: Arc::new(Inner {
                commands: command_tx,
                shared,
                options: Arc::clone(&options),
            }),
        };
        match tokio::time::timeout(options.wait_timeout, first_rx).await {
            Ok(Ok(Ok(()))) => Ok(client),
            Ok(Ok(Err(error))) => {
                client.disconnect().await;
                Err(error)
            }
            Ok(Err(_)) => Err(SocketIoError::Disconnected),
            Err(_) => {
                client.disconnect().await;
                Err(SocketIoError::Timeout)
            }
        }
    }
}

/// Opens the first Engine.IO connection, with the back-off when `retry_first_connect` is set.
async fn first_engine(options: &Options, handlers: &Handlers) -> Result<engine::Engine> {
    let engine_options = options.engine_options()?;
    let mut attempt: u32 = 0;
    loop {
        match engine::open(engine_options.clone()).await {
            Ok(engine) => return Ok(engine),
            Err(error) => {
                if let Some(callback) = &handlers.connect_error {
                    for ns in options.namespace_list() {
                        tokio::spawn(callback(ns, SocketIoError::Connection(error.clone())));
                    }
                }
                attempt = attempt.saturating_add(1);
                let max = options.reconnect.attempts;
                let invalid = matches!(
                    error,
                    ConnectionError::InvalidUrl { .. } | ConnectionError::InvalidOption(_)
                );
                if !options.retry_first_connect || invalid || (max > 0 && attempt >= max) {
                    return Err(error.into());
                }
                tokio::time::sleep(options.reconnect.backoff(attempt)).await;
            }
        }
    }
}

struct Inner {
    commands: mpsc::Sender<Cmd>,
    shared: Arc<Shared>,
    options: Arc<Options>,
}

/// A connected Socket.IO client. Cheap to clone; every clone drives the same connection, which
/// closes when `disconnect` is called or the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder for the server at `url`; see [`ClientBuilder`].
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    /// A handle that emits on `namespace` (which must be among the connected namespaces).
    pub fn of(&self, namespace: &str) -> Namespace {
        Namespace {
            client: self.clone(),
            name: normalise_namespace(namespace),
        }
    }

    /// Emits `event` with one argument on `/`. See [`Namespace::emit`].
    pub async fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<()> {
        self.of("/").emit(event, data).await
    }

    /// Emits `event` with any arguments (none, several, binary) on `/`.
    pub async fn emit_args(&self, event: &str, args: Args) -> Result<()> {
        self.of("/").emit_args(event, args).await
    }

    /// Emits `event` on `/` and waits for the server's ack. See [`Namespace::call`].
    pub async fn call<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Args> {
        self.of("/").call(event, data, timeout).await
    }

    /// Like [`Client::call`] with any arguments.
    pub async fn call_args(&self, event: &str, args: Args, timeout: Duration) -> Result<Args> {
        self.of("/").call_args(event, args, timeout).await
    }

    /// Leaves every namespace, closes the connection and stops reconnecting. Waits (bounded by
    /// the request timeout) until the connection is closed; calling it again does nothing.
    pub async fn disconnect(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Cmd::Disconnect { done: done_tx })
            .await
            .is_ok()
        {
            let bound = self.inner.options.request_timeout.saturating_mul(2);
            let _ = tokio::time::timeout(bound, done_rx).await;
        }
    }

    /// The lifecycle state right now.
    pub fn status(&self) -> Status {
        *self.inner.shared.status.borrow()
    }

    /// True while the Engine.IO connection is up.
    pub fn is_connected(&self) -> bool {
        self.status() == Status::Connected
    }

    /// Waits until the client is closed for good (through any reconnections).
    pub async fn closed(&self) {
        let mut status = self.inner.shared.status.subscribe();
        let _ = status.wait_for(|s| *s == Status::Closed).await;
    }

    /// The Socket.IO sid of a connected namespace (not the Engine.IO sid).
    pub fn sid(&self, namespace: &str) -> Option<String> {
        let ns = normalise_namespace(namespace);
        self.inner.shared.with(|s| s.namespaces.get(&ns).cloned())
    }

    /// True when the last CONNECT of `namespace` recovered its previous session
    /// (connection-state recovery, socket.io-client's `socket.recovered`): the server gave
    /// back the same sid, rooms and session data, and the events missed while disconnected
    /// were delivered to the handlers right after the reconnect, each once, in order. False
    /// while the namespace is not connected, after the first connect, and when the server
    /// started a fresh session (session expired, packets no longer kept, or no recovery).
    pub fn recovered(&self, namespace: &str) -> bool {
        let ns = normalise_namespace(namespace);
        self.inner.shared.with(|s| s.recovered.contains(&ns))
    }

    /// The Engine.IO session id of the current (or last) connection.
    pub fn engine_sid(&self) -> Option<String> {
        self.inner.shared.with(|s| s.engine_sid.clone())
    }

    /// The transport in use, `None` while disconnected.
    pub fn transport(&self) -> Option<Transport> {
        self.inner
            .shared
            .with(|s| s.transport.as_ref().map(|t| *t.borrow()))
    }

    /// The connected namespaces.
    pub fn namespaces(&self) -> Vec<String> {
        let mut list: Vec<String> = self
            .inner
            .shared
            .with(|s| s.namespaces.keys().cloned().collect());
        list.sort();
        list
    }

    async fn command_emit(
        &self,
        namespace: &str,
        event: &str,
        args: Args,
        reply: Option<oneshot::Sender<Args>>,
    ) -> Result<()> {
        let (accepted_tx, accepted_rx) = oneshot::channel();
        self.inner
            .commands
            .send(Cmd::Emit {
                namespace: namespace.to_owned(),
                name: event.to_owned(),
                args,
                reply,
                accepted: accepted_tx,
            })
            .await
            .map_err(|_| SocketIoError::Disconnected)?;
        accepted_rx.await.map_err(|_| SocketIoError::Disconnected)?
    }
}

/// Emits on one namespace of a [`Client`].
#[derive(Clone, Debug)]
pub struct Namespace {
    client: Client,
    name: String,
}

impl Namespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when the namespace's last CONNECT recovered its session; see [`Client::recovered`].
    pub fn recovered(&self) -> bool {
        self.client.recovered(&self.name)
    }

    /// Emits `event` with `data` as its one argument. `bytes::Bytes` values inside `data`
    /// travel as binary attachments.
    ///
    /// Fails with [`SocketIoError::BadNamespace`] if the namespace is not connected (never
    /// requested, refused, or disconnected by the server), [`SocketIoError::Disconnected`] if
    /// the client is closed or reconnecting without buffer room. With
    /// [`ClientBuilder::retries`] set, waits for the ack (see there).
    pub async fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<()> {
        self.emit_args(event, encode_one(data)?).await
    }

    /// Emits `event` with any arguments (none, several, binary).
    pub async fn emit_args(&self, event: &str, args: Args) -> Result<()> {
        let retries = self.client.inner.options.retries;
        if retries == 0 {
            return self
                .client
                .command_emit(&self.name, event, args, None)
                .await;
        }
        let timeout = self.client.inner.options.ack_timeout;
        for attempt in 0..=retries {
            match self.call_args(event, args.clone(), timeout).await {
                Ok(_) => return Ok(()),
                Err(SocketIoError::Timeout) => {
                    tracing::debug!(event, attempt, "no ack in time; sending again");
                }
                Err(other) => return Err(other),
            }
        }
        Err(SocketIoError::Timeout)
    }

    /// Emits `event` with `data` and waits up to `timeout` for the server's ack, returned as
    /// [`Args`] (read them with `first::<T>()` or `deserialize::<T>()`). Fails with
    /// [`SocketIoError::Timeout`], or [`SocketIoError::Disconnected`] if the connection drops
    /// first.
    pub async fn call<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Args> {
        self.call_args(event, encode_one(data)?, timeout).await
    }

    /// Like [`Namespace::call`] with any arguments.
    pub async fn call_args(&self, event: &str, args: Args, timeout: Duration) -> Result<Args> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let wait = async {
            self.client
                .command_emit(&self.name, event, args, Some(reply_tx))
                .await?;
            reply_rx.await.map_err(|_| SocketIoError::Disconnected)
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(SocketIoError::Timeout))
    }
}

fn encode_one<T: Serialize + ?Sized>(data: &T) -> Result<Args> {
    Args::from_value(data).map_err(|e| {
        SocketIoError::Connection(ConnectionError::InvalidOption(format!(
            "cannot serialise the event data: {e}"
        )))
    })
}
