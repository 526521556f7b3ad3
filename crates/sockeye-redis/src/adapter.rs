//! [`RedisAdapter`]: one namespace's adapter. Local rooms and delivery are the server's
//! ([`LocalNamespace`]); this type adds the broker messages of `@socket.io/redis-adapter`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rmpv::Value;
use serde_json::json;
use sockeye::adapter::{
    AckStream, Adapter, BoxFuture, BroadcastOptions, BroadcastPacket, LocalNamespace, Room,
    SocketInfo,
};
use sockeye::{AdapterError, Args, SocketId};
use tokio::sync::mpsc;
use tokio::time::Instant;

use sockeye_cluster::requests::{self, AckWait, Pending, PendingGuard, Reply};

use crate::broker::{BrokerHandle, Outgoing};
use crate::error::{LocalOutcome, Partial, RequestTimeout};
use crate::server_event;
use crate::stats::Stats;
use crate::wire::{self, Channels, Opts, WireError, kind};

/// The Redis adapter of one namespace (built by [`crate::RedisAdapterFactory`]).
pub struct RedisAdapter {
    broker: Arc<BrokerHandle>,
    local: LocalNamespace,
    uid: String,
    channels: Channels,
    pending: Arc<Pending<Value>>,
}

impl std::fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("ns", &self.local.name())
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

fn adapter_err(what: &str, e: impl std::fmt::Display) -> AdapterError {
    AdapterError::new(format!("{what}: {e}"))
}

impl RedisAdapter {
    pub(crate) fn new(
        broker: Arc<BrokerHandle>,
        local: LocalNamespace,
        uid: String,
    ) -> Arc<RedisAdapter> {
        let channels = Channels::new(&broker.config.key, local.name(), &uid);
        Arc::new(RedisAdapter {
            broker,
            local,
            uid,
            channels,
            pending: Arc::default(),
        })
    }

    pub(crate) fn channels(&self) -> &Channels {
        &self.channels
    }

    fn open_request(
        &self,
    ) -> Result<(String, mpsc::Receiver<Value>, PendingGuard<Value>), AdapterError> {
        let cfg = &self.broker.config;
        let id = wire::random_id(16);
        let ns = self.local.name();
        self.pending
            .open(id, ns, cfg.max_pending_requests, cfg.max_responses)
    }

    fn publish(
        &self,
        channel: String,
        payload: Vec<u8>,
        what: &'static str,
    ) -> Result<(), AdapterError> {
        self.publish_after(channel, payload, what, LocalOutcome::NotDone)
    }

    /// Publishes; a refusal becomes a [`crate::NotPublished`] error saying `local`, what was
    /// already done on this node.
    fn publish_after(
        &self,
        channel: String,
        payload: Vec<u8>,
        what: &'static str,
        local: LocalOutcome,
    ) -> Result<(), AdapterError> {
        self.broker
            .publish(Outgoing {
                channel,
                payload: payload.into(),
                what,
                queued: crate::metrics::Stamp::now(),
            })
            .map_err(|(msg, reason)| msg.refused(reason, self.local.name(), local))
    }

    /// Tells the other nodes to make the sockets matching `opts` join or leave `rooms`
    /// (`kind` is `REMOTE_JOIN` or `REMOTE_LEAVE`).
    fn publish_room_change(
        &self,
        kind: u64,
        what: &'static str,
        opts: &BroadcastOptions,
        rooms: &[Room],
    ) -> Result<(), AdapterError> {
        self.publish(
            self.channels.request.clone(),
            wire::encode_json(vec![
                ("uid", json!(self.uid)),
                ("type", json!(kind)),
                ("opts", json!({"rooms": opts.rooms, "except": opts.except})),
                ("rooms", json!(rooms)),
            ]),
            what,
        )
    }

    /// Other nodes subscribed to this namespace (0 if Redis cannot tell now).
    async fn other_nodes(&self) -> usize {
        match self.broker.numsub(&self.channels.request).await {
            Ok(n) => n.saturating_sub(1),
            Err(e) => {
                tracing::warn!(ns = %self.local.name(), error = %e, "cannot count the other nodes; assuming none");
                0
            }
        }
    }

    /// Options targeting the one socket `sid` (its own room).
    fn socket_only(sid: &str) -> BroadcastOptions {
        BroadcastOptions {
            rooms: vec![sid.to_owned()],
            ..BroadcastOptions::default()
        }
    }

