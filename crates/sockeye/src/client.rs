//! One Engine.IO session seen from Socket.IO: its decoder and its sockets, one per namespace.
//! [`SocketIoHandler`] is the [`EngineHandler`] that routes each packet.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use sockeye_engine::{CloseReason, EngineHandler, Message, Session};
use sockeye_protocol::socketio::{Decoder, Packet, PacketData, Str};

use crate::adapter::Room;
use crate::config::Config;
use crate::conn::Conn;
use crate::error::ConnectionRefusedError;
use crate::event::Event;
use crate::id::SocketId;
use crate::io::ServerInner;
use crate::ns::Namespace;
use crate::packet::{self, Encoded};
use crate::reason::DisconnectReason;
use crate::registry;
use crate::socket::SocketRef;

/// The per-session state the Socket.IO layer keeps in each Engine.IO session.
#[derive(Default)]
pub struct ClientState {
    inner: Mutex<ClientInner>,
}

impl std::fmt::Debug for ClientState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientState")
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
struct ClientInner {
    sockets: NsSockets,
    decoder: Decoder,
    /// Counts binary packet headers, so a completion timer knows whether the packet it was
    /// armed for is still the pending one.
    binary_started: u64,
    /// Set by `on_close`: no socket may be attached any more.
    closed: bool,
    /// Namespaces this client was connected to and left, newest last (at most
    /// [`LEFT_NAMESPACES_KEPT`]): a packet for one of them may simply have crossed our
    /// DISCONNECT, so it is ignored; a packet for a namespace never connected closes the session.
    left: Vec<Str>,
}

/// How many left namespaces a client remembers, so the list stays bounded whatever it does.
const LEFT_NAMESPACES_KEPT: usize = 8;

impl ClientState {
    fn lock(&self) -> std::sync::MutexGuard<'_, ClientInner> {
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
}

/// The Socket.IO layer on top of the engine. Built by [`crate::SocketIoBuilder`]; it appears
/// in the layer and service types only.
#[derive(Clone)]
pub struct SocketIoHandler {
    pub(crate) server: Arc<ServerInner>,
}

impl std::fmt::Debug for SocketIoHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoHandler").finish_non_exhaustive()
    }
}

impl EngineHandler for SocketIoHandler {
    type Data = ClientState;

