//! [`NatsAdapter`]: one namespace's adapter.
//!
//! Subjects, with `p` the prefix and `ns` the namespace as one token ([`wire::subject_token`]):
//! - `p.ns.broadcast`: broadcasts without ack, joins, leaves and disconnects (one subject, so
//!   each node's are received in the order it sent them), each with the sender's sequence
//!   number so that a receiver sees what it missed;
//! - `p.ns.request`: heartbeats, node close, fetch sockets, server-side emits, broadcasts with
//!   ack;
//! - `p.ns.response.<uid>`: answers to one node's requests;
//! - `p.ns.alive.<uid>`: request/reply liveness probe (JetStream mode: may a live session of
//!   that node move?);
//! - `p.log.ns` (JetStream mode): the stream subject of broadcasts and room changes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use rmpv::Value;
use sockeye::adapter::{
    AckStream, Adapter, BoxFuture, BroadcastOptions, BroadcastPacket, LocalNamespace,
    PersistedSession, Room, SocketInfo,
};
use sockeye::{AdapterError, SocketId};
use sockeye_cluster::requests::{self, Pending, PendingGuard, Reply};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{NotPublished, RequestTimeout};
use crate::node::{Node, Stats};
use crate::wire::{self, Message, WireError, field, kind, map};

/// Longest ack wait a remote request may ask of this node (it holds a task and pending acks,
/// and anyone who can publish on the subject can ask).
const MAX_REMOTE_ACK_TIMEOUT_MS: u64 = 600_000;

fn adapter_err(what: &str, e: impl std::fmt::Display) -> AdapterError {
    AdapterError::new(format!("{what}: {e}"))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The subjects of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Subjects {
    pub(crate) broadcast: String,
    pub(crate) request: String,
    pub(crate) response: String,
    pub(crate) alive: String,
    pub(crate) log: String,
    prefix: String,
    token: String,
}

impl Subjects {
    pub(crate) fn new(prefix: &str, ns: &str, uid: &str) -> Subjects {
        let token = wire::subject_token(ns);
        Subjects {
            broadcast: format!("{prefix}.{token}.broadcast"),
            request: format!("{prefix}.{token}.request"),
            response: format!("{prefix}.{token}.response.{uid}"),
            alive: format!("{prefix}.{token}.alive.{uid}"),
            log: format!("{prefix}.log.{token}"),
            prefix: prefix.to_owned(),
            token,
        }
    }

    fn response_of(&self, uid: &str) -> String {
        format!("{}.{}.response.{uid}", self.prefix, self.token)
    }

    fn alive_of(&self, uid: &str) -> String {
        format!("{}.{}.alive.{uid}", self.prefix, self.token)
    }
}

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Broadcast,
    Request,
    Response,
    /// The JetStream log, with the entry's stream sequence.
    Log(u64),
}

/// Live sessions (JetStream mode): what to write, what to delete, which to keep alive.
#[derive(Default)]
struct Live {
    state: Mutex<LiveState>,
    wake: tokio::sync::Notify,
    started: AtomicBool,
}

#[derive(Default)]
struct LiveState {
    dirty: HashMap<String, PersistedSession>,
    ended: Vec<String>,
    alive: HashMap<String, PersistedSession>,
}

/// The NATS adapter of one namespace (built by [`crate::NatsAdapterFactory`]).
pub struct NatsAdapter {
    me: Weak<NatsAdapter>,
    node: Arc<Node>,
    local: LocalNamespace,
    pub(crate) subjects: Subjects,
    pending: Arc<Pending<Message>>,
    /// Other nodes of this namespace, and when each was last heard from.
    nodes: Mutex<HashMap<String, Instant>>,
    /// The last sequence number received from each other node on the broadcast subject.
    seen: Mutex<HashMap<String, u64>>,
    /// This node's sequence number on the broadcast subject, held while publishing so that
    /// numbers go out in order.
    out_seq: tokio::sync::Mutex<u64>,
    ready: AtomicBool,
    closed: AtomicBool,
    task: Mutex<Option<tokio::task::AbortHandle>>,
    live: Live,
}