    fn opts_of(opts: &BroadcastOptions) -> Opts {
        Opts::of(opts, None)
    }

    fn options(opts: Opts) -> BroadcastOptions {
        opts.broadcast_options()
    }

    fn respond(&self, fields: Vec<(&str, serde_json::Value)>, what: &'static str) {
        let _ = self.publish(
            self.channels.response.clone(),
            wire::encode_json(fields),
            what,
        );
    }

    /// A broadcast from another node or an emitter.
    pub(crate) fn on_broadcast(&self, room: Option<&str>, payload: &[u8]) -> Result<(), WireError> {
        if wire::peek_uid(payload) == Some(self.uid.as_str()) {
            return Ok(());
        }
        let cfg = &self.broker.config;
        let value = wire::decode_msgpack(payload, cfg.max_message_size, cfg.max_depth)?;
        let msg = wire::parse_broadcast(&value)?;
        if msg.uid == self.uid || msg.packet.nsp != self.local.name() {
            return Ok(());
        }
        if let Some(room) = room
            && !msg.opts.rooms.iter().any(|r| r == room)
        {
            return Err(WireError::Schema(
                "room channel does not match the target rooms",
            ));
        }
        let packet = BroadcastPacket::new(
            sockeye::Str::from(msg.packet.nsp.as_str()),
            sockeye::Str::from(msg.packet.event.as_str()),
            msg.packet.args,
        );
        self.local.deliver(&packet, &Self::options(msg.opts));
        Ok(())
    }

    /// A request from another node or an emitter.
    pub(crate) fn on_request(&self, payload: &[u8]) -> Result<(), WireError> {
        let cfg = &self.broker.config;
        let req = wire::decode(payload, cfg.max_message_size, cfg.max_depth)?;
        // Its own requests come back on the channel it subscribes to: skipped before the
        // rest is checked.
        if wire::field_str(&req, "uid") == Some(self.uid.as_str()) {
            return Ok(());
        }
        match wire::parse_request(&req)? {
            wire::Request::Sockets { request_id, rooms } => {
                let opts = Opts {
                    rooms,
                    ..Opts::default()
                };
                let ids: Vec<String> = self
                    .local
                    .targets(&Self::options(opts))
                    .iter()
                    .map(|id| id.as_str().to_owned())
                    .collect();
                self.respond(
                    vec![("requestId", json!(request_id)), ("sockets", json!(ids))],
                    "SOCKETS response",
                );
            }
            wire::Request::AllRooms { request_id } => {
                self.respond(
                    vec![
                        ("requestId", json!(request_id)),
                        ("rooms", json!(self.local.rooms())),
                    ],
                    "ALL_ROOMS response",
                );
            }
            wire::Request::RoomChange {
                join,
                target,
                rooms,
            } => match target {
                wire::Target::Opts(opts) => {
                    let opts = Self::options(opts);
                    if join {
                        self.local.add_rooms(&opts, &rooms);
                    } else {
                        self.local.del_rooms(&opts, &rooms);
                    }
                }
                wire::Target::Socket { sid, request_id } => {
                    let id = SocketId::from(sid.as_str());
                    if !self.local.socket_ids().contains(&id) {
                        return Ok(());
                    }
                    let only = Self::socket_only(&sid);
                    if join {
                        self.local.add_rooms(&only, &rooms);
                    } else {
                        self.local.del_rooms(&only, &rooms);
                    }
                    if let Some(request_id) = request_id {
                        self.respond(
                            vec![("requestId", json!(request_id))],
                            "join/leave response",
                        );
                    }
                }
            },
            wire::Request::Disconnect { target, close } => match target {
                wire::Target::Opts(opts) => {
                    self.local.disconnect(&Self::options(opts), close);
                }
                wire::Target::Socket { sid, request_id } => {
                    let id = SocketId::from(sid.as_str());
                    if !self.local.socket_ids().contains(&id) {
                        return Ok(());
                    }
                    self.local.disconnect(&Self::socket_only(&sid), close);
                    if let Some(request_id) = request_id {
                        self.respond(
                            vec![("requestId", json!(request_id))],
                            "disconnect response",
                        );
                    }
                }
            },
            wire::Request::Fetch { request_id, opts } => {
                let infos = self.local.fetch(&Self::options(opts));
                let sockets: Vec<serde_json::Value> = infos
                    .into_iter()
                    .map(|s| {
                        json!({
                            "id": s.id.as_str(),
                            "handshake": s.handshake.unwrap_or_else(|| json!({})),
                            "rooms": s.rooms,
                            "data": s.data.unwrap_or(serde_json::Value::Null),
                        })
                    })
                    .collect();
                self.respond(
                    vec![
                        ("requestId", json!(request_id)),
                        ("sockets", json!(sockets)),
                    ],
                    "REMOTE_FETCH response",
                );
            }
            wire::Request::ServerSideEmit {
                request_id,
                event,
                args,
            } => {
                let ack = request_id.map(|id| {
                    server_event::ack(
                        Arc::downgrade(&**self.broker),
                        self.local.name().to_owned(),
                        self.channels.response.clone(),
                        id,
                    )
                });
                self.local.server_event(sockeye::ServerEvent::new(
                    self.local.name(),
                    event,
                    args,
                    ack,
                ));
            }
            wire::Request::Broadcast {
                request_id,
                packet,
                opts,
            } => self.on_broadcast_request(packet, opts, request_id),
        }
        Ok(())
    }

