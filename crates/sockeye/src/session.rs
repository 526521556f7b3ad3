//! The typed per-socket session, and its value as connection-state recovery keeps it.
//!
//! A session value must be serialisable: it is what recovery carries to the node a client comes
//! back to, what `fetch_sockets` reports as `data`, and what the JavaScript server calls
//! `socket.data`. State that cannot be serialised belongs in the socket's extensions.

use std::any::Any;
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A session value of any serialisable type.
trait Erased: Any + Send + Sync {
    fn to_json(&self) -> Result<Value, serde_json::Error>;
    #[cfg(test)]
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Serialize + Send + Sync + 'static> Erased for T {
    fn to_json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }
    #[cfg(test)]
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A socket's session value as connection-state recovery keeps it: the typed value when it
/// stays on this node, or its JSON form when it came from another node (decoded into the
/// application's type on first read).
pub struct SessionData(Repr);

enum Repr {
    Typed(Box<dyn Erased>),
    Json(Value),
}

impl std::fmt::Debug for SessionData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Typed(_) => f.write_str("SessionData(<typed>)"),
            Repr::Json(v) => f.debug_tuple("SessionData").field(v).finish(),
        }
    }
}

impl SessionData {
    fn typed<T: Serialize + Send + Sync + 'static>(value: T) -> SessionData {
        SessionData(Repr::Typed(Box::new(value)))
    }

    /// A session value read from a backend (a cluster adapter restoring a session that another
    /// node persisted).
    pub fn from_json(value: Value) -> SessionData {
        SessionData(Repr::Json(value))
    }

    /// The value as JSON, to store it in a backend or show it to other nodes.
    pub fn to_json(&self) -> Result<Value, serde_json::Error> {
        match &self.0 {
            Repr::Typed(v) => v.to_json(),
            Repr::Json(v) => Ok(v.clone()),
        }
    }

    /// The value as `T`: the typed value, or the JSON form decoded (and then kept typed).
    fn as_mut<T: DeserializeOwned + Serialize + Send + Sync + 'static>(
        &mut self,
    ) -> Option<&mut T> {
        if let Repr::Json(value) = &self.0 {
            let typed: T = T::deserialize(value).ok()?;
            self.0 = Repr::Typed(Box::new(typed));
        }
        match &mut self.0 {
            Repr::Typed(v) => v.as_any_mut().downcast_mut::<T>(),
            Repr::Json(_) => None,
        }
    }

    #[cfg(test)]
    fn is<T: 'static>(&self) -> bool {
        match &self.0 {
            Repr::Typed(v) => v.as_any().is::<T>(),
            Repr::Json(_) => false,
        }
    }
}

/// The session slot of one socket: at most one value.
#[derive(Default)]
pub(crate) struct SessionSlot {
    value: Mutex<Option<SessionData>>,
}

impl SessionSlot {
    pub(crate) fn get<T>(&self) -> Option<T>
    where
        T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.lock().as_mut()?.as_mut::<T>().cloned()
    }

    pub(crate) fn save<T: Serialize + Send + Sync + 'static>(&self, value: T) {
        let old = self.lock().replace(SessionData::typed(value));
        drop(old);
    }

    pub(crate) fn update<T, R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.lock().as_mut()?.as_mut::<T>().map(f)
    }

    /// True when the slot holds a typed value of type `T` (no decoding).
    #[cfg(test)]
    pub(crate) fn holds<T: 'static>(&self) -> bool {
        self.lock().as_ref().is_some_and(SessionData::is::<T>)
    }

    /// The value as JSON, if there is one and it serialises.
    pub(crate) fn to_json(&self) -> Option<Value> {
        self.lock().as_ref()?.to_json().ok()
    }

    pub(crate) fn clear(&self) {
        let old = self.lock().take();
        drop(old);
    }

    /// Moves the value out (to keep it for connection-state recovery).
    pub(crate) fn take(&self) -> Option<SessionData> {
        self.lock().take()
    }

    /// Puts back a recovered value.
    pub(crate) fn restore(&self, value: SessionData) {
        let old = self.lock().replace(value);
        drop(old);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SessionData>> {
        crate::sync::lock(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_is_typed_and_cleared() {
        let s = SessionSlot::default();
        assert_eq!(s.get::<u8>(), None);
        s.save(3u8);
        assert_eq!(
            s.get::<String>(),
            None,
            "a different type is not the session"
        );
        assert_eq!(s.update::<u8, _>(|v| *v += 1), Some(()));
        assert_eq!(s.get::<u8>(), Some(4));
        assert_eq!(s.to_json(), Some(serde_json::json!(4)));
        s.clear();
        assert_eq!(s.get::<u8>(), None);
    }

    #[test]
    fn a_json_value_is_decoded_on_first_read_and_kept_typed() {
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct User {
            name: String,
        }
        let s = SessionSlot::default();
        s.restore(SessionData::from_json(serde_json::json!({"name": "ann"})));
        assert!(!s.holds::<User>());
        assert_eq!(
            s.get::<u32>(),
            None,
            "JSON that is not a u32 stays as it is"
        );
        assert_eq!(s.get::<User>(), Some(User { name: "ann".into() }));
        assert!(s.holds::<User>(), "decoded once, then kept typed");
        assert_eq!(s.to_json(), Some(serde_json::json!({"name": "ann"})));
    }
}
