//! Namespaces: their handlers (registered once, shared by every socket) and their sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};

use sockeye_protocol::socketio::Str;

use crate::adapter::{Adapter, AdapterFactory, LocalNamespace};
use crate::config::Config;
use crate::handler::{
    ConnectHandler, ConnectMiddleware, DisconnectHandler, EventHandler, EventMiddleware,
};
use crate::id::{IdMap, SocketId};
use crate::pattern::NsParams;
use crate::recovery::RecoveryLog;
use crate::socket::SocketRef;

/// An event handler and whether its events may run concurrently.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) handler: Arc<dyn EventHandler>,
    pub(crate) concurrent: bool,
}

/// The handlers of a namespace (or of every namespace a dynamic pattern creates).
#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) connect: Option<Arc<dyn ConnectHandler>>,
    pub(crate) connect_mw: Vec<Arc<dyn ConnectMiddleware>>,
    pub(crate) events: HashMap<String, Route>,
    pub(crate) any: Option<Route>,
    pub(crate) event_mw: Vec<Arc<dyn EventMiddleware>>,
    pub(crate) disconnect: Option<Arc<dyn DisconnectHandler>>,
    /// Events other servers of the cluster send to this namespace.
    pub(crate) server_event: Option<crate::server_event::ServerEventHandler>,
    /// Every event of the namespace may run concurrently.
    pub(crate) concurrent: bool,
}

/// Handlers behind a lock: registration may continue after sockets connected; dispatch takes
/// the read lock only long enough to clone one `Arc`.
#[derive(Default)]
pub(crate) struct SharedHandlers(RwLock<Handlers>);

impl SharedHandlers {
    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, Handlers> {
        crate::sync::read(&self.0)
    }

    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, Handlers> {
        crate::sync::write(&self.0)
    }

    /// The route for `event`: its own handler, else the catch-all.
    pub(crate) fn route(&self, event: &str) -> Option<Route> {
        let h = self.read();
        let mut route = h.events.get(event).or(h.any.as_ref()).cloned()?;
        route.concurrent |= h.concurrent;
        Some(route)
    }
}

/// One namespace with its sockets and its adapter.
pub(crate) struct Namespace {
    pub(crate) name: Str,
    pub(crate) handlers: Arc<SharedHandlers>,
    pub(crate) params: NsParams,
    /// For a namespace created by a dynamic registration: the registry that removes it once
    /// it is empty.
    pub(crate) registry: Option<Weak<RwLock<crate::registry::Registry>>>,
    pub(crate) config: Arc<Config>,
    sockets: RwLock<IdMap<SocketRef>>,
    adapter: Arc<dyn Adapter>,
    /// Ack ids for packets this namespace sends (one counter, so a broadcast with ack carries
    /// one id and is encoded once).
    ack_ids: AtomicU64,
    /// Sockets connecting or connected; a dynamic namespace is removed when it drops to 0.
    members: AtomicUsize,
    /// The connection-state recovery log, when recovery is enabled and the adapter keeps it.
    recovery: Option<Arc<RecoveryLog>>,
}

impl Namespace {
    pub(crate) fn new(
        name: Str,
        handlers: Arc<SharedHandlers>,
        params: NsParams,
        registry: Option<Weak<RwLock<crate::registry::Registry>>>,
        config: Arc<Config>,
        factory: &dyn AdapterFactory,
    ) -> Arc<Namespace> {
        let log = config
            .recovery
            .clone()
            .map(|recovery| Arc::new(RecoveryLog::new(recovery)));
        Arc::new_cyclic(|weak: &Weak<Namespace>| {
            let adapter =
                factory.create(LocalNamespace::new(weak.clone(), name.clone(), log.clone()));
            let recovery = log.filter(|_| {
                let supported = adapter.supports_recovery();
                if !supported {
                    // The server warns once at startup (SocketIoBuilder::build).
                    tracing::debug!(ns = %name.as_str(), "adapter cannot recover sessions: connection-state recovery off");
                }
                supported
            });
            Namespace {
                adapter,
                name,
                handlers,
                params,
                registry,
                config,
                sockets: RwLock::new(IdMap::default()),
                ack_ids: AtomicU64::new(0),
                members: AtomicUsize::new(0),
                recovery,
            }
        })
    }

    /// The recovery log, when this namespace recovers sessions.
    pub(crate) fn recovery(&self) -> Option<&Arc<RecoveryLog>> {
        self.recovery.as_ref()
    }

    pub(crate) fn parser(&self) -> sockeye_protocol::socketio::ParserKind {
        self.config.parser
    }

    pub(crate) fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.adapter
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn insert(&self, socket: SocketRef) {
        self.sockets_mut().insert(socket.id().clone(), socket);
    }

    pub(crate) fn remove(&self, id: &SocketId) -> Option<SocketRef> {
        self.sockets_mut().remove(id)
    }

    pub(crate) fn get(&self, id: &SocketId) -> Option<SocketRef> {
        self.sockets_read().get(id).cloned()
    }

    /// The sockets of `ids` that are here, looked up under one lock.
    pub(crate) fn get_many(&self, ids: &[SocketId]) -> Vec<SocketRef> {
        let sockets = self.sockets_read();
        ids.iter()
            .filter_map(|id| sockets.get(id).cloned())
            .collect()
    }

    /// The id of the socket here whose id reads `id`, if any (for the implicit own-id rooms).
    pub(crate) fn find_id(&self, id: &str) -> Option<SocketId> {
        self.sockets_read()
            .get_key_value(id)
            .map(|(id, _)| id.clone())
    }

    pub(crate) fn socket_ids(&self) -> Vec<SocketId> {
        self.sockets_read().keys().cloned().collect()
    }

    pub(crate) fn sockets(&self) -> Vec<SocketRef> {
        self.sockets_read().values().cloned().collect()
    }

    pub(crate) fn member_joined(&self) {
        self.members.fetch_add(1, Ordering::AcqRel);
    }

    /// Returns true when this was the last member.
    pub(crate) fn member_left(&self) -> bool {
        self.members.fetch_sub(1, Ordering::AcqRel) == 1
    }

    pub(crate) fn members(&self) -> usize {
        self.members.load(Ordering::Acquire)
    }

    fn sockets_read(&self) -> std::sync::RwLockReadGuard<'_, IdMap<SocketRef>> {
        crate::sync::read(&self.sockets)
    }

    fn sockets_mut(&self) -> std::sync::RwLockWriteGuard<'_, IdMap<SocketRef>> {
        crate::sync::write(&self.sockets)
    }
}
