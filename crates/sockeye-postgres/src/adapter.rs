//! [`PostgresAdapter`]: one namespace's adapter, speaking `socket.io-adapter`'s cluster
//! protocol with heartbeats (`ClusterAdapterWithHeartbeat`) over its namespace's channel.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rmpv::Value;
use sockeye::AdapterError;
use sockeye::adapter::{
    AckStream, Adapter, BoxFuture, BroadcastOptions, BroadcastPacket, LocalNamespace, Room,
    SocketInfo,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use sockeye_cluster::requests::{self, AckWait, Pending, PendingGuard, Reply};

use crate::node::{Job, Node};
use crate::wire::{self, EMITTER_UID, Message, Opts, WireError, field, field_u64, kind, map};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn adapter_err(what: &str, e: impl std::fmt::Display) -> AdapterError {
    AdapterError::new(format!("{what}: {e}"))
}

fn opts_value(opts: &BroadcastOptions, timeout: Option<Duration>) -> Value {
    Opts::of(opts, timeout).to_unversioned_value()
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

fn rooms_value(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::from(r.as_str())).collect())
}

/// The PostgreSQL adapter of one namespace (built by [`crate::PostgresAdapterFactory`]).
pub struct PostgresAdapter {
    me: Weak<PostgresAdapter>,
    node: Arc<Node>,
    local: LocalNamespace,
    channel: String,
    pending: Arc<Pending<Message>>,
    /// Other nodes of the namespace: uid → when last heard of.
    nodes: Mutex<HashMap<String, Instant>>,
    last_publish: Mutex<Instant>,
    closed: AtomicBool,
}

