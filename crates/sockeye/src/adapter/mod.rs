//! The adapter seam: where rooms live and where broadcasts fan out.
//!
//! Every namespace owns one [`Adapter`] (an `Arc<dyn Adapter>`, built by the server's
//! [`AdapterFactory`] when the namespace is created). Sockets, operators and the server handle
//! only talk to the namespace's adapter, so a cluster adapter (e.g. Redis, wire-compatible with
//! `@socket.io/redis-adapter`) replaces [`MemoryAdapter`] without any change to handler code:
//! the adapter type never appears in a handler signature.
//!
//! The split follows the JavaScript design:
//! - room membership of *local* sockets is synchronous bookkeeping ([`Adapter::add_all`],
//!   [`Adapter::del`], ...), so `socket.join("r")` needs no `.await` and rooms are still
//!   readable in the disconnect handler;
//! - everything that may involve other nodes returns a boxed future: broadcasts (with or without
//!   acks), fetching, joining, leaving and disconnecting sockets by [`BroadcastOptions`],
//!   server-side emits between nodes and their responses;
//! - connection-state recovery: [`Adapter::supports_recovery`] says whether the adapter keeps
//!   the packet log recovery needs. The in-memory adapter does when the server enables recovery
//!   (it then stamps each broadcast without ack and not volatile with its offset and logs it,
//!   see `docs/server.md`); an adapter that does not leaves recovery off, with a warning at
//!   startup. [`Adapter::persist_session`] and [`Adapter::restore_session`] are for a future
//!   cluster adapter that keeps sessions in its backend: the server does not call them yet.
//!
//! A broadcast reaches the adapter as a [`BroadcastPacket`] (namespace, event, arguments, flags):
//! it can be serialised for other nodes as it is, and [`LocalNamespace::deliver`] encodes it once
//! for every local recipient.

mod memory;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;

pub use memory::MemoryAdapter;

use crate::error::{AckError, AdapterError};
use crate::id::SocketId;
pub use crate::local::LocalNamespace;
use crate::packet::Args;
pub use crate::packet::BroadcastPacket;

/// A boxed, sendable future, as the adapter's methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A room name.
///
/// Every socket is also in the room named after its own id, implicitly: an adapter keeps no
/// bookkeeping for it (it may still appear in [`Adapter::add_all`], e.g. among a recovered
/// session's rooms), treats a room whose name is the id of a local socket as containing that
/// socket (resolve it with [`LocalNamespace::find_socket`]), lists it in
/// [`Adapter::socket_rooms`] and [`Adapter::local_rooms`], and never removes it before the
/// socket disconnects.
pub type Room = String;

/// Who a broadcast or a bulk operation targets.
///
/// This is the `opts` object of the JavaScript adapter (`{rooms, except, flags}`): a cluster
/// adapter sends it to other nodes as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Target these rooms (union, each socket once); empty means the whole namespace.
    pub rooms: Vec<Room>,
    /// Skip sockets in these rooms (a socket id is a room, so this also excludes sockets).
    pub except: Vec<Room>,
    /// Delivery flags.
    pub flags: BroadcastFlags,
}

/// Flags of a broadcast.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BroadcastFlags {
    /// Deliver on this node only; a cluster adapter must not forward it.
    pub local: bool,
    /// The packet may be dropped: a recipient whose outgoing queue is full, or that is still in
    /// its connect step, silently misses it instead of being closed as a slow reader.
    pub volatile: bool,
    /// For broadcasts with acks: how long to wait for every recipient.
    pub timeout: Option<Duration>,
}

/// What a node knows about one socket, as returned by [`Adapter::fetch_sockets`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketInfo {
    /// The socket id.
    pub id: SocketId,
    /// The namespace name.
    pub ns: String,
    /// Its rooms, own id room included.
    pub rooms: Vec<Room>,
    /// True when the socket is connected to this node.
    pub local: bool,
    /// The handshake as the JavaScript server describes it (`headers`, `address`, `xdomain`,
    /// `secure`, `url`, `query`, `auth`), so a cluster adapter can answer fetch requests from
    /// other nodes; `None` when the node that owns the socket sent none.
    pub handshake: Option<serde_json::Value>,
}

/// One recipient's answer to a broadcast with ack: its id and the ack's arguments, or why
/// there is none.
pub type AckResult = (SocketId, Result<Args, AckError>);

/// The per-recipient results of a broadcast with ack, in the order they arrive.
///
/// The stream ends when every recipient answered or timed out; each timed-out recipient
/// yields [`AckError::Timeout`]. Dropping the stream removes every pending ack.
pub struct AckStream {
    inner: Pin<Box<dyn Stream<Item = AckResult> + Send>>,
    expected: usize,
}

impl AckStream {
    /// A stream over `inner`, which yields `expected` items (for [`AckStream::expected`]).
    pub fn new(inner: impl Stream<Item = AckResult> + Send + 'static, expected: usize) -> Self {
        AckStream {
            inner: Box::pin(inner),
            expected,
        }
    }

    /// A stream with no recipients.
    pub fn empty() -> Self {
        AckStream::new(futures_util::stream::empty(), 0)
    }

    /// How many recipients the broadcast reached (the number of items the stream yields).
    pub fn expected(&self) -> usize {
        self.expected
    }

    /// Chains another node's results after these (a cluster adapter merges per-node streams).
    pub fn chain(self, other: AckStream) -> AckStream {
        use futures_util::StreamExt as _;
        let expected = self.expected + other.expected;
        AckStream::new(
            futures_util::stream::select(self.inner, other.inner).fuse(),
            expected,
        )
    }

