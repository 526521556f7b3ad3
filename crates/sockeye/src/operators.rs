//! Broadcast operators: choose recipients with `to`/`except`/flags, then emit.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use serde::Serialize;
use sockeye_protocol::socketio::Str;

use crate::adapter::{AckStream, BroadcastOptions, BroadcastPacket, Room, SocketInfo};
use crate::error::{AdapterError, EmitError};
use crate::id::SocketId;
use crate::ns::Namespace;
use crate::packet::Args;
use crate::reserved;
use crate::socket::SocketRef;

/// One or several rooms (a socket id names that socket's own room).
pub trait IntoRooms {
    /// The room names.
    fn into_rooms(self) -> Vec<Room>;
}

impl IntoRooms for &str {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.to_owned()]
    }
}
impl IntoRooms for String {
    fn into_rooms(self) -> Vec<Room> {
        vec![self]
    }
}
impl IntoRooms for &String {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.clone()]
    }
}
impl IntoRooms for &SocketId {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.as_str().to_owned()]
    }
}
impl IntoRooms for SocketId {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.as_str().to_owned()]
    }
}
impl<T: IntoRooms> IntoRooms for Vec<T> {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}
impl<T: IntoRooms, const N: usize> IntoRooms for [T; N] {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}
impl<T: IntoRooms + Clone> IntoRooms for &[T] {
    fn into_rooms(self) -> Vec<Room> {
        self.iter()
            .cloned()
            .flat_map(IntoRooms::into_rooms)
            .collect()
    }
}

/// Recipients and flags of a broadcast in one namespace. Built by `SocketIo::of`,
/// `SocketRef::to`/`except`/`broadcast`; consumed by an emit.
///
/// Each recipient gets the message once, however many of the target rooms it is in; the
/// packet is encoded once and the same bytes are queued for every local recipient.
#[derive(Clone)]
#[must_use = "an operator does nothing until emit (or another action) is called"]
pub struct BroadcastOperator {
    ns: Arc<Namespace>,
    opts: BroadcastOptions,
    default_timeout: Duration,
}

impl std::fmt::Debug for BroadcastOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastOperator")
            .field("ns", &self.ns.name.as_str())
            .field("opts", &self.opts)
            .finish()
    }
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Arc<Namespace>, default_timeout: Duration) -> BroadcastOperator {
        BroadcastOperator {
            ns,
            opts: BroadcastOptions::default(),
            default_timeout,
        }
    }

    /// Adds target rooms (union with the rooms already targeted).
    pub fn to(mut self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.opts.rooms.extend(rooms.into_rooms());
        self
    }

    /// Same as [`BroadcastOperator::to`].
    pub fn within(self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// Excludes the sockets in `rooms` (or the sockets with these ids).
    pub fn except(mut self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.opts.except.extend(rooms.into_rooms());
        self
    }

    /// Only this node's sockets (a cluster adapter does not forward the packet).
    pub fn local(mut self) -> BroadcastOperator {
        self.opts.flags.local = true;
        self
    }

    /// The packet may be dropped for recipients that are not ready for it (still connecting,
    /// or with frames already waiting) instead of being queued.
    pub fn volatile(mut self) -> BroadcastOperator {
        self.opts.flags.volatile = true;
        self
    }

    /// The ack timeout of [`BroadcastOperator::emit_with_ack`].
    pub fn timeout(mut self, timeout: Duration) -> BroadcastOperator {
        self.opts.flags.timeout = Some(timeout);
        self
    }

    /// The options this operator will hand to the adapter.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// Emits `event` with one argument to every recipient.
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, data: &T) -> Result<(), EmitError> {
        let args = Args::from_value(data).map_err(|e| EmitError::Serialize(e.to_string()))?;
        self.emit_args(event, args)
    }

    /// Sends `data` as a `message` event to every recipient (JavaScript's and
    /// python-socketio's `send`).
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        self.emit("message", data)
    }

    /// Emits `event` with `args` to every recipient.
    ///
    /// With the in-memory adapter the packet is queued for every local recipient before this
    /// returns. A cluster adapter that must wait for its backend finishes in a background task,
    /// whose failure is logged.
    pub fn emit_args(self, event: &str, args: Args) -> Result<(), EmitError> {
        reserved::check(event)?;
        let packet = self.packet(event, args);
        let adapter = self.ns.adapter().clone();
        let opts = self.opts;
        let mut fut = Box::pin(async move { adapter.broadcast(packet, opts).await });
        match (&mut fut).now_or_never() {
            Some(result) => result.map_err(EmitError::from),
            None => {
                tokio::spawn(async move {
                    if let Err(e) = fut.await {
                        tracing::error!(error = %e, "broadcast failed in the adapter");
                    }
                });
                Ok(())
            }
        }
    }

    /// Emits `event` with one argument, each recipient asked to acknowledge within the
    /// operator's timeout (or the server's default): yields each recipient's result.
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
    ) -> Result<AckStream, EmitError> {
        let args = Args::from_value(data).map_err(|e| EmitError::Serialize(e.to_string()))?;
        self.emit_args_with_ack(event, args).await
    }

    /// Like [`BroadcastOperator::emit_with_ack`] with raw arguments.
    pub async fn emit_args_with_ack(self, event: &str, args: Args) -> Result<AckStream, EmitError> {
        reserved::check(event)?;
        let timeout = self.opts.flags.timeout.unwrap_or(self.default_timeout);
        let packet = self.packet(event, args);
        let stream = self
            .ns
            .adapter()
            .broadcast_with_ack(packet, self.opts, timeout)
            .await?;
        Ok(stream)
    }

    /// The local sockets this operator targets.
    pub fn sockets(&self) -> Vec<SocketRef> {
        self.ns
            .get_many(&self.ns.adapter().local_sockets(&self.opts))
    }

    /// Every socket this operator targets, on every node.
    pub async fn fetch_sockets(self) -> Result<Vec<SocketInfo>, AdapterError> {
        self.ns.adapter().fetch_sockets(self.opts).await
    }

    /// Makes every targeted socket join `rooms`.
    pub async fn join(self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.ns
            .adapter()
            .add_sockets(self.opts, rooms.into_rooms())
            .await
    }

    /// Makes every targeted socket leave `rooms`.
    pub async fn leave(self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.ns
            .adapter()
            .del_sockets(self.opts, rooms.into_rooms())
            .await
    }

    /// Disconnects every targeted socket from the namespace (each gets DISCONNECT and its
    /// disconnect handler runs with `ServerDisconnect`).
    pub async fn disconnect(self) -> Result<(), AdapterError> {
        self.ns.adapter().disconnect_sockets(self.opts, false).await
    }

    fn packet(&self, event: &str, args: Args) -> BroadcastPacket {
        BroadcastPacket {
            ns: self.ns.name.clone(),
            event: Str::from(event),
            args,
        }
    }
}