impl std::fmt::Debug for PostgresAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresAdapter")
            .field("ns", &self.local.name())
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl PostgresAdapter {
    pub(crate) fn new(node: Arc<Node>, local: LocalNamespace) -> Arc<PostgresAdapter> {
        let channel = node.channel_of(local.name());
        if channel.len() > 63 {
            tracing::warn!(
                channel,
                "PostgreSQL truncates channel names to 63 bytes: this namespace's messages cannot be published"
            );
        }
        let adapter = Arc::new_cyclic(|me| PostgresAdapter {
            me: me.clone(),
            node: node.clone(),
            local,
            channel: channel.clone(),
            pending: Arc::default(),
            nodes: Mutex::new(HashMap::new()),
            last_publish: Mutex::new(Instant::now()),
            closed: AtomicBool::new(false),
        });
        node.register(&channel, &adapter);
        node.spawn(heartbeats(Arc::downgrade(&adapter)));
        adapter
    }

    pub(crate) fn ns(&self) -> &str {
        self.local.name()
    }

    /// Tells the other nodes this one is here (they answer with a heartbeat).
    pub(crate) fn announce(&self) {
        self.publish_nowait(kind::INITIAL_HEARTBEAT, Value::Nil);
    }

    /// This node and the others heard of within the heartbeat timeout.
    pub(crate) fn node_count(&self) -> usize {
        1 + self.live_nodes().len()
    }

    /// The other nodes heard of within the heartbeat timeout.
    fn live_nodes(&self) -> HashSet<String> {
        let timeout = self.node.config.heartbeat_timeout;
        let mut nodes = lock(&self.nodes);
        nodes.retain(|_, seen| seen.elapsed() <= timeout);
        nodes.keys().cloned().collect()
    }

    fn encode(&self, kind: u64, data: Value) -> Result<wire::Encoded, AdapterError> {
        wire::encode(
            &self.node.uid,
            self.ns(),
            kind,
            data,
            self.node.config.payload_threshold,
        )
        .map_err(|e| adapter_err("the message cannot be encoded", e))
    }

    /// Publishes and waits until PostgreSQL took the message.
    async fn publish(&self, kind: u64, data: Value, what: &str) -> Result<(), AdapterError> {
        let message = self.encode(kind, data)?;
        let (tx, rx) = oneshot::channel();
        self.node
            .queue(Job {
                channel: self.channel.clone(),
                message,
                reply: Some(tx),
            })
            .map_err(|e| AdapterError::new(format!("{what} not published: {e}")))?;
        *lock(&self.last_publish) = Instant::now();
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AdapterError::new(format!("{what} not published: {e}"))),
            Err(_) => Err(AdapterError::new(format!(
                "{what} not published: the adapter closed"
            ))),
        }
    }

    /// Queues a message without waiting (answers, heartbeats); a failure is logged and
    /// counted by the publisher.
    fn publish_nowait(&self, kind: u64, data: Value) {
        let message = match self.encode(kind, data) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(ns = %self.ns(), error = %e, "message not published");
                return;
            }
        };
        *lock(&self.last_publish) = Instant::now();
        if let Err(e) = self.node.queue(Job {
            channel: self.channel.clone(),
            message,
            reply: None,
        }) {
            tracing::warn!(ns = %self.ns(), error = %e, "message not published");
        }
    }

    fn open_request(
        &self,
    ) -> Result<(String, mpsc::Receiver<Message>, PendingGuard<Message>), AdapterError> {
        self.pending.open(
            wire::random_id(),
            self.ns(),
            self.node.config.max_pending_requests,
            self.node.config.max_responses,
        )
    }

    /// A message of another node or an emitter (never this node's own).
    pub(crate) fn on_message(&self, message: Message) -> Result<(), WireError> {
        if !message.uid.is_empty() && message.uid != EMITTER_UID {
            lock(&self.nodes).insert(message.uid.clone(), Instant::now());
        }
        let data = &message.data;
        match message.kind {
            kind::INITIAL_HEARTBEAT => {
                self.publish_nowait(kind::HEARTBEAT, Value::Nil);
                Ok(())
            }
            kind::HEARTBEAT => Ok(()),
            kind::ADAPTER_CLOSE => {
                lock(&self.nodes).remove(&message.uid);
                Ok(())
            }
            kind::BROADCAST => {
                let packet = wire::parse_packet(
                    field(data, "packet").ok_or(WireError::Schema("broadcast has no packet"))?,
                )?;
                if packet.nsp != self.ns() {
                    return Err(WireError::Schema("packet namespace is not the channel's"));
                }
                let opts = Opts::parse_unversioned(field(data, "opts"))?;
                match wire::request_id(data) {
                    Some(id) => self.on_broadcast_request(&message.uid, packet, opts, id),
                    None => {
                        let packet = BroadcastPacket::new(
                            sockeye::Str::from(self.ns()),
                            sockeye::Str::from(packet.event.as_str()),
                            packet.args,
                        );
                        self.local.deliver(&packet, &opts.broadcast_options());
                    }
                }
                Ok(())
            }
            kind::SOCKETS_JOIN | kind::SOCKETS_LEAVE => {
                let opts = Opts::parse_unversioned(field(data, "opts"))?;
                let rooms = wire::rooms(field(data, "rooms"))?;
                if message.kind == kind::SOCKETS_JOIN {
                    self.local.add_rooms(&opts.broadcast_options(), &rooms);
                } else {
                    self.local.del_rooms(&opts.broadcast_options(), &rooms);
                }
                Ok(())
            }
            kind::DISCONNECT_SOCKETS => {
                let opts = Opts::parse_unversioned(field(data, "opts"))?;
                let close = field(data, "close")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                self.local.disconnect(&opts.broadcast_options(), close);
                Ok(())
            }
            kind::FETCH_SOCKETS => {
                let request_id = wire::request_id(data)
                    .ok_or(WireError::Schema("FETCH_SOCKETS without requestId"))?;
                let opts = Opts::parse_unversioned(field(data, "opts"))?;
                let sockets: Vec<Value> = self
                    .local
                    .fetch(&opts.broadcast_options())
                    .into_iter()
                    .map(wire::socket_value)
                    .collect();
                self.publish_nowait(
                    kind::FETCH_SOCKETS_RESPONSE,
                    map(vec![
                        ("requestId", Value::from(request_id)),
                        ("sockets", Value::Array(sockets)),
                    ]),
                );
                Ok(())
            }
            kind::SERVER_SIDE_EMIT => {
                let (event, args) = wire::event_data(field(data, "packet"))?;
                let ack = wire::request_id(data).map(|request_id| {
                    let me = self.me.clone();
                    sockeye::ServerAck::new(move |answer| {
                        let adapter = me.upgrade().ok_or_else(|| {
                            AdapterError::new("the adapter is closed; the answer was not sent")
                        })?;
                        let message = adapter.encode(
                            kind::SERVER_SIDE_EMIT_RESPONSE,
                            map(vec![
                                ("requestId", Value::from(request_id)),
                                ("packet", wire::json_to_value(answer)),
                            ]),
                        )?;
                        adapter
                            .node
                            .queue(Job {
                                channel: adapter.channel.clone(),
                                message,
                                reply: None,
                            })
                            .map_err(|e| AdapterError::new(format!("answer not sent: {e}")))
                    })
                });
                self.local
                    .server_event(sockeye::ServerEvent::new(self.ns(), event, args, ack));
                Ok(())
            }
            kind::FETCH_SOCKETS_RESPONSE
            | kind::SERVER_SIDE_EMIT_RESPONSE
            | kind::BROADCAST_CLIENT_COUNT
            | kind::BROADCAST_ACK => {
                let id = wire::request_id(data)
                    .ok_or(WireError::Schema("response without requestId"))?;
                // Every node hears every answer on the channel: one for another node's
                // request is not this node's business.
                let tx = self.pending.sender(&id);
                if let Some(tx) = tx
                    && tx.try_send(message).is_err()
                {
                    tracing::debug!(ns = %self.ns(), "answer beyond max_responses dropped");
                }
                Ok(())
            }
            other => {
                // A newer protocol's message: ignored, as the Node adapter ignores it.
                tracing::debug!(ns = %self.ns(), kind = other, "unknown message type ignored");
                Ok(())
            }
        }
    }

    /// A broadcast with ack from another node: deliver, report the client count, then forward
    /// each acknowledgement.
    fn on_broadcast_request(
        &self,
        requester: &str,
        packet: wire::EventPacket,
        opts: Opts,
        request_id: String,
    ) {
        let me = self.me.clone();
        let request = request_id.clone();
        let (expected, forward) = requests::answer_broadcast(
            &self.local,
            packet,
            opts,
            self.node.config.request_timeout,
            move |args| {
                let Some(adapter) = me.upgrade() else {
                    return false;
                };
                adapter.publish_nowait(
                    kind::BROADCAST_ACK,
                    map(vec![
                        ("requestId", Value::from(request.as_str())),
                        ("packet", wire::first_value(&args)),
                    ]),
                );
                true
            },
        );
        self.publish_nowait(
            kind::BROADCAST_CLIENT_COUNT,
            map(vec![
                ("requestId", Value::from(request_id.as_str())),
                ("clientCount", Value::from(expected)),
            ]),
        );
        tracing::trace!(ns = %self.ns(), requester, "broadcast with ack from another node");
        self.node.spawn(forward);
    }

    fn event_value(packet: &BroadcastPacket) -> Result<Value, AdapterError> {
        wire::event_value(&packet.event, &packet.args)
            .map_err(|e| adapter_err("arguments cannot be encoded", e))
    }
}

