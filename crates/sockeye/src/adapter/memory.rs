//! The embedded in-memory adapter: rooms of this node's sockets, local fan-out.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::time::Duration;

use super::{
    AckStream, Adapter, BoxFuture, BroadcastOptions, BroadcastPacket, LocalNamespace, Room,
    SocketInfo,
};
use crate::error::AdapterError;
use crate::id::SocketId;

/// The default adapter: one node, everything in memory.
///
/// Rooms map to their members and each socket to its rooms, both behind one lock that is
/// only held for map operations. A room is deleted when its last member leaves, so the maps
/// never hold more than the live sockets' memberships.
///
/// A socket's own-id room is implicit: it is not stored (an idle socket that joined nothing
/// costs the adapter no memory at all), and a room whose name is the id of a socket of this
/// namespace on this node contains that socket, in addition to any socket that joined a room
/// of that name explicitly. `socket_rooms` and `local_rooms` list it as the JavaScript
/// adapter does, so cluster replies (`fetchSockets`, `allRooms`) are unchanged.
pub struct MemoryAdapter {
    local: LocalNamespace,
    rooms: RwLock<Rooms>,
}

#[derive(Default)]
struct Rooms {
    /// Explicitly joined rooms and their members.
    members: HashMap<Room, HashSet<SocketId>>,
    /// Each socket's explicitly joined rooms, sorted; a socket that joined none has no entry.
    /// A sorted `Vec` because sockets join few rooms: one room costs 24 bytes, where a
    /// `BTreeSet` leaf costs 11 slots.
    of_socket: HashMap<SocketId, Vec<Room>>,
}

