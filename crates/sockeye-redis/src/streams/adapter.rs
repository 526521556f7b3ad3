//! [`StreamsAdapter`]: one namespace's adapter in streams mode.
//!
//! Broadcasts and room operations are stream entries (XADD); every node, this one included,
//! delivers broadcasts as its reader reads them, so every node delivers in stream order and
//! the entry id is the recovery offset. Requests and responses go over pub/sub.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rmpv::Value;
use sockeye::AdapterError;
use sockeye::adapter::{
    AckStream, Adapter, BoxFuture, BroadcastOptions, BroadcastPacket, LocalNamespace,
    PersistedSession, Room, SocketInfo,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use sockeye_cluster::requests::{self, AckWait, Pending, PendingGuard, Reply};

use super::node::{Node, parse_entries};
use super::wire::{self, Message, kind, map};
use crate::error::{Partial, RequestTimeout};
use crate::wire::{self as classic, Opts, WireError, field, field_u64};

/// The adapter of one namespace (built by [`super::StreamsAdapterFactory`]).
pub struct StreamsAdapter {
    me: Weak<StreamsAdapter>,
    node: Arc<Node>,
    local: LocalNamespace,
    stream: String,
    public_channel: String,
    private_channel: String,
    pending: Arc<Pending<Message>>,
    live: Live,
}

/// Live sessions (see [`super::StreamsConfig::live_sessions`]): what to write, what to delete,
/// and which sessions to keep alive; one task writes them, pipelined.
#[derive(Default)]
struct Live {
    state: Mutex<LiveState>,
    wake: tokio::sync::Notify,
    started: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct LiveState {
    dirty: HashMap<String, PersistedSession>,
    ended: Vec<String>,
    alive: HashSet<String>,
}

impl Live {
    fn state(&self) -> std::sync::MutexGuard<'_, LiveState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for StreamsAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsAdapter")
            .field("ns", &self.local.name())
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

fn adapter_err(what: &str, e: impl std::fmt::Display) -> AdapterError {
    AdapterError::new(format!("{what}: {e}"))
}

impl StreamsAdapter {
    pub(crate) fn new(node: Arc<Node>, local: LocalNamespace) -> Arc<StreamsAdapter> {
        let ns = local.name().to_owned();
        let prefix = &node.config.channel_prefix;
        let stream = wire::stream_name(&node.config.stream_name, node.config.stream_count, &ns);
        let public_channel = format!("{prefix}#{ns}#");
        let private_channel = format!("{prefix}#{ns}#{}#", node.uid);
        Arc::new_cyclic(|me| StreamsAdapter {
            me: me.clone(),
            node,
            local,
            stream,
            public_channel,
            private_channel,
            pending: Arc::default(),
            live: Live::default(),
        })
    }

    /// Starts the live-session writer on first use (the adapter may be built outside a
    /// runtime; sessions change inside one).
    fn start_live_writer(&self) {
        if self
            .live
            .started
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        tokio::spawn(live_writer(self.me.clone()));
    }

    /// One round of the live-session writer: the changed sessions are SET with the recovery
    /// window as TTL, the ended ones deleted, and (on `refresh`) every live one's TTL renewed.
    async fn write_live(&self, refresh: bool) {
        let Some(ttl) = self
            .local
            .recovery_config()
            .map(|c| c.max_disconnection_duration)
        else {
            return;
        };
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let (dirty, ended, alive) = {
            let mut state = self.live.state();
            let dirty: Vec<PersistedSession> = state.dirty.drain().map(|(_, s)| s).collect();
            let ended = std::mem::take(&mut state.ended);
            let alive: Vec<String> = if refresh {
                state.alive.iter().cloned().collect()
            } else {
                Vec::new()
            };
            (dirty, ended, alive)
        };
        let mut pipe = redis::pipe();
        let mut commands = 0usize;
        for session in &dirty {
            match wire::encode_session(session, Some(&self.node.uid)) {
                Ok(blob) => {
                    pipe.cmd("SET")
                        .arg(self.session_key(&session.pid))
                        .arg(blob)
                        .arg("PX")
                        .arg(ms)
                        .ignore();
                    commands += 1;
                }
                Err(e) => tracing::warn!(error = %e, "live session cannot be encoded"),
            }
        }
        for pid in &ended {
            pipe.cmd("DEL").arg(self.session_key(pid)).ignore();
            commands += 1;
        }
        for pid in &alive {
            pipe.cmd("PEXPIRE")
                .arg(self.session_key(pid))
                .arg(ms)
                .ignore();
            commands += 1;
        }
        if commands == 0 {
            return;
        }
        if let Err(e) = self.node.query_pipe::<()>(&pipe, "live sessions").await {
            crate::stats::Stats::bump(&self.node.stats.publish_failed);
            tracing::warn!(ns = %self.ns(), error = %e, sessions = dirty.len(), "live sessions not stored; retried at the next change or refresh");
            // Put the unwritten changes back, unless newer ones arrived meanwhile.
            let mut state = self.live.state();
            for session in dirty {
                if state.alive.contains(&session.pid) {
                    state.dirty.entry(session.pid.clone()).or_insert(session);
                }
            }
            state.ended.extend(ended);
        }
    }

    pub(crate) fn ns(&self) -> &str {
        self.local.name()
    }

    pub(crate) fn stream(&self) -> &str {
        &self.stream
    }

    pub(crate) fn public_channel(&self) -> &str {
        &self.public_channel
    }

    pub(crate) fn private_channel(&self) -> &str {
        &self.private_channel
    }

    fn open_request(
        &self,
    ) -> Result<(String, mpsc::Receiver<Message>, PendingGuard<Message>), AdapterError> {
        self.pending.open(
            classic::random_id(16),
            self.ns(),
            self.node.config.redis.max_pending_requests,
            self.node.config.redis.max_responses,
        )
    }

    /// XADD of one entry; its id.
    async fn add_entry(&self, kind: u64, data: &Value) -> Result<String, AdapterError> {
        let fields = wire::encode_entry(&self.node.uid, self.ns(), kind, data)
            .map_err(|e| adapter_err("cannot encode the stream entry", e))?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.node.config.max_len)
            .arg("*");
        for (k, v) in fields {
            cmd.arg(k).arg(v);
        }
        self.node.query::<String>(&cmd, "XADD").await.map_err(|e| {
            AdapterError::with_source(
                format!("stream entry not added (nothing was done on any node): {e}"),
                e,
            )
        })
    }

    /// PUBLISH of a request on the public channel.
    async fn publish(&self, kind: u64, data: Value) -> Result<(), AdapterError> {
        let payload = wire::encode_pubsub(&self.node.uid, self.ns(), kind, data)
            .map_err(|e| adapter_err("cannot encode the request", e))?;
        self.node
            .query::<redis::Value>(
                redis::cmd("PUBLISH").arg(&self.public_channel).arg(payload),
                "PUBLISH",
            )
            .await
            .map(|_| ())
            .map_err(|e| AdapterError::with_source(format!("request not published: {e}"), e))
    }

    fn respond(&self, requester: &str, kind: u64, data: Value) {
        let channel = format!(
            "{}#{}#{requester}#",
            self.node.config.channel_prefix,
            self.ns()
        );
        match wire::encode_pubsub(&self.node.uid, self.ns(), kind, data) {
            Ok(payload) => self.node.respond(channel, payload),
            Err(e) => tracing::warn!(error = %e, "response cannot be encoded"),
        }
    }

    /// Other nodes subscribed to the namespace (0 if Redis cannot tell now).
    async fn other_nodes(&self) -> usize {
        match self.count().await {
            Ok(n) => n.saturating_sub(1),
            Err(e) => {
                tracing::warn!(ns = %self.ns(), error = %e, "cannot count the other nodes; assuming none");
                0
            }
        }
    }

    async fn count(&self) -> Result<usize, crate::RedisError> {
        let reply: Vec<redis::Value> = self
            .node
            .query(
                redis::cmd("PUBSUB").arg("NUMSUB").arg(&self.public_channel),
                "PUBSUB NUMSUB",
            )
            .await?;
        Ok(match reply.get(1) {
            Some(redis::Value::Int(n)) => usize::try_from(*n).unwrap_or(0),
            _ => 0,
        })
    }

    /// A stream entry, in stream order (this node's own included).
    pub(crate) fn on_stream_message(&self, id: &str, message: Message) {
        let own = message.uid == self.node.uid;
        let result = match message.kind {
            kind::BROADCAST => self.on_broadcast_entry(id, &message.data),
            // This node applied its own room changes and disconnects when it made them.
            _ if own => Ok(()),
            kind::SOCKETS_JOIN | kind::SOCKETS_LEAVE => Opts::parse(field(&message.data, "opts"))
                .and_then(|opts| {
                    let rooms = wire::rooms_of(&message.data)?;
                    if message.kind == kind::SOCKETS_JOIN {
                        self.local.add_rooms(&opts.broadcast_options(), &rooms);
                    } else {
                        self.local.del_rooms(&opts.broadcast_options(), &rooms);
                    }
                    Ok(())
                }),
            kind::DISCONNECT_SOCKETS => Opts::parse(field(&message.data, "opts")).map(|opts| {
                let close = field(&message.data, "close")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                self.local.disconnect(&opts.broadcast_options(), close);
            }),
            // Heartbeats of other cluster adapters and anything newer: nothing to do.
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.node.refused("stream entry", &e);
        }
    }

    fn on_broadcast_entry(&self, id: &str, data: &Value) -> Result<(), WireError> {
        let b = wire::parse_broadcast(data)?;
        if b.packet.nsp != self.ns() {
            return Err(WireError::Schema("packet namespace is not the entry's"));
        }
        let mut packet = BroadcastPacket::new(
            sockeye::Str::from(self.ns()),
            sockeye::Str::from(b.packet.event.as_str()),
            b.packet.args,
        );
        if self.local.recovery_config().is_some() && !b.opts.volatile {
            packet.offset = Some(sockeye::Str::from(id));
        }
        self.local.deliver(&packet, &b.opts.broadcast_options());
        Ok(())
    }

    /// A request or response on pub/sub (not this node's own).
    pub(crate) fn on_pubsub_message(&self, message: Message) -> Result<(), WireError> {
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
                    _ => crate::stats::Stats::bump(&self.node.stats.late_responses),
                }
                Ok(())
            }
            kind::FETCH_SOCKETS => {
                let request_id = wire::request_id(&message.data)
                    .ok_or(WireError::Schema("request without requestId"))?;
                let opts = Opts::parse(field(&message.data, "opts"))?;
                let sockets: Vec<Value> = self
                    .local
                    .fetch(&opts.broadcast_options())
                    .into_iter()
                    .map(wire::socket_value)
                    .collect();
                self.respond(
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
                let (event, args) = classic::event_data(field(&message.data, "packet"))?;
                let ack = wire::request_id(&message.data).map(|request_id| {
                    let node = Arc::downgrade(&self.node);
                    let channel = format!(
                        "{}#{}#{}#",
                        self.node.config.channel_prefix,
                        self.ns(),
                        message.uid
                    );
                    let ns = self.ns().to_owned();
                    sockeye::ServerAck::new(move |answer| {
                        let node = node.upgrade().ok_or_else(|| {
                            AdapterError::new("the adapter is closed; the answer was not sent")
                        })?;
                        let payload = wire::encode_pubsub(
                            &node.uid,
                            &ns,
                            kind::SERVER_SIDE_EMIT_RESPONSE,
                            map(vec![
                                ("requestId", Value::from(request_id)),
                                ("packet", classic::json_to_value(answer)),
                            ]),
                        )
                        .map_err(|e| adapter_err("answer cannot be encoded", e))?;
                        node.respond(channel, payload);
                        Ok(())
                    })
                });
                self.local
                    .server_event(sockeye::ServerEvent::new(self.ns(), event, args, ack));
                Ok(())
            }
            kind::BROADCAST => {
                let b = wire::parse_broadcast(&message.data)?;
                let request_id = b
                    .request_id
                    .ok_or(WireError::Schema("pub/sub broadcast without requestId"))?;
                if b.packet.nsp != self.ns() {
                    return Err(WireError::Schema("packet namespace is not the message's"));
                }
                self.on_broadcast_request(&message.uid, b.packet, b.opts, request_id);
                Ok(())
            }
            _ => Err(WireError::Schema("unknown message type")),
        }
    }

    /// A broadcast with ack from another node: deliver, report the client count, then forward
    /// each acknowledgement.
    fn on_broadcast_request(
        &self,
        requester: &str,
        packet: classic::EventPacket,
        opts: Opts,
        request_id: String,
    ) {
        let me = self.me.clone();
        let (to, request) = (requester.to_owned(), request_id.clone());
        let (expected, forward) = requests::answer_broadcast(
            &self.local,
            packet,
            opts,
            self.node.config.redis.request_timeout,
            move |args| {
                let Some(adapter) = me.upgrade() else {
                    return false;
                };
                adapter.respond(
                    &to,
                    kind::BROADCAST_ACK,
                    map(vec![
                        ("requestId", Value::from(request.as_str())),
                        ("packet", wire::first_value(&args)),
                    ]),
                );
                true
            },
        );
        self.respond(
            requester,
            kind::BROADCAST_CLIENT_COUNT,
            map(vec![
                ("requestId", Value::from(request_id.as_str())),
                ("clientCount", Value::from(expected)),
            ]),
        );
        tokio::spawn(forward);
    }

    fn timed_out(
        &self,
        request: &'static str,
        answered: usize,
        expected: usize,
        partial: Partial,
    ) -> AdapterError {
        let e = RequestTimeout {
            request,
            ns: self.ns().to_owned(),
            answered,
            expected,
            timeout: self.node.config.redis.request_timeout,
            partial,
        };
        tracing::warn!(error = %e, "cluster request incomplete");
        AdapterError::with_source(e.to_string(), e)
    }

    fn session_key(&self, pid: &str) -> String {
        format!("{}{pid}", self.node.config.session_key_prefix)
    }

    /// Stores a session in the official format, for `ttl`.
    pub(crate) async fn store_session(
        &self,
        session: &PersistedSession,
        ttl: Duration,
    ) -> Result<(), AdapterError> {
        let blob = wire::encode_session(session, None)
            .map_err(|e| adapter_err("session cannot be encoded", e))?;
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.node
            .query::<redis::Value>(
                redis::cmd("SET")
                    .arg(self.session_key(&session.pid))
                    .arg(blob)
                    .arg("PX")
                    .arg(ms),
                "SET",
            )
            .await
            .map(|_| ())
            .map_err(|e| AdapterError::with_source(format!("session not stored: {e}"), e))
    }
}