impl std::fmt::Debug for NatsAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsAdapter")
            .field("ns", &self.local.name())
            .field("uid", &self.node.uid)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl NatsAdapter {
    pub(crate) fn new(node: Arc<Node>, local: LocalNamespace) -> Arc<NatsAdapter> {
        let subjects = Subjects::new(&node.config.prefix, local.name(), &node.uid);
        let adapter = Arc::new_cyclic(|me| NatsAdapter {
            me: me.clone(),
            node: node.clone(),
            local,
            subjects,
            pending: Arc::default(),
            nodes: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
            out_seq: tokio::sync::Mutex::new(0),
            ready: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            task: Mutex::new(None),
            live: Live::default(),
        });
        if let (Some(js), Some(recovery)) = (&node.js, adapter.local.recovery_config())
            && recovery.max_disconnection_duration > js.config.session_ttl
        {
            tracing::warn!(
                ns = %adapter.ns(),
                window = ?recovery.max_disconnection_duration,
                session_ttl = ?js.config.session_ttl,
                "the session bucket drops sessions before the recovery window ends; raise JetStreamConfig::session_ttl"
            );
        }
        let handle = node.spawn(crate::reader::run(Arc::downgrade(&adapter), node.clone()));
        *lock(&adapter.task) = Some(handle.abort_handle());
        adapter
    }

    pub(crate) fn ns(&self) -> &str {
        self.local.name()
    }

    pub(crate) fn uid(&self) -> &str {
        &self.node.uid
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) || self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Other nodes heard from within the heartbeat timeout.
    pub(crate) fn live_nodes(&self) -> usize {
        let timeout = self.node.config.heartbeat_timeout;
        let mut nodes = lock(&self.nodes);
        nodes.retain(|_, seen| seen.elapsed() < timeout);
        nodes.len()
    }

    fn open_request(
        &self,
    ) -> Result<(String, mpsc::Receiver<Message>, PendingGuard<Message>), AdapterError> {
        self.pending.open(
            wire::random_id(16),
            self.ns(),
            self.node.config.max_pending_requests,
            self.node.config.max_responses,
        )
    }

    fn not_published(&self, what: &'static str, reason: String, local: String) -> AdapterError {
        let e = NotPublished {
            what,
            ns: self.ns().to_owned(),
            reason,
            local,
        };
        tracing::warn!(error = %e, "not published");
        AdapterError::with_source(e.to_string(), e)
    }

    /// Publishes on the broadcast subject with the next sequence number.
    async fn publish_ordered(
        &self,
        kind: u64,
        data: Value,
        what: &'static str,
        local: &str,
    ) -> Result<(), AdapterError> {
        let mut seq = self.out_seq.lock().await;
        let payload = wire::encode(self.uid(), self.ns(), kind, Some(*seq + 1), data)
            .map_err(|e| adapter_err(&format!("{what} cannot be encoded ({local})"), e))?;
        match self
            .node
            .publish(self.subjects.broadcast.clone(), payload)
            .await
        {
            Ok(()) => {
                *seq += 1;
                Ok(())
            }
            Err(reason) => Err(self.not_published(what, reason, local.to_owned())),
        }
    }

    /// Publishes a request (or heartbeat) on the request subject.
    async fn publish_request(
        &self,
        kind: u64,
        data: Value,
        what: &'static str,
    ) -> Result<(), AdapterError> {
        let payload = wire::encode(self.uid(), self.ns(), kind, None, data)
            .map_err(|e| adapter_err(&format!("{what} cannot be encoded"), e))?;
        self.node
            .publish(self.subjects.request.clone(), payload)
            .await
            .map_err(|reason| {
                self.not_published(what, reason, "nothing was done on this node".to_owned())
            })
    }

    /// Sends an answer to `requester` (failures are counted and logged by the node).
    async fn respond(
        node: &Node,
        subjects: &Subjects,
        ns: &str,
        requester: &str,
        kind: u64,
        data: Value,
    ) {
        match wire::encode(&node.uid, ns, kind, None, data) {
            Ok(payload) => {
                if let Err(e) = node.publish(subjects.response_of(requester), payload).await {
                    tracing::warn!(ns, error = %e, "answer to another node not sent");
                }
            }
            Err(e) => tracing::warn!(ns, error = %e, "answer cannot be encoded"),
        }
    }

    fn spawn_respond(&self, requester: &str, kind: u64, data: Value) {
        let node = self.node.clone();
        let subjects = self.subjects.clone();
        let ns = self.ns().to_owned();
        let requester = requester.to_owned();
        self.node.spawn(async move {
            Self::respond(&node, &subjects, &ns, &requester, kind, data).await;
        });
    }

    /// Publishes this namespace's heartbeat (`kind` INITIAL_HEARTBEAT or HEARTBEAT).
    ///
    /// Heartbeats go on the broadcast subject with the last sequence number this node used
    /// there (not a new one): a receiver learns where the sequence stands before the first
    /// broadcast, and counts what it lost even when no broadcast follows.
    pub(crate) async fn heartbeat(&self, kind: u64) {
        let seq = self.out_seq.lock().await;
        let result = match wire::encode(self.uid(), self.ns(), kind, Some(*seq), Value::Nil) {
            Ok(payload) => {
                self.node
                    .publish(self.subjects.broadcast.clone(), payload)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::debug!(ns = %self.ns(), error = %e, "heartbeat not sent");
        }
    }

    /// One message from NATS (the reader hands over the raw payload).
    pub(crate) async fn on_payload(&self, source: Source, payload: &[u8]) {
        let message = match wire::decode_message(payload, self.node.limits()) {
            Ok(m) => m,
            Err(e) => {
                self.node.refused("NATS message", &e);
                return;
            }
        };
        let own = message.uid == self.node.uid;
        if own && !matches!(source, Source::Log(_)) {
            return;
        }
        if message.nsp != self.ns() {
            self.node.refused(
                "NATS message",
                &WireError::Schema("namespace is not the subject's"),
            );
            return;
        }
        if !own {
            Stats::bump(&self.node.stats.received);
            if message.kind == kind::ADAPTER_CLOSE {
                lock(&self.nodes).remove(&message.uid);
            } else if matches!(source, Source::Broadcast | Source::Request) {
                // Not log entries: the log may hand over entries of a node that is gone.
                lock(&self.nodes).insert(message.uid.clone(), Instant::now());
            }
        }
        let result = match source {
            Source::Broadcast => {
                if !self.in_sequence(&message) {
                    return;
                }
                self.on_ordered(message, None).await
            }
            Source::Log(seq) => {
                if own && message.kind != kind::BROADCAST {
                    // This node applied its own room changes when it made them.
                    return;
                }
                self.on_ordered(message, Some(seq)).await
            }
            Source::Request => self.on_request(message).await,
            Source::Response => self.on_response(message),
        };
        if let Err(e) = result {
            self.node.refused("NATS message", &e);
        }
    }

    /// Checks the sender's sequence number: a repeat is dropped, a gap counted.
    fn in_sequence(&self, message: &Message) -> bool {
        let Some(seq) = message.seq else {
            self.node.refused(
                "NATS message",
                &WireError::Schema("broadcast subject message without seq"),
            );
            return false;
        };
        let mut seen = lock(&self.seen);
        let heartbeat = matches!(
            message.kind,
            kind::INITIAL_HEARTBEAT | kind::HEARTBEAT | kind::ADAPTER_CLOSE
        );
        let last = seen.get(&message.uid).copied();
        match last {
            // A heartbeat carries the sender's last number: anything between is lost.
            Some(last) if heartbeat && seq > last => {
                let missed = seq - last;
                self.node
                    .stats
                    .missed
                    .fetch_add(missed, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(ns = %self.ns(), from = %message.uid, missed, "messages of another node were lost (NATS outage?)");
            }
            Some(_) if heartbeat => {}
            Some(last) if seq <= last => {
                Stats::bump(&self.node.stats.duplicates);
                return false;
            }
            Some(last) if seq > last + 1 => {
                let missed = seq - last - 1;
                self.node
                    .stats
                    .missed
                    .fetch_add(missed, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(ns = %self.ns(), from = %message.uid, missed, "messages of another node were lost (NATS outage?)");
            }
            _ => {}
        }
        // Bounded: one entry per other node; forget nodes that are gone.
        if seen.len() >= 4096 && !seen.contains_key(&message.uid) {
            seen.clear();
        }
        if message.kind == kind::ADAPTER_CLOSE {
            seen.remove(&message.uid);
        } else {
            seen.insert(message.uid.clone(), last.map_or(seq, |last| last.max(seq)));
        }
        true
    }

    /// Broadcasts and room changes (broadcast subject, or the JetStream log with `offset`).
    async fn on_ordered(&self, message: Message, offset: Option<u64>) -> Result<(), WireError> {
        match message.kind {
            kind::INITIAL_HEARTBEAT if offset.is_none() => {
                // A node just started: it learns about this one now, not a heartbeat later.
                self.heartbeat(kind::HEARTBEAT).await;
                Ok(())
            }
            kind::HEARTBEAT | kind::ADAPTER_CLOSE if offset.is_none() => Ok(()),
            kind::BROADCAST => {
                let b = wire::parse_broadcast(&message.data, self.ns())?;
                let mut packet = BroadcastPacket::new(
                    sockeye::Str::from(self.ns()),
                    sockeye::Str::from(b.event.as_str()),
                    b.args,
                );
                if let Some(offset) = offset
                    && self.local.recovery_config().is_some()
                    && !b.opts.flags.volatile
                {
                    packet.offset = Some(sockeye::Str::from(offset.to_string().as_str()));
                }
                self.local.deliver(&packet, &b.opts);
                Ok(())
            }
            kind::SOCKETS_JOIN | kind::SOCKETS_LEAVE => {
                let (opts, _) = wire::parse_opts(field(&message.data, "opts"))?;
                let rooms = wire::rooms(field(&message.data, "rooms"))?;
                if message.kind == kind::SOCKETS_JOIN {
                    self.local.add_rooms(&opts, &rooms);
                } else {
                    self.local.del_rooms(&opts, &rooms);
                }
                Ok(())
            }
            kind::DISCONNECT_SOCKETS => {
                let (opts, _) = wire::parse_opts(field(&message.data, "opts"))?;
                let close = match field(&message.data, "close") {
                    None | Some(Value::Nil) => false,
                    Some(Value::Boolean(b)) => *b,
                    Some(_) => return Err(WireError::Schema("close is not a boolean")),
                };
                self.local.disconnect(&opts, close);
                Ok(())
            }
            _ => Err(WireError::Schema(
                "unexpected type on the broadcast subject",
            )),
        }
    }

    async fn on_request(&self, message: Message) -> Result<(), WireError> {
        match message.kind {
            kind::FETCH_SOCKETS => {
                let request_id = wire::request_id(&message.data)
                    .ok_or(WireError::Schema("request without requestId"))?;
                let (opts, _) = wire::parse_opts(field(&message.data, "opts"))?;
                let sockets: Vec<Value> = self
                    .local
                    .fetch(&opts)
                    .into_iter()
                    .map(|s| {
                        map(vec![
                            ("id", Value::from(s.id.as_str())),
                            (
                                "handshake",
                                wire::json_to_value(
                                    s.handshake.unwrap_or_else(|| serde_json::json!({})),
                                ),
                            ),
                            (
                                "rooms",
                                Value::Array(
                                    s.rooms.iter().map(|r| Value::from(r.as_str())).collect(),
                                ),
                            ),
                            (
                                "data",
                                wire::json_to_value(s.data.unwrap_or(serde_json::Value::Null)),
                            ),
                        ])
                    })
                    .collect();
                self.spawn_respond(
                    &message.uid,
                    kind::FETCH_SOCKETS_RESPONSE,
                    map(vec![
                        ("requestId", Value::from(request_id)),
                        ("sockets", Value::Array(sockets)),
                    ]),
                );
                Ok(())
            }
            kind::SERVER_SIDE_EMIT => {
                let (event, args) = wire::parse_event(field(&message.data, "packet"))?;
                let ack = wire::request_id(&message.data).map(|request_id| {
                    let node = Arc::downgrade(&self.node);
                    let subjects = self.subjects.clone();
                    let ns = self.ns().to_owned();
                    let requester = message.uid.clone();
                    sockeye::ServerAck::new(move |answer| {
                        let node = node.upgrade().ok_or_else(|| {
                            AdapterError::new("the adapter is closed; the answer was not sent")
                        })?;
                        let data = map(vec![
                            ("requestId", Value::from(request_id)),
                            ("packet", wire::json_to_value(answer)),
                        ]);
                        let task_node = node.clone();
                        node.spawn(async move {
                            Self::respond(
                                &task_node,
                                &subjects,
                                &ns,
                                &requester,
                                kind::SERVER_SIDE_EMIT_RESPONSE,
                                data,
                            )
                            .await;
                        });
                        Ok(())
                    })
                });
                self.local
                    .server_event(sockeye::ServerEvent::new(self.ns(), event, args, ack));
                Ok(())
            }
            kind::BROADCAST => {
                let b = wire::parse_broadcast(&message.data, self.ns())?;
                let request_id = b
                    .request_id
                    .clone()
                    .ok_or(WireError::Schema("broadcast request without requestId"))?;
                self.on_broadcast_request(&message.uid, b, request_id);
                Ok(())
            }
            _ => Err(WireError::Schema("unexpected type on the request subject")),
        }
    }

    /// A broadcast with ack from another node: deliver, report the client count, then forward
    /// each acknowledgement.
    fn on_broadcast_request(&self, requester: &str, b: wire::Broadcast, request_id: String) {
        let default_ms =
            u64::try_from(self.node.config.request_timeout.as_millis()).unwrap_or(5000);
        let timeout = Duration::from_millis(
            b.timeout_ms
                .unwrap_or(default_ms)
                .min(MAX_REMOTE_ACK_TIMEOUT_MS),
        );
        let packet = BroadcastPacket::new(
            sockeye::Str::from(self.ns()),
            sockeye::Str::from(b.event.as_str()),
            b.args,
        );
        let stream = self.local.deliver_with_ack(&packet, &b.opts, timeout);
        let expected = u64::try_from(stream.expected()).unwrap_or(u64::MAX);
        let node = self.node.clone();
        let subjects = self.subjects.clone();
        let ns = self.ns().to_owned();
        let requester = requester.to_owned();
        self.node.spawn(async move {
            Self::respond(
                &node,
                &subjects,
                &ns,
                &requester,
                kind::BROADCAST_CLIENT_COUNT,
                map(vec![
                    ("requestId", Value::from(request_id.as_str())),
                    ("clientCount", Value::from(expected)),
                ]),
            )
            .await;
            let mut stream = stream;
            while let Some((_, result)) = stream.next().await {
                let Ok(args) = result else { continue };
                let first = wire::args_to_values(&args)
                    .ok()
                    .and_then(|v| v.into_iter().next())
                    .unwrap_or(Value::Nil);
                Self::respond(
                    &node,
                    &subjects,
                    &ns,
                    &requester,
                    kind::BROADCAST_ACK,
                    map(vec![
                        ("requestId", Value::from(request_id.as_str())),
                        ("packet", first),
                    ]),
                )
                .await;
            }
        });
    }

    fn on_response(&self, message: Message) -> Result<(), WireError> {
        match message.kind {
            kind::FETCH_SOCKETS_RESPONSE
            | kind::SERVER_SIDE_EMIT_RESPONSE
            | kind::BROADCAST_CLIENT_COUNT
            | kind::BROADCAST_ACK => {
                let id = wire::request_id(&message.data)
                    .ok_or(WireError::Schema("response without requestId"))?;
                let tx = self.pending.sender(&id);
                match tx {
                    Some(tx) if tx.try_send(message).is_ok() => {}
                    _ => Stats::bump(&self.node.stats.late_responses),
                }
                Ok(())
            }
            _ => Err(WireError::Schema("unexpected type on the response subject")),
        }
    }

    /// Answers a liveness probe: is socket `sid` connected here?
    pub(crate) fn holds(&self, sid: &[u8]) -> bool {
        let Ok(sid) = std::str::from_utf8(sid) else {
            return false;
        };
        self.local.socket_ids().iter().any(|id| id.as_str() == sid)
    }

    fn timed_out(
        &self,
        request: &'static str,
        answered: usize,
        expected: usize,
        sockets: Vec<SocketInfo>,
    ) -> AdapterError {
        let e = RequestTimeout {
            request,
            ns: self.ns().to_owned(),
            answered,
            expected,
            timeout: self.node.config.request_timeout,
            sockets,
        };
        tracing::warn!(error = %e, "cluster request incomplete");
        AdapterError::with_source(e.to_string(), e)
    }

    /// Stops the reader and tells the other nodes this one is gone.
    pub(crate) async fn shut(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.heartbeat(kind::ADAPTER_CLOSE).await;
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        self.live.wake.notify_one();
    }

    fn recovery_window(&self) -> Result<Duration, AdapterError> {
        self.local
            .recovery_config()
            .map(|c| c.max_disconnection_duration)
            .ok_or_else(|| {
                AdapterError::new("connection-state recovery is not enabled on this server")
            })
    }

    fn js(&self) -> Result<&crate::jetstream::Js, AdapterError> {
        self.node.js.as_ref().ok_or_else(|| {
            AdapterError::new(
                "connection-state recovery needs JetStream: set NatsConfig::jetstream",
            )
        })
    }

    fn start_live_writer(&self) {
        if self.live.started.swap(true, Ordering::AcqRel) {
            return;
        }
        self.node.spawn(live_writer(self.me.clone()));
    }

    /// One round of the live-session writer: changed sessions are written (with this node as
    /// their holder), ended ones deleted, and on `refresh` every live one written again so the
    /// bucket does not expire it.
    async fn write_live(&self, refresh: bool) {
        let (Ok(js), Ok(window)) = (self.js(), self.recovery_window()) else {
            return;
        };
        let (dirty, ended) = {
            let mut state = lock(&self.live.state);
            let mut dirty: Vec<PersistedSession> = state.dirty.drain().map(|(_, s)| s).collect();
            if refresh {
                let fresh: HashSet<String> = dirty.iter().map(|s| s.pid.clone()).collect();
                dirty.extend(
                    state
                        .alive
                        .values()
                        .filter(|s| !fresh.contains(&s.pid))
                        .map(copy_session),
                );
            }
            (dirty, std::mem::take(&mut state.ended))
        };
        let expires =
            now_ms().saturating_add(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
        for session in dirty {
            if let Err(e) = js.put_session(&session, expires, Some(self.uid())).await {
                Stats::bump(&self.node.stats.publish_failed);
                tracing::warn!(ns = %self.ns(), error = %e, "live session not stored; retried at the next change or refresh");
                let mut state = lock(&self.live.state);
                if state.alive.contains_key(&session.pid) {
                    state.dirty.entry(session.pid.clone()).or_insert(session);
                }
            }
        }
        for pid in ended {
            if let Err(e) = js.delete_session(&pid).await {
                tracing::warn!(ns = %self.ns(), error = %e, "ended session not deleted; it expires with the bucket TTL");
            }
        }
    }
}

fn copy_session(s: &PersistedSession) -> PersistedSession {
    PersistedSession {
        id: s.id.clone(),
        pid: s.pid.clone(),
        ns: s.ns.clone(),
        rooms: s.rooms.clone(),
        data: s
            .data
            .as_ref()
            .and_then(|d| d.to_json().ok())
            .map(sockeye::adapter::SessionData::from_json),
    }
}

/// Writes live sessions as they change and renews them every third of the recovery window.
async fn live_writer(adapter: Weak<NatsAdapter>) {
    let period = match adapter.upgrade() {
        Some(a) => a
            .local
            .recovery_config()
            .map_or(Duration::from_secs(40), |c| {
                c.max_disconnection_duration / 3
            })
            .max(Duration::from_millis(500)),
        None => return,
    };
    let mut refresh = tokio::time::interval(period);
    refresh.tick().await;
    loop {
        let wake = {
            let Some(a) = adapter.upgrade() else { return };
            if a.closed.load(Ordering::Acquire) {
                return;
            }
            // Holds the adapter while it waits: `shut` wakes it so that it ends.
            async move {
                a.live.wake.notified().await;
            }
        };
        let refreshing = tokio::select! {
            () = wake => false,
            _ = refresh.tick() => true,
        };
        let Some(a) = adapter.upgrade() else { return };
        a.write_live(refreshing).await;
    }
}

/// A stream of `expected` remote answers of type `ty` (see [`requests::remote_acks`]).
fn remote_acks(
    rx: mpsc::Receiver<Message>,
    guard: PendingGuard<Message>,
    buffered: VecDeque<sockeye::Args>,
    expected: usize,
    deadline: Instant,
    timeout: Duration,
    ty: u64,
) -> AckStream {
    let read = move |resp: &Message| {
        if resp.kind == ty {
            Reply::Answer(answer_args(resp))
        } else {
            Reply::Other
        }
    };
    requests::remote_acks(rx, guard, buffered, expected, deadline, timeout, read)
}

/// The one argument of an answer (`packet`), absent meaning none.
fn answer_args(resp: &Message) -> Option<sockeye::Args> {
    match field(&resp.data, "packet") {
        None => Some(sockeye::Args::empty()),
        Some(v) => wire::values_to_args(vec![v.clone()]).ok(),
    }
}

impl Drop for NatsAdapter {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

impl Adapter for NatsAdapter {
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let data = || -> Result<Value, AdapterError> {
                Ok(map(vec![
                    (
                        "packet",
                        wire::packet_value(self.ns(), &packet.event, &packet.args).map_err(
                            |e| adapter_err("broadcast cannot be encoded for the other nodes", e),
                        )?,
                    ),
                    ("opts", wire::opts_value(&opts, None)),
                ]))
            };
            if let Some(js) = &self.node.js
                && !opts.flags.local
            {
                // Every node, this one included, delivers it as its reader reads the stream:
                // one order everywhere, and the stream sequence is the recovery offset.
                let payload = wire::encode(self.uid(), self.ns(), kind::BROADCAST, None, data()?)
                    .map_err(|e| adapter_err("broadcast cannot be encoded", e))?;
                return self.append_log(js, payload).await.map_err(|reason| {
                    self.not_published(
                        "broadcast",
                        reason,
                        "no node delivered it, this one included".to_owned(),
                    )
                });
            }
            // Local sockets get it whatever NATS does; an error then says so.
            let recipients = self.local.deliver(&packet, &opts);
            if opts.flags.local {
                return Ok(());
            }
            self.publish_ordered(
                kind::BROADCAST,
                data()?,
                "broadcast",
                &format!("delivered to {recipients} sockets of this node"),
            )
            .await
        })
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        Box::pin(async move {
            let start = Instant::now();
            let others = self.live_nodes();
            let remote = if opts.flags.local || others == 0 {
                None
            } else {
                let (id, rx, guard) = self.open_request()?;
                let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
                let data = map(vec![
                    (
                        "packet",
                        wire::packet_value(self.ns(), &packet.event, &packet.args)
                            .map_err(|e| adapter_err("broadcast cannot be encoded", e))?,
                    ),
                    ("opts", wire::opts_value(&opts, Some(ms))),
                    ("requestId", Value::from(id.as_str())),
                ]);
                self.publish_request(kind::BROADCAST, data, "broadcast with ack")
                    .await?;
                Some((rx, guard))
            };
            let local = self.local.deliver_with_ack(&packet, &opts, timeout);
            let Some((mut rx, guard)) = remote else {
                return Ok(local);
            };
            // Each node first reports how many clients it reached.
            let counts_deadline = start + timeout.min(self.node.config.request_timeout);
            let (mut servers, mut clients, mut buffered) = (0usize, 0usize, VecDeque::new());
            while servers < others {
                match tokio::time::timeout_at(counts_deadline, rx.recv()).await {
                    Ok(Some(resp)) => match resp.kind {
                        kind::BROADCAST_CLIENT_COUNT => {
                            servers += 1;
                            let n = wire::field_u64(&resp.data, "clientCount").unwrap_or(0);
                            clients =
                                clients.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
                        }
                        kind::BROADCAST_ACK => {
                            if let Some(args) = answer_args(&resp) {
                                buffered.push_back(args);
                            }
                        }
                        _ => {}
                    },
                    Ok(None) | Err(_) => break,
                }
            }
            if servers < others {
                tracing::warn!(ns = %self.ns(), servers, others, "not every node reported its client count for a broadcast with ack; their clients are not waited for");
            }
            let clients = clients.min(self.node.config.max_responses);
            let remote = remote_acks(
                rx,
                guard,
                buffered,
                clients,
                start + timeout,
                timeout,
                kind::BROADCAST_ACK,
            );
            Ok(local.chain(remote))
        })
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        Box::pin(async move {
            let mut sockets = self.local.fetch(&opts);
            if opts.flags.local {
                return Ok(sockets);
            }
            let others = self.live_nodes();
            if others == 0 {
                return Ok(sockets);
            }
            let (id, mut rx, _guard) = self.open_request()?;
            self.publish_request(
                kind::FETCH_SOCKETS,
                map(vec![
                    ("opts", wire::opts_value(&opts, None)),
                    ("requestId", Value::from(id.as_str())),
                ]),
                "fetch sockets request",
            )
            .await?;
            let deadline = Instant::now() + self.node.config.request_timeout;
            let mut answered = 0;
            while answered < others {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(resp)) if resp.kind == kind::FETCH_SOCKETS_RESPONSE => {
                        let Some(list) = wire::fetched_sockets(&resp.data) else {
                            continue;
                        };
                        answered += 1;
                        sockets.extend(list.into_iter().map(|s| SocketInfo {
                            id: SocketId::from(s.id.as_str()),
                            ns: self.ns().to_owned(),
                            rooms: s.rooms,
                            local: false,
                            handshake: s.handshake,
                            data: s.data,
                        }));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => {
                        return Err(self.timed_out("fetch_sockets", answered, others, sockets));
                    }
                }
            }
            Ok(sockets)
        })
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            self.room_change(kind::SOCKETS_JOIN, "join", &opts, &rooms)
                .await?;
            self.local.add_rooms(&opts, &rooms);
            Ok(())
        })
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            self.room_change(kind::SOCKETS_LEAVE, "leave", &opts, &rooms)
                .await?;
            self.local.del_rooms(&opts, &rooms);
            Ok(())
        })
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            if !opts.flags.local {
                let data = map(vec![
                    ("opts", wire::opts_value(&opts, None)),
                    ("close", Value::from(close)),
                ]);
                self.ordered_change(kind::DISCONNECT_SOCKETS, data, "disconnect")
                    .await?;
            }
            self.local.disconnect(&opts, close);
            Ok(())
        })
    }

    fn server_side_emit(&self, packet: BroadcastPacket) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let data = wire::event_value(&packet.event, &packet.args)
                .map_err(|e| adapter_err("arguments cannot be encoded", e))?;
            self.publish_request(
                kind::SERVER_SIDE_EMIT,
                map(vec![("packet", data)]),
                "server-side emit",
            )
            .await
        })
    }

    fn server_side_emit_with_ack(
        &self,
        packet: BroadcastPacket,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        Box::pin(async move {
            let others = self.live_nodes();
            if others == 0 {
                return Ok(AckStream::empty());
            }
            let (id, rx, guard) = self.open_request()?;
            let data = wire::event_value(&packet.event, &packet.args)
                .map_err(|e| adapter_err("arguments cannot be encoded", e))?;
            self.publish_request(
                kind::SERVER_SIDE_EMIT,
                map(vec![
                    ("packet", data),
                    ("requestId", Value::from(id.as_str())),
                ]),
                "server-side emit",
            )
            .await?;
            Ok(remote_acks(
                rx,
                guard,
                VecDeque::new(),
                others,
                Instant::now() + timeout,
                timeout,
                kind::SERVER_SIDE_EMIT_RESPONSE,
            ))
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(std::future::ready(Ok(self.live_nodes() + 1)))
    }

    fn supports_recovery(&self) -> bool {
        self.node.js.is_some()
    }

    fn persist_session(
        &self,
        session: PersistedSession,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let window = self.recovery_window()?;
            let js = self.js()?;
            {
                // From now on the stored copy expires: no more live writes or renewals.
                let mut state = lock(&self.live.state);
                state.alive.remove(&session.pid);
                state.dirty.remove(&session.pid);
            }
            let expires =
                now_ms().saturating_add(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
            js.put_session(&session, expires, None)
                .await
                .map_err(|e| AdapterError::new(format!("session not stored in JetStream: {e}")))
        })
    }

    fn session_changed(&self, session: PersistedSession) {
        if !self
            .node
            .js
            .as_ref()
            .is_some_and(|js| js.config.live_sessions)
        {
            return;
        }
        {
            let mut state = lock(&self.live.state);
            state
                .alive
                .insert(session.pid.clone(), copy_session(&session));
            state.dirty.insert(session.pid.clone(), session);
        }
        self.start_live_writer();
        self.live.wake.notify_one();
    }

    fn session_ended(&self, pid: &str) {
        if !self
            .node
            .js
            .as_ref()
            .is_some_and(|js| js.config.live_sessions)
        {
            return;
        }
        {
            let mut state = lock(&self.live.state);
            state.alive.remove(pid);
            state.dirty.remove(pid);
            state.ended.push(pid.to_owned());
        }
        self.start_live_writer();
        self.live.wake.notify_one();
    }

    fn take_session(
        &self,
        pid: &str,
    ) -> BoxFuture<'_, Result<Option<PersistedSession>, AdapterError>> {
        let pid = pid.to_owned();
        Box::pin(async move {
            let js = self.js()?;
            // A pid is 128 random bits in hex: anything else is forged and must not become a
            // key lookup of someone else's choosing.
            if pid.is_empty()
                || pid.len() > 64
                || !pid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Ok(None);
            }
            let Some((raw, revision)) = js
                .get_session(&pid)
                .await
                .map_err(|e| AdapterError::new(format!("session lookup failed: {e}")))?
            else {
                return Ok(None);
            };
            let (session, expires, live_on) =
                match wire::decode_session(&raw, &pid, self.ns(), self.node.limits()) {
                    Ok(found) => found,
                    Err(e) => {
                        self.node.refused("stored session", &e);
                        return Ok(None);
                    }
                };
            if expires < now_ms() {
                return Ok(None);
            }
            // A live copy: its socket may still be connected to the node that wrote it. It
            // moves only once that node does not hold it (or is gone).
            let refuse = match live_on.as_deref() {
                None => false,
                Some(uid) if uid == self.uid() => self.local.socket_ids().contains(&session.id),
                Some(uid) => self.held_elsewhere(uid, session.id.as_str()).await,
            };
            if refuse {
                tracing::debug!(ns = %self.ns(), "recovery refused: the session's socket is still connected to its node");
                return Ok(None);
            }
            // Used up: only the taker whose delete matches the revision it read gets it.
            match js.delete_session_at(revision).await {
                Ok(true) => Ok(Some(session)),
                Ok(false) => Ok(None),
                Err(e) => Err(AdapterError::new(format!("session lookup failed: {e}"))),
            }
        })
    }

    fn missed_packets<'a>(
        &'a self,
        session: &'a PersistedSession,
        offset: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<BroadcastPacket>>, AdapterError>> {
        Box::pin(async move {
            let js = self.js()?;
            let Ok(offset) = offset.parse::<u64>() else {
                return Ok(None);
            };
            let Some(entries) = js
                .entries_after(&self.subjects.log, offset)
                .await
                .map_err(|e| AdapterError::new(format!("replay read failed: {e}")))?
            else {
                return Ok(None);
            };
            let mut missed = Vec::new();
            for (seq, payload) in entries {
                let message = match wire::decode_message(&payload, self.node.limits()) {
                    Ok(m) => m,
                    Err(e) => {
                        self.node.refused("stream entry", &e);
                        continue;
                    }
                };
                if message.nsp != self.ns() || message.kind != kind::BROADCAST {
                    continue;
                }
                let Ok(b) = wire::parse_broadcast(&message.data, self.ns()) else {
                    continue;
                };
                if b.opts.flags.volatile || !wire::session_matches(&session.rooms, &b.opts) {
                    continue;
                }
                let mut packet = BroadcastPacket::new(
                    sockeye::Str::from(self.ns()),
                    sockeye::Str::from(b.event.as_str()),
                    b.args,
                );
                packet.offset = Some(sockeye::Str::from(seq.to_string().as_str()));
                missed.push(packet);
                if missed.len() > js.config.max_replay {
                    return Ok(None);
                }
            }
            Ok(Some(missed))
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            self.shut().await;
            Ok(())
        })
    }
}

