//! The connection task: it owns the Engine.IO connection and every namespace on it, answers
//! the public handles over a bounded channel, dispatches events to handlers and reconnects.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use sockeye_protocol::engine::Frame;
use sockeye_protocol::socketio::{Args, Decoder, Packet, PacketData, ParserKind};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use crate::engine::{self, CloseCause, Command, Engine, EngineEvent, Transport};
use crate::error::{ConnectionError, Result, SocketIoError};
use crate::event::{AckSender, DisconnectReason, Event};
use crate::options::{Handlers, Options};

/// Capacity of the channel from the public handles to the task.
pub(crate) const COMMAND_QUEUE: usize = 256;
/// Most event handlers running at once. Past it the client stops reading from the server
/// until one ends, so the memory held by handlers is bounded by this times `max_payload`.
pub(crate) const MAX_HANDLERS: usize = 1024;

/// Events a namespace may receive between its CONNECT and the server's reply: a recovering
/// server (the Node one) replays missed packets before its CONNECT reply, and socket.io-client
/// keeps them until the reply. Bounded in number and, in total, to one `max_payload`, so that
/// a server cannot grow the queue at will.
const MAX_EARLY_EVENTS: usize = 1024;
/// How often answered-by-nobody ack entries (their caller timed out) are dropped.
const ACK_SWEEP: Duration = Duration::from_secs(1);

/// A request from a public handle.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// Emit `name` on `namespace`; `reply` receives the ack when one is wanted. `accepted`
    /// says whether the emit was sent or buffered.
    Emit {
        namespace: String,
        name: String,
        args: Args,
        reply: Option<oneshot::Sender<Args>>,
        accepted: oneshot::Sender<Result<()>>,
    },
    /// Answer the server's event `id`.
    Ack {
        namespace: String,
        id: u64,
        args: Args,
    },
    /// Leave every namespace and close; `done` fires once the connection is closed.
    Disconnect { done: oneshot::Sender<()> },
}

/// The lifecycle of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The first connection is being made.
    Connecting,
    /// The Engine.IO connection is up.
    Connected,
    /// The connection was lost and the client is trying again.
    Reconnecting,
    /// The client is done: disconnected by either side, or it gave up reconnecting.
    Closed,
}

/// State the handles read without asking the task.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) engine_sid: Option<String>,
    pub(crate) transport: Option<watch::Receiver<Transport>>,
    /// Connected namespaces and their Socket.IO sid.
    pub(crate) namespaces: HashMap<String, String>,
    /// The connected namespaces whose last CONNECT recovered the previous session.
    pub(crate) recovered: HashSet<String>,
}

