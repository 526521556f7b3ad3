//! One client connection (an Engine.IO session) seen from Socket.IO: its decoder and its
//! sockets, one per namespace ([`ConnectionState`]). [`SocketIoHandler`] is the
//! [`EngineHandler`] that routes each of its packets.

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use sockeye_engine::{CloseReason, EngineHandler, Message, Session};
use sockeye_protocol::socketio::{Decoder, Packet, PacketData, Str};

use crate::adapter::{BroadcastPacket, PersistedSession, Room};
use crate::config::Config;
use crate::conn::Conn;
use crate::error::ConnectionRefusedError;
use crate::event::Event;
use crate::extract::ConnectContext;
use crate::id::SocketId;
use crate::instrument::Instrument;
use crate::io::ServerCore;
use crate::ns::Namespace;
use crate::packet;
use crate::reason::DisconnectReason;
use crate::recovery::RecoveryCounters;
use crate::registry;
use crate::socket::SocketRef;

/// What the Socket.IO layer keeps for each client connection (in its Engine.IO session): the
/// packet decoder and the client's sockets, one per namespace.
#[derive(Default)]
pub struct ConnectionState {
    inner: Mutex<ConnectionInner>,
    /// The server's observer, set when the session opens if instrumentation is on (read by
    /// every send, so kept out of the mutex).
    pub(crate) hooks: OnceLock<Arc<dyn Instrument>>,
}

impl std::fmt::Debug for ConnectionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionState")
            .field("namespaces", &self.lock().sockets.len())
            .finish()
    }
}

/// The client's sockets by namespace name.
///
/// A client joins one namespace or a few, so a list searched in order beats a hash map: one
/// socket costs one 32-byte entry where an empty-then-grown map allocates room for three.
#[derive(Default)]
struct NsSockets(Vec<(Str, SocketRef)>);

impl NsSockets {
    fn get(&self, ns: &str) -> Option<&SocketRef> {
        self.0
            .iter()
            .find(|(name, _)| name.as_str() == ns)
            .map(|(_, s)| s)
    }

    fn insert(&mut self, ns: Str, socket: SocketRef) {
        if let Some(slot) = self.0.iter_mut().find(|(name, _)| *name == ns) {
            slot.1 = socket;
        } else {
            if self.0.is_empty() {
                // Most clients use one namespace: no room for four up front.
                self.0.reserve_exact(1);
            }
            self.0.push((ns, socket));
        }
    }