impl NatsAdapter {
    async fn room_change(
        &self,
        kind: u64,
        what: &'static str,
        opts: &BroadcastOptions,
        rooms: &[Room],
    ) -> Result<(), AdapterError> {
        if opts.flags.local {
            return Ok(());
        }
        let data = map(vec![
            ("opts", wire::opts_value(opts, None)),
            (
                "rooms",
                Value::Array(rooms.iter().map(|r| Value::from(r.as_str())).collect()),
            ),
        ]);
        self.ordered_change(kind, data, what).await
    }

    /// A join, leave or disconnect for the other nodes: on the JetStream log (ordered with the
    /// broadcasts there) or on the broadcast subject. Nothing is done locally yet.
    async fn ordered_change(
        &self,
        kind: u64,
        data: Value,
        what: &'static str,
    ) -> Result<(), AdapterError> {
        let local = "nothing was done on this node";
        if let Some(js) = &self.node.js {
            let payload = wire::encode(self.uid(), self.ns(), kind, None, data)
                .map_err(|e| adapter_err(&format!("{what} cannot be encoded"), e))?;
            return self
                .append_log(js, payload)
                .await
                .map_err(|reason| self.not_published(what, reason, local.to_owned()));
        }
        self.publish_ordered(kind, data, what, local).await
    }

