//! Namespaces: their handlers (registered once, shared by every socket) and their sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};

use sockeye_protocol::socketio::Str;

use crate::adapter::{Adapter, AdapterFactory, BroadcastOptions, LocalNamespace, Room};
use crate::config::Config;
use crate::handler::{ErasedConnect, ErasedDisconnect, ErasedEvent, EventMiddleware};
use crate::id::{IdMap, SocketId};
use crate::io::ServerCore;
use crate::pattern::NsParams;
use crate::recovery::RecoveryCounters;
use crate::rooms::Rooms;
use crate::socket::SocketRef;

/// An event handler and whether its events may run concurrently.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) handler: Arc<dyn ErasedEvent>,
    pub(crate) concurrent: bool,
}

/// The handlers of a namespace (or of every namespace a dynamic pattern creates).
#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) connect: Option<Arc<dyn ErasedConnect>>,
    pub(crate) connect_mw: Vec<Arc<dyn ErasedConnect>>,
    /// Looked up by every event a client sends: foldhash, not SipHash, since the keys are the
    /// application's own (a client only chooses what is looked up, which cannot skew the
    /// table) and SipHash was two thirds of the lookup's cost.
    pub(crate) events: HashMap<String, Route, foldhash::fast::RandomState>,
    pub(crate) any: Option<Route>,
    pub(crate) event_mw: Vec<Arc<dyn EventMiddleware>>,
    pub(crate) disconnect: Option<Arc<dyn ErasedDisconnect>>,
    /// Events other servers of the cluster send to this namespace.
    pub(crate) server_event: Option<crate::server_event::ServerEventHandler>,
    /// Every event of the namespace may run concurrently.
    pub(crate) concurrent: bool,
    /// Some route (an event's or the catch-all) was registered as concurrent.
    pub(crate) any_concurrent: bool,
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

    /// Whether `event` may run concurrently with the socket's other events. Asked of every
    /// event before it is queued, so the common case (no concurrent handler at all) costs no
    /// lookup.
    pub(crate) fn is_concurrent(&self, event: &str) -> bool {
        let h = self.read();
        if h.concurrent {
            return true;
        }
        if !h.any_concurrent {
            return false;
        }
        h.events
            .get(event)
            .or(h.any.as_ref())
            .is_some_and(|r| r.concurrent)
    }

    /// The route for `event`: its own handler, else the catch-all.
    pub(crate) fn route(&self, event: &str) -> Option<Route> {
        self.read().route(event)
    }
}

impl Handlers {
    /// The handler of `event` (else the catch-all's), with its concurrency.
    pub(crate) fn route(&self, event: &str) -> Option<Route> {
        let mut route = self.events.get(event).or(self.any.as_ref()).cloned()?;
        route.concurrent |= self.concurrent;
        Some(route)
    }
}

/// One namespace with its sockets, their rooms and its adapter.
pub(crate) struct Namespace {
    pub(crate) name: Str,
    pub(crate) handlers: Arc<SharedHandlers>,
    pub(crate) params: NsParams,
    /// For a namespace created by a dynamic registration: the registry that removes it once
    /// it is empty.
    pub(crate) registry: Option<Weak<RwLock<crate::registry::Registry>>>,
    pub(crate) config: Arc<Config>,
    /// The server, for handlers that ask for its handle (weak: the server owns namespaces).
    pub(crate) server: Weak<ServerCore>,
    sockets: RwLock<IdMap<SocketRef>>,
    rooms: RwLock<Rooms>,
    adapter: Arc<dyn Adapter>,
    /// Ack ids for packets this namespace sends (one counter, so a broadcast with ack carries
    /// one id and is encoded once).
    ack_ids: AtomicU64,
    /// Sockets connecting or connected; a dynamic namespace is removed when it drops to 0.
    members: AtomicUsize,
    /// Connection-state recovery is on: enabled by the server and supported by the adapter.
    recovers: bool,
    /// The adapter asked to be told when a room gets its first or loses its last local member
    /// ([`Adapter::wants_room_events`]); read once, so the join path of every other adapter
    /// stays as it was.
    room_events: bool,
    pub(crate) recovery_stats: RecoveryCounters,
}

/// How a namespace is made: by a static or a dynamic registration.
pub(crate) struct NamespaceSpec {
    pub(crate) name: Str,
    pub(crate) handlers: Arc<SharedHandlers>,
    pub(crate) params: NsParams,
    pub(crate) registry: Option<Weak<RwLock<crate::registry::Registry>>>,
}

