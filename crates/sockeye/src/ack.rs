//! Bookkeeping of acknowledgements the server waits for.
//!
//! Every ack the server requests gets an id from its namespace's counter (so a broadcast can
//! carry one id and be encoded once for all recipients, as the JavaScript server does) and an
//! entry in the map of each socket it was sent to. The entry is removed when the ack arrives,
//! when the waiter gives up (timeout, or the future is dropped) and when the socket goes away:
//! nothing stays behind, and a late ack finds no entry and is ignored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::oneshot;

/// The pending acks of one socket, keyed by ack id.
pub(crate) struct AckMap<A> {
    pending: Mutex<HashMap<u64, oneshot::Sender<A>>>,
}

impl<A> Default for AckMap<A> {
    fn default() -> Self {
        AckMap {
            pending: Mutex::new(HashMap::new()),
        }
    }
}

impl<A> AckMap<A> {
    /// Registers a waiter for ack `id`. Dropping the returned guard removes the entry.
    pub(crate) fn register(self: &Arc<Self>, id: u64) -> PendingAck<A> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, tx);
        PendingAck {
            rx,
            id,
            map: Arc::downgrade(self),
        }
    }

    /// Hands an ack from the client to its waiter. Returns false for an unknown or late id.
    pub(crate) fn resolve(&self, id: u64, value: A) -> bool {
        let waiter = self.lock().remove(&id);
        match waiter {
            Some(tx) => tx.send(value).is_ok(),
            None => false,
        }
    }

    /// Drops every waiter: each sees the socket as disconnected.
    pub(crate) fn clear(&self) {
        let old = std::mem::take(&mut *self.lock());
        drop(old);
    }

    /// Number of acks still awaited.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn remove(&self, id: u64) {
        let old = self.lock().remove(&id);
        drop(old);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<A>>> {
        crate::sync::lock(&self.pending)
    }
}

/// A socket's [`AckMap`], allocated when the socket first asks for an ack.
///
/// Most sockets never wait for an ack (clients ask, the server answers), so an idle socket
/// holds only an empty slot here instead of a shared map of its own.
pub(crate) struct LazyAckMap<A> {
    map: OnceLock<Arc<AckMap<A>>>,
}

impl<A> Default for LazyAckMap<A> {
    fn default() -> Self {
        LazyAckMap {
            map: OnceLock::new(),
        }
    }
}

impl<A> LazyAckMap<A> {
    /// Registers a waiter for ack `id`, creating the map on first use.
    pub(crate) fn register(&self, id: u64) -> PendingAck<A> {
        self.map
            .get_or_init(|| Arc::new(AckMap::default()))
            .register(id)
    }

    /// Hands an ack from the client to its waiter. Returns false for an unknown or late id
    /// (always, while no ack was ever asked for).
    pub(crate) fn resolve(&self, id: u64, value: A) -> bool {
        self.map.get().is_some_and(|map| map.resolve(id, value))
    }

    /// Drops every waiter: each sees the socket as disconnected. The map itself stays (an
    /// empty map holds no heap memory).
    pub(crate) fn clear(&self) {
        if let Some(map) = self.map.get() {
            map.clear();
        }
    }

    /// Number of acks still awaited.
    pub(crate) fn len(&self) -> usize {
        self.map.get().map_or(0, |map| map.len())
    }
}

/// One awaited ack. Dropping it (after a timeout, or when the caller stops waiting) removes
/// the entry from the socket's map.
pub(crate) struct PendingAck<A> {
    rx: oneshot::Receiver<A>,
    id: u64,
    map: Weak<AckMap<A>>,
}

impl<A> PendingAck<A> {
    /// Waits for the ack. `None` when the socket disconnected first.
    pub(crate) async fn wait(mut self) -> Option<A> {
        (&mut self.rx).await.ok()
    }
}

impl<A> Drop for PendingAck<A> {
    fn drop(&mut self) {
        if let Some(map) = self.map.upgrade() {
            map.remove(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn ack_reaches_its_waiter_once() {
        let map = Arc::new(AckMap::<u32>::default());
        let pending = map.register(1);
        assert!(map.resolve(1, 10));
        assert_eq!(pending.wait().await, Some(10));
        assert!(
            !map.resolve(1, 11),
            "a second ack for the same id is ignored"
        );
        assert_eq!(map.len(), 0);
    }

    #[tokio::test]
    async fn timed_out_waiter_leaves_nothing_behind() {
        let map = Arc::new(AckMap::<u32>::default());
        let pending = map.register(7);
        let waited = tokio::time::timeout(Duration::from_millis(10), pending.wait()).await;
        assert!(waited.is_err());
        assert_eq!(
            map.len(),
            0,
            "the entry is removed with the timed-out future"
        );
        assert!(!map.resolve(7, 1), "a late ack is ignored");
    }

    #[tokio::test]
    async fn lazy_map_is_created_by_the_first_registration() {
        let acks = LazyAckMap::<u32>::default();
        assert!(
            acks.map.get().is_none(),
            "nothing allocated before an ack is asked"
        );
        assert!(!acks.resolve(1, 1), "an ack before any request is ignored");
        acks.clear();
        assert_eq!(acks.len(), 0);
        assert!(
            acks.map.get().is_none(),
            "resolve, clear and len allocate nothing"
        );
        let pending = acks.register(2);
        assert_eq!(acks.len(), 1);
        assert!(acks.resolve(2, 20));
        assert_eq!(pending.wait().await, Some(20));
        let dropped = acks.register(3);
        drop(dropped);
        assert_eq!(acks.len(), 0, "a dropped waiter leaves the lazy map too");
    }

    #[tokio::test]
    async fn clear_wakes_waiters_as_disconnected() {
        let map = Arc::new(AckMap::<u32>::default());
        let pending = map.register(3);
        map.clear();
        assert_eq!(pending.wait().await, None);
    }
}