/// What the task shares with the handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) snapshot: Mutex<Snapshot>,
    pub(crate) status: watch::Sender<Status>,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared {
            snapshot: Mutex::new(Snapshot::default()),
            status: watch::Sender::new(Status::Connecting),
        }
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Snapshot) -> T) -> T {
        // A panic while holding this lock cannot leave the snapshot half-written in a way that
        // matters (it is a cache), so a poisoned lock is used as is.
        let mut guard = self.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum NsState {
    /// CONNECT sent, no answer yet.
    Pending,
    Connected,
    /// The server answered CONNECT_ERROR.
    Refused,
    /// The server sent DISCONNECT: never reconnected.
    Kicked,
}

/// What a namespace keeps to recover its session after a transport loss (connection-state
/// recovery, socket.io-client 4.6+): the private id from the server's CONNECT reply and the
/// offset of the last event that carried one.
#[derive(Debug, Default, Clone)]
struct Resume {
    pid: Option<String>,
    offset: Option<String>,
}

/// An emit kept while reconnecting.
struct Buffered {
    namespace: String,
    name: String,
    args: Args,
    reply: Option<oneshot::Sender<Args>>,
}

/// Why a session (one Engine.IO connection) ended.
enum End {
    /// `disconnect` was called or every handle is gone.
    Client(Option<oneshot::Sender<()>>),
    /// The server disconnected every namespace.
    Server,
    /// The connection dropped; reconnect if enabled.
    Lost(DisconnectReason),
}

/// The connection task.
pub(crate) struct Conn {
    options: Arc<Options>,
    handlers: Arc<Handlers>,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Cmd>,
    /// Weak, so that the channel closes when every handle is dropped.
    command_tx: mpsc::WeakSender<Cmd>,
    namespaces: Vec<(String, NsState)>,
    /// By ack id: the namespace the emit went to and who waits.
    pending_acks: HashMap<u64, (String, oneshot::Sender<Args>)>,
    next_ack: u64,
    buffer: VecDeque<Buffered>,
    /// The last CONNECT_ERROR of each refused namespace.
    refusals: HashMap<String, SocketIoError>,
    decoder: Decoder,
    /// Recovery state by namespace; present once a server that recovers sessions sent a pid.
    resume: HashMap<String, Resume>,
    /// Reports the outcome of the first connect to `connect`.
    first: Option<oneshot::Sender<Result<()>>>,
    /// One permit per event handler running: a server flooding events to slow handlers
    /// would otherwise pile up tasks (and their arguments) without bound.
    handler_slots: Arc<Semaphore>,
    /// The permit taken for the packet being handled, handed to its handler task.
    slot: Option<OwnedSemaphorePermit>,
    /// Events that arrived on a namespace whose CONNECT is unanswered, dispatched (in order)
    /// once it is answered, dropped if it is refused or the transport is lost.
    early_events: VecDeque<EarlyEvent>,
    /// The bytes `early_events` hold.
    early_bytes: usize,
}

/// An event received before its namespace's CONNECT reply.
struct EarlyEvent {
    ns: String,
    name: String,
    args: Args,
    ack: Option<u64>,
}

impl Conn {
    pub(crate) fn new(
        options: Arc<Options>,
        handlers: Arc<Handlers>,
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Cmd>,
        command_tx: mpsc::WeakSender<Cmd>,
        first: oneshot::Sender<Result<()>>,
    ) -> Conn {
        let namespaces = options
            .namespace_list()
            .into_iter()
            .map(|ns| (ns, NsState::Pending))
            .collect();
        let decoder = Decoder::new(options.parser, options.limits.decoder());
        Conn {
            options,
            handlers,
            shared,
            commands,
            command_tx,
            namespaces,
            pending_acks: HashMap::new(),
            next_ack: 0,
            buffer: VecDeque::new(),
            refusals: HashMap::new(),
            decoder,
            resume: HashMap::new(),
            first: Some(first),
            handler_slots: Arc::new(Semaphore::new(MAX_HANDLERS)),
            slot: None,
            early_events: VecDeque::new(),
            early_bytes: 0,
        }
    }

    /// Runs until the client is closed for good.
    pub(crate) async fn run(mut self, mut engine: Engine) {
        let mut done = None;
        loop {
            match self.session(&mut engine).await {
                End::Client(ack) => {
                    done = ack;
                    break;
                }
                End::Server => break,
                End::Lost(reason) => {
                    tracing::info!(?reason, "connection lost");
                    self.lost(&reason);
                    if let Some(first) = self.first.take() {
                        let _ =
                            first.send(Err(SocketIoError::Connection(ConnectionError::Transport(
                                format!("the connection dropped while connecting: {reason:?}"),
                            ))));
                        break;
                    }
                    if !self.options.reconnect.enabled {
                        break;
                    }
                    match self.reconnect().await {
                        Ok(next) => engine = next,
                        Err(ack) => {
                            done = ack;
                            break;
                        }
                    }
                }
            }
        }
        self.shared.with(|s| {
            s.namespaces.clear();
            s.transport = None;
        });
        if !self.buffer.is_empty() {
            tracing::warn!(
                count = self.buffer.len(),
                "client closed with buffered emits; they are dropped"
            );
        }
        self.shared.status.send_replace(Status::Closed);
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// One Engine.IO connection: connect the namespaces, then serve until it ends.
    async fn session(&mut self, engine: &mut Engine) -> End {
        self.decoder = Decoder::new(self.options.parser, self.options.limits.decoder());
        self.shared.with(|s| {
            s.engine_sid = Some(engine.sid.clone());
            s.transport = Some(engine.transport.clone());
        });
        self.shared.status.send_replace(Status::Connected);
        let names: Vec<String> = self
            .namespaces
            .iter()
            .filter(|(_, state)| *state != NsState::Kicked)
            .map(|(ns, _)| ns.clone())
            .collect();
        for ns in names {
            self.set_state(&ns, NsState::Pending);
            let payload = self.options.auth.payload().await;
            let payload = self.with_resume(&ns, payload);
            send(
                engine,
                self.options.parser,
                &Packet::connect(ns.as_str(), payload),
            )
            .await;
        }
        let mut sweep = tokio::time::interval(ACK_SWEEP);
        loop {
            tokio::select! {
                (slot, event) = next_event(&self.handler_slots, &mut engine.events) => match event {
                    Some(EngineEvent::Message(message)) => match self.decoder.decode(message) {
                        Ok(Some(packet)) => {
                            self.slot = slot;
                            if let Some(end) = self.on_packet(engine, packet).await {
                                return end;
                            }
                        }
                        Ok(None) => {}
                        Err(error) => {
                            tracing::warn!(%error, "invalid packet from the server; closing");
                            let _ = engine.commands.send(Command::Close).await;
                            return End::Lost(DisconnectReason::TransportError(error.to_string()));
                        }
                    },
                    Some(EngineEvent::Closed(cause)) => return End::Lost(reason_of(cause)),
                    None => return End::Lost(DisconnectReason::TransportClose),
                },
                command = self.commands.recv() => match command {
                    None => {
                        self.leave(engine).await;
                        return End::Client(None);
                    }
                    Some(Cmd::Disconnect { done }) => {
                        self.leave(engine).await;
                        return End::Client(Some(done));
                    }
                    Some(Cmd::Emit { namespace, name, args, reply, accepted }) => {
                        let result = self.emit(engine, namespace, name, args, reply).await;
                        let _ = accepted.send(result);
                    }
                    Some(Cmd::Ack { namespace, id, args }) => {
                        if self.state(&namespace) == Some(&NsState::Connected) {
                            send(engine, self.options.parser, &Packet::ack(namespace, id, args)).await;
                        }
                    }
                },
                _ = sweep.tick() => self.pending_acks.retain(|_, (_, tx)| !tx.is_closed()),
            }
        }
    }

    /// Leaves every connected namespace and closes the Engine.IO connection.
    async fn leave(&mut self, engine: &mut Engine) {
        let connected: Vec<String> = self
            .namespaces
            .iter()
            .filter(|(_, state)| *state == NsState::Connected)
            .map(|(ns, _)| ns.clone())
            .collect();
        for ns in &connected {
            send(
                engine,
                self.options.parser,
                &Packet::disconnect(ns.as_str()),
            )
            .await;
        }
        let _ = engine.commands.send(Command::Close).await;
        // Let the transport task flush the DISCONNECTs and CLOSE before the task ends.
        let drain = async {
            while let Some(event) = engine.events.recv().await {
                if matches!(event, EngineEvent::Closed(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(self.options.request_timeout, drain).await;
        for ns in connected {
            self.set_state(&ns, NsState::Kicked);
            self.fire_disconnect(ns, DisconnectReason::ClientDisconnect);
        }
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(SocketIoError::Disconnected));
        }
    }

    /// The connection dropped: every connected namespace is disconnected, pending acks fail.
    fn lost(&mut self, reason: &DisconnectReason) {
        let connected: Vec<String> = self
            .namespaces
            .iter()
            .filter(|(_, state)| *state == NsState::Connected)
            .map(|(ns, _)| ns.clone())
            .collect();
        for ns in connected {
            self.set_state(&ns, NsState::Pending);
            self.fire_disconnect(ns, reason.clone());
        }
        // Dropping the senders makes every waiting `call` fail at once instead of timing out.
        self.pending_acks.clear();
        self.early_events.clear();
        self.early_bytes = 0;
        self.shared.with(|s| {
            s.namespaces.clear();
            s.recovered.clear();
        });
    }

    async fn on_packet(&mut self, engine: &mut Engine, packet: Packet) -> Option<End> {
        let ns = packet.ns.to_string();
        match packet.data {
            PacketData::Connect(payload) => {
                let ok = payload
                    .and_then(|p| serde_json::from_slice::<ConnectOk>(&p).ok())
                    .unwrap_or_default();
                // Only an answer to our own CONNECT counts: not one for a namespace never
                // requested, refused, or left.
                if self.state(&ns) != Some(&NsState::Pending) {
                    tracing::debug!(namespace = %ns, "CONNECT for a namespace not being joined; ignored");
                    return None;
                }
                let recovered = self.on_connect_reply(&ns, ok.pid);
                self.set_state(&ns, NsState::Connected);
                self.shared.with(|s| {
                    s.namespaces.insert(ns.clone(), ok.sid);
                    if recovered {
                        s.recovered.insert(ns.clone());
                    } else {
                        s.recovered.remove(&ns);
                    }
                });
                if let Some(callback) = &self.handlers.connect {
                    tokio::spawn(callback(ns.clone()));
                }
                self.dispatch_early_events(&ns);
                self.flush_buffer(engine, &ns).await;
                self.first_round_done();
            }
            PacketData::ConnectError(payload) => {
                // Recording refusals of arbitrary namespaces would let a server grow the map.
                if self.state(&ns) != Some(&NsState::Pending) {
                    tracing::debug!(namespace = %ns, "CONNECT_ERROR for a namespace not being joined; ignored");
                    return None;
                }
                let refused: RefusedPayload = serde_json::from_slice(&payload).unwrap_or_default();
                let error = SocketIoError::ConnectionRefused {
                    namespace: ns.clone(),
                    message: refused.message,
                    data: refused.data,
                };
                tracing::info!(%error, "namespace refused");
                self.set_state(&ns, NsState::Refused);
                self.drop_early_events(&ns);
                self.refusals.insert(ns.clone(), error.clone());
                self.fire_connect_error(ns, error);
                self.first_round_done();
            }
            PacketData::Disconnect => {
                if self.state(&ns) != Some(&NsState::Connected) {
                    return None;
                }
                self.set_state(&ns, NsState::Kicked);
                // Left on purpose: nothing to resume.
                self.resume.remove(&ns);
                self.shared.with(|s| {
                    s.namespaces.remove(&ns);
                    s.recovered.remove(&ns);
                });
                self.fire_disconnect(ns, DisconnectReason::ServerDisconnect);
                let any_left = self
                    .namespaces
                    .iter()
                    .any(|(_, s)| matches!(s, NsState::Connected | NsState::Pending));
                if !any_left {
                    let _ = engine.commands.send(Command::Close).await;
                    return Some(End::Server);
                }
            }
            PacketData::Event { name, args, ack } => {
                match self.state(&ns) {
                    Some(NsState::Connected) => {}
                    Some(NsState::Pending) => {
                        let bytes = args.byte_len();
                        let room = self
                            .options
                            .limits
                            .max_payload
                            .saturating_sub(self.early_bytes);
                        if self.early_events.len() < MAX_EARLY_EVENTS && bytes <= room {
                            self.early_bytes += bytes;
                            self.early_events.push_back(EarlyEvent {
                                ns,
                                name: name.to_string(),
                                args,
                                ack,
                            });
                        } else {
                            tracing::warn!(namespace = %ns, "too many events before the CONNECT reply; dropped");
                        }
                        return None;
                    }
                    _ => {
                        tracing::debug!(namespace = %ns, "event on a namespace not joined; ignored");
                        return None;
                    }
                }
                let offset = self.note_offset(&ns, &args, ack);
                let slot = self.slot.take();
                self.dispatch(ns, name.to_string(), args, ack, offset, slot);
            }
            PacketData::Ack { id, args } => {
                // An ack counts only on the namespace its emit went to; ids are per client.
                if self.pending_acks.get(&id).is_some_and(|(on, _)| *on == ns) {
                    if let Some((_, reply)) = self.pending_acks.remove(&id) {
                        let _ = reply.send(args);
                    }
                } else {
                    tracing::debug!(namespace = %ns, id, "ack for no pending emit; ignored");
                }
            }
        }
        None
    }

    /// Takes, in arrival order, the events `ns` received before its CONNECT reply.
    fn take_early_events(&mut self, ns: &str) -> VecDeque<EarlyEvent> {
        let (early, others): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.early_events)
            .into_iter()
            .partition(|e| e.ns == ns);
        self.early_events = others;
        self.early_bytes = self.early_events.iter().map(|e| e.args.byte_len()).sum();
        early
    }

    /// Forgets the events `ns` received before a CONNECT reply that refused it.
    fn drop_early_events(&mut self, ns: &str) {
        self.take_early_events(ns);
    }

    /// Dispatches, in arrival order, the events `ns` received before its CONNECT reply.
    fn dispatch_early_events(&mut self, ns: &str) {
        let early = self.take_early_events(ns);
        for EarlyEvent {
            ns,
            name,
            args,
            ack,
        } in early
        {
            let offset = self.note_offset(&ns, &args, ack);
            let slot = Arc::clone(&self.handler_slots).try_acquire_owned().ok();
            self.dispatch(ns, name, args, ack, offset, slot);
        }
    }

    /// Reports the first connect once every namespace answered.
    fn first_round_done(&mut self) {
        if self.first.is_none() || self.namespaces.iter().any(|(_, s)| *s == NsState::Pending) {
            return;
        }
        let refused = self
            .namespaces
            .iter()
            .find(|(_, s)| *s == NsState::Refused)
            .map(|(ns, _)| ns.clone());
        if let Some(first) = self.first.take() {
            let result = match refused {
                None => Ok(()),
                // The details went to `on_connect_error`; repeat them for the caller.
                Some(ns) => Err(self.last_refusal(&ns)),
            };
            let _ = first.send(result);
        }
    }

    fn last_refusal(&self, ns: &str) -> SocketIoError {
        self.refusals
            .get(ns)
            .cloned()
            .unwrap_or_else(|| SocketIoError::BadNamespace(ns.to_owned()))
    }

    fn dispatch(
        &self,
        namespace: String,
        name: String,
        args: Args,
        ack: Option<u64>,
        offset: Option<String>,
        slot: Option<OwnedSemaphorePermit>,
    ) {
        let handler = self
            .handlers
            .events
            .get(&(namespace.clone(), name.clone()))
            .or(self.handlers.any.as_ref())
            .cloned();
        let ack = ack.and_then(|id| {
            self.command_tx.upgrade().map(|commands| AckSender {
                namespace: namespace.clone(),
                id,
                commands,
                sent: Arc::new(AtomicBool::new(false)),
            })
        });
        let fallback = ack.clone();
        let event = Event {
            namespace,
            name,
            args,
            ack,
            offset,
        };
        tokio::spawn(async move {
            let _slot = slot;
            let reply = match handler {
                Some(handler) => handler(event).await,
                None => {
                    tracing::debug!(event = %event.name, namespace = %event.namespace, "no handler");
                    None
                }
            };
            // The server always gets an answer when it asked; a no-op if the handler sent one.
            if let Some(ack) = fallback {
                let _ = ack.send(reply.unwrap_or_else(Args::empty)).await;
            }
        });
    }

    async fn emit(
        &mut self,
        engine: &mut Engine,
        namespace: String,
        name: String,
        args: Args,
        reply: Option<oneshot::Sender<Args>>,
    ) -> Result<()> {
        match self.state(&namespace) {
            Some(NsState::Connected) => {
                let packet = match reply {
                    Some(reply) => {
                        let id = self.next_ack;
                        self.next_ack = self.next_ack.wrapping_add(1);
                        self.pending_acks.insert(id, (namespace.clone(), reply));
                        Packet::event_with_ack(namespace.as_str(), name.as_str(), args, id)
                    }
                    None => Packet::event(namespace.as_str(), name.as_str(), args),
                };
                send(engine, self.options.parser, &packet).await;
                Ok(())
            }
            Some(NsState::Pending) => self.buffer_emit(namespace, name, args, reply),
            None | Some(NsState::Refused | NsState::Kicked) => {
                Err(SocketIoError::BadNamespace(namespace))
            }
        }
    }

    fn buffer_emit(
        &mut self,
        namespace: String,
        name: String,
        args: Args,
        reply: Option<oneshot::Sender<Args>>,
    ) -> Result<()> {
        if self.buffer.len() >= self.options.buffer {
            return Err(SocketIoError::Disconnected);
        }
        self.buffer.push_back(Buffered {
            namespace,
            name,
            args,
            reply,
        });
        Ok(())
    }

    async fn flush_buffer(&mut self, engine: &mut Engine, ns: &str) {
        let (ready, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.buffer)
            .into_iter()
            .partition(|b| b.namespace == ns);
        self.buffer = kept;
        for b in ready {
            let _ = self
                .emit(engine, b.namespace, b.name, b.args, b.reply)
                .await;
        }
    }

    /// Waits and retries with back-off; `Err` when the client is closed meanwhile or gives up.
    async fn reconnect(&mut self) -> Result<Engine, Option<oneshot::Sender<()>>> {
        self.shared.status.send_replace(Status::Reconnecting);
        self.shared.with(|s| s.transport = None);
        let engine_options = match self.options.engine_options() {
            Ok(o) => o,
            Err(_) => return Err(None),
        };
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let max = self.options.reconnect.attempts;
            if max > 0 && attempt > max {
                tracing::warn!(attempts = max, "giving up reconnecting");
                return Err(None);
            }
            let delay = self.options.reconnect.backoff(attempt);
            tracing::debug!(attempt, ?delay, "reconnecting");
            self.idle(delay).await?;
            match engine::open(engine_options.clone()).await {
                Ok(engine) => return Ok(engine),
                Err(error) => {
                    tracing::debug!(%error, attempt, "reconnect attempt failed");
                    let names: Vec<String> = self
                        .namespaces
                        .iter()
                        .filter(|(_, s)| *s != NsState::Kicked)
                        .map(|(ns, _)| ns.clone())
                        .collect();
                    for ns in names {
                        self.fire_connect_error(ns, SocketIoError::Connection(error.clone()));
                    }
                }
            }
        }
    }

    /// Serves commands while no connection exists, for `delay`.
    async fn idle(&mut self, delay: Duration) -> Result<(), Option<oneshot::Sender<()>>> {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return Ok(()),
                command = self.commands.recv() => match command {
                    None => return Err(None),
                    Some(Cmd::Disconnect { done }) => return Err(Some(done)),
                    Some(Cmd::Emit { namespace, name, args, reply, accepted }) => {
                        let result = match self.state(&namespace) {
                            Some(NsState::Pending) => self.buffer_emit(namespace, name, args, reply),
                            _ => Err(SocketIoError::BadNamespace(namespace)),
                        };
                        let _ = accepted.send(result);
                    }
                    // The server forgot the event with the old connection.
                    Some(Cmd::Ack { .. }) => {}
                },
            }
        }
    }

    /// The CONNECT payload for `ns`: the application's auth, plus the `pid` and `offset` to
    /// recover the previous session when there is one. As socket.io-client does
    /// (`Object.assign({pid, offset}, auth)`), keys of the application's auth win.
    fn with_resume(&self, ns: &str, payload: Option<bytes::Bytes>) -> Option<bytes::Bytes> {
        let Some(Resume {
            pid: Some(pid),
            offset,
        }) = self.resume.get(ns)
        else {
            return payload;
        };
        let mut object = serde_json::Map::new();
        object.insert("pid".into(), serde_json::Value::from(pid.as_str()));
        if let Some(offset) = offset {
            object.insert("offset".into(), serde_json::Value::from(offset.as_str()));
        }
        let auth = payload.and_then(|p| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&p).ok()
        });
        object.extend(auth.unwrap_or_default());
        serde_json::to_vec(&object).ok().map(bytes::Bytes::from)
    }

    /// Records the pid of a CONNECT reply; true when it is the pid the client presented, i.e.
    /// the server recovered the session (socket.io-client's `recovered`).
    fn on_connect_reply(&mut self, ns: &str, pid: Option<String>) -> bool {
        let Some(pid) = pid else {
            self.resume.remove(ns);
            return false;
        };
        let resume = self.resume.entry(ns.to_owned()).or_default();
        let recovered = resume.pid.as_deref() == Some(pid.as_str());
        if !recovered {
            // A fresh session: an offset from the old one would ask the server to replay
            // packets the new socket was never meant to get.
            resume.offset = None;
        }
        resume.pid = Some(pid);
        recovered
    }

    /// With recovery on, the server appends each replayable event's offset as its last
    /// argument (a string; events asking for an ack carry none). The argument stays in the
    /// event, as socket.io-client leaves it; [`crate::Event::offset`] reads it.
    fn note_offset(&mut self, ns: &str, args: &Args, ack: Option<u64>) -> Option<String> {
        if ack.is_some() {
            return None;
        }
        let resume = self.resume.get_mut(ns)?;
        let offset = last_string(args)?;
        resume.offset = Some(offset.clone());
        Some(offset)
    }

    fn state(&self, ns: &str) -> Option<&NsState> {
        self.namespaces
            .iter()
            .find(|(name, _)| name == ns)
            .map(|(_, state)| state)
    }

    fn set_state(&mut self, ns: &str, state: NsState) {
        if let Some(entry) = self.namespaces.iter_mut().find(|(name, _)| name == ns) {
            entry.1 = state;
        }
    }

    fn fire_disconnect(&self, ns: String, reason: DisconnectReason) {
        if let Some(callback) = &self.handlers.disconnect {
            tokio::spawn(callback(ns, reason));
        }
    }

    fn fire_connect_error(&self, ns: String, error: SocketIoError) {
        if let Some(callback) = &self.handlers.connect_error {
            tokio::spawn(callback(ns, error));
        }
    }
}