impl Namespace {
    pub(crate) fn new(
        spec: NamespaceSpec,
        config: Arc<Config>,
        server: Weak<ServerCore>,
        factory: &dyn AdapterFactory,
    ) -> Arc<Namespace> {
        let NamespaceSpec {
            name,
            handlers,
            params,
            registry,
        } = spec;
        Arc::new_cyclic(|weak: &Weak<Namespace>| {
            let local = LocalNamespace::new(weak.clone(), name.clone(), config.recovery.clone());
            let adapter = factory.create(local);
            let recovers = config.recovery.is_some() && adapter.supports_recovery();
            let room_events = adapter.wants_room_events();
            if config.recovery.is_some() && !recovers {
                // The server warns once at startup (SocketIoBuilder::build).
                tracing::debug!(ns = %name.as_str(), "adapter cannot recover sessions: connection-state recovery off");
            }
            Namespace {
                adapter,
                name,
                handlers,
                params,
                registry,
                config,
                server,
                sockets: RwLock::new(IdMap::default()),
                rooms: RwLock::new(Rooms::default()),
                ack_ids: AtomicU64::new(0),
                members: AtomicUsize::new(0),
                recovers,
                room_events,
                recovery_stats: RecoveryCounters::default(),
            }
        })
    }

    /// True when this namespace recovers sessions.
    pub(crate) fn recovers(&self) -> bool {
        self.recovers
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
        let id = socket.id().clone();
        let new = self.sockets_mut().insert(id.clone(), socket).is_none();
        if new && self.room_events {
            self.adapter.room_created(id.as_str(), true);
        }
    }

    pub(crate) fn remove(&self, id: &SocketId) -> Option<SocketRef> {
        let removed = self.sockets_mut().remove(id);
        if removed.is_some() && self.room_events {
            self.adapter.room_deleted(id.as_str(), true);
        }
        removed
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

    pub(crate) fn socket_ids(&self) -> Vec<SocketId> {
        self.sockets_read().keys().cloned().collect()
    }

    pub(crate) fn sockets(&self) -> Vec<SocketRef> {
        self.sockets_read().values().cloned().collect()
    }

    /// The local sockets `opts` targets, each once.
    pub(crate) fn targets(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        // Lock order: rooms, then sockets (never the other way round).
        self.rooms_read().targets(
            opts,
            || self.socket_ids(),
            |room| {
                self.sockets_read()
                    .get_key_value(room)
                    .map(|(id, _)| id.clone())
            },
        )
    }

    /// Adds socket `id` to `rooms` (its own-id room needs no bookkeeping).
    pub(crate) fn join(&self, id: &SocketId, rooms: &[Room]) {
        if rooms.iter().all(|room| room == id.as_str()) {
            // Nothing to store (no rooms, or only the implicit own-id room): no write lock.
            return;
        }
        let hooks = self.config.hooks.get();
        if hooks.is_none() && !self.room_events {
            self.rooms_mut().add_all(id, rooms);
            return;
        }
        for room in rooms {
            if room == id.as_str() {
                continue;
            }
            // Reported after the lock is released: the observer may look the socket up.
            let (added, created) = {
                let mut map = self.rooms_mut();
                let created = !map.has_members(room);
                let added = map.add_all(id, std::slice::from_ref(room));
                (added, added && created)
            };
            if added && let Some(hooks) = hooks {
                hooks.room_joined(&self.name, id, room);
            }
            if created && self.room_events {
                self.adapter.room_created(room, false);
            }
        }
    }

    /// Removes socket `id` from `room` (never from its own-id room).
    pub(crate) fn leave(&self, id: &SocketId, room: &str) {
        let (removed, deleted) = {
            let mut map = self.rooms_mut();
            let removed = map.remove(id, room);
            (removed, removed && !map.has_members(room))
        };
        if removed && let Some(hooks) = self.config.hooks.get() {
            hooks.room_left(&self.name, id, room);
        }
        if deleted && self.room_events {
            self.adapter.room_deleted(room, false);
        }
    }

    /// Removes socket `id` from every room.
    pub(crate) fn leave_all(&self, id: &SocketId) {
        let hooks = self.config.hooks.get();
        if hooks.is_none() && !self.room_events {
            self.rooms_mut().remove_all(id);
            return;
        }
        let rooms = self.rooms_of(id);
        let deleted: Vec<&Room> = {
            let mut map = self.rooms_mut();
            map.remove_all(id);
            rooms
                .iter()
                .filter(|room| room.as_str() != id.as_str() && !map.has_members(room))
                .collect()
        };
        if let Some(hooks) = hooks {
            for room in rooms.iter().filter(|room| room.as_str() != id.as_str()) {
                hooks.room_left(&self.name, id, room);
            }
        }
        if self.room_events {
            for room in deleted {
                self.adapter.room_deleted(room, false);
            }
        }
    }

    /// The rooms of socket `id`, sorted, its own-id room included.
    pub(crate) fn rooms_of(&self, id: &SocketId) -> Vec<Room> {
        self.rooms_read().of(id)
    }

    /// Every room with a member here, own-id rooms included, sorted.
    pub(crate) fn all_rooms(&self) -> Vec<Room> {
        let ids = self.socket_ids();
        self.rooms_read().all(ids.into_iter())
    }

    #[cfg(test)]
    pub(crate) fn rooms_empty(&self) -> bool {
        self.rooms_read().is_empty()
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

    fn rooms_read(&self) -> std::sync::RwLockReadGuard<'_, Rooms> {
        crate::sync::read(&self.rooms)
    }

    fn rooms_mut(&self) -> std::sync::RwLockWriteGuard<'_, Rooms> {
        crate::sync::write(&self.rooms)
    }
}