/// Writes live sessions as they change (batched: whatever changed while a write was in
/// flight goes in the next one) and renews their TTL every third of the recovery window.
async fn live_writer(adapter: Weak<StreamsAdapter>) {
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
        let wake = match adapter.upgrade() {
            Some(a) => {
                let a2 = a.clone();
                drop(a);
                tokio::select! {
                    () = a2.live.wake.notified() => false,
                    _ = refresh.tick() => true,
                }
            }
            None => return,
        };
        let Some(a) = adapter.upgrade() else { return };
        a.write_live(wake).await;
    }
}

/// The data of a `socketsJoin` / `socketsLeave` entry: which sockets, and the rooms.
fn rooms_entry(opts: &BroadcastOptions, rooms: &[Room]) -> Value {
    map(vec![
        ("opts", wire::opts_value(opts)),
        (
            "rooms",
            Value::Array(rooms.iter().map(|r| Value::from(r.as_str())).collect()),
        ),
    ])
}

/// What a response is to a wait for answers of type `ty`.
fn reply(ty: u64) -> impl Fn(&Message) -> Reply + Send + 'static {
    move |m: &Message| match m.kind {
        k if k == ty => Reply::Answer(wire::answer(&m.data)),
        kind::BROADCAST_CLIENT_COUNT => {
            Reply::ClientCount(field_u64(&m.data, "clientCount").unwrap_or(0))
        }
        _ => Reply::Other,
    }
}