    fn remove(&mut self, ns: &str) {
        self.0.retain(|(name, _)| name.as_str() != ns);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn take_all(&mut self) -> Vec<SocketRef> {
        std::mem::take(&mut self.0)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }
}

#[derive(Default)]
struct ConnectionInner {
    sockets: NsSockets,
    decoder: Decoder,
    /// Counts binary packet headers, so a completion timer knows whether the packet it was
    /// armed for is still the pending one.
    binary_started: u64,
    /// The connect-timeout and attachment timer tasks: aborted when the session closes, so
    /// that a closed session's memory (they hold it weakly) and the tasks themselves do not
    /// outlive it by up to `connect_timeout` / `attachment_timeout`.
    timers: Timers,
    /// Set by `on_close`: no socket may be attached any more.
    closed: bool,
    /// Namespaces this client was connected to and left, newest last (at most
    /// [`LEFT_NAMESPACES_KEPT`]): a packet for one of them may simply have crossed our
    /// DISCONNECT, so it is ignored; a packet for a namespace never connected closes the session.
    left: Vec<Str>,
}

/// The timer tasks of one connection (see [`ConnectionInner::timers`]).
#[derive(Default)]
struct Timers {
    connect: Option<tokio::task::AbortHandle>,
    attachments: Option<tokio::task::AbortHandle>,
}

impl Timers {
    fn abort(&mut self) {
        for task in [self.connect.take(), self.attachments.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

/// How many left namespaces a client remembers, so the list stays bounded whatever it does.
const LEFT_NAMESPACES_KEPT: usize = 8;

impl ConnectionState {
    fn lock(&self) -> std::sync::MutexGuard<'_, ConnectionInner> {
        crate::sync::lock(&self.inner)
    }

    fn socket(&self, ns: &str) -> Option<SocketRef> {
        self.lock().sockets.get(ns).cloned()
    }

    /// True when this client was connected to `ns` and left it.
    fn has_left(&self, ns: &str) -> bool {
        self.lock().left.iter().any(|left| left.as_str() == ns)
    }

    /// Removes the socket of `ns` if it is still the one with `id`.
    pub(crate) fn detach(&self, ns: &Str, id: &SocketId) {
        let mut inner = self.lock();
        if inner.sockets.get(ns.as_str()).is_some_and(|s| s.id() == id) {
            inner.sockets.remove(ns.as_str());
            inner.left.retain(|left| left != ns);
            if inner.left.len() == LEFT_NAMESPACES_KEPT {
                inner.left.remove(0);
            }
            inner.left.push(ns.clone());
        }
    }

    fn is_empty(&self) -> bool {
        self.lock().sockets.is_empty()
    }

    /// A socket got its CONNECT reply: the connect timeout, which only waits for a first
    /// namespace, ends here as in the reference server (cleared on the first successful
    /// connect). Ended now, its task (a few hundred bytes and a timer-wheel entry) does not
    /// stay with every idle client for `connect_timeout`.
    fn connected(&self) {
        if let Some(timer) = self.lock().timers.connect.take() {
            timer.abort();
        }
    }
}

/// The Socket.IO layer on top of the engine. Built by [`crate::SocketIoBuilder`]; it appears
/// in the layer and service types only.
#[derive(Clone)]
pub struct SocketIoHandler {
    server: Arc<ServerCore>,
}

impl std::fmt::Debug for SocketIoHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoHandler").finish_non_exhaustive()
    }
}

impl EngineHandler for SocketIoHandler {
    type Data = ConnectionState;

    fn on_open(&self, session: &Arc<Session<ConnectionState>>) {
        let config = &self.server.config;
        session.data.lock().decoder = Decoder::new(config.parser, config.limits);
        if let Some(hooks) = config.hooks.get() {
            hooks.session_opened(session.transport());
            let _ = session.data.hooks.set(hooks.clone());
        }
        let timeout = config.connect_timeout;
        let weak = Arc::downgrade(session);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!("no tokio runtime: the connect timeout cannot be armed");
            return;
        };
        let task = rt.spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(session) = weak.upgrade()
                && session.data.is_empty()
                && !session.is_closed()
            {
                tracing::debug!(sid = %session.sid(), "no namespace connected in time: closing");
                session.close(CloseReason::ServerClose);
            }
        });
        let mut inner = session.data.lock();
        if inner.closed {
            task.abort();
        } else {
            inner.timers.connect = Some(task.abort_handle());
        }
        drop(inner);
        if Conn::legacy(session.as_ref()) {
            // Socket.IO v4 (clients 2.x): the server connects the client to `/` at once, the
            // client never asks (the reference server does the same for `allowEIO3`).
            let handler = SocketIoHandler::new(Arc::clone(&self.server));
            let session = Arc::clone(session);
            rt.spawn(async move {
                handler.connect(&session, Str::from("/"), None).await;
            });
        }
    }

    async fn on_message(&self, session: &Arc<Session<ConnectionState>>, message: Message) {
        let header = matches!(message, Message::Text(_));
        if let Some(hooks) = session.data.hooks.get() {
            let (Message::Text(bytes) | Message::Binary(bytes)) = &message;
            hooks.message_in(bytes.len());
        }
        let decoded = session.data.lock().decoder.decode(message);
        match decoded {
            Ok(Some(packet)) => self.on_packet(session, packet).await,
            Ok(None) if header => self.arm_attachment_timer(session),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(sid = %session.sid(), error = %e, "invalid socket.io packet: closing the session");
                session.close(CloseReason::ParseError);
            }
        }
    }

    fn on_close(&self, session: &Arc<Session<ConnectionState>>, close: CloseReason) {
        let sockets: Vec<SocketRef> = {
            let mut inner = session.data.lock();
            inner.closed = true;
            inner.timers.abort();
            inner.decoder = Decoder::default();
            inner.sockets.take_all()
        };
        let reason = disconnect_reason(close);
        if let Some(hooks) = session.data.hooks.get() {
            hooks.session_closed(close, reason);
        }
        for socket in sockets {
            socket.disconnect_with(reason, false);
        }
    }
}

