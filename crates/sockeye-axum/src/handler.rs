//! Handler traits for functions of extractors, implemented for async and plain functions of up
//! to 16 arguments.
//!
//! The `T` parameter only tells the implementations apart (sync or async, argument types);
//! users never name it.

use std::future::{Future, ready};

use sockeye::{ConnectResult, HandlerFuture, IntoConnectResult};

use crate::ack::IntoAck;
use crate::context::{ConnectContext, DisconnectContext, EventContext};
use crate::extract::{FromConnectParts, FromDisconnectParts, FromEventParts};

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
/// connect extractors, returning `()` or `Result<(), E>` with `E: Into<ConnectionRefusedError>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid sockeye connect handler",
    label = "not a connect handler",
    note = "a connect handler is an async or plain fn of up to 16 arguments that implement `FromConnectParts` (SocketRef, Auth<T>, State<T>, ...), returning `()` or `Result<(), ConnectionRefusedError>`"
)]
pub trait ConnectHandler<T>: Send + Sync + 'static {
    /// Extracts the arguments and runs the function.
    fn call(&self, cx: ConnectContext) -> HandlerFuture<ConnectResult>;
}

/// An event handler: an async or plain function whose arguments are event extractors,
/// returning anything [`IntoAck`] (its return value is the ack).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid sockeye event handler",
    label = "not an event handler",
    note = "an event handler is an async or plain fn of up to 16 arguments that implement `FromEventParts` (SocketRef, Data<T>, AckSender, Session<T>, State<T>, ...), returning something that implements `IntoAck`"
)]
pub trait EventHandler<T>: Send + Sync + 'static {
    /// Extracts the arguments, runs the function and sends its ack.
    fn call(&self, cx: EventContext) -> HandlerFuture<()>;
}

/// A disconnect handler: an async or plain function whose arguments are disconnect
/// extractors, returning `()`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid sockeye disconnect handler",
    label = "not a disconnect handler",
    note = "a disconnect handler is an async or plain fn of up to 16 arguments that implement `FromDisconnectParts` (SocketRef, DisconnectReason, Session<T>, State<T>, ...), returning `()`"
)]
pub trait DisconnectHandler<T>: Send + Sync + 'static {
    /// Extracts the arguments and runs the function.
    fn call(&self, cx: DisconnectContext) -> HandlerFuture<()>;
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
                            return Box::pin(ready(()));
                        }
                    };
                )*
                let fut = self($($ty,)*);
                Box::pin(async move { cx.finish(fut.await.into_ack()) })
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
                            return Box::pin(ready(()));
                        }
                    };
                )*
                cx.finish(self($($ty,)*).into_ack());
                Box::pin(ready(()))
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
                            return Box::pin(ready(()));
                        }
                    };
                )*
                Box::pin(self($($ty,)*))
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
                            return Box::pin(ready(()));
                        }
                    };
                )*
                self($($ty,)*);
                Box::pin(ready(()))
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
