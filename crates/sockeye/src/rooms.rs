//! The rooms of one namespace's local sockets: synchronous bookkeeping owned by the namespace,
//! never by the adapter (an adapter reaches it through [`crate::adapter::LocalNamespace`]).

use std::collections::{HashMap, HashSet};

use crate::adapter::{BroadcastOptions, Room};
use crate::id::SocketId;

/// Explicitly joined rooms, both ways.
///
/// A socket's own-id room is implicit: it is not stored (an idle socket that joined nothing
/// costs no memory here), and a room whose name is the id of a socket of the namespace contains
/// that socket, in addition to any socket that joined a room of that name explicitly. Listings
/// (`socket_rooms`, `all`) include own-id rooms as the JavaScript adapter does, so cluster
/// replies (`fetchSockets`, `allRooms`) look the same.
///
/// A room is deleted when its last member leaves, so the maps never hold more than the live
/// sockets' memberships.
#[derive(Default)]
pub(crate) struct Rooms {
    /// Explicitly joined rooms and their members.
    members: HashMap<Room, HashSet<SocketId>>,
    /// Each socket's explicitly joined rooms, sorted; a socket that joined none has no entry.
    /// A sorted `Vec` because sockets join few rooms: one room costs 24 bytes, where a
    /// `BTreeSet` leaf costs 11 slots.
    of_socket: HashMap<SocketId, Vec<Room>>,
}

impl Rooms {
    /// True when `room` has an explicit member (own-id rooms are not counted).
    pub(crate) fn has_members(&self, room: &str) -> bool {
        self.members.contains_key(room)
    }

    /// Adds `id` to every room of `rooms` but its own-id room. Returns true when a room was
    /// added.
    pub(crate) fn add_all(&mut self, id: &SocketId, rooms: &[Room]) -> bool {
        let mut added = false;
        for room in rooms {
            if room != id.as_str() {
                added |= self.insert(id, room);
            }
        }
        added
    }

    fn insert(&mut self, id: &SocketId, room: &Room) -> bool {
        let rooms = self.of_socket.entry(id.clone()).or_default();
        let Err(at) = rooms.binary_search(room) else {
            return false;
        };
        if rooms.is_empty() {
            // Most sockets join one or two rooms: no room for four up front.
            rooms.reserve_exact(1);
        }
        rooms.insert(at, room.clone());
        self.members
            .entry(room.clone())
            .or_default()
            .insert(id.clone());
        true
    }

    /// Removes `id` from `room` (never from its own-id room, which is not stored). Returns true
    /// when it was a member.
    pub(crate) fn remove(&mut self, id: &SocketId, room: &str) -> bool {
        if let Some(set) = self.members.get_mut(room) {
            set.remove(id);
            if set.is_empty() {
                self.members.remove(room);
            }
        }
        let Some(rooms) = self.of_socket.get_mut(id) else {
            return false;
        };
        let removed = match rooms.binary_search_by(|r| r.as_str().cmp(room)) {
            Ok(at) => {
                rooms.remove(at);
                true
            }
            Err(_) => false,
        };
        if rooms.is_empty() {
            self.of_socket.remove(id);
        }
        removed
    }

    /// Removes `id` from every room.
    pub(crate) fn remove_all(&mut self, id: &SocketId) {
        let Some(rooms) = self.of_socket.remove(id) else {
            return;
        };
        for room in rooms {
            if let Some(set) = self.members.get_mut(&room) {
                set.remove(id);
                if set.is_empty() {
                    self.members.remove(&room);
                }
            }
        }
    }

    /// The rooms of `id`, sorted, its own-id room included.
    pub(crate) fn of(&self, id: &SocketId) -> Vec<Room> {
        let explicit = self
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

    /// Every room with a member, sorted: the explicitly joined ones and the own-id room of
    /// every socket of `ids`.
    pub(crate) fn all(&self, ids: impl Iterator<Item = SocketId>) -> Vec<Room> {
        let mut rooms: Vec<Room> = self.members.keys().cloned().collect();
        rooms.extend(ids.map(|id| id.as_str().to_owned()));
        rooms.sort_unstable();
        // A room may be named after a socket's id and joined explicitly by others too.
        rooms.dedup();
        rooms
    }

    /// The sockets `opts` targets, each once. `all` lists every socket of the namespace and
    /// `find` resolves an own-id room to its socket.
    pub(crate) fn targets(
        &self,
        opts: &BroadcastOptions,
        all: impl FnOnce() -> Vec<SocketId>,
        find: impl Fn(&str) -> Option<SocketId>,
    ) -> Vec<SocketId> {
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
            let mut all = all();
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
            if let Some(id) = find(room)
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

    /// True when nothing is stored (for tests of the cleanup paths).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty() && self.of_socket.is_empty()
    }
}