/// Tells the observer, if any, how a recovery attempt in `ns` ended.
fn note_recovery(ns: &Namespace, outcome: &'static str) {
    if let Some(hooks) = ns.config.hooks.get() {
        hooks.recovery(ns.name.as_str(), outcome);
    }
}

fn disconnect_reason(reason: CloseReason) -> DisconnectReason {
    match reason {
        CloseReason::PingTimeout => DisconnectReason::PingTimeout,
        CloseReason::ServerClose => DisconnectReason::ServerDisconnect,
        CloseReason::ServerShutdown => DisconnectReason::ServerShutdown,
        CloseReason::ParseError => DisconnectReason::ParseError,
        CloseReason::TransportClose | CloseReason::ClientClose => DisconnectReason::TransportClose,
        _ => DisconnectReason::TransportError,
    }
}

impl SocketIoHandler {
    pub(crate) fn new(server: Arc<ServerCore>) -> SocketIoHandler {
        SocketIoHandler { server }
    }

    /// A binary packet header arrived: its attachments must all follow within
    /// `attachment_timeout`, or the session is closed (the decoder holds them until then).
    fn arm_attachment_timer(&self, session: &Arc<Session<ConnectionState>>) {
        let seq = {
            let mut inner = session.data.lock();
            inner.binary_started += 1;
            inner.binary_started
        };
        let timeout = self.server.config.attachment_timeout;
        let weak = Arc::downgrade(session);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!("no tokio runtime: the attachment timer cannot be armed");
            return;
        };
        let task = rt.spawn(async move {
            tokio::time::sleep(timeout).await;
            let Some(session) = weak.upgrade() else {
                return;
            };
            let stalled = {
                let inner = session.data.lock();
                inner.binary_started == seq && inner.decoder.is_waiting()
            };
            if stalled && !session.is_closed() {
                tracing::debug!(sid = %session.sid(), ?timeout, "binary attachments not complete in time: closing");
                session.close(CloseReason::ParseError);
            }
        });
        // A new header means the previous binary packet is complete: its timer has nothing
        // left to watch.
        let mut inner = session.data.lock();
        if inner.closed {
            task.abort();
        } else if let Some(previous) = inner.timers.attachments.replace(task.abort_handle()) {
            previous.abort();
        }
    }

    /// A packet for a namespace this client is not connected to. One it left may have crossed
    /// our DISCONNECT and is ignored; one it never connected is a protocol error, and the
    /// session is closed as the JavaScript server does.
    fn not_connected(&self, session: &Arc<Session<ConnectionState>>, ns: &Str, kind: &'static str) {
        let ns = ns.as_str();
        if session.data.has_left(ns) {
            tracing::debug!(sid = %session.sid(), ns, kind, "packet for a namespace this client left: ignored");
        } else {
            tracing::debug!(sid = %session.sid(), ns, kind, "packet for a namespace never connected: closing the session");
            session.close(CloseReason::ParseError);
        }
    }

    async fn on_packet(&self, session: &Arc<Session<ConnectionState>>, packet: Packet) {
        let Packet { ns, data } = packet;
        let ns = without_query(ns);
        match data {
            PacketData::Connect(payload) => self.connect(session, ns, payload).await,
            PacketData::Disconnect => {
                if let Some(socket) = session.data.socket(&ns) {
                    socket.disconnect_with(DisconnectReason::ClientDisconnect, false);
                } else {
                    self.not_connected(session, &ns, "DISCONNECT");
                }
            }
            PacketData::Event { name, args, ack } => {
                let Some(socket) = session.data.socket(&ns) else {
                    self.not_connected(session, &ns, "EVENT");
                    return;
                };
                if let Some(hooks) = session.data.hooks.get() {
                    hooks.event_received(&socket, name.as_str(), &args);
                }
                if let Err(e) = socket.push_event(Event::received(name, args, ack)).await {
                    tracing::warn!(sid = %session.sid(), socket = %socket.id(), error = %e, "closing the client");
                    session.close(CloseReason::ServerClose);
                }
            }
            PacketData::Ack { id, args } => {
                if let Some(socket) = session.data.socket(&ns) {
                    socket.resolve_ack(id, args);
                } else {
                    self.not_connected(session, &ns, "ACK");
                }
            }
            PacketData::ConnectError(_) => {
                tracing::debug!(sid = %session.sid(), "client sent CONNECT_ERROR: closing the session");
                session.close(CloseReason::ParseError);
            }
        }
    }

    async fn connect(
        &self,
        session: &Arc<Session<ConnectionState>>,
        name: Str,
        payload: Option<bytes::Bytes>,
    ) {
        let config = &self.server.config;
        if session.data.socket(&name).is_some() {
            if Conn::legacy(session.as_ref()) && name.as_str() == "/" {
                // A v4 client connected to `/` automatically: nothing more to do.
                tracing::debug!(sid = %session.sid(), "CONNECT to / from a legacy client already connected there");
                return;
            }
            tracing::debug!(sid = %session.sid(), ns = %name.as_str(), "second CONNECT to the same namespace: closing the session");
            session.close(CloseReason::ParseError);
            return;
        }
        let auth = match payload.as_deref().map(serde_json::from_slice::<Value>) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                // The decoder already checked it is a JSON object; be safe anyway.
                tracing::debug!(error = %e, "CONNECT payload is not JSON: closing the session");
                session.close(CloseReason::ParseError);
                return;
            }
        };
        let Some(ns) = registry::join(&self.server, name.as_str()) else {
            send_refusal(
                session,
                config,
                &name,
                &ConnectionRefusedError::new("Invalid namespace"),
                Refuser::Server,
            );
            return;
        };
        let conn: Arc<dyn Conn> = session.clone();
        let (socket, replay) =
            match recover(session, &name, &ns, &conn, config, auth.as_ref()).await {
                Recovery::Restored(socket, missed) => (socket, Some(missed)),
                Recovery::Closed(socket) => {
                    socket.abort_connect();
                    return;
                }
                Recovery::Fresh => {
                    let socket = SocketRef::new(ns.clone(), conn, config.clone(), auth.clone());
                    // No rooms to add: the own-id room is implicit once the namespace lists it.
                    if !attach(session, &name, &ns, &socket, &[]) {
                        socket.abort_connect();
                        return;
                    }
                    (socket, None)
                }
            };

        // A recovered socket skips the middlewares if so configured (they ran when it first
        // connected); its connect handler still runs.
        let skip_middlewares = socket.recovered()
            && config
                .recovery
                .as_ref()
                .is_some_and(|recovery| recovery.skip_middlewares);
        let mut replay = replay;
        let mut finish = |socket: &SocketRef| {
            let finished = match replay.take() {
                Some(missed) => socket.finish_recovered(missed),
                None => socket.finish_connect(),
            };
            if finished.is_ok() {
                session.data.connected();
            }
            finished
        };
        if config.always_connect
            && let Err(e) = finish(&socket)
        {
            tracing::debug!(socket = %socket.id(), error = %e, "socket left before its CONNECT reply");
            socket.abort_connect();
            return;
        }
        let step = run_connect_step(&socket, auth, skip_middlewares);
        let outcome = match tokio::time::timeout(config.connect_timeout, step).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ConnectionRefusedError::new("connect handler timed out")),
        };
        match outcome {
            // Already acknowledged before the step.
            Ok(()) if config.always_connect => {}
            Err(refusal) if config.always_connect => {
                tracing::debug!(socket = %socket.id(), ns = %name.as_str(), message = %refusal.message, "connection refused after the CONNECT reply (always_connect): disconnecting");
                socket.refuse_connected();
            }
            Ok(()) => {
                if let Err(e) = finish(&socket) {
                    // Disconnected (server side, or the session closed) during the connect
                    // step: tell the client rather than leave its connect pending.
                    tracing::debug!(socket = %socket.id(), error = %e, "socket left during its connect step");
                    socket.abort_connect();
                    let refusal =
                        ConnectionRefusedError::new("disconnected during the connect step");
                    send_refusal(session, config, &name, &refusal, Refuser::Application);
                }
            }
            Err(refusal) => {
                tracing::debug!(socket = %socket.id(), ns = %name.as_str(), message = %refusal.message, "connection refused");
                socket.abort_connect();
                send_refusal(session, config, &name, &refusal, Refuser::Application);
            }
        }
    }
}

