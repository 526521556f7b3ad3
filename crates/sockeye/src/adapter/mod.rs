//! The adapter seam: how a namespace's broadcasts, bulk operations and recovered sessions reach
//! the rest of a cluster.
//!
//! Two halves, kept apart:
//! - **local bookkeeping** is the server's own and synchronous: which local socket is in which
//!   room, encoding a packet once and queueing it for each local recipient. An adapter reaches
//!   it through its [`LocalNamespace`] and never stores rooms itself;
//! - **cluster operations** are the adapter's, and asynchronous: every method of [`Adapter`]
//!   returns a future, which the server awaits before it reports the outcome to the caller.
//!
//! The contract every adapter keeps (the full text, for third-party implementers, is in
//! `docs/architecture.md`; `sockeye-testkit`'s adapter suite checks it):
//! - **Work happens when the future is polled.** The server awaits each call before it makes
//!   the next one for the same caller, so two emits awaited one after the other reach every
//!   recipient in that order, whatever the backend waits for. An adapter must not reorder
//!   calls it received in sequence (e.g. publishing them over two connections).
//! - **Exactly once.** A broadcast reaches each targeted socket once, however many target rooms
//!   it is in and whichever node it is on; a node never delivers its own broadcast twice (its
//!   local part is delivered through [`LocalNamespace::deliver`], and the copy the backend
//!   echoes back must be recognised and skipped).
//! - **Failures are returned.** When the backend refuses or cannot take an operation, the
//!   future resolves to an [`AdapterError`] that says what was done locally (so the
//!   application can retry the rest); the server hands it to the caller as
//!   [`crate::EmitError::Adapter`].
//! - **Recovery goes through the adapter.** When [`Adapter::supports_recovery`] is true and the
//!   server enables connection-state recovery, the adapter stamps each broadcast that has no
//!   ack and is not volatile with an offset ([`BroadcastPacket::offset`]) before it delivers it,
//!   keeps the packets it stamped, stores sessions ([`Adapter::persist_session`]) and gives them
//!   back once ([`Adapter::take_session`], [`Adapter::missed_packets`]).
//! - **Bad input from the backend is dropped, counted and logged**, never a panic: broker
//!   messages are untrusted.
//!
//! A broadcast reaches the adapter as a [`BroadcastPacket`] (namespace, event, arguments) and
//! [`BroadcastOptions`] (rooms, except, flags): both can be serialised for other nodes as they
//! are, and [`LocalNamespace::deliver`] encodes the packet once for every local recipient.

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
pub use crate::session::SessionData;

/// A boxed, sendable future, as the adapter's methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A room name.
///
/// Every socket is also in the room named after its own id, implicitly: a broadcast to that
/// room reaches the socket, and listings ([`LocalNamespace::socket_rooms`],
/// [`LocalNamespace::rooms`]) include it, as the JavaScript adapter does.
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
    /// The packet may be dropped: a recipient whose outgoing queue is not empty, or that is
    /// still in its connect step, silently misses it instead of queueing it.
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
    /// The socket's session value as JSON (the JavaScript server's `socket.data`); `None` when
    /// it has none or it cannot be serialised.
    pub data: Option<serde_json::Value>,
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

    /// Merges another node's results with these (a cluster adapter merges per-node streams).
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

/// The state of a socket kept for connection-state recovery: what a client that comes back
/// with its `pid` gets back.
#[derive(Debug)]
pub struct PersistedSession {
    /// The socket id, restored on reconnect.
    pub id: SocketId,
    /// The private session id the client presents to recover (`pid`). It authorises recovery:
    /// an adapter stores it as a key and never shows it to anyone else.
    pub pid: String,
    /// The namespace name.
    pub ns: String,
    /// The rooms to rejoin, own-id room included.
    pub rooms: Vec<Room>,
    /// The session value, if the socket had one.
    pub data: Option<SessionData>,
}

