//! Extractors: the arguments of handler functions, and the traits to write your own.
//!
//! Every extractor implements one trait per handler kind it makes sense in:
//! [`FromConnectParts`], [`FromEventParts`], [`FromDisconnectParts`]. Extraction is synchronous
//! (everything it reads is already in memory) and order-independent, except that the ack handle
//! ([`sockeye::AckSender`]) is handed out once.
//!
//! A failed extraction never panics: the handler is not called, the [`Rejection`] is logged,
//! and the client is told (an error ack, or a refused connection). Wrap an extractor in
//! `Option<T>` to get `None` instead, or in `Result<T, Rejection>` to inspect the failure.
//!
//! A custom extractor:
//! ```
//! use sockeye_axum::extract::{FromEventParts, EventContext};
//! use sockeye_axum::Rejection;
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

mod data;
mod http;
mod session;
mod socket;

pub use crate::context::{ConnectContext, DisconnectContext, EventContext};
pub use crate::rejection::Rejection;
pub use crate::state::State;
pub use data::{Auth, Bin, Data, EventName, TryData};
pub use http::{Cookies, HttpExtension, Query, RemoteAddr};
pub use session::{Extension, Session};
pub use socket::Namespace;

/// Extracts a value for a connect handler (or connect middleware).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a connect handler",
    label = "not a connect extractor",
    note = "connect handlers take extractors such as SocketRef, Auth<T>, State<T>, Extension<T>, HeaderMap, Query<T>, Cookies, RemoteAddr, SocketIo; implement FromConnectParts for your own types"
)]
pub trait FromConnectParts: Sized {
    /// Why extraction can fail.
    type Rejection: Into<Rejection>;
    /// Extracts the value.
    fn from_connect_parts(cx: &ConnectContext) -> Result<Self, Self::Rejection>;
}

/// Extracts a value for an event handler.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of an event handler",
    label = "not an event extractor",
    note = "event handlers take extractors such as SocketRef, Data<T>, TryData<T>, Bin, AckSender, EventName, Session<T>, State<T>, Extension<T>, SocketIo; implement FromEventParts for your own types"
)]
pub trait FromEventParts: Sized {
    /// Why extraction can fail.
    type Rejection: Into<Rejection>;
    /// Extracts the value (`&mut`: the ack handle can be taken out once).
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Self::Rejection>;
}

/// Extracts a value for a disconnect handler.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a disconnect handler",
    label = "not a disconnect extractor",
    note = "disconnect handlers take extractors such as SocketRef, DisconnectReason, Session<T>, State<T>, Extension<T>, SocketIo; implement FromDisconnectParts for your own types"
)]
pub trait FromDisconnectParts: Sized {
    /// Why extraction can fail.
    type Rejection: Into<Rejection>;
    /// Extracts the value.
    fn from_disconnect_parts(cx: &DisconnectContext) -> Result<Self, Self::Rejection>;
}

/// Implements the three traits for a type, from one function of the socket and server handle
/// (the parts every context has).
macro_rules! from_any_parts {
    ($ty:ty, |$socket:ident, $io:ident| $body:expr) => {
        impl $crate::extract::FromConnectParts for $ty {
            type Rejection = $crate::rejection::Rejection;
            fn from_connect_parts(
                cx: &$crate::extract::ConnectContext,
            ) -> Result<Self, $crate::rejection::Rejection> {
                let ($socket, $io) = (cx.socket(), cx.io());
                let _ = (&$socket, &$io);
                $body
            }
        }
        impl $crate::extract::FromEventParts for $ty {
            type Rejection = $crate::rejection::Rejection;
            fn from_event_parts(
                cx: &mut $crate::extract::EventContext,
            ) -> Result<Self, $crate::rejection::Rejection> {
                let ($socket, $io) = (cx.socket(), cx.io());
                let _ = (&$socket, &$io);
                $body
            }
        }
        impl $crate::extract::FromDisconnectParts for $ty {
            type Rejection = $crate::rejection::Rejection;
            fn from_disconnect_parts(
                cx: &$crate::extract::DisconnectContext,
            ) -> Result<Self, $crate::rejection::Rejection> {
                let ($socket, $io) = (cx.socket(), cx.io());
                let _ = (&$socket, &$io);
                $body
            }
        }
    };
}
pub(crate) use from_any_parts;

impl<T: FromConnectParts> FromConnectParts for Option<T> {
    type Rejection = std::convert::Infallible;
    fn from_connect_parts(cx: &ConnectContext) -> Result<Self, Self::Rejection> {
        Ok(T::from_connect_parts(cx).ok())
    }
}

impl<T: FromEventParts> FromEventParts for Option<T> {
    type Rejection = std::convert::Infallible;
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Self::Rejection> {
        Ok(T::from_event_parts(cx).ok())
    }
}

impl<T: FromDisconnectParts> FromDisconnectParts for Option<T> {
    type Rejection = std::convert::Infallible;
    fn from_disconnect_parts(cx: &DisconnectContext) -> Result<Self, Self::Rejection> {
        Ok(T::from_disconnect_parts(cx).ok())
    }
}

impl<T: FromConnectParts> FromConnectParts for Result<T, Rejection> {
    type Rejection = std::convert::Infallible;
    fn from_connect_parts(cx: &ConnectContext) -> Result<Self, Self::Rejection> {
        Ok(T::from_connect_parts(cx).map_err(Into::into))
    }
}

impl<T: FromEventParts> FromEventParts for Result<T, Rejection> {
    type Rejection = std::convert::Infallible;
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Self::Rejection> {
        Ok(T::from_event_parts(cx).map_err(Into::into))
    }
}

impl<T: FromDisconnectParts> FromDisconnectParts for Result<T, Rejection> {
    type Rejection = std::convert::Infallible;
    fn from_disconnect_parts(cx: &DisconnectContext) -> Result<Self, Self::Rejection> {
        Ok(T::from_disconnect_parts(cx).map_err(Into::into))
    }
}
