//! Extractors: the arguments of handler functions, and the traits to write your own.
//!
//! Every extractor implements one trait per handler kind it makes sense in:
//! [`FromConnectParts`], [`FromEventParts`], [`FromDisconnectParts`]. Extraction is synchronous
//! (everything it reads is already in memory) and order-independent, except that the ack handle
//! ([`crate::AckSender`]) is handed out once.
//!
//! A failed extraction never panics: the handler is not called, the [`Rejection`] is logged,
//! and the client is told (an error ack, or a refused connection).
//!
//! As in axum 0.8, `Option<T>` means *absent*, not *any failure*: it is an extractor only for
//! the `T` that implement the `Optional*` traits ([`OptionalFromEventParts`], ...), which say
//! what absent means for them (no auth payload, no session yet, no ack requested, no such
//! extension). A `T` that is present but invalid (auth that does not parse as `T`) is still a
//! rejection. Take `Result<T, Rejection>` to handle every failure yourself.
//!
//! A handler whose argument can never be extracted (a `State<T>` of a type no state was
//! registered for) is refused when it is registered: see [`FromEventParts::check`].
//!
//! A custom extractor:
//! ```
//! use sockeye::extract::{EventContext, FromEventParts, Rejection};
//!
//! /// The `x-tenant` header of the handshake.
//! struct Tenant(String);
//!
//! impl FromEventParts for Tenant {
//!     type Rejection = Rejection;
//!     fn from_event_parts(cx: &mut EventContext) -> Result<Self, Rejection> {
//!         cx.socket()
//!             .request()
//!             .headers
//!             .get("x-tenant")
//!             .and_then(|v| v.to_str().ok())
//!             .map(|t| Tenant(t.to_owned()))
//!             .ok_or_else(|| Rejection::client("missing_tenant", "send an x-tenant header"))
//!     }
//! }
//! ```

mod context;
mod data;
mod http;
mod rejection;
mod session;
mod socket;
mod state;

pub use context::{ConnectContext, DisconnectContext, EventContext, Registration};
pub use data::{Auth, Bin, Data, EventName, TryData};
pub use http::{Cookies, HttpExtension, Query};
pub use rejection::Rejection;
pub use session::{Extension, Session, SessionValue};
pub use socket::Namespace;
pub use state::State;
pub(crate) use state::StateMap;

use crate::error::RegisterError;

/// Extracts a value for a connect handler (or connect middleware).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a connect handler",
    label = "not a connect extractor",
    note = "connect handlers take extractors such as SocketRef, Auth<T>, State<T>, Extension<T>, HeaderMap, Query<T>, Cookies, RemoteAddr, SocketIo; implement FromConnectParts for your own types",
    note = "`Option<T>` is an extractor only when `T` implements `OptionalFromConnectParts` (absent is not the same as invalid)"
)]
pub trait FromConnectParts: Sized {
    /// Why extraction can fail.
    type Rejection: Into<Rejection>;
    /// Extracts the value.
    fn from_connect_parts(cx: &ConnectContext) -> Result<Self, Self::Rejection>;
    /// Checked once, when a handler taking this argument is registered: fails when the
    /// server's configuration means extraction could never succeed.
    fn check(registration: &Registration<'_>) -> Result<(), RegisterError> {
        let _ = registration;
        Ok(())
    }
}

/// Extracts a value for an event handler.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of an event handler",
    label = "not an event extractor",
    note = "event handlers take extractors such as SocketRef, Data<T>, TryData<T>, Bin, AckSender, Event, EventName, Session<T>, State<T>, Extension<T>, SocketIo; implement FromEventParts for your own types",
    note = "`Option<T>` is an extractor only when `T` implements `OptionalFromEventParts` (absent is not the same as invalid)"
)]
pub trait FromEventParts: Sized {
    /// Why extraction can fail.
    type Rejection: Into<Rejection>;
    /// Extracts the value (`&mut`: the ack handle can be taken out once).
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Self::Rejection>;
    /// Checked once, when a handler taking this argument is registered: fails when the
    /// server's configuration means extraction could never succeed.
    fn check(registration: &Registration<'_>) -> Result<(), RegisterError> {
        let _ = registration;
        Ok(())
    }
}

