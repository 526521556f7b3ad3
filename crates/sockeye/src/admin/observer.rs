//! The admin's hook on the data path: counters always, and in development mode a bounded
//! queue of notices that one task turns into admin events.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value, json};
use sockeye_engine::{Frame, Transport};
use sockeye_protocol::socketio::Str;
use tokio::sync::mpsc;

use super::serialize;
use crate::adapter::Room;
use crate::id::SocketId;
use crate::instrument::{Instrument, frame_len};
use crate::packet::Args;
use crate::reason::DisconnectReason;
use crate::socket::SocketRef;

/// Notices waiting for the admin task, at most: past it they are dropped (and counted), so a
/// busy server never waits for its admins.
pub(crate) const NOTICE_QUEUE: usize = 4096;

/// Something the admins are told in development mode, built on the data path as cheaply as
/// possible (clones of refcounted values) and serialised by the admin task.
pub(crate) enum Notice {
    Connected(SocketRef, u64),
    Updated(SocketRef),
    Disconnected {
        ns: Str,
        id: SocketId,
        reason: DisconnectReason,
        at: u64,
    },
    RoomJoined {
        ns: Str,
        id: SocketId,
        room: Room,
        at: u64,
    },
    RoomLeft {
        ns: Str,
        id: SocketId,
        room: Room,
        at: u64,
    },
    Received {
        socket: SocketRef,
        event: Str,
        args: Args,
        at: u64,
    },
    Sent {
        socket: SocketRef,
        event: Str,
        args: Args,
        at: u64,
    },
}

impl Notice {
    /// The admin event and its arguments.
    pub(crate) fn into_event(self) -> (&'static str, Vec<Value>) {
        match self {
            Notice::Connected(socket, at) => (
                "socket_connected",
                vec![serialize::local_socket(&socket), iso(at)],
            ),
            Notice::Updated(socket) => (
                "socket_updated",
                vec![json!({
                    "id": socket.id().as_str(),
                    "nsp": socket.ns(),
                    "data": socket.session_json().unwrap_or_else(|| json!({})),
                })],
            ),
            Notice::Disconnected { ns, id, reason, at } => (
                "socket_disconnected",
                vec![
                    json!(ns.as_str()),
                    json!(id.as_str()),
                    json!(reason.as_str()),
                    iso(at),
                ],
            ),
            Notice::RoomJoined { ns, id, room, at } => (
                "room_joined",
                vec![json!(ns.as_str()), json!(room), json!(id.as_str()), iso(at)],
            ),
            Notice::RoomLeft { ns, id, room, at } => (
                "room_left",
                vec![json!(ns.as_str()), json!(room), json!(id.as_str()), iso(at)],
            ),
            Notice::Received {
                socket,
                event,
                args,
                at,
            } => ("event_received", event_args(&socket, &event, &args, at)),
            Notice::Sent {
                socket,
                event,
                args,
                at,
            } => ("event_sent", event_args(&socket, &event, &args, at)),
        }
    }
}

fn iso(at: u64) -> Value {
    Value::String(serialize::iso8601(at))
}

/// `(nsp, id, [event, ...args], date)`; binary attachments are not shown.
fn event_args(socket: &SocketRef, event: &Str, args: &Args, at: u64) -> Vec<Value> {
    let mut list = vec![Value::String(event.as_str().to_owned())];
    list.extend(args.deserialize::<Vec<Value>>().unwrap_or_default());
    vec![
        json!(socket.ns()),
        json!(socket.id().as_str()),
        Value::Array(list),
        iso(at),
    ]
}

/// Engine-level counters, read and reset once per second.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) packets_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) packets_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    /// Closes by reason (few distinct reasons, and a close is rare next to a packet).
    pub(crate) disconnections: Mutex<Vec<(&'static str, u64)>>,
}

