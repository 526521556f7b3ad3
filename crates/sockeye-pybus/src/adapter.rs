//! [`PyBusAdapter`]: one namespace's operations as python-socketio bus messages.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use sockeye::adapter::{
    AckStream, Adapter, BoxFuture, BroadcastOptions, BroadcastPacket, LocalNamespace, Room,
    SocketInfo,
};
use sockeye::{AckError, AdapterError, SocketId, Str};
use tokio::sync::mpsc;

use crate::bus::{Answer, Bus, PendingGuard};
use crate::error::{PyBusError, Unsupported};
use crate::wire::{self, AckExt, Message};

const ONE_TARGET: &str = "each of its join, leave and disconnect messages names one socket id (or, for sockeye nodes, one room): target exactly one room or socket, without except";
const NO_QUERIES: &str = "its messages only push (emit, rooms, disconnect, answers); no node answers a query. Use a broadcast, or `.local()` for this node's part";

/// The adapter of one namespace on python-socketio's bus. Made by [`crate::PyBusFactory`].
pub struct PyBusAdapter {
    bus: Arc<Bus>,
    local: LocalNamespace,
}

impl std::fmt::Debug for PyBusAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyBusAdapter")
            .field("ns", &self.local.name())
            .field("host_id", &self.bus.host_id)
            .finish_non_exhaustive()
    }
}

fn single(opts: &BroadcastOptions) -> Option<&str> {
    match (opts.rooms.as_slice(), opts.except.is_empty()) {
        ([one], true) => Some(one.as_str()),
        _ => None,
    }
}

fn target(room: &str) -> BroadcastOptions {
    BroadcastOptions {
        rooms: vec![room.to_owned()],
        ..BroadcastOptions::default()
    }
}

impl PyBusAdapter {
    pub(crate) fn new(bus: Arc<Bus>, local: LocalNamespace) -> Arc<PyBusAdapter> {
        Arc::new(PyBusAdapter { bus, local })
    }

    async fn publish(
        &self,
        payload: Vec<u8>,
        what: &'static str,
        local: &'static str,
    ) -> Result<(), AdapterError> {
        self.bus.publish(payload).await.map_err(|reason| {
            PyBusError::NotPublished {
                what,
                ns: self.local.name().to_owned(),
                local,
                reason,
            }
            .into_adapter()
        })
    }

    fn is_local_socket(&self, id: &str) -> bool {
        self.local.socket_ids().iter().any(|s| s.as_str() == id)
    }

    /// A message another node published for this namespace.
    pub(crate) fn on_message(self: Arc<Self>, msg: Message) {
        match msg {
            Message::Emit {
                host_id,
                ns,
                event,
                args,
                rooms,
                skip,
                callback,
                ack,
            } => {
                let opts = BroadcastOptions {
                    rooms,
                    except: skip,
                    ..BroadcastOptions::default()
                };
                let packet = BroadcastPacket::new(Str::from(ns), Str::from(event), args);
                let Some(cb) = callback else {
                    self.local.deliver(&packet, &opts);
                    return;
                };
                // A bounded wait, unlike python nodes, which keep remote callbacks forever.
                let timeout = ack.map_or(self.bus.config.remote_ack_timeout, |a| {
                    Duration::from_millis(a.timeout_ms)
                });
                let mut stream = self.local.deliver_with_ack(&packet, &opts, timeout);
                if ack.is_some() && stream.expected() > 0 {
                    // Queued before any answer, so the origin learns the count first.
                    let count = wire::encode_ack_count(
                        &host_id,
                        cb.id,
                        &self.bus.host_id,
                        stream.expected(),
                    );
                    if let Err(e) = self.bus.enqueue(count) {
                        tracing::warn!(error = %e, "python-socketio bus: answer count not published");
                    }
                }
                if stream.expected() == 0 {
                    return;
                }
                tokio::spawn(async move {
                    while let Some((sid, result)) = stream.next().await {
                        let Ok(args) = result else { continue };
                        let payload = match wire::encode_callback(
                            &host_id,
                            &cb,
                            &args,
                            &self.bus.host_id,
                            sid.as_str(),
                        ) {
                            Ok(p) => p,
                            Err(e) => {
                                tracing::warn!(error = %e, "python-socketio bus: answer not encodable");
                                continue;
                            }
                        };
                        if let Err(e) = self.bus.enqueue(payload) {
                            tracing::warn!(error = %e, "python-socketio bus: answer not published");
                        }
                    }
                });
            }
            Message::Disconnect { sid, close, .. } => self.local.disconnect(&target(&sid), close),
            Message::Room {
                sid, room, enter, ..
            } => {
                if enter {
                    self.local.add_rooms(&target(&sid), &[room]);
                } else {
                    self.local.del_rooms(&target(&sid), &[room]);
                }
            }
            Message::CloseRoom { room, .. } => {
                self.local
                    .del_rooms(&target(&room), std::slice::from_ref(&room));
            }
            Message::Callback { .. } | Message::AckCount { .. } | Message::Other { .. } => {}
        }
    }

