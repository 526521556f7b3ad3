//! The embedded in-memory adapter: rooms of this node's sockets, local fan-out.

use std::collections::{BTreeSet, HashMap, HashSet};
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
pub struct MemoryAdapter {
    local: LocalNamespace,
    rooms: RwLock<Rooms>,
}

#[derive(Default)]
struct Rooms {
    members: HashMap<Room, HashSet<SocketId>>,
    of_socket: HashMap<SocketId, BTreeSet<Room>>,
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
        crate::sync::read(&self.rooms)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Rooms> {
        crate::sync::write(&self.rooms)
    }
}

impl Rooms {
    fn remove(&mut self, id: &SocketId, room: &str) {
        if let Some(set) = self.members.get_mut(room) {
            set.remove(id);
            if set.is_empty() {
                self.members.remove(room);
            }
        }
        if let Some(rooms) = self.of_socket.get_mut(id) {
            rooms.remove(room);
            if rooms.is_empty() {
                self.of_socket.remove(id);
            }
        }
    }

    fn targets(
        &self,
        opts: &BroadcastOptions,
        all: impl FnOnce() -> Vec<SocketId>,
    ) -> Vec<SocketId> {
        let excluded: HashSet<&SocketId> = opts
            .except
            .iter()
            .filter_map(|room| self.members.get(room))
            .flatten()
            .collect();
        if opts.rooms.is_empty() {
            return all()
                .into_iter()
                .filter(|id| !excluded.contains(id))
                .collect();
        }
        // A socket in several target rooms is sent the packet once.
        let mut seen = HashSet::new();
        opts.rooms
            .iter()
            .filter_map(|room| self.members.get(room))
            .flatten()
            .filter(|id| !excluded.contains(id) && seen.insert(*id))
            .cloned()
            .collect()
    }
}

impl Adapter for MemoryAdapter {
    fn add_all(&self, id: &SocketId, rooms: &[Room]) {
        let mut state = self.write();
        for room in rooms {
            state
                .members
                .entry(room.clone())
                .or_default()
                .insert(id.clone());
            state
                .of_socket
                .entry(id.clone())
                .or_default()
                .insert(room.clone());
        }
    }

    fn del(&self, id: &SocketId, room: &str) {
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
        self.read()
            .of_socket
            .get(id)
            .map(|rooms| rooms.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        self.read().targets(opts, || self.local.socket_ids())
    }

    fn local_rooms(&self) -> Vec<Room> {
        let mut rooms: Vec<Room> = self.read().members.keys().cloned().collect();
        rooms.sort();
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
                // A socket never leaves its own id room while connected.
                if room != id.as_str() {
                    state.remove(id, room);
                }
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