    /// A broadcast with ack from another node: deliver, report the client count, then forward
    /// each acknowledgement as it arrives.
    fn on_broadcast_request(&self, packet: wire::EventPacket, opts: Opts, request_id: String) {
        if packet.nsp != self.local.name() {
            return;
        }
        let broker = Arc::downgrade(&**self.broker);
        let channel = self.channels.response.clone();
        let request = request_id.clone();
        let (expected, forward) = requests::answer_broadcast(
            &self.local,
            packet,
            opts,
            self.broker.config.request_timeout,
            move |args| {
                let Some(broker) = broker.upgrade() else {
                    return false;
                };
                let mut fields = vec![
                    (Value::from("type"), Value::from(kind::BROADCAST_ACK)),
                    (Value::from("requestId"), Value::from(request.as_str())),
                    wire::version_entry(),
                ];
                match wire::args_to_values(&args) {
                    Ok(values) => {
                        if let Some(first) = values.into_iter().next() {
                            fields.push((Value::from("packet"), first));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "acknowledgement cannot be forwarded"),
                }
                if let Ok(payload) = wire::encode_msgpack(&Value::Map(fields)) {
                    let _ = broker.publish(Outgoing {
                        channel: channel.clone(),
                        payload: payload.into(),
                        what: "BROADCAST_ACK response",
                        queued: crate::metrics::Stamp::now(),
                    });
                }
                true
            },
        );
        self.respond(
            vec![
                ("type", json!(kind::BROADCAST_CLIENT_COUNT)),
                ("requestId", json!(request_id)),
                ("clientCount", json!(expected)),
            ],
            "BROADCAST_CLIENT_COUNT response",
        );
        tokio::spawn(forward);
    }

    /// A response to one of this node's requests.
    pub(crate) fn on_response(&self, payload: &[u8]) -> Result<(), WireError> {
        let cfg = &self.broker.config;
        let resp = wire::decode(payload, cfg.max_message_size, cfg.max_depth)?;
        let id = wire::response_id(&resp)?;
        let tx = self.pending.sender(id);
        match tx {
            Some(tx) if tx.try_send(resp).is_ok() => {}
            _ => Stats::bump(&self.broker.stats.late_responses),
        }
        Ok(())
    }

    /// The error of a request that did not get every answer in time.
    fn timed_out(
        &self,
        request: &'static str,
        answered: usize,
        expected: usize,
        partial: Partial,
    ) -> AdapterError {
        let e = RequestTimeout {
            request,
            ns: self.local.name().to_owned(),
            answered,
            expected,
            timeout: self.broker.config.request_timeout,
            partial,
        };
        tracing::warn!(error = %e, "cluster request incomplete");
        AdapterError::with_source(e.to_string(), e)
    }

    /// Every room of every node (JS `allRooms`): this node's rooms and each other node's
    /// answer to ALL_ROOMS within `request_timeout`, else a [`RequestTimeout`] error.
    pub(crate) async fn all_rooms(&self) -> Result<std::collections::BTreeSet<Room>, AdapterError> {
        let mut rooms: std::collections::BTreeSet<Room> = self.local.rooms().into_iter().collect();
        let others = self.other_nodes().await;
        if others == 0 {
            return Ok(rooms);
        }
        let answered = self
            .collect_answers(
                kind::ALL_ROOMS,
                vec![],
                "ALL_ROOMS request",
                others,
                wire::answered_rooms,
                |list| rooms.extend(list),
            )
            .await?;
        match answered {
            Ok(()) => Ok(rooms),
            Err(answered) => {
                Err(self.timed_out("all_rooms", answered, others, Partial::Rooms(rooms)))
            }
        }
    }

    /// Publishes a request of `kind` (with `fields` besides `uid`, `requestId` and `type`) and
    /// hands every answer `parse` accepts to `add`, until the `others` nodes answered: then
    /// `Ok(Ok(()))`; `Ok(Err(answered))` when `request_timeout` came first.
    async fn collect_answers<T>(
        &self,
        kind: u64,
        fields: Vec<(&'static str, serde_json::Value)>,
        what: &'static str,
        others: usize,
        parse: impl Fn(&Value) -> Option<T>,
        mut add: impl FnMut(T),
    ) -> Result<Result<(), usize>, AdapterError> {
        let (id, mut rx, _guard) = self.open_request()?;
        let mut message = vec![
            ("uid", json!(self.uid)),
            ("requestId", json!(id)),
            ("type", json!(kind)),
        ];
        message.extend(fields);
        self.publish(
            self.channels.request.clone(),
            wire::encode_json(message),
            what,
        )?;
        let deadline = Instant::now() + self.broker.config.request_timeout;
        let mut answered = 0;
        while answered < others {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(resp)) => {
                    let Some(answer) = parse(&resp) else {
                        continue;
                    };
                    answered += 1;
                    add(answer);
                }
                Ok(None) | Err(_) => return Ok(Err(answered)),
            }
        }
        Ok(Ok(()))
    }