    /// The remote half of a broadcast with ack: every answer until `timeout`, then one
    /// timeout per socket a sockeye node asked and that did not answer.
    fn remote_acks(
        rx: mpsc::UnboundedReceiver<Answer>,
        guard: PendingGuard,
        timeout: Duration,
    ) -> AckStream {
        struct State {
            rx: mpsc::UnboundedReceiver<Answer>,
            _guard: PendingGuard,
            deadline: tokio::time::Instant,
            asked: HashMap<String, (u64, u64)>,
            missing: u64,
            done: bool,
        }
        let state = State {
            rx,
            _guard: guard,
            deadline: tokio::time::Instant::now() + timeout,
            asked: HashMap::new(),
            missing: 0,
            done: false,
        };
        let stream = futures_util::stream::unfold(state, move |mut s| async move {
            loop {
                if s.missing > 0 {
                    s.missing -= 1;
                    return Some(((SocketId::from(""), Err(AckError::Timeout(timeout))), s));
                }
                if s.done {
                    return None;
                }
                tokio::select! {
                    answer = s.rx.recv() => match answer {
                        Some(Answer::Count { from, count }) => {
                            s.asked.entry(from).or_default().0 = count;
                        }
                        Some(Answer::Args { from, socket, args }) => {
                            if let Some(from) = from {
                                s.asked.entry(from).or_default().1 += 1;
                            }
                            let id = SocketId::from(socket.unwrap_or_default());
                            return Some(((id, Ok(args)), s));
                        }
                        None => s.done = true,
                    },
                    () = tokio::time::sleep_until(s.deadline) => {
                        s.done = true;
                        s.missing = s.asked.values().map(|(n, k)| n.saturating_sub(*k)).sum();
                    }
                }
            }
        });
        AckStream::new(stream, 0)
    }
}

impl Adapter for PyBusAdapter {
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
            let payload = wire::encode_emit(
                &self.bus.host_id,
                &packet.ns,
                &packet.event,
                &packet.args,
                &opts.rooms,
                &opts.except,
                None,
            )
            .map_err(|e| PyBusError::Encode(e).into_adapter())?;
            self.local.deliver(&packet, &opts);
            self.publish(payload, "broadcast", "was delivered to this node's sockets")
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
            if opts.flags.local {
                return Ok(self.local.deliver_with_ack(&packet, &opts, timeout));
            }
            let (id, rx, guard) = self.bus.pending();
            let ext = AckExt {
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            };
            let payload = wire::encode_emit(
                &self.bus.host_id,
                &packet.ns,
                &packet.event,
                &packet.args,
                &opts.rooms,
                &opts.except,
                Some((id, ext)),
            )
            .map_err(|e| PyBusError::Encode(e).into_adapter())?;
            let local = self.local.deliver_with_ack(&packet, &opts, timeout);
            self.publish(
                payload,
                "broadcast with ack",
                "was sent to this node's sockets (their answers are dropped with this error)",
            )
            .await?;
            Ok(local.chain(Self::remote_acks(rx, guard, timeout)))
        })
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        Box::pin(async move {
            if opts.flags.local {
                return Ok(self.local.fetch(&opts));
            }
            Err(Unsupported::err("fetch_sockets", NO_QUERIES))
        })
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move { self.rooms_op(opts, rooms, true).await })
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move { self.rooms_op(opts, rooms, false).await })
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            if opts.flags.local {
                self.local.disconnect(&opts, close);
                return Ok(());
            }
            let Some(room) = single(&opts) else {
                return Err(Unsupported::err(
                    "a disconnect of several rooms",
                    ONE_TARGET,
                ));
            };
            let remote = !self.is_local_socket(room);
            let payload =
                wire::encode_disconnect(&self.bus.host_id, self.local.name(), room, close);
            self.local.disconnect(&opts, close);
            if remote {
                self.publish(payload, "disconnect", "was applied to this node's sockets")
                    .await?;
            }
            Ok(())
        })
    }

    fn server_side_emit(&self, packet: BroadcastPacket) -> BoxFuture<'_, Result<(), AdapterError>> {
        drop(packet);
        Box::pin(std::future::ready(Err(Unsupported::err(
            "server-side emits",
            "it has no message between servers' handlers",
        ))))
    }

    fn server_side_emit_with_ack(
        &self,
        packet: BroadcastPacket,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        let _ = (packet, timeout);
        Box::pin(std::future::ready(Err(Unsupported::err(
            "server-side emits",
            "it has no message between servers' handlers",
        ))))
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(std::future::ready(Err(Unsupported::err(
            "server_count",
            "its nodes send no heartbeat; Redis's PUBSUB NUMSUB would also count emit-only processes",
        ))))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.bus.unregister(self.local.name());
        Box::pin(std::future::ready(Ok(())))
    }
}

impl PyBusAdapter {
    async fn rooms_op(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
        enter: bool,
    ) -> Result<(), AdapterError> {
        let apply = |opts: &BroadcastOptions| {
            if enter {
                self.local.add_rooms(opts, &rooms);
            } else {
                self.local.del_rooms(opts, &rooms);
            }
        };
        if opts.flags.local {
            apply(&opts);
            return Ok(());
        }
        let what = if enter { "a join" } else { "a leave" };
        let Some(room) = single(&opts) else {
            return Err(Unsupported::err(
                if enter {
                    "a join of several rooms"
                } else {
                    "a leave of several rooms"
                },
                ONE_TARGET,
            ));
        };
        let remote = !self.is_local_socket(room);
        let ns = self.local.name();
        let host = &self.bus.host_id;
        // `in(room).socketsLeave(room)` is python's close_room, which its nodes apply too.
        let payloads: Vec<Vec<u8>> = if !enter && rooms.len() == 1 && rooms[0] == room {
            vec![wire::encode_close_room(host, ns, room)]
        } else {
            rooms
                .iter()
                .map(|r| wire::encode_room(host, ns, room, r, enter))
                .collect()
        };
        apply(&opts);
        if remote {
            for payload in payloads {
                self.publish(payload, what, "was applied to this node's sockets")
                    .await?;
            }
        }
        Ok(())
    }
}