impl Drop for StreamsAdapter {
    fn drop(&mut self) {
        self.node.unregister(self);
    }
}

impl Adapter for StreamsAdapter {
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            if opts.flags.local {
                self.local.deliver(&packet, &opts);
                return Ok(());
            }
            let wait = self.node.config.redis.request_timeout;
            if !self.node.reading(&self.stream, wait).await {
                return Err(AdapterError::new(format!(
                    "not broadcast: this node's reader of stream {} has not started (is Redis reachable?)",
                    self.stream
                )));
            }
            let packet_v = classic::packet_value(self.ns(), &packet.event, &packet.args)
                .map_err(|e| adapter_err("broadcast cannot be encoded", e))?;
            let data = map(vec![
                ("packet", packet_v),
                ("opts", wire::opts_value(&opts)),
            ]);
            let id = self.add_entry(kind::BROADCAST, &data).await?;
            // Delivered here by this node's reader, in stream order like every other node.
            let parsed = wire::parse_id(&id).ok_or_else(|| {
                AdapterError::new(format!("Redis answered XADD with a strange id {id:?}"))
            })?;
            if !self.node.handled(&self.stream, parsed, wait).await {
                return Err(AdapterError::new(format!(
                    "broadcast stored as entry {id}, but this node's reader has not delivered it within {wait:?}; it delivers it when it reads it (do not emit again)"
                )));
            }
            Ok(())
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
            let local = self.local.deliver_with_ack(&packet, &opts, timeout);
            if opts.flags.local {
                return Ok(local);
            }
            let others = self.other_nodes().await;
            if others == 0 {
                return Ok(local);
            }
            let (id, rx, guard) = self.open_request()?;
            let mut flags_opts = opts.clone();
            flags_opts.flags.timeout = Some(timeout);
            let packet_v = classic::packet_value(self.ns(), &packet.event, &packet.args)
                .map_err(|e| adapter_err("broadcast cannot be encoded", e))?;
            self.publish(
                kind::BROADCAST,
                map(vec![
                    ("packet", packet_v),
                    ("requestId", Value::from(id.as_str())),
                    ("opts", wire::opts_value(&flags_opts)),
                ]),
            )
            .await?;
            let cfg = &self.node.config.redis;
            let wait = AckWait::new(start, timeout, cfg.request_timeout, cfg.max_responses);
            let read = reply(kind::BROADCAST_ACK);
            Ok(requests::broadcast_acks(local, rx, guard, others, wait, self.ns(), read).await)
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
            let others = self.other_nodes().await;
            if others == 0 {
                return Ok(sockets);
            }
            let (id, mut rx, _guard) = self.open_request()?;
            self.publish(
                kind::FETCH_SOCKETS,
                map(vec![
                    ("opts", wire::opts_value(&opts)),
                    ("requestId", Value::from(id.as_str())),
                ]),
            )
            .await?;
            let deadline = Instant::now() + self.node.config.redis.request_timeout;
            let mut answered = 0;
            while answered < others {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(resp)) if resp.kind == kind::FETCH_SOCKETS_RESPONSE => {
                        let Some(list) = classic::fetched_sockets(&resp.data) else {
                            continue;
                        };
                        answered += 1;
                        sockets.extend(list.into_iter().map(|s| s.into_info(self.ns())));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => {
                        return Err(self.timed_out(
                            "fetch_sockets",
                            answered,
                            others,
                            Partial::Sockets(sockets),
                        ));
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
            if !opts.flags.local {
                let data = rooms_entry(&opts, &rooms);
                self.add_entry(kind::SOCKETS_JOIN, &data).await?;
            }
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
            if !opts.flags.local {
                let data = rooms_entry(&opts, &rooms);
                self.add_entry(kind::SOCKETS_LEAVE, &data).await?;
            }
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
                    ("opts", wire::opts_value(&opts)),
                    ("close", Value::from(close)),
                ]);
                self.add_entry(kind::DISCONNECT_SOCKETS, &data).await?;
            }
            self.local.disconnect(&opts, close);
            Ok(())
        })
    }

    fn server_side_emit(&self, packet: BroadcastPacket) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let data = wire::event_value(&packet.event, &packet.args)
                .map_err(|e| adapter_err("arguments cannot be encoded", e))?;
            self.publish(kind::SERVER_SIDE_EMIT, map(vec![("packet", data)]))
                .await
        })
    }

    fn server_side_emit_with_ack(
        &self,
        packet: BroadcastPacket,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        Box::pin(async move {
            let others = self.other_nodes().await;
            if others == 0 {
                return Ok(AckStream::empty());
            }
            let (id, rx, guard) = self.open_request()?;
            let data = wire::event_value(&packet.event, &packet.args)
                .map_err(|e| adapter_err("arguments cannot be encoded", e))?;
            self.publish(
                kind::SERVER_SIDE_EMIT,
                map(vec![
                    ("packet", data),
                    ("requestId", Value::from(id.as_str())),
                ]),
            )
            .await?;
            let read = reply(kind::SERVER_SIDE_EMIT_RESPONSE);
            Ok(requests::answers(rx, guard, others, timeout, read))
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move {
            self.count()
                .await
                .map_err(|e| AdapterError::with_source("cannot count the nodes", e))
        })
    }

    fn supports_recovery(&self) -> bool {
        true
    }

    fn persist_session(
        &self,
        session: PersistedSession,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let ttl = self
                .local
                .recovery_config()
                .map(|c| c.max_disconnection_duration)
                .ok_or_else(|| {
                    AdapterError::new("connection-state recovery is not enabled on this server")
                })?;
            {
                // From now on the stored copy expires: no more live writes or TTL renewals.
                let mut state = self.live.state();
                state.alive.remove(&session.pid);
                state.dirty.remove(&session.pid);
            }
            self.store_session(&session, ttl).await
        })
    }

    fn session_changed(&self, session: PersistedSession) {
        if !self.node.config.live_sessions {
            return;
        }
        {
            let mut state = self.live.state();
            state.alive.insert(session.pid.clone());
            state.dirty.insert(session.pid.clone(), session);
        }
        self.start_live_writer();
        self.live.wake.notify_one();
    }

    fn session_ended(&self, pid: &str) {
        if !self.node.config.live_sessions {
            return;
        }
        {
            let mut state = self.live.state();
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
            // A pid is 128 random bits in hex (ours) or base64url (JS): anything else is
            // forged, and must not become a key lookup of someone else's choosing.
            if pid.is_empty()
                || pid.len() > 64
                || !pid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Ok(None);
            }
            let key = self.session_key(&pid);
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("GET")
                .arg(&key)
                .cmd("PTTL")
                .arg(&key)
                .cmd("DEL")
                .arg(&key)
                .ignore();
            let (raw, ttl): (Option<Vec<u8>>, i64) =
                self.node.query_pipe(&pipe, "GET+DEL").await.map_err(|e| {
                    AdapterError::with_source(format!("session lookup failed: {e}"), e)
                })?;
            let Some(raw) = raw else { return Ok(None) };
            let (session, live_on) =
                match wire::decode_session(&raw, &pid, self.ns(), self.node.limits()) {
                    Ok(found) => found,
                    Err(e) => {
                        self.node.refused("stored session", &e);
                        return Ok(None);
                    }
                };
            // A live copy: its socket may still be connected to the node that wrote it. Only
            // once that node is gone (no longer subscribed to its private channel) may the
            // session move; otherwise the copy is put back and the client starts afresh, as
            // with the official adapter, which stores nothing before the disconnect.
            let refuse = match live_on.as_deref() {
                None => false,
                // Written by this node: refused while its socket is still connected here.
                Some(uid) if uid == self.node.uid => self.local.socket_ids().contains(&session.id),
                Some(uid) => {
                    let channel =
                        format!("{}#{}#{uid}#", self.node.config.channel_prefix, self.ns());
                    let reply: Vec<redis::Value> = self
                        .node
                        .query(
                            redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel),
                            "PUBSUB NUMSUB",
                        )
                        .await
                        .map_err(|e| {
                            AdapterError::with_source(format!("session lookup failed: {e}"), e)
                        })?;
                    matches!(reply.get(1), Some(redis::Value::Int(n)) if *n > 0)
                }
            };
            if refuse {
                if ttl > 0 {
                    let _ = self
                        .node
                        .query::<redis::Value>(
                            redis::cmd("SET")
                                .arg(&key)
                                .arg(raw)
                                .arg("PX")
                                .arg(ttl)
                                .arg("NX"),
                            "SET",
                        )
                        .await;
                }
                tracing::debug!(ns = %self.ns(), "recovery refused: the session's socket may still be connected");
                return Ok(None);
            }
            Ok(Some(session))
        })
    }

    fn missed_packets<'a>(
        &'a self,
        session: &'a PersistedSession,
        offset: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<BroadcastPacket>>, AdapterError>> {
        Box::pin(async move {
            let Some(mut cursor) = wire::parse_id(offset) else {
                return Ok(None);
            };
            // The offset must still be in the stream: otherwise it was forged, or entries
            // after it may have been trimmed.
            let exists: redis::Value = self
                .node
                .query(
                    redis::cmd("XRANGE")
                        .arg(&self.stream)
                        .arg(offset)
                        .arg(offset),
                    "XRANGE",
                )
                .await
                .map_err(|e| AdapterError::with_source(format!("replay lookup failed: {e}"), e))?;
            if parse_entries(&exists).is_empty() {
                return Ok(None);
            }
            let max = self.node.config.max_replay;
            let mut missed = Vec::new();
            loop {
                let page: redis::Value = self
                    .node
                    .query(
                        redis::cmd("XRANGE")
                            .arg(&self.stream)
                            .arg(wire::next_id(cursor))
                            .arg("+")
                            .arg("COUNT")
                            .arg(1000),
                        "XRANGE",
                    )
                    .await
                    .map_err(|e| {
                        AdapterError::with_source(format!("replay read failed: {e}"), e)
                    })?;
                let entries = parse_entries(&page);
                if entries.is_empty() {
                    // The socket is attached (what this node's reader delivers to it is held
                    // and sent once, after the replay); what the reader delivers once the
                    // socket is connected must all come after the replay. A reader behind
                    // the replay's last entry would deliver those entries a second time, so
                    // the replay waits for it.
                    let wait = self.node.config.redis.request_timeout;
                    if !self.node.handled(&self.stream, cursor, wait).await {
                        return Err(AdapterError::new(format!(
                            "not recovered: this node's reader of stream {} has not reached \
                             entry {} within {wait:?} (is Redis reachable?); the client gets a \
                             fresh session rather than packets twice",
                            self.stream,
                            format_args!("{}-{}", cursor.0, cursor.1)
                        )));
                    }
                    return Ok(Some(missed));
                }
                for (id, fields) in entries {
                    let Some(parsed) = wire::parse_id(&id) else {
                        continue;
                    };
                    cursor = parsed;
                    let message = match wire::decode_entry(&fields, self.node.limits()) {
                        Ok(m) => m,
                        Err(e) => {
                            self.node.refused("stream entry", &e);
                            continue;
                        }
                    };
                    if message.nsp != self.ns() || message.kind != kind::BROADCAST {
                        continue;
                    }
                    let Ok(b) = wire::parse_broadcast(&message.data) else {
                        continue;
                    };
                    if b.opts.volatile || !wire::session_matches(&session.rooms, &b.opts) {
                        continue;
                    }
                    let mut packet = BroadcastPacket::new(
                        sockeye::Str::from(self.ns()),
                        sockeye::Str::from(b.packet.event.as_str()),
                        b.packet.args,
                    );
                    packet.offset = Some(sockeye::Str::from(id.as_str()));
                    missed.push(packet);
                    if missed.len() > max {
                        return Ok(None);
                    }
                }
            }
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.node.unregister(self);
        Box::pin(std::future::ready(Ok(())))
    }
}
