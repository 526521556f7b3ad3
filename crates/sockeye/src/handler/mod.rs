//! Handlers: async (or plain) functions whose arguments are extractors, as in axum.
//!
//! A handler is any `Fn` of up to 16 arguments, each implementing the extractor trait of its
//! kind ([`crate::extract::FromConnectParts`], [`crate::extract::FromEventParts`],
//! [`crate::extract::FromDisconnectParts`]). A closure is a handler like any other:
//! `|socket: SocketRef, Data(text): Data<String>| async move { .. }`.
//!
//! - a **connect handler** (and a connect middleware) returns `()` or
//!   `Result<_, E>` with `E: Into<ConnectionRefusedError>`: `Err` refuses the connection, and
//!   the client receives the refusal's message and data;
//! - an **event handler** returns anything [`IntoAck`]: that value is the ack, when the
//!   client asked for one;
//! - a **disconnect handler** returns `()`.
//!
//! The `T` parameter of the traits only tells the implementations apart (sync or async,
//! argument types); users never name it. The server stores each handler once, type-erased, and
//! shares it between every socket of the namespace.

pub(crate) mod class;

use std::future::{Future, ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::error::{ConnectionRefusedError, RegisterError};
use crate::event::Event;
use crate::extract::{
    ConnectContext, DisconnectContext, EventContext, FromConnectParts, FromDisconnectParts,
    FromEventParts, Registration,
};
use crate::reply::IntoAck;
use crate::socket::SocketRef;

/// A boxed, sendable, `'static` future, as handlers return.
pub type HandlerFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The finished future of a plain-function handler: zero-sized, so boxing it allocates
/// nothing (a plain `fn` echo handler then costs no allocation per event).
struct Done;

impl Future for Done {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

/// The outcome of a connect step: accept, or refuse with CONNECT_ERROR.
pub type ConnectResult = Result<(), ConnectionRefusedError>;

/// What a connect handler may return: `()` accepts, `Result<_, E>` accepts or refuses.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a connect handler's result",
    note = "a connect handler returns `()` or `Result<_, E>` where `E: Into<ConnectionRefusedError>`"
)]
pub trait IntoConnectResult {
    /// Accept (`Ok`) or refuse (`Err`).
    fn into_connect_result(self) -> ConnectResult;
}

impl IntoConnectResult for () {
    fn into_connect_result(self) -> ConnectResult {
        Ok(())
    }
}

impl<T, E: Into<ConnectionRefusedError>> IntoConnectResult for Result<T, E> {
    fn into_connect_result(self) -> ConnectResult {
        self.map(drop).map_err(Into::into)
    }
}

/// Markers telling async and plain-function handlers apart.
#[doc(hidden)]
pub mod marker {
    /// The handler is an `async fn` (or a closure returning a future).
    #[derive(Debug)]
    pub struct Async;
    /// The handler is a plain `fn`, run to completion on the socket's task.
    #[derive(Debug)]
    pub struct Sync;
}

/// A connect handler (or connect middleware): an async or plain function whose arguments are
/// connect extractors, returning `()` or `Result<_, E>` with `E: Into<ConnectionRefusedError>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid sockeye connect handler",
    label = "not a connect handler",
    note = "a connect handler is an async or plain fn of up to 16 arguments, each a connect extractor (SocketRef, Auth<T>, State<T>, Extension<T>, Query<T>, HeaderMap, Cookies, RemoteAddr, SocketIo, ...), returning `()` or `Result<_, E>` with `E: Into<ConnectionRefusedError>`",
    note = "`Option<X>` is an extractor only where X can be absent (Auth, Session, Extension, HttpExtension, RemoteAddr); socket handlers take sockeye's `State`, not axum's (see the guide's axum page)"
)]
pub trait ConnectHandler<T>: Send + Sync + 'static {
    /// Extracts the arguments and runs the function.
    fn call(&self, cx: ConnectContext) -> HandlerFuture<ConnectResult>;

    /// Checks, when the handler is registered, that every argument can ever be extracted (a
    /// `State<T>` needs a state of type `T`).
    fn check(&self, registration: &Registration<'_>) -> Result<(), RegisterError>;
}

