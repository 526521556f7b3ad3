//! A socket: one client connected to one namespace.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sockeye_engine::{CloseReason, Transport};
use sockeye_protocol::socketio::Str;

use crate::ack::{LazyAckMap, PendingAck};
use crate::adapter::{BroadcastOptions, PersistedSession, Room};
use crate::config::Config;
use crate::conn::Conn;
use crate::error::{AckError, EmitError};
use crate::event::Event;
use crate::extract::{DisconnectContext, EventContext, StateMap};
use crate::inbox::{Inbox, InboxPermit, Job, PushError, Start};
use crate::io::SocketIo;
use crate::ns::Namespace;
use crate::operators::{BroadcastOperator, IntoRooms};
use crate::outbox::Outbox;
use crate::packet::{self, Args, BroadcastPacket, Encoded};
use crate::pattern::NsParams;
use crate::reason::DisconnectReason;
use crate::recovery::{self, RecoveryCounters, SocketRecovery};
use crate::session::SessionSlot;
use crate::state::Extensions;
use crate::{SocketId, reserved};

/// A handle to a socket; cheap to clone, usable from any task.
///
/// Once the socket has disconnected, emits return [`EmitError::Disconnected`] and its
/// session and extensions are empty.
#[derive(Clone)]
pub struct SocketRef(Arc<Inner>);

pub(crate) struct Inner {
    id: SocketId,
    ns: Arc<Namespace>,
    conn: Arc<dyn Conn>,
    config: Arc<Config>,
    auth: Option<Value>,
    phase: Mutex<Phase>,
    /// Created by the first ack this socket waits for (most never wait for one).
    acks: LazyAckMap<Args>,
    session: SessionSlot,
    extensions: Extensions,
    inbox: Inbox,
    /// The private id and recovered flag, when the namespace recovers sessions.
    recovery: Option<SocketRecovery>,
}

/// A packet sent while the socket was still connecting, with its recovery offset if it has
/// one (so a recovered socket can tell it from a replayed copy).
struct Held {
    frames: Encoded,
    offset: Option<Str>,
}

/// Where the socket is in its life.
enum Phase {
    /// The connect step runs; packets sent meanwhile wait here for the CONNECT reply.
    Connecting(Vec<Held>),
    Connected,
    /// Gone from the namespace; the disconnect handler may still run and read its rooms.
    Disconnected,
    /// Rooms, session and extensions dropped (after the disconnect handler). Its own-id
    /// room, which no adapter stores, ends here too.
    Freed,
}

impl std::fmt::Debug for SocketRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketRef")
            .field("id", &self.0.id)
            .field("ns", &self.0.ns.name.as_str())
            .finish_non_exhaustive()
    }
}

impl SocketRef {
    pub(crate) fn new(
        ns: Arc<Namespace>,
        conn: Arc<dyn Conn>,
        config: Arc<Config>,
        auth: Option<Value>,
    ) -> SocketRef {
        // Socket.IO v4 clients (2.x) cannot recover: no pid for them.
        let recovery = (ns.recovers() && !conn.legacy()).then(|| SocketRecovery {
            pid: recovery::new_pid(),
            recovered: false,
            outbox: Outbox::default(),
        });
        Self::build(SocketId::random(), ns, conn, config, auth, recovery)
    }

    /// A socket taking back a session kept for recovery: its id and pid are the old ones (the
    /// caller joins the rooms) and its session value is restored.
    pub(crate) fn restored(
        ns: Arc<Namespace>,
        conn: Arc<dyn Conn>,
        config: Arc<Config>,
        auth: Option<Value>,
        persisted: PersistedSession,
    ) -> SocketRef {
        let recovery = Some(SocketRecovery {
            pid: Arc::from(persisted.pid.as_str()),
            recovered: true,
            outbox: Outbox::default(),
        });
        let socket = Self::build(persisted.id, ns, conn, config, auth, recovery);
        if let Some(data) = persisted.data {
            socket.0.session.restore(data);
        }
        socket
    }

