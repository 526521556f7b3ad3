//! The typed per-socket session and per-socket extensions.

use std::any::type_name;
use std::ops::{Deref, DerefMut};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Rejection, generic_from_socket, generic_optional_from_socket};
use crate::socket::SocketRef;

/// A copy of the socket's session value of type `T` (python-socketio's `get_session`), with
/// [`Session::save`] to write changes back.
///
/// Save the first value with [`SocketRef::save_session`] (typically in the connect handler).
/// Rejected with code `no_session` when the socket has no session of type `T` yet: take
/// `Option<Session<T>>` when that is expected (`None` then). The session is dropped when the
/// socket disconnects (it is still readable in the disconnect handler), or kept for
/// connection-state recovery.
#[derive(Debug, Clone)]
pub struct Session<T> {
    value: T,
    socket: SocketRef,
}

impl<T: SessionValue> Session<T> {
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

/// What a session value must be: serialisable (recovery carries it to other nodes), and
/// cloned for each extraction.
pub trait SessionValue: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static> SessionValue for T {}

fn optional_session<T: SessionValue>(socket: &SocketRef) -> Result<Option<Session<T>>, Rejection> {
    Ok(socket.get_session::<T>().map(|value| Session {
        value,
        socket: socket.clone(),
    }))
}

fn session<T: SessionValue>(socket: &SocketRef) -> Result<Session<T>, Rejection> {
    optional_session(socket)?.ok_or_else(|| {
        Rejection::client(
            "no_session",
            format!(
                "this socket has no session of type `{}` yet",
                type_name::<T>()
            ),
        )
    })
}

/// A value of type `T` from the socket's extensions, or, failing that, from the extensions of
/// the HTTP request that opened the connection (what tower layers such as an auth middleware
/// or axum's `Extension` layer put there).
///
/// Rejected (server-side, code `missing_extension`) when neither holds a `T`;
/// `Option<Extension<T>>` is `None` then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension<T>(pub T);

fn optional_extension<T: Clone + Send + Sync + 'static>(
    socket: &SocketRef,
) -> Result<Option<Extension<T>>, Rejection> {
    Ok(socket
        .extensions()
        .get::<T>()
        .or_else(|| socket.request().extensions.get::<T>().cloned())
        .map(Extension))
}

fn extension<T: Clone + Send + Sync + 'static>(
    socket: &SocketRef,
) -> Result<Extension<T>, Rejection> {
    optional_extension(socket)?.ok_or_else(|| {
            Rejection::server(
                "missing_extension",
                format!(
                    "no extension of type `{}` on the socket or its handshake request: insert it with socket.extensions().insert(..) or a tower layer",
                    type_name::<T>()
                ),
            )
        })
}

generic_from_socket!(Session, [SessionValue], session);
generic_optional_from_socket!(Session, [SessionValue], optional_session);
generic_from_socket!(Extension, [Clone + Send + Sync + 'static], extension);
generic_optional_from_socket!(
    Extension,
    [Clone + Send + Sync + 'static],
    optional_extension
);
