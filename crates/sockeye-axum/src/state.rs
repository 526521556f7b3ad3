//! Application state shared by every handler: one value per type, registered on the builder.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::sync::Arc;

use crate::rejection::Rejection;

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
/// In socket handlers it reads the server's states (rejected server-side, code
/// `missing_state`, when `T` was never registered). In axum HTTP handlers it is axum's
/// `State`: `T` comes from the router's state through `FromRef`, so one `State<Db>` type serves
/// both sides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> crate::extract::FromConnectParts for State<T> {
    type Rejection = Rejection;
    fn from_connect_parts(cx: &crate::extract::ConnectContext) -> Result<Self, Rejection> {
        cx.io().states().extract().map(State)
    }
}

impl<T: Clone + Send + Sync + 'static> crate::extract::FromEventParts for State<T> {
    type Rejection = Rejection;
    fn from_event_parts(cx: &mut crate::extract::EventContext) -> Result<Self, Rejection> {
        cx.io().states().extract().map(State)
    }
}

impl<T: Clone + Send + Sync + 'static> crate::extract::FromDisconnectParts for State<T> {
    type Rejection = Rejection;
    fn from_disconnect_parts(cx: &crate::extract::DisconnectContext) -> Result<Self, Rejection> {
        cx.io().states().extract().map(State)
    }
}

impl<S, T> axum_core::extract::FromRequestParts<S> for State<T>
where
    T: axum_core::extract::FromRef<S> + Send,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        _parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(State(T::from_ref(state)))
    }
}