    /// Appends to this namespace's log; a failure is counted.
    async fn append_log(&self, js: &crate::jetstream::Js, payload: Vec<u8>) -> Result<(), String> {
        match js.append(&self.subjects.log, payload).await {
            Ok(_) => {
                Stats::bump(&self.node.stats.published);
                Ok(())
            }
            Err(e) => {
                Stats::bump(&self.node.stats.publish_failed);
                Err(e)
            }
        }
    }

    /// Asks node `uid` whether socket `sid` is still connected to it: false when no node
    /// answers on its liveness subject (it is gone), true when it holds it or cannot tell in
    /// time (a slow node keeps its sockets).
    async fn held_elsewhere(&self, uid: &str, sid: &str) -> bool {
        let probe = self.node.client.request(
            self.subjects.alive_of(uid),
            bytes::Bytes::copy_from_slice(sid.as_bytes()),
        );
        match tokio::time::timeout(self.node.config.request_timeout, probe).await {
            Ok(Ok(reply)) => reply.payload.as_ref() != b"0",
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => false,
            Ok(Err(e)) => {
                tracing::warn!(ns = %self.ns(), error = %e, "liveness probe failed; the session stays");
                true
            }
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Subjects;

    #[test]
    fn subjects_are_the_documented_ones() {
        let s = Subjects::new("sockeye", "/chat", "abc");
        assert_eq!(s.broadcast, "sockeye.~2Fchat.broadcast");
        assert_eq!(s.request, "sockeye.~2Fchat.request");
        assert_eq!(s.response, "sockeye.~2Fchat.response.abc");
        assert_eq!(s.alive, "sockeye.~2Fchat.alive.abc");
        assert_eq!(s.log, "sockeye.log.~2Fchat");
        assert_eq!(s.response_of("x"), "sockeye.~2Fchat.response.x");
        assert_eq!(s.alive_of("x"), "sockeye.~2Fchat.alive.x");
    }
}
