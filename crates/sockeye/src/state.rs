//! Per-socket extensions: a type-keyed map of the application's values.
//!
//! They live inside the socket and are cleared when it disconnects, so a handle kept by a
//! background task cannot keep application data alive after the disconnect handler ran.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Mutex;

type AnyValue = Box<dyn Any + Send + Sync>;

/// The map behind [`Extensions`].
type TypeMap = HashMap<TypeId, AnyValue>;

/// A map holding at most one value of each type.
///
/// Interior mutability makes it usable through a shared [`crate::SocketRef`]. The lock is held
/// only for the map operation itself, never across an `.await`. The map is boxed on first
/// insert, so a socket that never uses extensions carries one pointer instead of a map.
#[derive(Default)]
pub struct Extensions {
    map: Mutex<Option<Box<TypeMap>>>,
}

impl Extensions {
    /// Stores `value`, returning the previous value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.lock()
            .get_or_insert_with(Box::default)
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// A clone of the value of type `T`, if one is stored.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.lock()
            .as_ref()?
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    /// Removes and returns the value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&self) -> Option<T> {
        self.lock()
            .as_mut()?
            .remove(&TypeId::of::<T>())
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// True when a value of type `T` is stored.
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|map| map.contains_key(&TypeId::of::<T>()))
    }

    /// Runs `f` on the stored `T` and returns its result (`None` when there is no `T`).
    pub fn update<T: Send + Sync + 'static, R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.lock()
            .as_mut()?
            .get_mut(&TypeId::of::<T>())
            .and_then(|v| v.downcast_mut::<T>())
            .map(f)
    }

    /// Drops every value.
    pub(crate) fn clear(&self) {
        // Take the values out first so their destructors run without the lock held.
        let old = self.lock().take();
        drop(old);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Box<TypeMap>>> {
        // A panic while holding this lock cannot leave the map half-updated (every operation
        // is one map call), so a poisoned lock still guards valid data.
        crate::sync::lock(&self.map)
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.lock().as_ref().map_or(0, |map| map.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_keep_one_value_per_type() {
        let ext = Extensions::default();
        assert_eq!(ext.insert(5u32), None);
        assert_eq!(ext.insert(7u32), Some(5));
        ext.insert(String::from("a"));
        assert_eq!(ext.get::<u32>(), Some(7));
        assert_eq!(ext.update::<String, _>(|s| s.push('b')), Some(()));
        assert_eq!(ext.get::<String>().as_deref(), Some("ab"));
        assert_eq!(ext.remove::<u32>(), Some(7));
        assert!(!ext.contains::<u32>());
        ext.clear();
        assert!(!ext.contains::<String>());
    }
}