/// The namespace without a `?query` suffix. Legacy (v2) clients append the handshake query to
/// the namespace (`/chat?x=1`); like python-socketio the suffix is dropped from every packet
/// and not exposed, so the socket lives in `/chat` and replies name `/chat`. The same query is
/// on the handshake URL, where `SocketRef::request` shows it.
fn without_query(ns: Str) -> Str {
    match ns.as_str().split_once('?') {
        Some((path, _query)) => Str::from(path),
        None => ns,
    }
}

/// Connect middlewares in order, then the connect handler; a panic refuses the connection.
async fn run_connect_step(
    socket: &SocketRef,
    auth: Option<Value>,
    skip_middlewares: bool,
) -> Result<(), ConnectionRefusedError> {
    use futures_util::FutureExt as _;
    let (middlewares, handler) = {
        let h = socket.namespace().handlers.read();
        let middlewares = if skip_middlewares {
            Vec::new()
        } else {
            h.connect_mw.clone()
        };
        (middlewares, h.connect.clone())
    };
    let run = async move {
        for mw in middlewares {
            mw.call(ConnectContext::new(socket.clone(), auth.clone()))
                .await?;
        }
        match handler {
            Some(handler) => {
                handler
                    .call(ConnectContext::new(socket.clone(), auth))
                    .await
            }
            None => Ok(()),
        }
    };
    // Same field names as the `event` span around handlers, so one filter on `socket=<id>`
    // follows a socket from its connect step to its events.
    #[cfg(feature = "metrics")]
    let run = tracing::Instrument::instrument(
        run,
        tracing::debug_span!("socket", ns = %socket.ns(), socket = %socket.id()),
    );
    match std::panic::AssertUnwindSafe(run).catch_unwind().await {
        Ok(result) => result,
        Err(_) => {
            tracing::error!(socket = %socket.id(), "connect handler panicked: refusing");
            Err(ConnectionRefusedError::new("internal server error"))
        }
    }
}

