//! The handle an adapter uses to reach the sockets of its namespace on this node: their rooms
//! and delivery to them, all synchronous.

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt as _;
use sockeye_protocol::socketio::Str;

use crate::adapter::{AckStream, BroadcastOptions, BroadcastPacket, Room, SocketInfo};
use crate::error::AckError;
use crate::id::SocketId;
use crate::ns::Namespace;
use crate::reason::DisconnectReason;
use crate::recovery::RecoveryConfig;
use crate::server_event::ServerEvent;

/// This node's side of a namespace, given to its adapter.
///
/// It holds the namespace weakly (the namespace owns the adapter), so every method does
/// nothing once the namespace is gone.
#[derive(Clone)]
pub struct LocalNamespace {
    ns: Weak<Namespace>,
    name: Str,
    recovery: Option<RecoveryConfig>,
}

impl std::fmt::Debug for LocalNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNamespace")
            .field("name", &self.name.as_str())
            .finish_non_exhaustive()
    }
}

impl LocalNamespace {
    pub(crate) fn new(
        ns: Weak<Namespace>,
        name: Str,
        recovery: Option<RecoveryConfig>,
    ) -> LocalNamespace {
        LocalNamespace { ns, name, recovery }
    }

    /// The namespace name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The recovery settings when the server enables connection-state recovery: an adapter
    /// that supports it ([`crate::adapter::Adapter::supports_recovery`]) then stamps, keeps and
    /// bounds accordingly.
    pub fn recovery_config(&self) -> Option<&RecoveryConfig> {
        self.recovery.as_ref()
    }

    /// The ids of every socket connected (or connecting) here.
    pub fn socket_ids(&self) -> Vec<SocketId> {
        self.ns
            .upgrade()
            .map(|ns| ns.socket_ids())
            .unwrap_or_default()
    }

    /// The local sockets `opts` targets, each once.
    pub fn targets(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        self.ns
            .upgrade()
            .map(|ns| ns.targets(opts))
            .unwrap_or_default()
    }

    /// The rooms of local socket `id`, sorted, its own-id room included (also while its
    /// disconnect handler runs).
    pub fn socket_rooms(&self, id: &SocketId) -> Vec<Room> {
        self.ns
            .upgrade()
            .map(|ns| ns.rooms_of(id))
            .unwrap_or_default()
    }

    /// Every room with a local member, sorted, the own-id room of every local socket included
    /// (as the JavaScript adapter's `rooms` map, which `allRooms` replies list).
    pub fn rooms(&self) -> Vec<Room> {
        self.ns
            .upgrade()
            .map(|ns| ns.all_rooms())
            .unwrap_or_default()
    }

    /// Encodes `packet` once and queues the same bytes for every local socket `opts` targets;
    /// returns how many were sent it.
    ///
    /// A socket whose queue is full is closed by the engine (slow reader), unless the packet is
    /// volatile, in which case it just misses it. A socket still in its connect step gets the
    /// packet right after its CONNECT reply.
    pub fn deliver(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) -> usize {
        let Some(ns) = self.ns.upgrade() else {
            return 0;
        };
        let targets = ns.targets(opts);
        if targets.is_empty() {
            return 0;
        }
        let frames = match packet.encode(ns.parser(), None) {
            Ok(frames) => frames,
            Err(e) => {
                tracing::error!(ns = %self.name(), error = %e, "broadcast packet cannot be encoded");
                return 0;
            }
        };
        let mut sent = 0;
        for socket in ns.get_many(&targets) {
            match socket.send_logged(&frames, packet.offset.as_ref(), opts.flags.volatile) {
                Ok(()) => sent += 1,
                Err(e) => {
                    tracing::debug!(socket = %socket.id(), error = %e, "broadcast not delivered");
                }
            }
        }
        sent
    }

