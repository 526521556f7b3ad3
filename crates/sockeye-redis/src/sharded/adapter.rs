//! [`ShardedAdapter`]: one namespace's adapter on sharded pub/sub, speaking the cluster
//! messages of `socket.io-adapter` 2.5 as `createShardedAdapter` does.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use rmpv::Value;
use sockeye::adapter::{
    AckStream, Adapter, BoxFuture, BroadcastFlags, BroadcastOptions, BroadcastPacket,
    LocalNamespace, Room, SocketInfo,
};
use sockeye::{AdapterError, Args, SocketId};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::config::SubscriptionMode;
use super::node::Node;
use super::wire as sharded;
use crate::error::{Partial, RequestTimeout};
use crate::stats::Stats;
use crate::streams::wire::{self as cluster, Message, kind, map};
use crate::wire::{self as classic, Opts, WireError, field};
use sockeye_cluster::requests::{self, Pending, PendingGuard, Reply};

/// The sharded adapter of one namespace (built by [`super::ShardedAdapterFactory`]).
pub struct ShardedAdapter {
    me: Weak<ShardedAdapter>,
    node: Arc<Node>,
    local: LocalNamespace,
    /// `prefix#ns#`.
    channel: String,
    /// `prefix#ns#uid#`.
    response_channel: String,
    pending: Arc<Pending<Message>>,
    /// Set once the namespace channels are given up (by `close` or drop, whichever first).
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for ShardedAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedAdapter")
            .field("ns", &self.local.name())
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

fn adapter_err(what: &str, e: impl std::fmt::Display) -> AdapterError {
    AdapterError::new(format!("{what}: {e}"))
}

/// Longest ack wait a remote request may ask of this node (it holds a task and pending acks).
const MAX_REMOTE_ACK_TIMEOUT_MS: u64 = 600_000;

fn options(opts: Opts) -> BroadcastOptions {
    BroadcastOptions {
        rooms: opts.rooms,
        except: opts.except,
        flags: BroadcastFlags {
            volatile: opts.volatile,
            ..BroadcastFlags::default()
        },
    }
}

/// The one argument of an ack or server-side answer (`data.packet`).
fn answer(resp: &Message) -> Option<Args> {
    match field(&resp.data, "packet") {
        None => Some(Args::empty()),
        Some(v) => classic::values_to_args(vec![v.clone()]).ok(),
    }
}

fn rooms_value(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::from(r.as_str())).collect())
}