    /// Sends a server-side event to the other nodes; see [`crate::RedisAdapterFactory`].
    pub(crate) fn emit_to_servers(&self, event: &str, args: &Args) -> Result<(), AdapterError> {
        let data = server_data(event, args)?;
        self.publish(
            self.channels.request.clone(),
            wire::encode_json(vec![
                ("uid", json!(self.uid)),
                ("type", json!(kind::SERVER_SIDE_EMIT)),
                ("data", data),
            ]),
            "SERVER_SIDE_EMIT request",
        )
    }

    async fn emit_to_servers_with_ack(
        &self,
        event: &str,
        args: &Args,
        timeout: Duration,
    ) -> Result<AckStream, AdapterError> {
        let others = self.other_nodes().await;
        if others == 0 {
            return Ok(AckStream::empty());
        }
        let data = server_data(event, args)?;
        let (id, rx, guard) = self.open_request()?;
        self.publish(
            self.channels.request.clone(),
            wire::encode_json(vec![
                ("uid", json!(self.uid)),
                ("requestId", json!(id)),
                ("type", json!(kind::SERVER_SIDE_EMIT)),
                ("data", data),
            ]),
            "SERVER_SIDE_EMIT request",
        )?;
        Ok(remote_acks(
            rx,
            guard,
            VecDeque::new(),
            others,
            Instant::now() + timeout,
            timeout,
            kind::SERVER_SIDE_EMIT,
        ))
    }
}

fn server_data(event: &str, args: &Args) -> Result<serde_json::Value, AdapterError> {
    let mut data = vec![json!(event)];
    data.extend(
        args.deserialize::<Vec<serde_json::Value>>()
            .map_err(|e| adapter_err("server-side emit arguments are not JSON", e))?,
    );
    Ok(serde_json::Value::Array(data))
}

/// What a response is to a wait for answers of type `ty`.
fn reply(ty: u64) -> impl Fn(&Value) -> Reply + Send + 'static {
    move |resp: &Value| match wire::field_u64(resp, "type") {
        Some(t) if t == ty => Reply::Answer(wire::answer_args(resp, ty)),
        Some(kind::BROADCAST_CLIENT_COUNT) => {
            Reply::ClientCount(wire::field_u64(resp, "clientCount").unwrap_or(0))
        }
        _ => Reply::Other,
    }
}

/// A stream of `expected` remote answers of type `ty`; whatever has not arrived by `deadline`
/// yields a timeout.
fn remote_acks(
    rx: mpsc::Receiver<Value>,
    guard: PendingGuard<Value>,
    buffered: VecDeque<Args>,
    expected: usize,
    deadline: Instant,
    timeout: Duration,
    ty: u64,
) -> AckStream {
    requests::remote_acks(rx, guard, buffered, expected, deadline, timeout, reply(ty))
}

impl Drop for RedisAdapter {
    fn drop(&mut self) {
        self.broker.unregister(self.local.name(), self);
    }
}