    /// Like [`LocalNamespace::deliver`], each recipient asked to acknowledge within `timeout`.
    /// The packet carries one ack id for every recipient, so it is still encoded once.
    pub fn deliver_with_ack(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> AckStream {
        let Some(ns) = self.ns.upgrade() else {
            return AckStream::empty();
        };
        let ack_id = ns.next_ack_id();
        let frames = match packet.encode(ns.parser(), Some(ack_id)) {
            Ok(frames) => frames,
            Err(e) => {
                tracing::error!(ns = %self.name(), error = %e, "broadcast packet cannot be encoded");
                return AckStream::empty();
            }
        };
        let waits = futures_util::stream::FuturesUnordered::new();
        let hooks = ns.config.hooks.get().cloned();
        for socket in ns.get_many(&ns.targets(opts)) {
            let pending = socket.register_ack(ack_id);
            let id = socket.id().clone();
            // Only with an observer: a broadcast with ack allocates nothing more without one.
            let observer = hooks.clone().map(|h| (h, self.name().to_owned()));
            match socket.send_encoded(&frames, opts.flags.volatile) {
                Ok(()) => waits.push(async move {
                    let result = match tokio::time::timeout(timeout, pending.wait()).await {
                        Ok(Some(args)) => Ok(args),
                        Ok(None) => Err(AckError::Disconnected),
                        Err(_) => {
                            if let Some((hooks, ns)) = &observer {
                                hooks.ack_timeout(ns);
                            }
                            Err(AckError::Timeout(timeout))
                        }
                    };
                    (id, result)
                }),
                Err(e) => {
                    drop(pending);
                    tracing::debug!(socket = %id, error = %e, "broadcast with ack not delivered");
                }
            }
        }
        let expected = waits.len();
        AckStream::new(waits.fuse(), expected)
    }

    /// What this node knows of every local socket `opts` targets.
    pub fn fetch(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        let Some(ns) = self.ns.upgrade() else {
            return Vec::new();
        };
        ns.get_many(&ns.targets(opts))
            .into_iter()
            .map(|socket| SocketInfo {
                id: socket.id().clone(),
                ns: self.name().to_owned(),
                rooms: socket.rooms(),
                local: true,
                handshake: Some(crate::handshake::describe(&socket)),
                data: socket.session_json(),
            })
            .collect()
    }

    /// Makes every local socket `opts` targets join `rooms`.
    pub fn add_rooms(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        let Some(ns) = self.ns.upgrade() else { return };
        for socket in ns.get_many(&ns.targets(opts)) {
            socket.join_all(rooms.iter().cloned());
        }
    }

    /// Makes every local socket `opts` targets leave `rooms` (never its own-id room).
    pub fn del_rooms(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        let Some(ns) = self.ns.upgrade() else { return };
        for socket in ns.get_many(&ns.targets(opts)) {
            for room in rooms {
                socket.leave(room);
            }
        }
    }

    /// Disconnects every local socket `opts` targets (a DISCONNECT packet, then its disconnect
    /// handler); with `close`, closes its whole Engine.IO session instead.
    pub fn disconnect(&self, opts: &BroadcastOptions, close: bool) {
        let Some(ns) = self.ns.upgrade() else { return };
        for socket in ns.get_many(&ns.targets(opts)) {
            if close {
                socket.close_session();
            } else {
                socket.disconnect_with(DisconnectReason::ServerDisconnect, true);
            }
        }
    }

    /// Runs the handler registered with [`crate::SocketIo::on_server_event`] for an event
    /// another server sent to this namespace; an event with no handler is logged and dropped
    /// (its sender's ack wait then times out for this server, as with the JS server).
    pub fn server_event(&self, event: ServerEvent) {
        let handler = self
            .ns
            .upgrade()
            .and_then(|ns| ns.handlers.read().server_event.clone());
        match handler {
            Some(handler) => handler(event),
            None => {
                tracing::debug!(ns = %self.name(), event = %event.event, "server-side event with no handler");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sockeye_protocol::socketio::Str;

    use crate::adapter::{BroadcastOptions, BroadcastPacket, Room};
    use crate::id::SocketId;
    use crate::ns::Namespace;
    use crate::packet::Args;
    use crate::socket::SocketRef;
    use crate::testing::{FakeConn, bytes, connected, root_namespace};

    fn opts(to: &[&str], except: &[&str]) -> BroadcastOptions {
        BroadcastOptions {
            rooms: to.iter().map(|r| (*r).to_owned()).collect(),
            except: except.iter().map(|r| (*r).to_owned()).collect(),
            ..BroadcastOptions::default()
        }
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

    fn listed(ns: &Arc<Namespace>) -> SocketId {
        let socket = SocketRef::new(ns.clone(), FakeConn::new(0), ns.config.clone(), None);
        ns.insert(socket.clone());
        socket.id().clone()
    }

    #[tokio::test]
    async fn broadcast_is_encoded_once_and_shared() {
        let ns = root_namespace();
        let (c1, c2) = (FakeConn::new(0), FakeConn::new(0));
        let s1 = connected(&ns, c1.clone());
        let s2 = connected(&ns, c2.clone());
        s1.join("r");
        s2.join("r");
        let packet = BroadcastPacket::new(
            Str::from("/"),
            Str::from("ev"),
            Args::from_value(&bytes::Bytes::from_static(b"\x01\x02")).unwrap(),
        );
        let opts = opts(&["r", s1.id().as_str()], &[]);
        ns.adapter().broadcast(packet, opts).await.unwrap();
        let f1 = c1.frames.lock().unwrap();
        let f2 = c2.frames.lock().unwrap();
        // CONNECT reply, then the packet and its attachment, once each.
        assert_eq!(f1.len(), 3, "{f1:?}");
        assert_eq!(f2.len(), 3, "{f2:?}");
        assert_eq!(
            bytes(&f1[1]),
            br#"451-["ev",{"_placeholder":true,"num":0}]"#.as_slice()
        );
        for i in 1..3 {
            assert_eq!(
                bytes(&f1[i]).as_ptr(),
                bytes(&f2[i]).as_ptr(),
                "the same bytes, not a copy"
            );
        }
    }

    #[tokio::test]
    async fn volatile_skips_busy_and_connecting_sockets() {
        let ns = root_namespace();
        let idle = FakeConn::new(0);
        let busy = FakeConn::new(3);
        connected(&ns, idle.clone());
        connected(&ns, busy.clone());
        let connecting = FakeConn::new(0);
        let pending = SocketRef::new(ns.clone(), connecting.clone(), ns.config.clone(), None);
        ns.insert(pending.clone());
        let mut opts = BroadcastOptions::default();
        opts.flags.volatile = true;
        let packet = BroadcastPacket::new(Str::from("/"), Str::from("tick"), Args::empty());
        ns.adapter().broadcast(packet, opts).await.unwrap();
        assert_eq!(idle.frames.lock().unwrap().len(), 2, "CONNECT + tick");
        assert_eq!(busy.frames.lock().unwrap().len(), 1, "CONNECT only");
        pending.finish_connect().unwrap();
        assert_eq!(
            connecting.frames.lock().unwrap().len(),
            1,
            "held packets exclude volatile ones"
        );
    }

    #[test]
    fn own_id_rooms_are_implicit_but_listed_and_routed() {
        let ns = root_namespace();
        let (a, b) = (listed(&ns), listed(&ns));

        // Joining the own room stores nothing: an idle socket costs the rooms nothing.
        ns.join(&a, &[a.as_str().to_owned()]);
        assert!(ns.rooms_empty());
        assert_eq!(ns.rooms_of(&a), rooms(&[&a], &[]));
        assert_eq!(
            ns.all_rooms(),
            rooms(&[&a, &b], &[]),
            "allRooms lists sid rooms"
        );
        assert_eq!(ns.targets(&opts(&[a.as_str()], &[])), vec![a.clone()]);

        // b joins the room named after a, and a joins "r".
        ns.join(&b, &[a.as_str().to_owned()]);
        ns.join(&a, &["r".to_owned()]);
        assert_eq!(ns.rooms_of(&a), rooms(&[&a], &["r"]));
        assert_eq!(ns.rooms_of(&b), rooms(&[&a, &b], &[]));
        assert_eq!(ns.all_rooms(), rooms(&[&a, &b], &["r"]), "no duplicate");
        assert_eq!(
            sorted(ns.targets(&opts(&[a.as_str()], &[]))),
            sorted(vec![a.clone(), b.clone()])
        );
        // Several target rooms: each socket once.
        assert_eq!(
            sorted(ns.targets(&opts(&[a.as_str(), "r", b.as_str()], &[]))),
            sorted(vec![a.clone(), b.clone()])
        );
        // Excluding a's room excludes a and its explicit member b.
        assert!(ns.targets(&opts(&[], &[a.as_str()])).is_empty());
        assert_eq!(ns.targets(&opts(&[], &[b.as_str()])), vec![a.clone()]);
        // An unknown id is an empty room.
        assert!(ns.targets(&opts(&["no-such-id"], &[])).is_empty());

        // Leaving the own room is ignored.
        ns.leave(&a, a.as_str());
        assert_eq!(ns.rooms_of(&a), rooms(&[&a], &["r"]));
        ns.leave(&b, a.as_str());
        assert_eq!(ns.rooms_of(&b), rooms(&[&b], &[]), "b left a's room");

        // Once a is gone from the namespace, its room routes to explicit members only.
        ns.join(&b, &[a.as_str().to_owned()]);
        ns.leave_all(&a);
        drop(ns.remove(&a));
        assert_eq!(ns.targets(&opts(&[a.as_str()], &[])), vec![b.clone()]);
        assert_eq!(ns.all_rooms(), rooms(&[&a, &b], &[]));
        ns.leave_all(&b);
        assert!(ns.rooms_empty());
    }
}