impl ShardedAdapter {
    pub(crate) fn new(node: Arc<Node>, local: LocalNamespace) -> Arc<ShardedAdapter> {
        let channel = format!("{}#{}#", node.prefix(), local.name());
        let response_channel = format!("{channel}{}#", node.uid);
        Arc::new_cyclic(|me| ShardedAdapter {
            me: me.clone(),
            node,
            local,
            channel,
            response_channel,
            pending: Arc::default(),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Subscribes to the namespace's two channels (room channels follow the rooms).
    pub(crate) fn subscribe(&self) {
        self.node.want(self.channel.clone());
        self.node.want(self.response_channel.clone());
    }

    fn ns(&self) -> &str {
        self.local.name()
    }

    fn mode(&self) -> SubscriptionMode {
        self.node.config.mode
    }

    fn room_channel(&self, room: &str) -> String {
        format!("{}{room}#", self.channel)
    }

    /// JS `computeChannel`: a broadcast without ack to exactly one room goes on that room's
    /// channel in the dynamic modes (not a socket-id-like room in `dynamic`).
    fn broadcast_channel(&self, rooms: &[Room]) -> String {
        match (self.mode(), rooms) {
            (SubscriptionMode::Dynamic, [room]) if !sharded::looks_like_socket_id(room) => {
                self.room_channel(room)
            }
            (SubscriptionMode::DynamicPrivate, [room]) => self.room_channel(room),
            _ => self.channel.clone(),
        }
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

    /// Publishes a message of this namespace on `channel`.
    async fn publish_on(&self, channel: &str, kind: u64, data: Value) -> Result<(), AdapterError> {
        let payload = sharded::encode(&self.node.uid, self.ns(), kind, data)
            .map_err(|e| adapter_err("cannot encode the message", e))?;
        self.node.spublish(channel, &payload).await.map_err(|e| {
            AdapterError::with_source(
                format!("message not published to the other nodes (SPUBLISH {channel}): {e}"),
                e,
            )
        })
    }

    /// Publishes on the namespace channel.
    async fn publish(&self, kind: u64, data: Value) -> Result<(), AdapterError> {
        self.publish_on(&self.channel.clone(), kind, data).await
    }

    fn respond(&self, requester: &str, kind: u64, data: Value, what: &'static str) {
        let channel = format!("{}{requester}#", self.channel);
        match sharded::encode(&self.node.uid, self.ns(), kind, data) {
            Ok(payload) => self.node.respond(channel, payload, what),
            Err(e) => tracing::warn!(error = %e, what, "response cannot be encoded"),
        }
    }

    /// `PUBSUB SHARDNUMSUB` of the namespace channel over the cluster.
    async fn count(&self) -> Result<usize, crate::RedisError> {
        self.node.shard_numsub(&self.channel).await
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

    /// A message on the namespace channel or a room channel (JS `onMessage`).
    pub(crate) fn on_message(&self, message: Message) -> Result<(), WireError> {
        if message.uid == self.node.uid || message.nsp != self.ns() {
            return Ok(());
        }
        let data = &message.data;
        match message.kind {
            kind::BROADCAST => {
                let b = cluster::parse_broadcast(data)?;
                if b.packet.nsp != self.ns() {
                    return Err(WireError::Schema("packet namespace is not the message's"));
                }
                match b.request_id {
                    Some(request_id) => {
                        self.on_broadcast_request(&message.uid, b.packet, b.opts, request_id);
                    }
                    None => {
                        let packet = BroadcastPacket::new(
                            sockeye::Str::from(self.ns()),
                            sockeye::Str::from(b.packet.event.as_str()),
                            b.packet.args,
                        );
                        self.local.deliver(&packet, &options(b.opts));
                    }
                }
            }
            kind::SOCKETS_JOIN | kind::SOCKETS_LEAVE => {
                let opts = Opts::parse(field(data, "opts"))?;
                let rooms = cluster::rooms_of(data)?;
                if message.kind == kind::SOCKETS_JOIN {
                    self.local.add_rooms(&options(opts), &rooms);
                } else {
                    self.local.del_rooms(&options(opts), &rooms);
                }
            }
            kind::DISCONNECT_SOCKETS => {
                let opts = Opts::parse(field(data, "opts"))?;
                let close = field(data, "close")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                self.local.disconnect(&options(opts), close);
            }
            kind::FETCH_SOCKETS => {
                let request_id = cluster::request_id(data)
                    .ok_or(WireError::Schema("request without requestId"))?;
                let opts = Opts::parse(field(data, "opts"))?;
                let sockets: Vec<Value> = self
                    .local
                    .fetch(&options(opts))
                    .into_iter()
                    .map(|s| {
                        map(vec![
                            ("id", Value::from(s.id.as_str())),
                            (
                                "handshake",
                                classic::json_to_value(
                                    s.handshake.unwrap_or_else(|| serde_json::json!({})),
                                ),
                            ),
                            ("rooms", rooms_value(&s.rooms)),
                            (
                                "data",
                                classic::json_to_value(s.data.unwrap_or(serde_json::Value::Null)),
                            ),
                        ])
                    })
                    .collect();
                self.respond(
                    &message.uid,
                    kind::FETCH_SOCKETS_RESPONSE,
                    map(vec![
                        ("requestId", Value::from(request_id)),
                        ("sockets", Value::Array(sockets)),
                    ]),
                    "FETCH_SOCKETS_RESPONSE",
                );
            }
            kind::SERVER_SIDE_EMIT => {
                let (event, args) = classic::event_data(field(data, "packet"))?;
                let ack = cluster::request_id(data).map(|request_id| {
                    let node = Arc::downgrade(&self.node);
                    let channel = format!("{}{}#", self.channel, message.uid);
                    let ns = self.ns().to_owned();
                    sockeye::ServerAck::new(move |answer| {
                        let node = node.upgrade().ok_or_else(|| {
                            AdapterError::new("the adapter is closed; the answer was not sent")
                        })?;
                        let payload = sharded::encode(
                            &node.uid,
                            &ns,
                            kind::SERVER_SIDE_EMIT_RESPONSE,
                            map(vec![
                                ("requestId", Value::from(request_id)),
                                ("packet", classic::json_to_value(answer)),
                            ]),
                        )
                        .map_err(|e| adapter_err("answer cannot be encoded", e))?;
                        node.respond(channel, payload, "SERVER_SIDE_EMIT_RESPONSE");
                        Ok(())
                    })
                });
                self.local
                    .server_event(sockeye::ServerEvent::new(self.ns(), event, args, ack));
            }
            // Extending classes may send responses on the namespace channel (JS comment in
            // ClusterAdapter#onMessage): handled as responses.
            kind::FETCH_SOCKETS_RESPONSE
            | kind::SERVER_SIDE_EMIT_RESPONSE
            | kind::BROADCAST_CLIENT_COUNT
            | kind::BROADCAST_ACK => return self.on_response(message),
            // Heartbeats and closes of adapters with heartbeat: nothing to do here.
            1 | 2 | 13 => {}
            _ => return Err(WireError::Schema("unknown message type")),
        }
        Ok(())
    }

    /// A response to one of this node's requests (JS `onResponse`).
    pub(crate) fn on_response(&self, message: Message) -> Result<(), WireError> {
        match message.kind {
            kind::FETCH_SOCKETS_RESPONSE
            | kind::SERVER_SIDE_EMIT_RESPONSE
            | kind::BROADCAST_CLIENT_COUNT
            | kind::BROADCAST_ACK => {}
            _ => return Err(WireError::Schema("not a response type")),
        }
        let id = cluster::request_id(&message.data)
            .ok_or(WireError::Schema("response without requestId"))?;
        let tx = self.pending.sender(&id);
        match tx {
            Some(tx) if tx.try_send(message).is_ok() => {}
            _ => Stats::bump(&self.node.stats.late_responses),
        }
        Ok(())
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
        let default_ms =
            u64::try_from(self.node.config.redis.request_timeout.as_millis()).unwrap_or(5000);
        let timeout = Duration::from_millis(
            opts.timeout_ms
                .unwrap_or(default_ms)
                .min(MAX_REMOTE_ACK_TIMEOUT_MS),
        );
        let packet = BroadcastPacket::new(
            sockeye::Str::from(self.ns()),
            sockeye::Str::from(packet.event.as_str()),
            packet.args,
        );
        let stream = self
            .local
            .deliver_with_ack(&packet, &options(opts), timeout);
        let expected = u64::try_from(stream.expected()).unwrap_or(u64::MAX);
        self.respond(
            requester,
            kind::BROADCAST_CLIENT_COUNT,
            map(vec![
                ("requestId", Value::from(request_id.as_str())),
                ("clientCount", Value::from(expected)),
            ]),
            "BROADCAST_CLIENT_COUNT",
        );
        let me = self.me.clone();
        let requester = requester.to_owned();
        tokio::spawn(async move {
            let mut stream = stream;
            while let Some((_, result)) = stream.next().await {
                let Ok(args) = result else { continue };
                let Some(adapter) = me.upgrade() else { return };
                let first = classic::args_to_values(&args)
                    .ok()
                    .and_then(|v| v.into_iter().next())
                    .unwrap_or(Value::Nil);
                adapter.respond(
                    &requester,
                    kind::BROADCAST_ACK,
                    map(vec![
                        ("requestId", Value::from(request_id.as_str())),
                        ("packet", first),
                    ]),
                    "BROADCAST_ACK",
                );
            }
        });
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

    /// Whether a room change concerns a subscription in this mode (JS
    /// `shouldUseASeparateNamespace`): every room in `dynamic-private`; in `dynamic`, explicit
    /// rooms and the own-id rooms that do not look like a socket id. The JS publisher sends a
    /// broadcast to one room on that room's channel unless the name has 20 characters (a JS
    /// socket id); sockeye's socket ids have 22, so the JS nodes send a message to one
    /// sockeye socket on its own channel, which its node must therefore hear. An explicit room
    /// named like a socket id of this node is followed too (the JS adapter skips it): one extra
    /// subscription, harmless, and the same answer at creation and deletion.
    fn follows(&self, room: &str, own_id: bool) -> bool {
        match self.mode() {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !own_id || !sharded::looks_like_socket_id(room),
            SubscriptionMode::DynamicPrivate => true,
        }
    }
}

/// A stream of `expected` remote answers of type `ty` (see [`requests::remote_acks`]).
fn remote_acks(
    rx: mpsc::Receiver<Message>,
    guard: PendingGuard<Message>,
    buffered: VecDeque<Args>,
    expected: usize,
    deadline: Instant,
    timeout: Duration,
    ty: u64,
) -> AckStream {
    let read = move |resp: &Message| {
        if resp.kind == ty {
            Reply::Answer(answer(resp))
        } else {
            Reply::Other
        }
    };
    requests::remote_acks(rx, guard, buffered, expected, deadline, timeout, read)
}

/// The data of a `socketsJoin` / `socketsLeave`: which sockets, and the rooms.
fn rooms_data(opts: &BroadcastOptions, rooms: &[Room]) -> Value {
    map(vec![
        ("opts", cluster::opts_value(opts)),
        ("rooms", rooms_value(rooms)),
    ])
}

impl ShardedAdapter {
    /// Stops routing to this adapter and gives up its namespace channels, once.
    fn release(&self) {
        self.node.unregister(self.local.name(), self);
        if !self.closed.swap(true, std::sync::atomic::Ordering::AcqRel) {
            self.node.unwant(&self.channel);
            self.node.unwant(&self.response_channel);
        }
    }
}

impl Drop for ShardedAdapter {
    fn drop(&mut self) {
        self.release();
    }
}

impl Adapter for ShardedAdapter {
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            // Local sockets get it whatever Redis does; an error then says so, so the caller
            // does not repeat the emit and deliver it twice here.
            let recipients = self.local.deliver(&packet, &opts);
            if opts.flags.local {
                return Ok(());
            }
            let packet_v = classic::packet_value(self.ns(), &packet.event, &packet.args)
                .map_err(|e| adapter_err("broadcast cannot be encoded for the other nodes", e))?;
            let data = map(vec![
                ("packet", packet_v),
                ("opts", cluster::opts_value(&opts)),
            ]);
            let channel = self.broadcast_channel(&opts.rooms);
            self.publish_on(&channel, kind::BROADCAST, data)
                .await
                .map_err(|e| {
                    AdapterError::new(format!(
                        "broadcast was delivered to {recipients} local socket(s) (do not emit it again), but not to the other nodes: {e}"
                    ))
                })
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
            let remote = if opts.flags.local {
                None
            } else {
                let (id, rx, guard) = self.open_request()?;
                let mut opts_v = opts.clone();
                opts_v.flags.timeout = Some(timeout);
                let packet_v = classic::packet_value(self.ns(), &packet.event, &packet.args)
                    .map_err(|e| adapter_err("broadcast cannot be encoded for Redis", e))?;
                // Always on the namespace channel: the count of nodes that answer is the count
                // of nodes subscribed to it (JS `computeChannel`).
                self.publish(
                    kind::BROADCAST,
                    map(vec![
                        ("packet", packet_v),
                        ("requestId", Value::from(id.as_str())),
                        ("opts", cluster::opts_value(&opts_v)),
                    ]),
                )
                .await?;
                Some((rx, guard))
            };
            let local = self.local.deliver_with_ack(&packet, &opts, timeout);
            let Some((mut rx, guard)) = remote else {
                return Ok(local);
            };
            // Each node first reports how many clients it reached; the stream's length is known
            // once every node did (or the wait for them ran out).
            let others = self.other_nodes().await;
            let counts_deadline = start + timeout.min(self.node.config.redis.request_timeout);
            let (mut servers, mut clients, mut buffered) = (0usize, 0usize, VecDeque::new());
            while servers < others {
                match tokio::time::timeout_at(counts_deadline, rx.recv()).await {
                    Ok(Some(resp)) => match resp.kind {
                        kind::BROADCAST_CLIENT_COUNT => {
                            servers += 1;
                            let n = classic::field_u64(&resp.data, "clientCount").unwrap_or(0);
                            clients =
                                clients.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
                        }
                        kind::BROADCAST_ACK => {
                            if let Some(args) = answer(&resp) {
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
            let clients = clients.min(self.node.config.redis.max_responses);
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
            let others = self.other_nodes().await;
            if others == 0 {
                return Ok(sockets);
            }
            let (id, mut rx, _guard) = self.open_request()?;
            self.publish(
                kind::FETCH_SOCKETS,
                map(vec![
                    ("opts", cluster::opts_value(&opts)),
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
                self.publish(kind::SOCKETS_JOIN, rooms_data(&opts, &rooms))
                    .await?;
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
                self.publish(kind::SOCKETS_LEAVE, rooms_data(&opts, &rooms))
                    .await?;
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
                self.publish(
                    kind::DISCONNECT_SOCKETS,
                    map(vec![
                        ("opts", cluster::opts_value(&opts)),
                        ("close", Value::from(close)),
                    ]),
                )
                .await?;
            }
            self.local.disconnect(&opts, close);
            Ok(())
        })
    }

    fn server_side_emit(&self, packet: BroadcastPacket) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let mut data = vec![Value::from(packet.event.as_ref())];
            data.extend(
                classic::args_to_values(&packet.args)
                    .map_err(|e| adapter_err("arguments cannot be encoded", e))?,
            );
            self.publish(
                kind::SERVER_SIDE_EMIT,
                map(vec![("packet", Value::Array(data))]),
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
            let others = self.other_nodes().await;
            if others == 0 {
                return Ok(AckStream::empty());
            }
            let (id, rx, guard) = self.open_request()?;
            let mut data = vec![Value::from(packet.event.as_ref())];
            data.extend(
                classic::args_to_values(&packet.args)
                    .map_err(|e| adapter_err("arguments cannot be encoded", e))?,
            );
            self.publish(
                kind::SERVER_SIDE_EMIT,
                map(vec![
                    ("requestId", Value::from(id.as_str())),
                    ("packet", Value::Array(data)),
                ]),
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
        Box::pin(async move {
            self.count()
                .await
                .map_err(|e| AdapterError::with_source("cannot count the nodes", e))
        })
    }

    fn wants_room_events(&self) -> bool {
        self.mode() != SubscriptionMode::Static
    }

    fn room_created(&self, room: &str, own_id: bool) {
        if self.follows(room, own_id) {
            self.node.want(self.room_channel(room));
        }
    }

    fn room_deleted(&self, room: &str, own_id: bool) {
        if self.follows(room, own_id) {
            self.node.unwant(&self.room_channel(room));
        }
    }

    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.release();
        Box::pin(std::future::ready(Ok(())))
    }
}