impl MemoryAdapter {
    /// An adapter delivering to the sockets of `local`.
    pub fn new(local: LocalNamespace) -> MemoryAdapter {
        MemoryAdapter {
            local,
            rooms: RwLock::new(Rooms::default()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Rooms> {
        // Every write below keeps both maps consistent before it can panic (it cannot), so a
        // lock poisoned elsewhere still guards valid data.
        crate::sync::read(&self.rooms)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Rooms> {
        crate::sync::write(&self.rooms)
    }
}

impl Rooms {
    fn insert(&mut self, id: &SocketId, room: &Room) {
        let rooms = self.of_socket.entry(id.clone()).or_default();
        if let Err(at) = rooms.binary_search(room) {
            if rooms.is_empty() {
                // Most sockets join one or two rooms: no room for four up front.
                rooms.reserve_exact(1);
            }
            rooms.insert(at, room.clone());
            self.members
                .entry(room.clone())
                .or_default()
                .insert(id.clone());
        }
    }

    fn remove(&mut self, id: &SocketId, room: &str) {
        if let Some(set) = self.members.get_mut(room) {
            set.remove(id);
            if set.is_empty() {
                self.members.remove(room);
            }
        }
        if let Some(rooms) = self.of_socket.get_mut(id) {
            if let Ok(at) = rooms.binary_search_by(|r| r.as_str().cmp(room)) {
                rooms.remove(at);
            }
            if rooms.is_empty() {
                self.of_socket.remove(id);
            }
        }
    }

    /// The local sockets `opts` targets, each once; `local` resolves own-id rooms.
    fn targets(&self, opts: &BroadcastOptions, local: &LocalNamespace) -> Vec<SocketId> {
        // A socket is excluded by a room it joined or by its own id (its implicit room), so
        // every except-room's name is itself excluded as an id.
        let mut excluded: HashSet<&str> = HashSet::new();
        for room in &opts.except {
            excluded.insert(room.as_str());
            if let Some(set) = self.members.get(room) {
                excluded.extend(set.iter().map(SocketId::as_str));
            }
        }
        if opts.rooms.is_empty() {
            let mut all = local.socket_ids();
            if !excluded.is_empty() {
                all.retain(|id| !excluded.contains(id.as_str()));
            }
            return all;
        }
        // A socket in several target rooms is sent the packet once. With one target room
        // there is nothing to merge: its explicit members are distinct, and a socket never
        // joins its own room explicitly (`add_all` skips it).
        let merge = opts.rooms.len() > 1;
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for room in &opts.rooms {
            if let Some(id) = local.find_socket(room)
                && !excluded.contains(room.as_str())
                && (!merge || seen.insert(room.as_str()))
            {
                out.push(id);
            }
            if let Some(set) = self.members.get(room) {
                for id in set {
                    if !excluded.contains(id.as_str()) && (!merge || seen.insert(id.as_str())) {
                        out.push(id.clone());
                    }
                }
            }
        }
        out
    }
}

impl Adapter for MemoryAdapter {
    fn add_all(&self, id: &SocketId, rooms: &[Room]) {
        if rooms.iter().all(|room| room == id.as_str()) {
            // Nothing to store (no rooms, or only the implicit own-id room): no write lock.
            return;
        }
        let mut state = self.write();
        for room in rooms {
            // The own-id room is implicit: storing it would cost memory for nothing.
            if room != id.as_str() {
                state.insert(id, room);
            }
        }
    }

    fn del(&self, id: &SocketId, room: &str) {
        // The own-id room is not stored, so it is never removed here.
        self.write().remove(id, room);
    }

    fn del_all(&self, id: &SocketId) {
        let mut state = self.write();
        if let Some(rooms) = state.of_socket.remove(id) {
            for room in rooms {
                if let Some(set) = state.members.get_mut(&room) {
                    set.remove(id);
                    if set.is_empty() {
                        state.members.remove(&room);
                    }
                }
            }
        }
    }

    fn socket_rooms(&self, id: &SocketId) -> Vec<Room> {
        let state = self.read();
        let explicit = state
            .of_socket
            .get(id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut rooms = Vec::with_capacity(explicit.len() + 1);
        rooms.extend_from_slice(explicit);
        // The explicit list is sorted and never holds the own id: insert it in its place.
        let at = rooms
            .binary_search_by(|r| r.as_str().cmp(id.as_str()))
            .unwrap_or_else(|at| at);
        rooms.insert(at, id.as_str().to_owned());
        rooms
    }

    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        self.read().targets(opts, &self.local)
    }

    fn local_rooms(&self) -> Vec<Room> {
        let mut rooms: Vec<Room> = self.read().members.keys().cloned().collect();
        // Every local socket's own room exists, as in the JavaScript adapter's `rooms` map.
        rooms.extend(
            self.local
                .socket_ids()
                .iter()
                .map(|id| id.as_str().to_owned()),
        );
        rooms.sort_unstable();
        // A room may be named after a socket's id and joined explicitly by others too.
        rooms.dedup();
        rooms
    }

    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let targets = self.local_sockets(&opts);
        self.local.deliver(&targets, &packet, opts.flags.volatile);
        Box::pin(std::future::ready(Ok(())))
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        let targets = self.local_sockets(&opts);
        let stream = self
            .local
            .deliver_with_ack(&targets, packet, opts.flags.volatile, timeout);
        Box::pin(std::future::ready(Ok(stream)))
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        let ns = self.local.name().to_owned();
        let infos = self
            .local_sockets(&opts)
            .into_iter()
            .map(|id| SocketInfo {
                rooms: self.socket_rooms(&id),
                handshake: self.local.handshake(&id),
                id,
                ns: ns.clone(),
                local: true,
            })
            .collect();
        Box::pin(std::future::ready(Ok(infos)))
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        for id in self.local_sockets(&opts) {
            self.add_all(&id, &rooms);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let targets = self.local_sockets(&opts);
        let mut state = self.write();
        for id in &targets {
            for room in &rooms {
                // A socket never leaves its own id room while connected: it is not stored,
                // so `remove` leaves it alone.
                state.remove(id, room);
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let targets = self.local_sockets(&opts);
        self.local.disconnect(&targets, close);
        Box::pin(std::future::ready(Ok(())))
    }

    fn server_side_emit(&self, packet: BroadcastPacket) -> BoxFuture<'_, Result<(), AdapterError>> {
        // One node: there is no other server to tell.
        drop(packet);
        Box::pin(std::future::ready(Ok(())))
    }

    fn server_side_emit_with_ack(
        &self,
        packet: BroadcastPacket,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        let _ = (packet, timeout);
        Box::pin(std::future::ready(Ok(AckStream::empty())))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Weak};

    use sockeye_protocol::socketio::Str;

    use super::*;
    use crate::ns::Namespace;
    use crate::socket::SocketRef;
    use crate::testing::{FakeConn, root_namespace};

    fn socket(ns: &Arc<Namespace>) -> SocketId {
        let socket = SocketRef::new(ns.clone(), FakeConn::new(0), ns.config.clone(), None);
        ns.insert(socket.clone());
        socket.id().clone()
    }

    fn rooms(ids: &[&SocketId], names: &[&str]) -> Vec<Room> {
        let mut all: Vec<Room> = ids.iter().map(|id| id.as_str().to_owned()).collect();
        all.extend(names.iter().map(|r| (*r).to_owned()));
        all.sort();
        all.dedup();
        all
    }

    fn sorted(mut ids: Vec<SocketId>) -> Vec<SocketId> {
        ids.sort();
        ids
    }

    fn opts(to: &[&str], except: &[&str]) -> BroadcastOptions {
        BroadcastOptions {
            rooms: to.iter().map(|r| (*r).to_owned()).collect(),
            except: except.iter().map(|r| (*r).to_owned()).collect(),
            ..BroadcastOptions::default()
        }
    }

    #[test]
    fn own_id_rooms_are_implicit_but_listed_and_routed() {
        let ns = root_namespace();
        let adapter = MemoryAdapter::new(LocalNamespace::new(
            Arc::downgrade(&ns),
            Str::from("/"),
            None,
        ));
        let (a, b) = (socket(&ns), socket(&ns));

        // Adding the own room stores nothing: an idle socket costs the adapter nothing.
        adapter.add_all(&a, &[a.as_str().to_owned()]);
        assert!(adapter.read().members.is_empty() && adapter.read().of_socket.is_empty());
        assert_eq!(adapter.socket_rooms(&a), rooms(&[&a], &[]));
        assert_eq!(
            adapter.local_rooms(),
            rooms(&[&a, &b], &[]),
            "allRooms lists sid rooms"
        );
        assert_eq!(
            adapter.local_sockets(&opts(&[a.as_str()], &[])),
            vec![a.clone()]
        );

        // b joins the room named after a, and a joins "r".
        adapter.add_all(&b, &[a.as_str().to_owned()]);
        adapter.add_all(&a, &["r".to_owned()]);
        assert_eq!(adapter.socket_rooms(&a), rooms(&[&a], &["r"]));
        assert_eq!(adapter.socket_rooms(&b), rooms(&[&a, &b], &[]));
        assert_eq!(
            adapter.local_rooms(),
            rooms(&[&a, &b], &["r"]),
            "no duplicate"
        );
        assert_eq!(
            sorted(adapter.local_sockets(&opts(&[a.as_str()], &[]))),
            sorted(vec![a.clone(), b.clone()])
        );
        // Several target rooms: each socket once.
        assert_eq!(
            sorted(adapter.local_sockets(&opts(&[a.as_str(), "r", b.as_str()], &[]))),
            sorted(vec![a.clone(), b.clone()])
        );
        // Excluding a's room excludes a and its explicit member b.
        assert!(adapter.local_sockets(&opts(&[], &[a.as_str()])).is_empty());
        assert_eq!(
            adapter.local_sockets(&opts(&[], &[b.as_str()])),
            vec![a.clone()]
        );
        // An unknown id is an empty room.
        assert!(
            adapter
                .local_sockets(&opts(&["no-such-id"], &[]))
                .is_empty()
        );

        // Leaving the own room is ignored, by one socket or in bulk.
        adapter.del(&a, a.as_str());
        let bulk = adapter.del_sockets(opts(&[a.as_str()], &[]), vec![a.as_str().to_owned()]);
        assert!(matches!(
            futures_util::FutureExt::now_or_never(bulk),
            Some(Ok(()))
        ));
        assert_eq!(adapter.socket_rooms(&a), rooms(&[&a], &["r"]));
        assert_eq!(
            adapter.socket_rooms(&b),
            rooms(&[&b], &[]),
            "b left a's room"
        );

        // Once a is gone from the namespace, its room routes to explicit members only.
        adapter.add_all(&b, &[a.as_str().to_owned()]);
        adapter.del_all(&a);
        drop(ns.remove(&a));
        assert_eq!(
            adapter.local_sockets(&opts(&[a.as_str()], &[])),
            vec![b.clone()]
        );
        assert_eq!(adapter.local_rooms(), rooms(&[&a, &b], &[]));
        adapter.del_all(&b);
        assert!(adapter.read().members.is_empty() && adapter.read().of_socket.is_empty());
    }

    #[test]
    fn a_namespace_gone_routes_own_rooms_nowhere() {
        let adapter = MemoryAdapter::new(LocalNamespace::new(Weak::new(), Str::from("/"), None));
        let id = SocketId::random();
        assert!(adapter.local_sockets(&opts(&[id.as_str()], &[])).is_empty());
        assert!(adapter.local_rooms().is_empty());
    }
}