    fn on_open(&self, session: &Arc<Session<ClientState>>) {
        let config = &self.server.config;
        session.data.lock().decoder = Decoder::new(config.parser, config.limits);
        let timeout = config.connect_timeout;
        let weak = Arc::downgrade(session);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!("no tokio runtime: the connect timeout cannot be armed");
            return;
        };
        rt.spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(session) = weak.upgrade()
                && session.data.is_empty()
                && !session.is_closed()
            {
                tracing::debug!(sid = %session.sid(), "no namespace connected in time: closing");
                session.close(CloseReason::ServerClose);
            }
        });
    }

    async fn on_message(&self, session: &Arc<Session<ClientState>>, message: Message) {
        let header = matches!(message, Message::Text(_));
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

    fn on_close(&self, session: &Arc<Session<ClientState>>, reason: CloseReason) {
        let sockets: Vec<SocketRef> = {
            let mut inner = session.data.lock();
            inner.closed = true;
            inner.decoder = Decoder::default();
            inner.sockets.take_all()
        };
        let reason = disconnect_reason(reason);
        for socket in sockets {
            socket.disconnect_with(reason, false);
        }
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
    /// A binary packet header arrived: its attachments must all follow within
    /// `attachment_timeout`, or the session is closed (the decoder holds them until then).
    fn arm_attachment_timer(&self, session: &Arc<Session<ClientState>>) {
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
        rt.spawn(async move {
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
    }

    /// A packet for a namespace this client is not connected to. One it left may have crossed
    /// our DISCONNECT and is ignored; one it never connected is a protocol error, and the
    /// session is closed as the JavaScript server does.
    fn not_connected(&self, session: &Arc<Session<ClientState>>, ns: &Str, kind: &'static str) {
        let ns = ns.as_str();
        if session.data.has_left(ns) {
            tracing::debug!(sid = %session.sid(), ns, kind, "packet for a namespace this client left: ignored");
        } else {
            tracing::debug!(sid = %session.sid(), ns, kind, "packet for a namespace never connected: closing the session");
            session.close(CloseReason::ParseError);
        }
    }

    async fn on_packet(&self, session: &Arc<Session<ClientState>>, packet: Packet) {
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
                let ack = ack.map(|id| socket.ack_sender(id));
                if let Err(e) = socket.push_event(Event::new(name, args, ack)).await {
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
        session: &Arc<Session<ClientState>>,
        name: Str,
        payload: Option<bytes::Bytes>,
    ) {
        let config = &self.server.config;
        if session.data.socket(&name).is_some() {
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
        let Some(ns) = registry::join(
            &self.server.registry,
            name.as_str(),
            config,
            self.server.factory.as_ref(),
        ) else {
            send_refusal(
                session,
                config,
                &name,
                &ConnectionRefusedError::new("Invalid namespace"),
            );
            return;
        };
        let conn: Arc<dyn Conn> = session.clone();
        let (socket, attached) = match recover(session, &name, &ns, &conn, config, auth.as_ref()) {
            Some(recovered) => recovered,
            None => {
                let socket = SocketRef::new(ns.clone(), conn, config.clone(), auth.clone());
                // No rooms to add: the own-id room is implicit once the namespace lists it.
                let attached = attach(session, &name, &ns, &socket, &[]);
                (socket, attached)
            }
        };
        if !attached {
            socket.abort_connect();
            return;
        }

        // A recovered socket skips the middlewares if so configured (they ran when it first
        // connected); its connect handler still runs.
        let skip_middlewares = socket.recovered()
            && config
                .recovery
                .as_ref()
                .is_some_and(|recovery| recovery.skip_middlewares);
        if config.always_connect
            && let Err(e) = socket.finish_connect()
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
                if let Err(e) = socket.finish_connect() {
                    // Disconnected (server side, or the session closed) during the connect
                    // step: tell the client rather than leave its connect pending.
                    tracing::debug!(socket = %socket.id(), error = %e, "socket left during its connect step");
                    socket.abort_connect();
                    let refusal =
                        ConnectionRefusedError::new("disconnected during the connect step");
                    send_refusal(session, config, &name, &refusal);
                }
            }
            Err(refusal) => {
                tracing::debug!(socket = %socket.id(), ns = %name.as_str(), message = %refusal.message, "connection refused");
                socket.abort_connect();
                send_refusal(session, config, &name, &refusal);
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
            mw.call(socket.clone()).await?;
        }
        match handler {
            Some(handler) => handler.call(socket.clone(), auth).await,
            None => Ok(()),
        }
    };
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
    session: &Session<ClientState>,
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
    ns.adapter().add_all(socket.id(), rooms);
    true
}

/// Connection-state recovery: when the CONNECT auth carries a `pid` and an `offset` the
/// namespace can recover, the socket comes back (id, rooms, session value) with the packets it
/// missed held for after the CONNECT reply, already attached; with whether attaching worked.
/// The log stays locked from the lookup until the socket is in its rooms, so a concurrent
/// broadcast is either replayed or delivered, never both nor neither.
fn recover(
    session: &Session<ClientState>,
    name: &Str,
    ns: &Arc<Namespace>,
    conn: &Arc<dyn Conn>,
    config: &Arc<Config>,
    auth: Option<&Value>,
) -> Option<(SocketRef, bool)> {
    let log = ns.recovery()?;
    let pid = auth?.get("pid")?.as_str()?;
    let offset = auth?.get("offset")?.as_str()?;
    log.restore(pid, offset, |persisted, missed| {
        let mut rooms = persisted.rooms.clone();
        if !rooms.iter().any(|room| room == persisted.id.as_str()) {
            rooms.push(persisted.id.as_str().to_owned());
        }
        let held: Vec<Encoded> = missed
            .iter()
            .filter_map(|p| {
                packet::event(config.parser, &p.ns, &p.event, &p.args, None)
                    .inspect_err(|e| tracing::error!(error = %e, "missed packet not re-encoded"))
                    .ok()
            })
            .collect();
        let socket = SocketRef::restored(
            ns.clone(),
            conn.clone(),
            config.clone(),
            auth.cloned(),
            Arc::from(pid),
            persisted,
            held,
        );
        let attached = attach(session, name, ns, &socket, &rooms);
        (socket, attached)
    })
}

fn send_refusal(
    session: &Session<ClientState>,
    config: &Config,
    ns: &Str,
    refusal: &ConnectionRefusedError,
) {
    let sent = packet::connect_error(config.parser, ns, refusal)
        .and_then(|frames| Conn::send_batch(session, frames.frames()));
    if let Err(e) = sent {
        tracing::debug!(error = %e, "CONNECT_ERROR not sent");
    }
}
