//! Application state shared by every handler: one value per type, registered on the builder.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::sync::Arc;

use super::{
    ConnectContext, DisconnectContext, EventContext, FromConnectParts, FromDisconnectParts,
    FromEventParts, Registration, Rejection,
};
use crate::error::RegisterError;

/// The states registered with [`crate::SocketIoBuilder::with_state`], read-only after build.
///
/// Read-only after build, so reads take no lock: a handler's `State<T>` is one hash lookup
/// and one clone.
#[derive(Default, Clone)]
pub(crate) struct StateMap {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl StateMap {
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Arc::new(value));
    }

    pub(crate) fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    pub(crate) fn extract<T: Clone + Send + Sync + 'static>(&self) -> Result<T, Rejection> {
        self.get::<T>().ok_or_else(|| {
            Rejection::server(
                "missing_state",
                format!(
                    "no state of type `{}`: register it with SocketIo::builder().with_state(value)",
                    type_name::<T>()
                ),
            )
        })
    }

    pub(crate) fn contains<T: Send + Sync + 'static>(&self) -> bool {
        self.values.contains_key(&TypeId::of::<T>())
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

impl std::fmt::Debug for StateMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMap")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_type_and_a_clear_error_otherwise() {
        let mut map = StateMap::default();
        map.insert(1u8);
        map.insert(2u8);
        map.insert(String::from("db"));
        assert_eq!(map.get::<u8>(), Some(2));
        assert_eq!(map.get::<String>().as_deref(), Some("db"));
        let err = map.extract::<u16>().unwrap_err();
        assert_eq!(err.code(), "missing_state");
        assert!(err.message().contains("u16"), "{err}");
    }
}

/// A shared application state of type `T` (a clone), registered with
/// [`crate::SocketIoBuilder::with_state`].
///
/// In socket handlers it reads the server's states. A handler taking a `State<T>` of a type
/// that was never registered is refused when it is registered ([`RegisterError::MissingState`]),
/// so it can never fail at an event. With the `axum` feature it is also an axum HTTP extractor,
/// reading `T` from the router's state through `FromRef`, so one `State<Db>` serves both sides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State<T>(pub T);

fn check_state<T: Send + Sync + 'static>(
    registration: &Registration<'_>,
) -> Result<(), RegisterError> {
    if registration.has_state::<T>() {
        Ok(())
    } else {
        Err(RegisterError::MissingState(type_name::<T>()))
    }
}

impl<T: Clone + Send + Sync + 'static> FromConnectParts for State<T> {
    type Rejection = Rejection;
    fn from_connect_parts(cx: &ConnectContext) -> Result<Self, Rejection> {
        cx.socket().states().extract().map(State)
    }
    fn check(registration: &Registration<'_>) -> Result<(), RegisterError> {
        check_state::<T>(registration)
    }
}

impl<T: Clone + Send + Sync + 'static> FromEventParts for State<T> {
    type Rejection = Rejection;
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Rejection> {
        cx.socket().states().extract().map(State)
    }
    fn check(registration: &Registration<'_>) -> Result<(), RegisterError> {
        check_state::<T>(registration)
    }
}

impl<T: Clone + Send + Sync + 'static> FromDisconnectParts for State<T> {
    type Rejection = Rejection;
    fn from_disconnect_parts(cx: &DisconnectContext) -> Result<Self, Rejection> {
        cx.socket().states().extract().map(State)
    }
    fn check(registration: &Registration<'_>) -> Result<(), RegisterError> {
        check_state::<T>(registration)
    }
}

/// In an axum HTTP handler behind the [`crate::SocketIoLayer`], `State<T>` reads the same
/// states as socket handlers (from the `SocketIo` handle the layer puts in the request): one
/// `with_state` serves both sides. Rejected (500) when the layer is missing or no state of type
/// `T` was registered.
#[cfg(feature = "axum")]
impl<S: Send + Sync, T: Clone + Send + Sync + 'static> axum::extract::FromRequestParts<S>
    for State<T>
{
    type Rejection = Rejection;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let io = parts.extensions.get::<crate::SocketIo>().ok_or_else(|| {
            Rejection::server(
                "missing_socketio",
                "sockeye's State<T> in an HTTP handler reads the SocketIo's states: add the layer from SocketIo::builder().build_layer() to the router (after the routes), or use axum::extract::State for the router's own state",
            )
        })?;
        io.state::<T>().map(State).ok_or_else(|| {
            Rejection::server(
                "missing_state",
                format!(
                    "no state of type `{}`: register it with SocketIo::builder().with_state(value)",
                    type_name::<T>()
                ),
            )
        })
    }
}