    fn build(
        id: SocketId,
        ns: Arc<Namespace>,
        conn: Arc<dyn Conn>,
        config: Arc<Config>,
        auth: Option<Value>,
        recovery: Option<SocketRecovery>,
    ) -> SocketRef {
        let inbox = Inbox::new(config.inbox_capacity);
        SocketRef(Arc::new(Inner {
            id,
            ns,
            conn,
            config,
            auth,
            phase: Mutex::new(Phase::Connecting(Vec::new())),
            acks: LazyAckMap::default(),
            session: SessionSlot::default(),
            extensions: Extensions::default(),
            inbox,
            recovery,
        }))
    }

    /// True when this socket took back the state of a socket whose transport dropped
    /// (connection-state recovery): same id, rooms and session value, and the packets it
    /// missed were sent again. Always false when recovery is off.
    pub fn recovered(&self) -> bool {
        self.0.recovery.as_ref().is_some_and(|r| r.recovered)
    }

    /// The socket id (fresh per namespace connection; not the Engine.IO session id).
    pub fn id(&self) -> &SocketId {
        &self.0.id
    }

    /// The namespace name.
    pub fn ns(&self) -> &str {
        self.0.ns.name.as_str()
    }

    /// The Engine.IO session id of the socket's client (never shown to other clients).
    #[cfg_attr(not(feature = "admin"), allow(dead_code))]
    pub(crate) fn client_id(&self) -> &str {
        self.0.conn.sid()
    }

    pub(crate) fn ns_str(&self) -> &Str {
        &self.0.ns.name
    }

    pub(crate) fn namespace(&self) -> &Arc<Namespace> {
        &self.0.ns
    }

    /// The values captured by the dynamic namespace pattern this namespace matched (empty for
    /// a static namespace).
    pub fn ns_params(&self) -> &NsParams {
        &self.0.ns.params
    }

    /// The CONNECT payload (the client's `auth`), `None` when it sent none.
    pub fn auth(&self) -> Option<&Value> {
        self.0.auth.as_ref()
    }

    /// The head of the HTTP request that opened the Engine.IO session: headers, URI with its
    /// query, extensions.
    pub fn request(&self) -> &http::request::Parts {
        self.0.conn.request()
    }

