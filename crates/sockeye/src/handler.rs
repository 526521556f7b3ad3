//! Handler traits: stored once per namespace as `Arc<dyn ...>`, implemented for async closures.
//!
//! The traits are object-safe and public so that other crates (e.g. `sockeye-axum`, with
//! extractor-based handler functions) can implement them for their own wrapper types.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde_json::Value;

use crate::error::ConnectionRefusedError;
use crate::event::Event;
use crate::packet::Args;
use crate::reason::DisconnectReason;
use crate::socket::SocketRef;

/// A boxed, sendable, `'static` future, as handlers return.
pub type HandlerFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What an event handler's return value does when the client asked for an ack.
#[derive(Debug, Clone, Default)]
pub enum Reply {
    /// Acknowledge with these arguments.
    Ack(Args),
    /// Acknowledge with no arguments (`43<id>[]`), python-socketio's behaviour for a handler
    /// that returns nothing.
    #[default]
    Empty,
    /// Send no ack (the client's callback never runs, or times out).
    None,
}

/// Converts a handler's return value into a [`Reply`].
///
/// - `()` acknowledges with no arguments;
/// - [`Args`] acknowledges with exactly those arguments (variadic replies, echoes);
/// - [`AckValue`] acknowledges with one serialisable argument;
/// - [`NoAck`] sends no ack;
/// - `Result<T, E>`: `Ok(t)` replies as `t`; `Err(e)` is logged and sends no ack.
pub trait IntoReply {
    /// The reply to send.
    fn into_reply(self) -> Reply;
}

impl IntoReply for () {
    fn into_reply(self) -> Reply {
        Reply::Empty
    }
}

impl IntoReply for Reply {
    fn into_reply(self) -> Reply {
        self
    }
}

impl IntoReply for Args {
    fn into_reply(self) -> Reply {
        Reply::Ack(self)
    }
}

/// Sends no ack, even when the client asked for one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAck;

impl IntoReply for NoAck {
    fn into_reply(self) -> Reply {
        Reply::None
    }
}

/// Acknowledges with one argument: `value` serialised (binary parts become attachments).
#[derive(Debug, Clone)]
pub struct AckValue<T>(pub T);

impl<T: Serialize> IntoReply for AckValue<T> {
    fn into_reply(self) -> Reply {
        match Args::from_value(&self.0) {
            Ok(args) => Reply::Ack(args),
            Err(e) => {
                tracing::error!(error = %e, "ack value is not serialisable: no ack sent");
                Reply::None
            }
        }
    }
}

impl IntoReply for Value {
    fn into_reply(self) -> Reply {
        AckValue(self).into_reply()
    }
}

impl<T: IntoReply, E: std::fmt::Display> IntoReply for Result<T, E> {
    fn into_reply(self) -> Reply {
        match self {
            Ok(v) => v.into_reply(),
            Err(e) => {
                tracing::warn!(error = %e, "event handler failed: no ack sent");
                Reply::None
            }
        }
    }
}

/// Handles one event of a namespace.
pub trait EventHandler: Send + Sync + 'static {
    /// Runs the handler; the reply becomes the ack when the client asked for one and the
    /// handler did not take the explicit ack handle ([`Event::take_ack`]).
    fn call(&self, socket: SocketRef, event: Event) -> HandlerFuture<Reply>;
}

impl<F, Fut, R> EventHandler for F
where
    F: Fn(SocketRef, Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply + 'static,
{
    fn call(&self, socket: SocketRef, event: Event) -> HandlerFuture<Reply> {
        let fut = self(socket, event);
        Box::pin(async move { fut.await.into_reply() })
    }
}

/// The result of a connect step: accept, or refuse with CONNECT_ERROR.
pub type ConnectResult = Result<(), ConnectionRefusedError>;

/// Converts a connect handler's return value into a [`ConnectResult`].
pub trait IntoConnectResult {
    /// Accept (`Ok`) or refuse (`Err`).
    fn into_connect_result(self) -> ConnectResult;
}

impl IntoConnectResult for () {
    fn into_connect_result(self) -> ConnectResult {
        Ok(())
    }
}

impl<E: Into<ConnectionRefusedError>> IntoConnectResult for Result<(), E> {
    fn into_connect_result(self) -> ConnectResult {
        self.map_err(Into::into)
    }
}

/// The connect handler of a namespace: sees the socket (with its handshake: auth, headers,
/// query, remote address) and the auth payload, and accepts or refuses.
///
/// It runs before the CONNECT reply is sent; packets the socket emits meanwhile are held back
/// and sent right after the reply, so the client sees `40...` first.
pub trait ConnectHandler: Send + Sync + 'static {
    /// Runs the handler. `auth` is the CONNECT payload, `None` when the client sent none.
    fn call(&self, socket: SocketRef, auth: Option<Value>) -> HandlerFuture<ConnectResult>;
}

impl<F, Fut, R> ConnectHandler for F
where
    F: Fn(SocketRef, Option<Value>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoConnectResult + 'static,
{
    fn call(&self, socket: SocketRef, auth: Option<Value>) -> HandlerFuture<ConnectResult> {
        let fut = self(socket, auth);
        Box::pin(async move { fut.await.into_connect_result() })
    }
}

/// A connect middleware: runs before the connect handler, in registration order, and can
/// refuse the connection the same way.
pub trait ConnectMiddleware: Send + Sync + 'static {
    /// Runs the middleware. The auth payload is `socket.handshake().auth`.
    fn call(&self, socket: SocketRef) -> HandlerFuture<ConnectResult>;
}

impl<F, Fut, R> ConnectMiddleware for F
where
    F: Fn(SocketRef) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoConnectResult + 'static,
{
    fn call(&self, socket: SocketRef) -> HandlerFuture<ConnectResult> {
        let fut = self(socket);
        Box::pin(async move { fut.await.into_connect_result() })
    }
}

/// Why an event middleware stopped an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event rejected by middleware: {0}")]
pub struct EventRejected(pub String);

/// A per-event middleware (`socket.use` in JavaScript): runs before the event's handler, in
/// registration order; it can inspect or rewrite the event, or reject it (the event is then
/// dropped and no ack is sent).
pub trait EventMiddleware: Send + Sync + 'static {
    /// Runs the middleware on `event`, passing it on (possibly changed) or rejecting it.
    fn call(&self, socket: SocketRef, event: Event) -> HandlerFuture<Result<Event, EventRejected>>;
}

impl<F, Fut> EventMiddleware for F
where
    F: Fn(SocketRef, Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Event, EventRejected>> + Send + 'static,
{
    fn call(&self, socket: SocketRef, event: Event) -> HandlerFuture<Result<Event, EventRejected>> {
        Box::pin(self(socket, event))
    }
}

/// The disconnect handler of a namespace. The socket's rooms, session and extensions are
/// still readable while it runs; they are dropped right after.
pub trait DisconnectHandler: Send + Sync + 'static {
    /// Runs the handler.
    fn call(&self, socket: SocketRef, reason: DisconnectReason) -> HandlerFuture<()>;
}

impl<F, Fut> DisconnectHandler for F
where
    F: Fn(SocketRef, DisconnectReason) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn call(&self, socket: SocketRef, reason: DisconnectReason) -> HandlerFuture<()> {
        Box::pin(self(socket, reason))
    }
}