/// Makes `socket` the client's socket for `name` and a member of `rooms` in its namespace;
/// false (nothing done) when the client's session closed meanwhile.
fn attach(
    session: &Session<ConnectionState>,
    name: &Str,
    ns: &Arc<Namespace>,
    socket: &SocketRef,
    rooms: &[Room],
) -> bool {
    {
        let mut inner = session.data.lock();
        if inner.closed {
            return false;
        }
        inner.sockets.insert(name.clone(), socket.clone());
    }
    ns.insert(socket.clone());
    ns.join(socket.id(), rooms);
    true
}

/// What a CONNECT's recovery attempt came to.
enum Recovery {
    /// Not an attempt, or a failed one: the client gets a fresh socket.
    Fresh,
    /// The socket is back in its rooms, holding what is delivered to it, with the packets it
    /// missed (oldest first) to send after its CONNECT reply.
    Restored(SocketRef, Vec<BroadcastPacket>),
    /// The session was restored but the client's connection closed meanwhile.
    Closed(SocketRef),
}

/// Connection-state recovery: when the CONNECT auth carries a `pid` and an `offset` and the
/// namespace recovers sessions, takes the session kept under `pid` from the adapter, attaches
/// the restored socket to its rooms (from then on what is broadcast to it is held), and only
/// then asks the adapter for the packets it missed: a packet broadcast between the two steps is
/// both held and replayed, with the same offset, and `finish_recovered` sends it once.
async fn recover(
    session: &Session<ConnectionState>,
    name: &Str,
    ns: &Arc<Namespace>,
    conn: &Arc<dyn Conn>,
    config: &Arc<Config>,
    auth: Option<&Value>,
) -> Recovery {
    if !ns.recovers() || Conn::legacy(session) {
        return Recovery::Fresh;
    }
    let (Some(pid), Some(offset)) = (
        auth.and_then(|a| a.get("pid")).and_then(Value::as_str),
        auth.and_then(|a| a.get("offset")).and_then(Value::as_str),
    ) else {
        return Recovery::Fresh;
    };
    let stats = &ns.recovery_stats;
    let adapter = ns.adapter().clone();
    let persisted = match adapter.take_session(pid).await {
        Ok(Some(persisted)) if persisted.ns == name.as_str() && persisted.pid == pid => persisted,
        Ok(_) => {
            RecoveryCounters::bump(&stats.unknown_pid);
            note_recovery(ns, "unknown_pid");
            tracing::debug!(ns = %name.as_str(), "recovery: no session kept under this pid");
            return Recovery::Fresh;
        }
        Err(e) => {
            RecoveryCounters::bump(&stats.errors);
            note_recovery(ns, "error");
            tracing::warn!(ns = %name.as_str(), error = %e, "recovery: the adapter could not look the session up");
            return Recovery::Fresh;
        }
    };
    let mut rooms = persisted.rooms.clone();
    if !rooms.iter().any(|room| room == persisted.id.as_str()) {
        rooms.push(persisted.id.as_str().to_owned());
    }
    let query = PersistedSession {
        id: persisted.id.clone(),
        pid: persisted.pid.clone(),
        ns: persisted.ns.clone(),
        rooms: rooms.clone(),
        data: None,
    };
    let socket = SocketRef::restored(
        ns.clone(),
        conn.clone(),
        config.clone(),
        auth.cloned(),
        persisted,
    );
    if !attach(session, name, ns, &socket, &rooms) {
        return Recovery::Closed(socket);
    }
    match adapter.missed_packets(&query, offset).await {
        Ok(Some(missed)) => {
            RecoveryCounters::bump(&stats.recovered);
            note_recovery(ns, "recovered");
            tracing::debug!(socket = %socket.id(), missed = missed.len(), "socket recovered");
            Recovery::Restored(socket, missed)
        }
        outcome => {
            match outcome {
                Err(e) => {
                    RecoveryCounters::bump(&stats.errors);
                    note_recovery(ns, "error");
                    tracing::warn!(socket = %socket.id(), error = %e, "recovery: the adapter could not replay the missed packets");
                }
                _ => {
                    RecoveryCounters::bump(&stats.failed);
                    note_recovery(ns, "failed");
                    tracing::debug!(socket = %socket.id(), "recovery failed: the missed packets cannot all be replayed");
                }
            }
            // Never a partial replay presented as complete: the client starts afresh.
            socket.discard();
            Recovery::Fresh
        }
    }
}

/// Who refused a CONNECT: the server itself (an unknown namespace), or the application's
/// middlewares and connect handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refuser {
    Server,
    Application,
}

fn send_refusal(
    session: &Session<ConnectionState>,
    config: &Config,
    ns: &Str,
    refusal: &ConnectionRefusedError,
    by: Refuser,
) {
    // A refusal by the application goes to a Socket.IO v4 client (2.x) as its bare data or
    // message; an unknown namespace is the same object for every client, as the reference
    // server sends it.
    let legacy = Conn::legacy(session) && by == Refuser::Application;
    let encoded = if legacy {
        packet::connect_error_legacy(config.parser, ns, refusal)
    } else {
        packet::connect_error(config.parser, ns, refusal)
    };
    let sent = encoded.and_then(|frames| Conn::send_batch(session, frames.frames()));
    if let Err(e) = sent {
        tracing::debug!(error = %e, "CONNECT_ERROR not sent");
    }
}
