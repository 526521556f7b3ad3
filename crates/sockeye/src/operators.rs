//! Broadcast operators: choose recipients with `to`/`except`/flags, then emit.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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

/// Recipients and flags of a broadcast in one namespace. Built by [`crate::SocketIo::of`],
/// [`crate::SocketIo::to`], [`SocketRef::to`]/`except`/`broadcast`; consumed by an emit or a
/// bulk operation.
///
/// Each recipient gets the message once, however many of the target rooms it is in; the
/// packet is encoded once and the same bytes are queued for every local recipient.
///
/// Emits and bulk operations are futures: they go through the namespace's adapter, which for a
/// cluster may have to reach its backend. Awaiting each one before the next keeps their order
/// on every adapter, and a failure is the future's error. The data is serialised when the emit
/// is called, so the future borrows nothing and can be spawned.
#[derive(Clone)]
#[must_use = "an operator does nothing until emit (or another action) is called and awaited"]
pub struct BroadcastOperator {
    ns: Arc<Namespace>,
    opts: BroadcastOptions,
    /// The socket the operator was built from: its inbox learns that its handlers fan out.
    origin: Option<SocketRef>,
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
    pub(crate) fn new(ns: Arc<Namespace>) -> BroadcastOperator {
        BroadcastOperator {
            ns,
            opts: BroadcastOptions::default(),
            origin: None,
        }
    }

    /// Every other socket of `socket`'s namespace (JS `socket.broadcast`).
    pub(crate) fn from_socket(socket: &SocketRef) -> BroadcastOperator {
        BroadcastOperator {
            ns: socket.namespace().clone(),
            opts: BroadcastOptions {
                except: vec![socket.id().as_str().to_owned()],
                ..BroadcastOptions::default()
            },
            origin: Some(socket.clone()),
        }
    }

    /// Every socket of `socket`'s namespace, `socket` included (the
    /// [`crate::extract::Namespace`] extractor's operator): it fans out from `socket` like the
    /// operators of [`BroadcastOperator::from_socket`].
    pub(crate) fn namespace_of(socket: &SocketRef) -> BroadcastOperator {
        BroadcastOperator {
            ns: socket.namespace().clone(),
            opts: BroadcastOptions::default(),
            origin: Some(socket.clone()),
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

    /// The ack timeout of [`BroadcastOperator::emit_with_ack`] (default: the server's
    /// `ack_timeout`).
    pub fn timeout(mut self, timeout: Duration) -> BroadcastOperator {
        self.opts.flags.timeout = Some(timeout);
        self
    }

    /// The options this operator will hand to the adapter.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// Emits `event` with one argument to every recipient; resolves once every local recipient
    /// has it queued and the adapter accepted it for the other nodes.
    pub fn emit<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
    ) -> impl Future<Output = Result<(), EmitError>> + Send + 'static {
        let args = to_args(data);
        let event = Str::from(event);
        async move { self.emit_args(event.as_str(), args?).await }
    }