    /// Waits for every result.
    pub async fn collect_all(self) -> Vec<AckResult> {
        use futures_util::StreamExt as _;
        self.collect().await
    }
}

impl Stream for AckStream {
    type Item = AckResult;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<AckResult>> {
        self.inner.as_mut().poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl std::fmt::Debug for AckStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckStream")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

/// The state of a disconnected socket kept for connection-state recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedSession {
    /// The socket id, restored on reconnect.
    pub id: SocketId,
    /// The private session id the client presents to recover (`pid`).
    pub pid: String,
    /// The namespace name.
    pub ns: String,
    /// The rooms to rejoin.
    pub rooms: Vec<Room>,
}

/// The room and broadcast backend of one namespace. See the module documentation.
///
/// Implementations must be cheap to call from many tasks at once; the synchronous methods are
/// called while a packet is being handled and must not block.
pub trait Adapter: Send + Sync + 'static {
    /// Adds local socket `id` to `rooms` (created on demand). Its own-id room, if listed, is
    /// already implicit and needs no bookkeeping.
    fn add_all(&self, id: &SocketId, rooms: &[Room]);

    /// Removes local socket `id` from `room` (a room is deleted when it empties). Its own-id
    /// room is left alone: a socket is in it until it disconnects.
    fn del(&self, id: &SocketId, room: &str);

    /// Removes local socket `id` from every room; called once when it disconnects, after the
    /// disconnect handler ran.
    fn del_all(&self, id: &SocketId);

    /// The rooms of local socket `id`, sorted, its own-id room included (also while its
    /// disconnect handler runs, when the namespace no longer lists it).
    fn socket_rooms(&self, id: &SocketId) -> Vec<Room>;

    /// The local sockets `opts` targets (each once).
    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketId>;

    /// Every room that has a local member, sorted, the own-id room of every local socket
    /// included (as the JavaScript adapter's `rooms` map, which `allRooms` replies list).
    fn local_rooms(&self) -> Vec<Room>;

    /// Sends `packet` to every socket `opts` targets, here and (unless `opts.flags.local`) on
    /// other nodes.
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Like [`Adapter::broadcast`], each recipient asked to acknowledge within `timeout`.
    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>>;

    /// Every socket `opts` targets, on every node.
    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>>;

    /// Makes every socket `opts` targets join `rooms`, on every node.
    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Makes every socket `opts` targets leave `rooms`, on every node.
    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Disconnects every socket `opts` targets, on every node; `close` also closes their whole
    /// Engine.IO sessions.
    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Sends an event to the *other* nodes' namespace handlers (JS `serverSideEmit`). A
    /// single-node adapter has nobody to tell and succeeds.
    fn server_side_emit(&self, packet: BroadcastPacket) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Like [`Adapter::server_side_emit`], collecting each other node's answer within
    /// `timeout`; a single-node adapter returns an empty stream.
    fn server_side_emit_with_ack(
        &self,
        packet: BroadcastPacket,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>>;

    /// How many nodes share this namespace (1 for a single node).
    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(std::future::ready(Ok(1)))
    }

    /// Keeps a disconnected socket's state for connection-state recovery, in a cluster
    /// backend. Not called by the server yet (single-node recovery lives in the server and the
    /// in-memory adapter, see [`Adapter::supports_recovery`]); the default keeps nothing.
    fn persist_session(&self, session: PersistedSession) -> BoxFuture<'_, ()> {
        drop(session);
        Box::pin(std::future::ready(()))
    }

    /// Looks up a persisted session by its private id and the offset of the last packet the
    /// client saw, returning it with the packets it missed. Not called by the server yet (see
    /// [`Adapter::persist_session`]); the default recovers nothing.
    fn restore_session(
        &self,
        pid: &str,
        offset: &str,
    ) -> BoxFuture<'_, Option<(PersistedSession, Vec<BroadcastPacket>)>> {
        let _ = (pid, offset);
        Box::pin(std::future::ready(None))
    }

    /// True when this adapter stamps and logs what it broadcasts for connection-state recovery
    /// (the in-memory adapter, when recovery is enabled). When recovery is enabled and the
    /// adapter returns false, the server logs a warning at startup and keeps recovery off for
    /// the namespace: its CONNECT replies carry no `pid`, so clients never try to recover.
    fn supports_recovery(&self) -> bool {
        false
    }

    /// Releases the adapter's resources (a cluster adapter unsubscribes); called at shutdown.
    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Builds the adapter of each namespace, given the namespace's local handle.
pub trait AdapterFactory: Send + Sync + 'static {
    /// The adapter for the namespace behind `local`.
    fn create(&self, local: LocalNamespace) -> Arc<dyn Adapter>;
}

impl<F> AdapterFactory for F
where
    F: Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync + 'static,
{
    fn create(&self, local: LocalNamespace) -> Arc<dyn Adapter> {
        self(local)
    }
}

/// The factory of the embedded in-memory adapter, the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryAdapterFactory;

impl AdapterFactory for MemoryAdapterFactory {
    fn create(&self, local: LocalNamespace) -> Arc<dyn Adapter> {
        match local.recovery_log() {
            Some(log) => Arc::new(crate::recovery::RecoveringAdapter::new(
                MemoryAdapter::new(local),
                log,
            )),
            None => Arc::new(MemoryAdapter::new(local)),
        }
    }
}