/// Extracts a value for a disconnect handler.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a disconnect handler",
    label = "not a disconnect extractor",
    note = "disconnect handlers take extractors such as SocketRef, DisconnectReason, Session<T>, State<T>, Extension<T>, SocketIo; implement FromDisconnectParts for your own types",
    note = "`Option<T>` is an extractor only when `T` implements `OptionalFromDisconnectParts` (absent is not the same as invalid)"
)]
pub trait FromDisconnectParts: Sized {
    /// Why extraction can fail.
    type Rejection: Into<Rejection>;
    /// Extracts the value.
    fn from_disconnect_parts(cx: &DisconnectContext) -> Result<Self, Self::Rejection>;
    /// Checked once, when a handler taking this argument is registered: fails when the
    /// server's configuration means extraction could never succeed.
    fn check(registration: &Registration<'_>) -> Result<(), RegisterError> {
        let _ = registration;
        Ok(())
    }
}

/// A connect extractor that can be absent: `Option<Self>` is then an extractor too.
pub trait OptionalFromConnectParts: Sized {
    /// Why extraction of a present value can fail.
    type Rejection: Into<Rejection>;
    /// `Ok(None)` when absent, `Err` when present but invalid.
    fn from_connect_parts(cx: &ConnectContext) -> Result<Option<Self>, Self::Rejection>;
}

/// An event extractor that can be absent: `Option<Self>` is then an extractor too.
pub trait OptionalFromEventParts: Sized {
    /// Why extraction of a present value can fail.
    type Rejection: Into<Rejection>;
    /// `Ok(None)` when absent, `Err` when present but invalid.
    fn from_event_parts(cx: &mut EventContext) -> Result<Option<Self>, Self::Rejection>;
}

/// A disconnect extractor that can be absent: `Option<Self>` is then an extractor too.
pub trait OptionalFromDisconnectParts: Sized {
    /// Why extraction of a present value can fail.
    type Rejection: Into<Rejection>;
    /// `Ok(None)` when absent, `Err` when present but invalid.
    fn from_disconnect_parts(cx: &DisconnectContext) -> Result<Option<Self>, Self::Rejection>;
}

impl<T: OptionalFromConnectParts> FromConnectParts for Option<T> {
    type Rejection = T::Rejection;
    fn from_connect_parts(cx: &ConnectContext) -> Result<Self, Self::Rejection> {
        <T as OptionalFromConnectParts>::from_connect_parts(cx)
    }
}

impl<T: OptionalFromEventParts> FromEventParts for Option<T> {
    type Rejection = T::Rejection;
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Self::Rejection> {
        <T as OptionalFromEventParts>::from_event_parts(cx)
    }
}

impl<T: OptionalFromDisconnectParts> FromDisconnectParts for Option<T> {
    type Rejection = T::Rejection;
    fn from_disconnect_parts(cx: &DisconnectContext) -> Result<Self, Self::Rejection> {
        <T as OptionalFromDisconnectParts>::from_disconnect_parts(cx)
    }
}

impl<T: FromConnectParts> FromConnectParts for Result<T, Rejection> {
    type Rejection = std::convert::Infallible;
    fn from_connect_parts(cx: &ConnectContext) -> Result<Self, Self::Rejection> {
        Ok(T::from_connect_parts(cx).map_err(Into::into))
    }
    fn check(registration: &Registration<'_>) -> Result<(), RegisterError> {
        T::check(registration)
    }
}

impl<T: FromEventParts> FromEventParts for Result<T, Rejection> {
    type Rejection = std::convert::Infallible;
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Self::Rejection> {
        Ok(T::from_event_parts(cx).map_err(Into::into))
    }
    fn check(registration: &Registration<'_>) -> Result<(), RegisterError> {
        T::check(registration)
    }
}

impl<T: FromDisconnectParts> FromDisconnectParts for Result<T, Rejection> {
    type Rejection = std::convert::Infallible;
    fn from_disconnect_parts(cx: &DisconnectContext) -> Result<Self, Self::Rejection> {
        Ok(T::from_disconnect_parts(cx).map_err(Into::into))
    }
    fn check(registration: &Registration<'_>) -> Result<(), RegisterError> {
        T::check(registration)
    }
}

/// Implements the three traits for a type, from one function of the socket (the part every
/// context has).
macro_rules! from_socket {
    ($ty:ty, |$socket:ident| $body:expr) => {
        impl $crate::extract::FromConnectParts for $ty {
            type Rejection = $crate::extract::Rejection;
            fn from_connect_parts(
                cx: &$crate::extract::ConnectContext,
            ) -> Result<Self, $crate::extract::Rejection> {
                let $socket = cx.socket();
                $body
            }
        }
        impl $crate::extract::FromEventParts for $ty {
            type Rejection = $crate::extract::Rejection;
            fn from_event_parts(
                cx: &mut $crate::extract::EventContext,
            ) -> Result<Self, $crate::extract::Rejection> {
                let $socket = cx.socket();
                $body
            }
        }
        impl $crate::extract::FromDisconnectParts for $ty {
            type Rejection = $crate::extract::Rejection;
            fn from_disconnect_parts(
                cx: &$crate::extract::DisconnectContext,
            ) -> Result<Self, $crate::extract::Rejection> {
                let $socket = cx.socket();
                $body
            }
        }
    };
}
pub(crate) use from_socket;