/// An event handler: an async or plain function whose arguments are event extractors,
/// returning anything [`IntoAck`] (its return value is the ack).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid sockeye event handler",
    label = "not an event handler",
    note = "an event handler is an async or plain fn of up to 16 arguments, each an event extractor (SocketRef, Data<T>, TryData<T>, Bin, Event, EventName, AckSender, Session<T>, State<T>, Extension<T>, SocketIo, ...), returning a value that implements `IntoAck` (its ack)",
    note = "the event's data is `Data<T>`, not a bare `T`; `Option<X>` is an extractor only where X can be absent (Auth, Session, Extension, HttpExtension, AckSender, Data, RemoteAddr); `DisconnectReason` exists only in disconnect handlers; socket handlers take sockeye's `State`, not axum's (see the guide's axum page)"
)]
pub trait EventHandler<T>: Send + Sync + 'static {
    /// Extracts the arguments, runs the function and sends its ack.
    fn call(&self, cx: EventContext) -> HandlerFuture<()>;

    /// Checks, when the handler is registered, that every argument can ever be extracted.
    fn check(&self, registration: &Registration<'_>) -> Result<(), RegisterError>;
}

/// A disconnect handler: an async or plain function whose arguments are disconnect
/// extractors, returning `()`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid sockeye disconnect handler",
    label = "not a disconnect handler",
    note = "a disconnect handler is an async or plain fn of up to 16 arguments, each a disconnect extractor (SocketRef, DisconnectReason, Session<T>, State<T>, Extension<T>, SocketIo, ...), returning `()`"
)]
pub trait DisconnectHandler<T>: Send + Sync + 'static {
    /// Extracts the arguments and runs the function.
    fn call(&self, cx: DisconnectContext) -> HandlerFuture<()>;

    /// Checks, when the handler is registered, that every argument can ever be extracted.
    fn check(&self, registration: &Registration<'_>) -> Result<(), RegisterError>;
}

