//! Class-style handlers: one struct groups a namespace's handlers and their shared fields
//! (python-socketio's `Namespace` classes, the Rust way).

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use super::{ConnectResult, ErasedConnect, ErasedDisconnect, ErasedEvent, HandlerFuture};
use crate::event::Event;
use crate::extract::{ConnectContext, DisconnectContext, EventContext};
use crate::reason::DisconnectReason;
use crate::reply::Reply;
use crate::socket::SocketRef;

/// A namespace's handlers as methods of one type, registered with
/// [`crate::SocketIo::ns_class`].
///
/// Where python-socketio finds `on_<event>` methods by name at run time, Rust dispatches with
/// a `match` on the event name in [`NamespaceHandler::on_event`]: the compiler then sees every
/// event the namespace handles. Every method has a default (accept; no handler, so no ack; do
/// nothing), so a type implements only what it needs. The struct's fields are the namespace's
/// shared state (no `State<T>` needed).
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use sockeye::prelude::*;
/// use sockeye::{Event, Reply, NamespaceHandler};
///
/// #[derive(Default)]
/// struct Counter { hits: AtomicUsize }
///
/// impl NamespaceHandler for Counter {
///     async fn on_event(&self, _socket: SocketRef, event: Event) -> Reply {
///         match event.name.as_str() {
///             "hit" => Json(self.hits.fetch_add(1, Ordering::Relaxed) + 1).into_ack(),
///             _ => Reply::None,
///         }
///     }
/// }
///
/// let io = SocketIo::builder().build();
/// let _ = io.ns_class("/counter", Counter::default());
/// ```
pub trait NamespaceHandler: Send + Sync + 'static {
    /// A socket connects: accept (`Ok`) or refuse. `auth` is the CONNECT payload.
    fn on_connect(
        &self,
        socket: SocketRef,
        auth: Option<Value>,
    ) -> impl Future<Output = ConnectResult> + Send {
        let _ = (socket, auth);
        async { Ok(()) }
    }

    /// One event (any name); the returned [`Reply`] is the ack, when the client asked for one.
    /// Build it with [`crate::IntoAck::into_ack`].
    fn on_event(&self, socket: SocketRef, event: Event) -> impl Future<Output = Reply> + Send {
        let _ = (socket, event);
        async { Reply::None }
    }

    /// A socket left (its rooms and session are still readable).
    fn on_disconnect(
        &self,
        socket: SocketRef,
        reason: DisconnectReason,
    ) -> impl Future<Output = ()> + Send {
        let _ = (socket, reason);
        async {}
    }
}

/// A [`NamespaceHandler`] seen as the namespace's three handlers.
pub(crate) struct Class<N>(pub(crate) Arc<N>);

impl<N: NamespaceHandler> ErasedConnect for Class<N> {
    fn call(&self, cx: ConnectContext) -> HandlerFuture<ConnectResult> {
        let this = self.0.clone();
        let socket = cx.socket().clone();
        let auth = cx.auth().cloned();
        Box::pin(async move { this.on_connect(socket, auth).await })
    }
}

impl<N: NamespaceHandler> ErasedEvent for Class<N> {
    fn call(&self, cx: EventContext) -> HandlerFuture<()> {
        let this = self.0.clone();
        let socket = cx.socket().clone();
        let event = cx.event();
        Box::pin(async move { cx.finish(this.on_event(socket, event).await) })
    }
}

impl<N: NamespaceHandler> ErasedDisconnect for Class<N> {
    fn call(&self, cx: DisconnectContext) -> HandlerFuture<()> {
        let this = self.0.clone();
        let socket = cx.socket().clone();
        let reason = cx.reason();
        Box::pin(async move { this.on_disconnect(socket, reason).await })
    }
}