    /// Sends `data` as a `message` event to every recipient (JavaScript's and
    /// python-socketio's `send`).
    pub fn send<T: Serialize + ?Sized>(
        self,
        data: &T,
    ) -> impl Future<Output = Result<(), EmitError>> + Send + 'static {
        self.emit("message", data)
    }

    /// Emits `event` with `args` to every recipient.
    pub fn emit_args(
        self,
        event: &str,
        args: Args,
    ) -> impl Future<Output = Result<(), EmitError>> + Send + 'static {
        let packet = self.packet(event, args);
        async move {
            let packet = packet?;
            self.note_fan_out();
            let adapter = self.ns.adapter().clone();
            let done = adapter.broadcast(packet, self.opts).await;
            note_adapter(&self.ns, &done, "broadcast");
            done?;
            Ok(())
        }
    }

    /// Emits `event` with one argument, each recipient asked to acknowledge within the
    /// operator's timeout (or the server's default): the stream yields each recipient's
    /// result, on every node.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
    ) -> impl Future<Output = Result<AckStream, EmitError>> + Send + 'static {
        let args = to_args(data);
        let event = Str::from(event);
        async move { self.emit_args_with_ack(event.as_str(), args?).await }
    }

    /// Like [`BroadcastOperator::emit_with_ack`] with raw arguments.
    pub fn emit_args_with_ack(
        self,
        event: &str,
        args: Args,
    ) -> impl Future<Output = Result<AckStream, EmitError>> + Send + 'static {
        let packet = self.packet(event, args);
        async move {
            let packet = packet?;
            self.note_fan_out();
            let timeout = self
                .opts
                .flags
                .timeout
                .unwrap_or(self.ns.config.ack_timeout);
            let adapter = self.ns.adapter().clone();
            let done = adapter.broadcast_with_ack(packet, self.opts, timeout).await;
            note_adapter(&self.ns, &done, "broadcast_with_ack");
            Ok(done?)
        }
    }

    /// The sockets this operator targets on this node.
    pub fn sockets(&self) -> Vec<SocketRef> {
        self.ns.get_many(&self.ns.targets(&self.opts))
    }

    /// Every socket this operator targets, on every node.
    pub async fn fetch_sockets(self) -> Result<Vec<SocketInfo>, AdapterError> {
        let done = self.ns.adapter().fetch_sockets(self.opts).await;
        note_adapter(&self.ns, &done, "fetch_sockets");
        done
    }

    /// Makes every targeted socket join `rooms`, on every node.
    pub async fn join(self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        let done = self
            .ns
            .adapter()
            .add_sockets(self.opts, rooms.into_rooms())
            .await;
        note_adapter(&self.ns, &done, "add_sockets");
        done
    }

    /// Makes every targeted socket leave `rooms`, on every node.
    pub async fn leave(self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        let done = self
            .ns
            .adapter()
            .del_sockets(self.opts, rooms.into_rooms())
            .await;
        note_adapter(&self.ns, &done, "del_sockets");
        done
    }

    /// Disconnects every targeted socket from the namespace, on every node (each gets
    /// DISCONNECT and its disconnect handler runs with `ServerDisconnect`).
    pub async fn disconnect(self) -> Result<(), AdapterError> {
        let done = self.ns.adapter().disconnect_sockets(self.opts, false).await;
        note_adapter(&self.ns, &done, "disconnect_sockets");
        done
    }

    /// Like [`BroadcastOperator::disconnect`]; `close` also closes each client's whole
    /// connection (every namespace), as the JavaScript `disconnectSockets(true)`.
    #[cfg(feature = "admin")]
    pub(crate) async fn disconnect_closing(self, close: bool) -> Result<(), AdapterError> {
        let done = self.ns.adapter().disconnect_sockets(self.opts, close).await;
        note_adapter(&self.ns, &done, "disconnect_sockets");
        done
    }

    fn packet(&self, event: &str, args: Args) -> Result<BroadcastPacket, EmitError> {
        reserved::check(event)?;
        Ok(BroadcastPacket::new(
            self.ns.name.clone(),
            Str::from(event),
            args,
        ))
    }

    /// A socket whose handler broadcasts runs its later events in a task of its own (see
    /// `docs/server.md`, "Where a socket's events run").
    fn note_fan_out(&self) {
        if let Some(origin) = &self.origin {
            origin.inbox().mark_fans_out();
        }
    }
}

fn to_args<T: Serialize + ?Sized>(data: &T) -> Result<Args, EmitError> {
    Args::from_value(data).map_err(|e| EmitError::Serialize(e.to_string()))
}

/// Tells the observer, if any, that an adapter operation of `ns` failed.
fn note_adapter<T>(ns: &Namespace, done: &Result<T, AdapterError>, operation: &'static str) {
    if done.is_err()
        && let Some(hooks) = ns.config.hooks.get()
    {
        hooks.adapter_failed(ns.name.as_str(), operation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeConn, connected, root_namespace};

    /// The inline-drain rule (docs/server.md, "Where a socket's events run"): an emit through
    /// an operator built from a socket marks that socket as fanning out; one built from the
    /// namespace alone marks nobody.
    #[tokio::test]
    async fn operators_built_from_a_socket_mark_it_as_fanning_out() {
        let ns = root_namespace();
        let marked = |op: fn(&SocketRef) -> BroadcastOperator| {
            let socket = connected(&ns, FakeConn::new(0));
            let emit = op(&socket).emit("ev", &1);
            (socket, emit)
        };
        for op in [
            (|s: &SocketRef| s.broadcast()) as fn(&SocketRef) -> BroadcastOperator,
            |s| s.to("room"),
            |s| s.within("room"),
            |s| s.except("room"),
            |s| s.namespace_operator(),
        ] {
            let (socket, emit) = marked(op);
            assert!(!socket.inbox().fans_out(), "not before the emit runs");
            emit.await.unwrap();
            assert!(socket.inbox().fans_out());
        }
        let bystander = connected(&ns, FakeConn::new(0));
        BroadcastOperator::new(ns.clone())
            .emit("ev", &1)
            .await
            .unwrap();
        assert!(
            !bystander.inbox().fans_out(),
            "a namespace operator marks nobody"
        );
    }
}