/// Implements the three `Optional*` traits for a type, from one function of the socket
/// returning `Result<Option<_>, Rejection>`.
macro_rules! optional_from_socket {
    ($ty:ty, |$socket:ident| $body:expr) => {
        impl $crate::extract::OptionalFromConnectParts for $ty {
            type Rejection = $crate::extract::Rejection;
            fn from_connect_parts(
                cx: &$crate::extract::ConnectContext,
            ) -> Result<Option<Self>, $crate::extract::Rejection> {
                let $socket = cx.socket();
                $body
            }
        }
        impl $crate::extract::OptionalFromEventParts for $ty {
            type Rejection = $crate::extract::Rejection;
            fn from_event_parts(
                cx: &mut $crate::extract::EventContext,
            ) -> Result<Option<Self>, $crate::extract::Rejection> {
                let $socket = cx.socket();
                $body
            }
        }
        impl $crate::extract::OptionalFromDisconnectParts for $ty {
            type Rejection = $crate::extract::Rejection;
            fn from_disconnect_parts(
                cx: &$crate::extract::DisconnectContext,
            ) -> Result<Option<Self>, $crate::extract::Rejection> {
                let $socket = cx.socket();
                $body
            }
        }
    };
}
pub(crate) use optional_from_socket;

/// Implements the three traits for a generic type `$ty<T>` (with `T: $bound`), from one
/// function of the socket.
macro_rules! generic_from_socket {
    ($ty:ident, [$($bound:tt)*], $f:expr) => {
        impl<T: $($bound)*> $crate::extract::FromConnectParts for $ty<T> {
            type Rejection = $crate::extract::Rejection;
            fn from_connect_parts(
                cx: &$crate::extract::ConnectContext,
            ) -> Result<Self, $crate::extract::Rejection> {
                $f(cx.socket())
            }
        }
        impl<T: $($bound)*> $crate::extract::FromEventParts for $ty<T> {
            type Rejection = $crate::extract::Rejection;
            fn from_event_parts(
                cx: &mut $crate::extract::EventContext,
            ) -> Result<Self, $crate::extract::Rejection> {
                $f(cx.socket())
            }
        }
        impl<T: $($bound)*> $crate::extract::FromDisconnectParts for $ty<T> {
            type Rejection = $crate::extract::Rejection;
            fn from_disconnect_parts(
                cx: &$crate::extract::DisconnectContext,
            ) -> Result<Self, $crate::extract::Rejection> {
                $f(cx.socket())
            }
        }
    };
}
pub(crate) use generic_from_socket;

/// Implements the three `Optional*` traits for a generic type `$ty<T>` (with `T: $bound`),
/// from one function of the socket returning `Result<Option<_>, Rejection>`.
macro_rules! generic_optional_from_socket {
    ($ty:ident, [$($bound:tt)*], $f:expr) => {
        impl<T: $($bound)*> $crate::extract::OptionalFromConnectParts for $ty<T> {
            type Rejection = $crate::extract::Rejection;
            fn from_connect_parts(
                cx: &$crate::extract::ConnectContext,
            ) -> Result<Option<Self>, $crate::extract::Rejection> {
                $f(cx.socket())
            }
        }
        impl<T: $($bound)*> $crate::extract::OptionalFromEventParts for $ty<T> {
            type Rejection = $crate::extract::Rejection;
            fn from_event_parts(
                cx: &mut $crate::extract::EventContext,
            ) -> Result<Option<Self>, $crate::extract::Rejection> {
                $f(cx.socket())
            }
        }
        impl<T: $($bound)*> $crate::extract::OptionalFromDisconnectParts for $ty<T> {
            type Rejection = $crate::extract::Rejection;
            fn from_disconnect_parts(
                cx: &$crate::extract::DisconnectContext,
            ) -> Result<Option<Self>, $crate::extract::Rejection> {
                $f(cx.socket())
            }
        }
    };
}
pub(crate) use generic_optional_from_socket;
