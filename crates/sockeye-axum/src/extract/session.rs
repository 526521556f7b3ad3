//! The typed per-socket session and per-socket extensions.

use std::any::type_name;
use std::ops::{Deref, DerefMut};

use sockeye::SocketRef;

use crate::rejection::Rejection;

/// A copy of the socket's session value of type `T` (python-socketio's `get_session`), with
/// [`Session::save`] to write changes back.
///
/// Save the first value with [`SocketRef::save_session`] (typically in the connect handler).
/// Rejected with code `no_session` when the socket has no session of type `T` yet: take
/// `Option<Session<T>>` when that is expected. The session is dropped when the socket
/// disconnects (it is still readable in the disconnect handler).
#[derive(Debug, Clone)]
pub struct Session<T> {
    value: T,
    socket: SocketRef,
}

impl<T: Clone + Send + Sync + 'static> Session<T> {
    /// Writes this (possibly modified) value back as the socket's session.
    pub fn save(self) {
        self.socket.save_session(self.value);
    }

    /// The value, detached from the socket.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for Session<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Session<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

fn session<T: Clone + Send + Sync + 'static>(socket: &SocketRef) -> Result<Session<T>, Rejection> {
    let value = socket.get_session::<T>().ok_or_else(|| {
        Rejection::client(
            "no_session",
            format!(
                "this socket has no session of type `{}` yet",
                type_name::<T>()
            ),
        )
    })?;
    Ok(Session {
        value,
        socket: socket.clone(),
    })
}

/// A value of type `T` from the socket's extensions, or, failing that, from the extensions of
/// the HTTP request that opened the connection (what tower layers such as an auth middleware
/// or axum's `Extension` layer put there).
///
/// Rejected (server-side, code `missing_extension`) when neither holds a `T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension<T>(pub T);

fn extension<T: Clone + Send + Sync + 'static>(
    socket: &SocketRef,
) -> Result<Extension<T>, Rejection> {
    socket
        .extensions()
        .get::<T>()
        .or_else(|| socket.request().extensions.get::<T>().cloned())
        .map(Extension)
        .ok_or_else(|| {
            Rejection::server(
                "missing_extension",
                format!(
                    "no extension of type `{}` on the socket or its handshake request: insert it with socket.extensions().insert(..) or a tower layer",
                    type_name::<T>()
                ),
            )
        })
}

macro_rules! generic_any_parts {
    ($ty:ident, $f:ident) => {
        impl<T: Clone + Send + Sync + 'static> super::FromConnectParts for $ty<T> {
            type Rejection = Rejection;
            fn from_connect_parts(cx: &super::ConnectContext) -> Result<Self, Rejection> {
                $f(cx.socket())
            }
        }
        impl<T: Clone + Send + Sync + 'static> super::FromEventParts for $ty<T> {
            type Rejection = Rejection;
            fn from_event_parts(cx: &mut super::EventContext) -> Result<Self, Rejection> {
                $f(cx.socket())
            }
        }
        impl<T: Clone + Send + Sync + 'static> super::FromDisconnectParts for $ty<T> {
            type Rejection = Rejection;
            fn from_disconnect_parts(cx: &super::DisconnectContext) -> Result<Self, Rejection> {
                $f(cx.socket())
            }
        }
    };
}
pub(super) use generic_any_parts;

generic_any_parts!(Session, session);
generic_any_parts!(Extension, extension);