macro_rules! impl_handlers {
    ($($ty:ident),*) => {
        #[diagnostic::do_not_recommend]
        impl<F, Fut, R, $($ty,)*> ConnectHandler<(marker::Async, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoConnectResult,
            $($ty: FromConnectParts,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn call(&self, cx: ConnectContext) -> HandlerFuture<ConnectResult> {
                $(
                    let $ty = match <$ty as FromConnectParts>::from_connect_parts(&cx) {
                        Ok(value) => value,
                        Err(e) => return Box::pin(ready(cx.reject(e.into()))),
                    };
                )*
                let fut = self($($ty,)*);
                Box::pin(async move { fut.await.into_connect_result() })
            }

            #[allow(unused_variables)]
            fn check(&self, registration: &Registration<'_>) -> Result<(), RegisterError> {
                $( <$ty as FromConnectParts>::check(registration)?; )*
                Ok(())
            }
        }

        #[diagnostic::do_not_recommend]
        impl<F, R, $($ty,)*> ConnectHandler<(marker::Sync, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> R + Send + Sync + 'static,
            R: IntoConnectResult,
            $($ty: FromConnectParts,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn call(&self, cx: ConnectContext) -> HandlerFuture<ConnectResult> {
                $(
                    let $ty = match <$ty as FromConnectParts>::from_connect_parts(&cx) {
                        Ok(value) => value,
                        Err(e) => return Box::pin(ready(cx.reject(e.into()))),
                    };
                )*
                Box::pin(ready(self($($ty,)*).into_connect_result()))
            }

            #[allow(unused_variables)]
            fn check(&self, registration: &Registration<'_>) -> Result<(), RegisterError> {
                $( <$ty as FromConnectParts>::check(registration)?; )*
                Ok(())
            }
        }

        #[diagnostic::do_not_recommend]
        impl<F, Fut, R, $($ty,)*> EventHandler<(marker::Async, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoAck,
            $($ty: FromEventParts,)*
        {
            #[allow(non_snake_case, unused_variables, unused_mut)]
            fn call(&self, cx: EventContext) -> HandlerFuture<()> {
                let mut cx = cx;
                $(
                    let $ty = match <$ty as FromEventParts>::from_event_parts(&mut cx) {
                        Ok(value) => value,
                        Err(e) => {
                            cx.reject(e.into());
                            return Box::pin(Done);
                        }
                    };
                )*
                let fut = self($($ty,)*);
                Box::pin(async move { cx.finish(fut.await) })
            }

            #[allow(unused_variables)]
            fn check(&self, registration: &Registration<'_>) -> Result<(), RegisterError> {
                $( <$ty as FromEventParts>::check(registration)?; )*
                Ok(())
            }
        }

        #[diagnostic::do_not_recommend]
        impl<F, R, $($ty,)*> EventHandler<(marker::Sync, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> R + Send + Sync + 'static,
            R: IntoAck,
            $($ty: FromEventParts,)*
        {
            #[allow(non_snake_case, unused_variables, unused_mut)]
            fn call(&self, cx: EventContext) -> HandlerFuture<()> {
                let mut cx = cx;
                $(
                    let $ty = match <$ty as FromEventParts>::from_event_parts(&mut cx) {
                        Ok(value) => value,
                        Err(e) => {
                            cx.reject(e.into());
                            return Box::pin(Done);
                        }
                    };
                )*
                cx.finish(self($($ty,)*));
                Box::pin(Done)
            }

            #[allow(unused_variables)]
            fn check(&self, registration: &Registration<'_>) -> Result<(), RegisterError> {
                $( <$ty as FromEventParts>::check(registration)?; )*
                Ok(())
            }
        }

        #[diagnostic::do_not_recommend]
        impl<F, Fut, $($ty,)*> DisconnectHandler<(marker::Async, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = ()> + Send + 'static,
            $($ty: FromDisconnectParts,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn call(&self, cx: DisconnectContext) -> HandlerFuture<()> {
                $(
                    let $ty = match <$ty as FromDisconnectParts>::from_disconnect_parts(&cx) {
                        Ok(value) => value,
                        Err(e) => {
                            cx.reject(e.into());
                            return Box::pin(Done);
                        }
                    };
                )*
                Box::pin(self($($ty,)*))
            }

            #[allow(unused_variables)]
            fn check(&self, registration: &Registration<'_>) -> Result<(), RegisterError> {
                $( <$ty as FromDisconnectParts>::check(registration)?; )*
                Ok(())
            }
        }

        #[diagnostic::do_not_recommend]
        impl<F, $($ty,)*> DisconnectHandler<(marker::Sync, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) + Send + Sync + 'static,
            $($ty: FromDisconnectParts,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn call(&self, cx: DisconnectContext) -> HandlerFuture<()> {
                $(
                    let $ty = match <$ty as FromDisconnectParts>::from_disconnect_parts(&cx) {
                        Ok(value) => value,
                        Err(e) => {
                            cx.reject(e.into());
                            return Box::pin(Done);
                        }
                    };
                )*
                self($($ty,)*);
                Box::pin(Done)
            }

            #[allow(unused_variables)]
            fn check(&self, registration: &Registration<'_>) -> Result<(), RegisterError> {
                $( <$ty as FromDisconnectParts>::check(registration)?; )*
                Ok(())
            }
        }
    };
}

impl_handlers!();
impl_handlers!(T1);
impl_handlers!(T1, T2);
impl_handlers!(T1, T2, T3);
impl_handlers!(T1, T2, T3, T4);
impl_handlers!(T1, T2, T3, T4, T5);
impl_handlers!(T1, T2, T3, T4, T5, T6);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14);
impl_handlers!(
    T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15
);
impl_handlers!(
    T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15, T16
);

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

// The erased forms the namespace stores: one `Arc<dyn ..>` per registered handler, whatever
// its argument types.

pub(crate) trait ErasedConnect: Send + Sync + 'static {
    fn call(&self, cx: ConnectContext) -> HandlerFuture<ConnectResult>;
}

pub(crate) trait ErasedEvent: Send + Sync + 'static {
    fn call(&self, cx: EventContext) -> HandlerFuture<()>;
}

pub(crate) trait ErasedDisconnect: Send + Sync + 'static {
    fn call(&self, cx: DisconnectContext) -> HandlerFuture<()>;
}

/// A handler with its argument types forgotten.
pub(crate) struct Erased<H, T> {
    handler: H,
    marker: PhantomData<fn() -> T>,
}

impl<H, T> Erased<H, T> {
    pub(crate) fn new(handler: H) -> Arc<Self> {
        Arc::new(Erased {
            handler,
            marker: PhantomData,
        })
    }
}

impl<H: ConnectHandler<T>, T: 'static> ErasedConnect for Erased<H, T> {
    fn call(&self, cx: ConnectContext) -> HandlerFuture<ConnectResult> {
        self.handler.call(cx)
    }
}

impl<H: EventHandler<T>, T: 'static> ErasedEvent for Erased<H, T> {
    fn call(&self, cx: EventContext) -> HandlerFuture<()> {
        self.handler.call(cx)
    }
}

impl<H: DisconnectHandler<T>, T: 'static> ErasedDisconnect for Erased<H, T> {
    fn call(&self, cx: DisconnectContext) -> HandlerFuture<()> {
        self.handler.call(cx)
    }
}