impl Adapter for RedisAdapter {
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            // Local sockets get it whatever Redis does; an error then says so (see
            // `NotPublished`), so the caller does not repeat the emit and deliver it twice here.
            let recipients = self.local.deliver(&packet, &opts);
            let local = LocalOutcome::Delivered { recipients };
            if opts.flags.local {
                return Ok(());
            }
            let payload = wire::packet_value(self.local.name(), &packet.event, &packet.args)
                .and_then(|p| wire::encode_broadcast(&self.uid, p, &Self::opts_of(&opts)))
                .map_err(|e| {
                    adapter_err(
                        &format!("broadcast {local}, but cannot be encoded for the other nodes"),
                        e,
                    )
                })?;
            self.publish_after(
                self.channels.broadcast_for(&opts.rooms),
                payload,
                "broadcast",
                local,
            )
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
                let mut wire_opts = Self::opts_of(&opts);
                wire_opts.timeout_ms = Some(timeout.as_millis().try_into().unwrap_or(u64::MAX));
                let packet_v =
                    wire::packet_value(self.local.name(), &packet.event, &packet.args)
                        .map_err(|e| adapter_err("broadcast cannot be encoded for Redis", e))?;
                let request = Value::Map(vec![
                    (Value::from("uid"), Value::from(self.uid.as_str())),
                    (Value::from("requestId"), Value::from(id.as_str())),
                    (Value::from("type"), Value::from(kind::BROADCAST)),
                    (Value::from("packet"), packet_v),
                    (Value::from("opts"), wire_opts.to_value(true)),
                    wire::version_entry(),
                ]);
                let payload = wire::encode_msgpack(&request)
                    .map_err(|e| adapter_err("broadcast cannot be encoded", e))?;
                self.publish(self.channels.request.clone(), payload, "BROADCAST request")?;
                Some((rx, guard))
            };
            let local = self.local.deliver_with_ack(&packet, &opts, timeout);
            let Some((rx, guard)) = remote else {
                return Ok(local);
            };
            let others = self.other_nodes().await;
            let wait = AckWait {
                start,
                timeout,
                request_timeout: self.broker.config.request_timeout,
                max_responses: self.broker.config.max_responses,
            };
            let ns = self.local.name();
            let read = reply(kind::BROADCAST_ACK);
            Ok(requests::broadcast_acks(local, rx, guard, others, wait, ns, read).await)
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
            let ns = self.local.name();
            let answered = self
                .collect_answers(
                    kind::REMOTE_FETCH,
                    vec![("opts", json!({"rooms": opts.rooms, "except": opts.except}))],
                    "REMOTE_FETCH request",
                    others,
                    wire::fetched_sockets,
                    |list| {
                        sockets.extend(list.into_iter().map(|s| s.into_info(ns)));
                    },
                )
                .await?;
            if let Err(answered) = answered {
                return Err(self.timed_out(
                    "fetch_sockets",
                    answered,
                    others,
                    Partial::Sockets(sockets),
                ));
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
                self.publish_room_change(kind::REMOTE_JOIN, "REMOTE_JOIN request", &opts, &rooms)?;
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
                self.publish_room_change(
                    kind::REMOTE_LEAVE,
                    "REMOTE_LEAVE request",
                    &opts,
                    &rooms,
                )?;
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
                    self.channels.request.clone(),
                    wire::encode_json(vec![
                        ("uid", json!(self.uid)),
                        ("type", json!(kind::REMOTE_DISCONNECT)),
                        ("opts", json!({"rooms": opts.rooms, "except": opts.except})),
                        ("close", json!(close)),
                    ]),
                    "REMOTE_DISCONNECT request",
                )?;
            }
            self.local.disconnect(&opts, close);
            Ok(())
        })
    }

    fn server_side_emit(&self, packet: BroadcastPacket) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(std::future::ready(
            self.emit_to_servers(&packet.event, &packet.args),
        ))
    }

    fn server_side_emit_with_ack(
        &self,
        packet: BroadcastPacket,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        Box::pin(async move {
            self.emit_to_servers_with_ack(&packet.event, &packet.args, timeout)
                .await
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move {
            self.broker
                .numsub(&self.channels.request)
                .await
                .map_err(|e| AdapterError::with_source("cannot count the nodes", e))
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.broker.unregister(self.local.name(), self);
        Box::pin(std::future::ready(Ok(())))
    }
}