/// The admin's observer.
pub(crate) struct Observer {
    pub(crate) namespace: Str,
    pub(crate) development: bool,
    pub(crate) counters: Counters,
    notices: Option<mpsc::Sender<Notice>>,
    pub(crate) dropped: AtomicU64,
    warned: AtomicBool,
    /// Sockets last seen on polling: the stats task reports their upgrade.
    pub(crate) polling: Mutex<Vec<(Str, SocketId)>>,
}

impl Observer {
    pub(crate) fn new(
        namespace: Str,
        development: bool,
    ) -> (Observer, Option<mpsc::Receiver<Notice>>) {
        let (tx, rx) = if development {
            let (tx, rx) = mpsc::channel(NOTICE_QUEUE);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let observer = Observer {
            namespace,
            development,
            counters: Counters::default(),
            notices: tx,
            dropped: AtomicU64::new(0),
            warned: AtomicBool::new(false),
            polling: Mutex::default(),
        };
        (observer, rx)
    }

    fn notify(&self, notice: impl FnOnce() -> Notice) {
        let Some(tx) = &self.notices else { return };
        if tx.try_send(notice()).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "admin notices are produced faster than they are sent: dropping some \
                     (use production mode on a busy server)"
                );
            }
        }
    }

    fn is_admin(&self, ns: &str) -> bool {
        ns == self.namespace.as_str()
    }
}

impl Instrument for Observer {
    fn session_opened(&self, _transport: Transport) {
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
    }

    fn session_closed(&self, _close: sockeye_engine::CloseReason, reason: DisconnectReason) {
        let mut closes = crate::sync::lock(&self.counters.disconnections);
        let reason = reason.as_str();
        match closes.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, count)) => *count += 1,
            None => closes.push((reason, 1)),
        }
    }

    fn message_in(&self, bytes: usize) {
        self.counters.packets_in.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_in
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn frames_out(&self, frames: &[Frame]) {
        let bytes: usize = frames.iter().map(frame_len).sum();
        self.counters
            .packets_out
            .fetch_add(frames.len() as u64, Ordering::Relaxed);
        self.counters
            .bytes_out
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn socket_connected(&self, socket: &SocketRef) {
        if !self.development {
            return;
        }
        if socket.transport() == Transport::Polling {
            crate::sync::lock(&self.polling).push((socket.ns_str().clone(), socket.id().clone()));
        }
        self.notify(|| Notice::Connected(socket.clone(), serialize::now_ms()));
    }

    fn socket_disconnected(&self, socket: &SocketRef, reason: DisconnectReason) {
        if !self.development {
            return;
        }
        self.notify(|| Notice::Disconnected {
            ns: socket.ns_str().clone(),
            id: socket.id().clone(),
            reason,
            at: serialize::now_ms(),
        });
    }

    fn room_joined(&self, ns: &str, id: &SocketId, room: &Room) {
        if !self.development {
            return;
        }
        self.notify(|| Notice::RoomJoined {
            ns: Str::from(ns),
            id: id.clone(),
            room: room.clone(),
            at: serialize::now_ms(),
        });
    }

    fn room_left(&self, ns: &str, id: &SocketId, room: &str) {
        if !self.development {
            return;
        }
        self.notify(|| Notice::RoomLeft {
            ns: Str::from(ns),
            id: id.clone(),
            room: room.to_owned(),
            at: serialize::now_ms(),
        });
    }

    fn event_received(&self, socket: &SocketRef, event: &str, args: &Args) {
        if !self.development || self.is_admin(socket.ns()) {
            return;
        }
        self.notify(|| Notice::Received {
            socket: socket.clone(),
            event: Str::from(event),
            args: args.clone(),
            at: serialize::now_ms(),
        });
    }

    fn event_sent(&self, socket: &SocketRef, event: &str, args: &Args) {
        if !self.development || self.is_admin(socket.ns()) {
            return;
        }
        self.notify(|| Notice::Sent {
            socket: socket.clone(),
            event: Str::from(event),
            args: args.clone(),
            at: serialize::now_ms(),
        });
    }

    fn session_changed(&self, socket: &SocketRef) {
        if !self.development {
            return;
        }
        self.notify(|| Notice::Updated(socket.clone()));
    }
}