    /// The peer address, when the server recorded it.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.0.conn.remote_addr()
    }

    /// The transport in use now (`polling` until an upgrade, then `websocket`).
    pub fn transport(&self) -> Transport {
        self.0.conn.transport()
    }

    /// True until the socket disconnects.
    pub fn connected(&self) -> bool {
        !matches!(*self.phase(), Phase::Disconnected | Phase::Freed)
    }

    /// Emits `event` with one argument, `data` (binary parts become attachments).
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emit_args(event, to_args(data)?)
    }

    /// Sends `data` as a `message` event, the name the JavaScript `socket.send` and
    /// python-socketio's `send` use (the client receives it with `on("message")`).
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), EmitError> {
        self.emit("message", data)
    }

    /// Emits `event` with the given arguments (any number, e.g. received ones echoed back).
    ///
    /// With connection-state recovery on, the packet goes through the namespace's adapter as a
    /// broadcast to the socket's own room, so it is stamped with an offset and kept for a
    /// replay (what the official server does). An adapter that must wait for its backend
    /// delivers it a little later, still in emit order; its failure is logged.
    pub fn emit_args(&self, event: &str, args: Args) -> Result<(), EmitError> {
        reserved::check(event)?;
        if let Some(recovery) = &self.0.recovery {
            if let Some(hooks) = self.0.config.hooks.get() {
                hooks.event_sent(self, event, &args);
            }
            let packet = BroadcastPacket::new(self.ns_str().clone(), Str::from(event), args);
            let opts = BroadcastOptions {
                rooms: vec![self.0.id.as_str().to_owned()],
                ..BroadcastOptions::default()
            };
            let adapter = self.0.ns.adapter().clone();
            return recovery
                .outbox
                .push(self, async move { adapter.broadcast(packet, opts).await });
        }
        let frames = packet::event(self.parser(), self.ns_str(), &Str::from(event), &args, None)?;
        self.send_encoded(&frames, false)?;
        if let Some(hooks) = self.0.config.hooks.get() {
            hooks.event_sent(self, event, &args);
        }
        Ok(())
    }

    /// Emits `event` with one argument and waits for the client's ack, at most `timeout`;
    /// returns the ack's first argument as `T` (an ack with no argument reads as `null`, so
    /// `()` and `Option<_>` accept it). Use [`SocketRef::call_args`] for every argument.
    pub async fn call<T: DeserializeOwned, D: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &D,
        timeout: Duration,
    ) -> Result<T, AckError> {
        let args = self.call_args(event, to_args(data)?, timeout).await?;
        if args.is_empty() {
            // An ack without arguments reads as `null`: fine for `()` and `Option<_>`.
            return serde_json::from_value(Value::Null)
                .map_err(|e| AckError::Decode(e.to_string()));
        }
        args.first::<T>()
            .map_err(|e| AckError::Decode(e.to_string()))
    }

    /// Emits `event` with `args`, asking for an ack, and waits for it at most `timeout`.
    ///
    /// The pending ack is removed when this returns, whatever the outcome, so a late ack
    /// finds nothing and is ignored.
    pub async fn call_args(
        &self,
        event: &str,
        args: Args,
        timeout: Duration,
    ) -> Result<Args, AckError> {
        reserved::check(event)?;
        let id = self.0.ns.next_ack_id();
        let pending = self.register_ack(id);
        let frames = packet::event(
            self.parser(),
            self.ns_str(),
            &Str::from(event),
            &args,
            Some(id),
        )?;
        self.send_encoded(&frames, false)?;
        if let Some(hooks) = self.0.config.hooks.get() {
            hooks.event_sent(self, event, &args);
        }
        match tokio::time::timeout(timeout, pending.wait()).await {
            Ok(Some(args)) => Ok(args),
            Ok(None) => Err(AckError::Disconnected),
            Err(_) => {
                if let Some(hooks) = self.0.config.hooks.get() {
                    hooks.ack_timeout(self.ns());
                }
                Err(AckError::Timeout(timeout))
            }
        }
    }

    /// Like [`SocketRef::call`] with the server's default ack timeout.
    pub async fn call_default<T: DeserializeOwned, D: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &D,
    ) -> Result<T, AckError> {
        self.call(event, data, self.0.config.ack_timeout).await
    }

    /// Joins `room` (several calls for several rooms). Rooms are per namespace.
    pub fn join(&self, room: impl Into<Room>) {
        self.join_all([room.into()]);
    }

    /// Joins every room of `rooms`.
    pub fn join_all(&self, rooms: impl IntoIterator<Item = Room>) {
        if !self.connected() {
            return;
        }
        let rooms: Vec<Room> = rooms.into_iter().collect();
        self.0.ns.join(&self.0.id, &rooms);
        self.session_changed();
    }

    /// Leaves `room`. The socket's own id room cannot be left while it is connected.
    pub fn leave(&self, room: &str) {
        if room != self.0.id.as_str() {
            self.0.ns.leave(&self.0.id, room);
            self.session_changed();
        }
    }

    /// Leaves every room but its own id room.
    pub fn leave_all(&self) {
        for room in self.rooms() {
            self.leave(&room);
        }
    }

    /// The socket's rooms, sorted, its own id room included. Still readable in the
    /// disconnect handler; empty once it has run.
    pub fn rooms(&self) -> Vec<Room> {
        // The adapter always lists the own-id room (it stores none): only the socket knows
        // when that room ends.
        if matches!(*self.phase(), Phase::Freed) {
            return Vec::new();
        }
        self.0.ns.rooms_of(&self.0.id)
    }

    /// An operator targeting `rooms` of this namespace, excluding this socket.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// Same as [`SocketRef::to`].
    pub fn within(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// An operator targeting every socket of the namespace except this one and those in
    /// `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().except(rooms)
    }

    /// An operator targeting every other socket of the namespace (JS `socket.broadcast`).
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::from_socket(self)
    }

    /// A clone of the session value, if one of type `T` was saved (or restored).
    pub fn get_session<T>(&self) -> Option<T>
    where
        T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.0.session.get()
    }

    /// Saves the session value (python-socketio's `save_session`, the JavaScript server's
    /// `socket.data`), replacing the previous one. It must be serialisable: connection-state
    /// recovery carries it to the node the client comes back to, and `fetch_sockets` shows it
    /// as `data`. Keep what cannot be serialised in [`SocketRef::extensions`].
    pub fn save_session<T: Serialize + Send + Sync + 'static>(&self, value: T) {
        if self.connected() {
            self.0.session.save(value);
            if let Some(hooks) = self.0.config.hooks.get() {
                hooks.session_changed(self);
            }
            self.session_changed();
        }
    }

    /// With recovery on, tells the adapter this socket's recoverable state (rooms, session
    /// value) changed, so an adapter that keeps live sessions can store it.
    fn session_changed(&self) {
        let Some(r) = &self.0.recovery else { return };
        if !self.connected() {
            return;
        }
        self.0.ns.adapter().session_changed(PersistedSession {
            id: self.0.id.clone(),
            pid: r.pid.to_string(),
            ns: self.ns().to_owned(),
            rooms: self.rooms(),
            data: self
                .session_json()
                .map(crate::session::SessionData::from_json),
        });
    }

    /// With recovery on, tells the adapter this socket will not be recovered.
    fn session_ended(&self) {
        if let Some(r) = &self.0.recovery {
            self.0.ns.adapter().session_ended(&r.pid);
        }
    }

    /// Updates the session value of type `T` in place; `None` if there is none.
    pub fn update_session<T, R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let out = self.0.session.update(f);
        if out.is_some() {
            if let Some(hooks) = self.0.config.hooks.get() {
                hooks.session_changed(self);
            }
            self.session_changed();
        }
        out
    }

    /// The session value as JSON, if there is one and it serialises.
    pub(crate) fn session_json(&self) -> Option<Value> {
        self.0.session.to_json()
    }

    /// The socket's extensions: one value per type, cleared on disconnect.
    pub fn extensions(&self) -> &Extensions {
        &self.0.extensions
    }

    /// Disconnects this socket from its namespace: the client gets a DISCONNECT packet and
    /// the disconnect handler runs with [`DisconnectReason::ServerDisconnect`]. The Engine.IO
    /// session stays open for the client's other namespaces.
    pub fn disconnect(&self) {
        self.disconnect_with(DisconnectReason::ServerDisconnect, true);
    }

    /// Closes the client's whole Engine.IO session (every namespace of this client).
    pub fn close_session(&self) {
        self.0.conn.close(CloseReason::ServerClose);
    }

    /// Number of acks this socket is waiting for (for tests and metrics).
    pub fn pending_acks(&self) -> usize {
        self.0.acks.len()
    }

    // ---- crate internals ---------------------------------------------------------------

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        crate::sync::lock(&self.0.phase)
    }

    pub(crate) fn parser(&self) -> sockeye_protocol::socketio::ParserKind {
        self.0.config.parser
    }

    pub(crate) fn register_ack(&self, id: u64) -> PendingAck<Args> {
        self.0.acks.register(id)
    }

    pub(crate) fn resolve_ack(&self, id: u64, args: Args) {
        if !self.0.acks.resolve(id, args) {
            tracing::debug!(socket = %self.0.id, id, "ack for no pending request (late or unknown): ignored");
        }
    }

    /// Queues an encoded packet for the client, honouring the socket's phase.
    pub(crate) fn send_encoded(&self, frames: &Encoded, volatile: bool) -> Result<(), EmitError> {
        self.send_logged(frames, None, volatile)
    }

    /// Like [`SocketRef::send_encoded`], for a packet stamped with a recovery offset.
    pub(crate) fn send_logged(
        &self,
        frames: &Encoded,
        offset: Option<&Str>,
        volatile: bool,
    ) -> Result<(), EmitError> {
        let mut phase = self.phase();
        match &mut *phase {
            Phase::Disconnected | Phase::Freed => Err(EmitError::Disconnected),
            Phase::Connecting(held) => {
                if volatile {
                    return Ok(());
                }
                if held.len() >= self.0.config.connecting_buffer {
                    return Err(EmitError::QueueFull(format!(
                        "{} packets already wait for the connect step to finish",
                        held.len()
                    )));
                }
                held.push(Held {
                    frames: frames.clone(),
                    offset: offset.cloned(),
                });
                Ok(())
            }
            Phase::Connected => {
                if volatile && self.0.conn.queued_frames() > 0 {
                    return Ok(());
                }
                self.0.conn.send_batch(frames.frames())
            }
        }
    }

    /// The connect step accepted: sends the CONNECT reply, then what was held back.
    pub(crate) fn finish_connect(&self) -> Result<(), EmitError> {
        self.finish_with(Vec::new())
    }

    /// The connect step of a recovered socket accepted: sends the CONNECT reply, the packets
    /// it missed (`replayed`, oldest first), then what was held back since it rejoined its
    /// rooms, except what `replayed` already holds (the same offset): each packet once.
    pub(crate) fn finish_recovered(&self, replayed: Vec<BroadcastPacket>) -> Result<(), EmitError> {
        let replayed = replayed
            .into_iter()
            .filter_map(|p| {
                let frames = p
                    .encode(self.parser(), None)
                    .inspect_err(|e| tracing::error!(error = %e, "missed packet not re-encoded"))
                    .ok()?;
                Some(Held {
                    frames,
                    offset: p.offset,
                })
            })
            .collect();
        self.finish_with(replayed)
    }

    fn finish_with(&self, replayed: Vec<Held>) -> Result<(), EmitError> {
        let pid = self.0.recovery.as_ref().map(|r| &*r.pid);
        let reply = if self.0.conn.legacy() {
            packet::connect_legacy(self.parser(), self.ns_str())?
        } else {
            packet::connect(self.parser(), self.ns_str(), self.0.id.as_str(), pid)?
        };
        let mut phase = self.phase();
        let Phase::Connecting(held) = &mut *phase else {
            return Err(EmitError::Disconnected);
        };
        let held = std::mem::take(held);
        let sent: HashSet<&str> = replayed
            .iter()
            .filter_map(|h| h.offset.as_ref().map(Str::as_str))
            .collect();
        self.0.conn.send_batch(reply.frames())?;
        for packet in replayed.iter().chain(
            held.iter()
                .filter(|h| h.offset.as_ref().is_none_or(|o| !sent.contains(o.as_str()))),
        ) {
            self.0.conn.send_batch(packet.frames.frames())?;
        }
        *phase = Phase::Connected;
        drop(phase);
        if let Some(hooks) = self.0.config.hooks.get() {
            hooks.socket_connected(self);
        }
        self.session_changed();
        Ok(())
    }

    /// The connect step refused (or failed): forget everything without a disconnect handler.
    pub(crate) fn abort_connect(&self) {
        self.session_ended();
        *self.phase() = Phase::Disconnected;
        self.forget();
        self.free_state();
    }

    /// A restored socket whose recovery failed before its connect step: it leaves its client,
    /// namespace and rooms silently, and the namespace membership counted for this CONNECT
    /// stays for the fresh socket that replaces it.
    pub(crate) fn discard(&self) {
        *self.phase() = Phase::Freed;
        self.forget();
        self.0.ns.leave_all(&self.0.id);
        self.0.session.clear();
    }

    /// `always_connect`: the connect step refused a socket whose client was already told it
    /// is connected. Sends a DISCONNECT and forgets the socket without a disconnect handler;
    /// nothing when it has left meanwhile (its own disconnect then cleans up).
    pub(crate) fn refuse_connected(&self) {
        {
            let mut phase = self.phase();
            if !matches!(*phase, Phase::Connected) {
                return;
            }
            let sent = packet::disconnect(self.parser(), self.ns_str())
                .and_then(|frames| self.0.conn.send_batch(frames.frames()));
            if let Err(e) = sent {
                tracing::debug!(socket = %self.0.id, error = %e, "DISCONNECT not sent");
            }
            *phase = Phase::Disconnected;
        }
        self.forget();
        self.free_state();
    }

    /// Leaves the namespace for `reason`; `notify` sends a DISCONNECT packet first. The
    /// disconnect handler runs after the events already queued. Idempotent.
    pub(crate) fn disconnect_with(&self, reason: DisconnectReason, notify: bool) {
        {
            let mut phase = self.phase();
            match &*phase {
                Phase::Disconnected | Phase::Freed => return,
                Phase::Connecting(_) => {
                    // Not connected yet: the connect step sees the phase and aborts.
                    *phase = Phase::Disconnected;
                    return;
                }
                Phase::Connected => {
                    if notify {
                        let sent = packet::disconnect(self.parser(), self.ns_str())
                            .and_then(|frames| self.0.conn.send_batch(frames.frames()));
                        if let Err(e) = sent {
                            tracing::debug!(socket = %self.0.id, error = %e, "DISCONNECT not sent");
                        }
                    }
                    *phase = Phase::Disconnected;
                }
            }
        }
        tracing::debug!(socket = %self.0.id, ns = %self.ns(), %reason, "socket disconnected");
        self.forget();
        if let Some(hooks) = self.0.config.hooks.get() {
            hooks.socket_disconnected(self, reason);
        }
        self.0.acks.clear();
        if self.0.inbox.enqueue(Job::Disconnect(reason)).is_some() {
            self.spawn_drain();
        }
    }

    /// Removes the socket from its client and namespace (its rooms stay until the disconnect
    /// handler has run).
    fn forget(&self) {
        self.0.conn.detach(self.ns_str(), &self.0.id);
        self.0.ns.remove(&self.0.id);
    }

    /// Drops rooms, session, extensions and the namespace membership.
    fn free_state(&self) {
        *self.phase() = Phase::Freed;
        self.0.ns.leave_all(&self.0.id);
        self.0.session.clear();
        self.0.extensions.clear();
        self.0.acks.clear();
        crate::registry::member_left(&self.0.ns);
    }

    /// Hands an inbound event to the inbox (waiting for room at most the configured time).
    pub(crate) async fn push_event(&self, event: Event) -> Result<(), PushError> {
        let permit = InboxPermit::acquire(self, self.0.config.inbox_timeout).await?;
        let concurrent = self.0.ns.handlers.is_concurrent(&event.name);
        if concurrent {
            let socket = self.clone();
            tokio::spawn(async move {
                socket.dispatch(event).await;
                drop(permit);
            });
        } else {
            match self.0.inbox.enqueue(Job::Event(event, permit)) {
                Some(Start::Inline) => self.drain_inline_first().await,
                Some(Start::Task) => self.spawn_drain(),
                None => {}
            }
        }
        Ok(())
    }

    pub(crate) fn inbox(&self) -> &Inbox {
        &self.0.inbox
    }

    /// Runs the drain in the caller's (the engine reader's) task and gives it a task of its
    /// own only if it has to wait ([`Start::Inline`]). Polling here first is sound: a future
    /// registers its wakers again on every poll, and a spawned task is polled anyway.
    ///
    /// A handler that broadcast through an operator built from this socket marks the inbox
    /// ([`Inbox::mark_fans_out`]); the drain then yields once, so the receivers it woke get a
    /// turn before this connection writes the ack, and later drains get a task of their own.
    async fn drain_inline_first(&self) {
        let mut drain = Box::pin(self.clone().drain());
        // `Start::Inline` means the inbox did not fan out when the event was queued (else
        // `Start::Task`), so there is no need to ask again under its lock.
        let first =
            std::future::poll_fn(|cx| std::task::Poll::Ready(drain.as_mut().poll(cx))).await;
        if first.is_pending() {
            tokio::spawn(drain);
        } else if self.0.inbox.fans_out() {
            tokio::task::yield_now().await;
        }
    }

    fn spawn_drain(&self) {
        tokio::spawn(self.clone().drain());
    }

    /// Runs the inbox's jobs in order until it is empty.
    async fn drain(self) {
        while let Some(job) = self.0.inbox.next() {
            match job {
                Job::Event(event, permit) => {
                    self.dispatch(event).await;
                    drop(permit);
                }
                Job::Disconnect(reason) => self.run_disconnect(reason).await,
            }
        }
    }

    async fn run_disconnect(&self, reason: DisconnectReason) {
        let handler = self.0.ns.handlers.read().disconnect.clone();
        if let Some(handler) = handler {
            let cx = DisconnectContext::new(self.clone(), reason);
            // `call` inside the guarded future: a plain-fn handler runs (and may panic) in it.
            let fut = std::panic::AssertUnwindSafe(async move { handler.call(cx).await });
            if fut.catch_unwind().await.is_err() {
                tracing::error!(socket = %self.0.id, "disconnect handler panicked");
            }
        }
        // Kept for recovery only after the rooms are dropped below, so a client coming back
        // at once cannot have its restored rooms removed by this old socket.
        let keep = match &self.0.recovery {
            Some(r) if recovery::is_recoverable(reason) => Some(PersistedSession {
                id: self.0.id.clone(),
                pid: r.pid.to_string(),
                ns: self.ns().to_owned(),
                rooms: self.rooms(),
                data: self.0.session.take(),
            }),
            _ => None,
        };
        if keep.is_none() {
            self.session_ended();
        }
        self.free_state();
        if let Some(session) = keep {
            let stats = &self.0.ns.recovery_stats;
            match self.0.ns.adapter().persist_session(session).await {
                Ok(()) => RecoveryCounters::bump(&stats.sessions_persisted),
                Err(e) => {
                    RecoveryCounters::bump(&stats.persist_errors);
                    tracing::warn!(socket = %self.0.id, error = %e, "session not kept for recovery");
                }
            }
        }
    }

    /// Runs the event middlewares, then the handler, then sends the ack if one is due.
    async fn dispatch(&self, mut event: Event) {
        // Without middlewares (the usual case) the route is looked up under the same read
        // lock; with them, after they ran, since they may rename the event.
        let (middlewares, early_route) = {
            let handlers = self.0.ns.handlers.read();
            if handlers.event_mw.is_empty() {
                (Vec::new(), Some(handlers.route(&event.name)))
            } else {
                (handlers.event_mw.clone(), None)
            }
        };
        for mw in middlewares {
            let socket = self.clone();
            // `call` inside the guarded future: a middleware may run code (and panic) before
            // returning its future.
            let fut = std::panic::AssertUnwindSafe(async move { mw.call(socket, event).await });
            match fut.catch_unwind().await {
                Ok(Ok(next)) => event = next,
                Ok(Err(rejected)) => {
                    tracing::debug!(socket = %self.0.id, %rejected, "event dropped by middleware");
                    return;
                }
                Err(_) => {
                    tracing::error!(socket = %self.0.id, "event middleware panicked: disconnecting the socket");
                    self.disconnect_with(DisconnectReason::HandlerPanic, true);
                    return;
                }
            }
        }
        let route = match early_route {
            Some(route) => route,
            None => self.0.ns.handlers.route(&event.name),
        };
        let Some(route) = route else {
            // Like python-socketio: an unhandled event gets no ack, even if one was asked.
            tracing::debug!(socket = %self.0.id, event = %event.name.as_str(), "no handler for event");
            return;
        };
        #[cfg(feature = "metrics")]
        let span = tracing::debug_span!(
            "event",
            ns = %self.ns(),
            socket = %self.0.id,
            event = %event.name.as_str()
        );
        let started = self.0.config.hooks.get().map(|_| std::time::Instant::now());
        let cx = EventContext::new(self.clone(), event);
        // `call` inside the guarded future: extractors and a plain-fn handler run (and may
        // panic) in `call` itself, not in the future it returns.
        let fut = std::panic::AssertUnwindSafe(async move { route.handler.call(cx).await });
        #[cfg(feature = "metrics")]
        let fut = std::panic::AssertUnwindSafe(tracing::Instrument::instrument(fut, span));
        let outcome = fut.catch_unwind().await;
        if let (Some(hooks), Some(started)) = (self.0.config.hooks.get(), started) {
            hooks.handler_done(self, started.elapsed());
        }
        if outcome.is_err() {
            // What the handler left half-done (session, rooms) cannot be trusted: the socket
            // goes, with a reason its disconnect handler and the client both see.
            tracing::error!(socket = %self.0.id, "event handler panicked: disconnecting the socket");
            self.disconnect_with(DisconnectReason::HandlerPanic, true);
        }
    }

    /// Runs the queue of this socket's emits through the adapter (see `outbox.rs`).
    pub(crate) async fn recovery_outbox_drain(self) {
        if let Some(recovery) = &self.0.recovery {
            recovery.outbox.drain(&self).await;
        }
    }

    /// The states registered on the server, for `State<T>` extractors.
    pub(crate) fn states(&self) -> &StateMap {
        &self.0.config.states
    }

    /// The server handle, while the server is alive.
    pub(crate) fn server(&self) -> Option<SocketIo> {
        self.0.ns.server.upgrade()?.handle()
    }

    /// An operator on every socket of this socket's namespace, this one included; a broadcast
    /// through it counts as a fan-out of this socket (see `docs/server.md`, "Where a socket's
    /// events run").
    pub(crate) fn namespace_operator(&self) -> BroadcastOperator {
        BroadcastOperator::namespace_of(self)
    }
}

fn to_args<T: Serialize + ?Sized>(data: &T) -> Result<Args, EmitError> {
    Args::from_value(data).map_err(|e| EmitError::Serialize(e.to_string()))
}