/// The cluster half of a namespace: broadcasts and bulk operations across nodes, and where
/// connection-state recovery keeps its sessions and packets. See the module documentation for
/// the contract.
///
/// Every namespace owns one adapter, built by the server's [`AdapterFactory`] when the
/// namespace is created; handler code never names the adapter type. [`MemoryAdapter`] is the
/// single-node implementation and the reference for the others.
pub trait Adapter: Send + Sync + 'static {
    /// Sends `packet` to every socket `opts` targets: this node's through
    /// [`LocalNamespace::deliver`], other nodes' (unless `opts.flags.local`) through the
    /// backend. Resolves once the local part is queued and the backend accepted the rest.
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Like [`Adapter::broadcast`], each recipient asked to acknowledge within `timeout`: the
    /// stream yields every recipient's answer, on every node, and ends at the timeout.
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

    /// Sends an event to the *other* nodes' namespace handlers (JS `serverSideEmit`), which
    /// receive it through [`LocalNamespace::server_event`]. A single-node adapter has nobody
    /// to tell and succeeds.
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

    /// True when this adapter implements connection-state recovery: it stamps broadcasts with
    /// offsets and keeps them, and stores sessions. When the server enables recovery and this
    /// is false, recovery stays off for the namespace (CONNECT replies carry no `pid`, so
    /// clients never try) and the server logs a warning.
    fn supports_recovery(&self) -> bool {
        false
    }

    /// Keeps the state of a socket that left for a transport reason, for
    /// `max_disconnection_duration` (from [`LocalNamespace::recovery_config`]).
    fn persist_session(
        &self,
        session: PersistedSession,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        drop(session);
        Box::pin(std::future::ready(Err(AdapterError::new(
            "this adapter does not keep sessions for connection-state recovery",
        ))))
    }

    /// A connected socket's recoverable state changed: it finished connecting (or was
    /// recovered), joined or left a room, or saved its session value. Called only when the
    /// server recovers sessions, synchronously and often (every join): an adapter that keeps
    /// sessions of live sockets (so that another node can restore them if this one dies)
    /// queues the write and returns at once; the default ignores it.
    fn session_changed(&self, session: PersistedSession) {
        drop(session);
    }

    /// A socket whose state was reported by [`Adapter::session_changed`] left for good (not
    /// for a transport reason, or its connect step was refused): any live copy kept under
    /// `pid` must go, so that the pid cannot restore it. A socket that leaves for a transport
    /// reason is handed to [`Adapter::persist_session`] instead.
    fn session_ended(&self, pid: &str) {
        let _ = pid;
    }

    /// Takes the session kept under `pid`, if there is one: it is used up, so a second call
    /// (a reused or replayed `pid`) finds nothing.
    fn take_session(
        &self,
        pid: &str,
    ) -> BoxFuture<'_, Result<Option<PersistedSession>, AdapterError>> {
        let _ = pid;
        Box::pin(std::future::ready(Ok(None)))
    }

    /// The packets stamped after `offset` that `session` would have received (a target room
    /// among its rooms or no target room, and no excluded room among its rooms), oldest first,
    /// each with its offset. `None` when they cannot all be given: `offset` was never handed
    /// out by this cluster (forged, or from the future), or packets after it are gone from the
    /// log. The server then gives the client a fresh session: never a partial replay.
    fn missed_packets<'a>(
        &'a self,
        session: &'a PersistedSession,
        offset: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<BroadcastPacket>>, AdapterError>> {
        let _ = (session, offset);
        Box::pin(std::future::ready(Ok(None)))
    }

    /// True when the adapter wants [`Adapter::room_created`] and [`Adapter::room_deleted`]
    /// (asked once, when the namespace is created); the default is false, and the namespace
    /// then does no extra work when sockets join and leave.
    fn wants_room_events(&self) -> bool {
        false
    }

    /// A room got its first local member: an explicit room (`own_id` false) that a socket
    /// joined, or the own-id room of a socket that entered the namespace (`own_id` true).
    /// Called only when [`Adapter::wants_room_events`] is true, synchronously, after the
    /// namespace's locks are released: an adapter that subscribes per room (the sharded Redis
    /// adapter's dynamic modes) queues the subscription and returns at once.
    fn room_created(&self, room: &str, own_id: bool) {
        let _ = (room, own_id);
    }

    /// A room lost its last local member (explicit room), or the socket of an own-id room left
    /// the namespace (`own_id` true); see [`Adapter::room_created`].
    fn room_deleted(&self, room: &str, own_id: bool) {
        let _ = (room, own_id);
    }

    /// Releases the adapter's resources (a cluster adapter unsubscribes and closes its
    /// connections); called when the server closes. Later calls may fail.
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
        Arc::new(MemoryAdapter::new(local))
    }
}
