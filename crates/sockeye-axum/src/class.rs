//! Class-style handlers: one struct groups a namespace's handlers and their shared fields
//! (python-socketio's `Namespace` classes, the Rust way).

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use sockeye::{ConnectResult, DisconnectReason, Event, HandlerFuture, Reply, SocketRef};

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
/// use sockeye_axum::prelude::*;
/// use sockeye_axum::{Event, Reply, NamespaceHandler};
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

pub(crate) struct ClassConnect<N>(pub(crate) Arc<N>);
pub(crate) struct ClassEvent<N>(pub(crate) Arc<N>);
pub(crate) struct ClassDisconnect<N>(pub(crate) Arc<N>);

impl<N: NamespaceHandler> sockeye::ConnectHandler for ClassConnect<N> {
    fn call(&self, socket: SocketRef, auth: Option<Value>) -> HandlerFuture<ConnectResult> {
        let this = self.0.clone();
        Box::pin(async move { this.on_connect(socket, auth).await })
    }
}

impl<N: NamespaceHandler> sockeye::EventHandler for ClassEvent<N> {
    fn call(&self, socket: SocketRef, event: Event) -> HandlerFuture<Reply> {
        let this = self.0.clone();
        Box::pin(async move { this.on_event(socket, event).await })
    }
}

impl<N: NamespaceHandler> sockeye::DisconnectHandler for ClassDisconnect<N> {
    fn call(&self, socket: SocketRef, reason: DisconnectReason) -> HandlerFuture<()> {
        let this = self.0.clone();
        Box::pin(async move { this.on_disconnect(socket, reason).await })
    }
}