/// The next message from the transport, once a handler slot is free (so that commands are
/// still served while every slot is taken). The slot is `None` only if the semaphore closed.
async fn next_event(
    slots: &Arc<Semaphore>,
    events: &mut mpsc::Receiver<EngineEvent>,
) -> (Option<OwnedSemaphorePermit>, Option<EngineEvent>) {
    let slot = Arc::clone(slots).acquire_owned().await.ok();
    (slot, events.recv().await)
}

/// Encodes and hands a packet to the transport task. A failure means the transport task is
/// gone; its `Closed` event ends the session, so nothing else is done here.
async fn send(engine: &Engine, parser: ParserKind, packet: &Packet) {
    let frames: Vec<Frame> = match packet.encode(parser) {
        Ok(encoded) => encoded.into_vec(),
        Err(error) => {
            tracing::warn!(%error, "cannot encode packet; dropped");
            return;
        }
    };
    let _ = engine.commands.send(Command::Send(frames)).await;
}

/// The last argument when it is a string.
fn last_string(args: &Args) -> Option<String> {
    let last = args.len().checked_sub(1)?;
    args.nth::<String>(last).ok()
}

fn reason_of(cause: CloseCause) -> DisconnectReason {
    match cause {
        CloseCause::Client | CloseCause::Server => DisconnectReason::TransportClose,
        CloseCause::Error(ConnectionError::PingTimeout) => DisconnectReason::PingTimeout,
        CloseCause::Error(error) => DisconnectReason::TransportError(error.to_string()),
    }
}

#[derive(Deserialize, Default)]
struct ConnectOk {
    #[serde(default)]
    sid: String,
    /// Present when the server recovers sessions (connection-state recovery).
    #[serde(default)]
    pid: Option<String>,
}

#[derive(Deserialize, Default)]
struct RefusedPayload {
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}