/// The heartbeat task of one adapter: announces it once its channel is listened on, sends a
/// heartbeat whenever it has been silent for `heartbeat_interval`, and forgets nodes silent
/// for longer than `heartbeat_timeout`.
async fn heartbeats(adapter: Weak<PostgresAdapter>) {
    loop {
        let Some(a) = adapter.upgrade() else { return };
        if a.closed.load(Ordering::Acquire) {
            return;
        }
        if a.node.is_listening(&a.channel) {
            a.announce();
            break;
        }
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    loop {
        let Some(a) = adapter.upgrade() else { return };
        let interval = a.node.config.heartbeat_interval;
        let step = interval
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(10));
        drop(a);
        tokio::time::sleep(step).await;
        let Some(a) = adapter.upgrade() else { return };
        if a.closed.load(Ordering::Acquire) {
            return;
        }
        let quiet = lock(&a.last_publish).elapsed();
        if quiet >= interval {
            a.publish_nowait(kind::HEARTBEAT, Value::Nil);
        }
        a.live_nodes();
    }
}

impl Drop for PostgresAdapter {
    fn drop(&mut self) {
        self.node.unregister(&self.channel, self);
    }
}

impl Adapter for PostgresAdapter {
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            // Local sockets get it whatever the database does; the error then says so, so
            // that the caller does not emit again and deliver it twice here.
            let recipients = self.local.deliver(&packet, &opts);
            if opts.flags.local {
                return Ok(());
            }
            let packet_v = wire::packet_value(self.ns(), &packet.event, &packet.args).map_err(
                |e| adapter_err(&format!("broadcast delivered to the {recipients} sockets of this node, but it cannot be encoded for the others"), e),
            )?;
            self.publish(
                kind::BROADCAST,
                map(vec![("packet", packet_v), ("opts", opts_value(&opts, None))]),
                &format!("broadcast delivered to the {recipients} sockets of this node, but its copy for the other nodes was"),
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
            let others = if opts.flags.local {
                0
            } else {
                self.live_nodes().len()
            };
            let remote = if others == 0 {
                None
            } else {
                let (id, rx, guard) = self.open_request()?;
                let packet_v = wire::packet_value(self.ns(), &packet.event, &packet.args)
                    .map_err(|e| adapter_err("broadcast cannot be encoded", e))?;
                self.publish(
                    kind::BROADCAST,
                    map(vec![
                        ("packet", packet_v),
                        ("requestId", Value::from(id.as_str())),
                        ("opts", opts_value(&opts, Some(timeout))),
                    ]),
                    "broadcast with ack (nothing was delivered)",
                )
                .await?;
                Some((rx, guard))
            };
            let local = self.local.deliver_with_ack(&packet, &opts, timeout);
            let Some((rx, guard)) = remote else {
                return Ok(local);
            };
            let cfg = &self.node.config;
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
            let mut missing = self.live_nodes();
            if missing.is_empty() {
                return Ok(sockets);
            }
            let expected = missing.len();
            let (id, mut rx, _guard) = self.open_request()?;
            self.publish(
                kind::FETCH_SOCKETS,
                map(vec![
                    ("opts", opts_value(&opts, None)),
                    ("requestId", Value::from(id.as_str())),
                ]),
                "fetch_sockets request",
            )
            .await?;
            let deadline = Instant::now() + self.node.config.request_timeout;
            while !missing.is_empty() {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(resp)) if resp.kind == kind::FETCH_SOCKETS_RESPONSE => {
                        let Some(list) = wire::fetched_sockets(&resp.data) else {
                            continue;
                        };
                        if !missing.remove(&resp.uid) {
                            continue;
                        }
                        sockets.extend(list.into_iter().map(|s| s.into_info(self.ns())));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => {
                        // A node that went away meanwhile owes no answer.
                        let live = self.live_nodes();
                        missing.retain(|uid| live.contains(uid));
                        if missing.is_empty() {
                            break;
                        }
                        return Err(AdapterError::new(format!(
                            "fetch_sockets in namespace {}: {} of {expected} other nodes did not answer within {:?} ({} sockets came)",
                            self.ns(),
                            missing.len(),
                            self.node.config.request_timeout,
                            sockets.len()
                        )));
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
                self.publish(
                    kind::SOCKETS_JOIN,
                    map(vec![
                        ("opts", opts_value(&opts, None)),
                        ("rooms", rooms_value(&rooms)),
                    ]),
                    "socketsJoin (nothing was done)",
                )
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
                self.publish(
                    kind::SOCKETS_LEAVE,
                    map(vec![
                        ("opts", opts_value(&opts, None)),
                        ("rooms", rooms_value(&rooms)),
                    ]),
                    "socketsLeave (nothing was done)",
                )
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
                        ("opts", opts_value(&opts, None)),
                        ("close", Value::from(close)),
                    ]),
                    "disconnectSockets (nothing was done)",
                )
                .await?;
            }
            self.local.disconnect(&opts, close);
            Ok(())
        })
    }

    fn server_side_emit(&self, packet: BroadcastPacket) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let data = Self::event_value(&packet)?;
            self.publish(
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
            let others = self.live_nodes().len();
            if others == 0 {
                return Ok(AckStream::empty());
            }
            let (id, rx, guard) = self.open_request()?;
            let data = Self::event_value(&packet)?;
            self.publish(
                kind::SERVER_SIDE_EMIT,
                map(vec![
                    ("packet", data),
                    ("requestId", Value::from(id.as_str())),
                ]),
                "server-side emit",
            )
            .await?;
            let read = reply(kind::SERVER_SIDE_EMIT_RESPONSE);
            Ok(requests::answers(rx, guard, others, timeout, read))
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(std::future::ready(Ok(self.node_count())))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            if self.closed.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
            let said = self
                .publish(kind::ADAPTER_CLOSE, Value::Nil, "ADAPTER_CLOSE")
                .await;
            self.node.unregister(&self.channel, self);
            said
        })
    }
}
