//! The handle an adapter uses to reach the sockets of its namespace on this node.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use sockeye_protocol::socketio::Str;

use crate::adapter::{AckStream, BroadcastPacket};
use crate::error::AckError;
use crate::id::SocketId;
use crate::ns::Namespace;
use crate::packet;
use crate::reason::DisconnectReason;
use crate::recovery::RecoveryLog;
use crate::server_event::ServerEvent;

/// This node's side of a namespace, given to its adapter.
///
/// It holds the namespace weakly (the namespace owns the adapter), so every method does
/// nothing once the namespace is gone.
#[derive(Clone)]
pub struct LocalNamespace {
    ns: Weak<Namespace>,
    name: Str,
    /// The namespace's recovery log when connection-state recovery is enabled; an adapter
    /// that can keep it (the in-memory one) records broadcasts in it.
    recovery: Option<Arc<RecoveryLog>>,
}

impl std::fmt::Debug for LocalNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNamespace")
            .field("name", &self.name.as_str())
            .finish()
    }
}

impl LocalNamespace {
    pub(crate) fn new(
        ns: Weak<Namespace>,
        name: Str,
        recovery: Option<Arc<RecoveryLog>>,
    ) -> LocalNamespace {
        LocalNamespace { ns, name, recovery }
    }

    pub(crate) fn recovery_log(&self) -> Option<Arc<RecoveryLog>> {
        self.recovery.clone()
    }

    /// True when the server has connection-state recovery enabled for this namespace. An
    /// adapter that cannot recover sessions should say so at startup (the server then keeps
    /// recovery off for it).
    pub fn recovery_enabled(&self) -> bool {
        self.recovery.is_some()
    }

    /// The namespace name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The ids of every socket connected (or connecting) here.
    pub fn socket_ids(&self) -> Vec<SocketId> {
        self.ns
            .upgrade()
            .map(|ns| ns.socket_ids())
            .unwrap_or_default()
    }

    /// The id of the socket connected (or connecting) here whose id is `room`, if any.
    ///
    /// Every socket is in the room named after its id without the adapter storing it: an
    /// adapter resolves such a room with this lookup (one hash probe, no allocation).
    pub fn find_socket(&self, room: &str) -> Option<SocketId> {
        self.ns.upgrade()?.find_id(room)
    }

    /// Encodes `packet` once and queues the same bytes for each local socket of `ids`.
    ///
    /// A socket that is gone is skipped; a socket whose queue is full is closed by the engine
    /// (slow reader), unless `volatile` is set, in which case it just misses the packet.
    pub fn deliver(&self, ids: &[SocketId], packet: &BroadcastPacket, volatile: bool) {
        let Some(ns) = self.ns.upgrade() else { return };
        if ids.is_empty() {
            return;
        }
        let frames = match packet::event(ns.parser(), &packet.ns, &packet.event, &packet.args, None)
        {
            Ok(frames) => frames,
            Err(e) => {
                tracing::error!(ns = %self.name(), error = %e, "broadcast packet cannot be encoded");
                return;
            }
        };
        crate::inbox::fanout::note();
        for socket in ns.get_many(ids) {
            if let Err(e) = socket.send_encoded(&frames, volatile) {
                tracing::debug!(socket = %socket.id(), error = %e, "broadcast not delivered");
            }
        }
    }

    /// Like [`LocalNamespace::deliver`], each recipient asked to acknowledge within `timeout`.
    /// The packet carries one ack id for every recipient, so it is still encoded once.
    pub fn deliver_with_ack(
        &self,
        ids: &[SocketId],
        packet: BroadcastPacket,
        volatile: bool,
        timeout: Duration,
    ) -> AckStream {
        let Some(ns) = self.ns.upgrade() else {
            return AckStream::empty();
        };
        let ack_id = ns.next_ack_id();
        let frames = match packet::event(
            ns.parser(),
            &packet.ns,
            &packet.event,
            &packet.args,
            Some(ack_id),
        ) {
            Ok(frames) => frames,
            Err(e) => {
                tracing::error!(ns = %self.name(), error = %e, "broadcast packet cannot be encoded");
                return AckStream::empty();
            }
        };
        let waits = futures_util::stream::FuturesUnordered::new();
        crate::inbox::fanout::note();
        for socket in ns.get_many(ids) {
            let pending = socket.register_ack(ack_id);
            let id = socket.id().clone();
            match socket.send_encoded(&frames, volatile) {
                Ok(()) => waits.push(async move {
                    let result = match tokio::time::timeout(timeout, pending.wait()).await {
                        Ok(Some(args)) => Ok(args),
                        Ok(None) => Err(AckError::Disconnected),
                        Err(_) => Err(AckError::Timeout(timeout)),
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

    /// Disconnects each local socket of `ids` (a DISCONNECT packet, then its disconnect
    /// handler); with `close`, also closes its whole Engine.IO session.
    pub fn disconnect(&self, ids: &[SocketId], close: bool) {
        let Some(ns) = self.ns.upgrade() else { return };
        for socket in ns.get_many(ids) {
            if close {
                socket.close_session();
            } else {
                socket.disconnect_with(DisconnectReason::ServerDisconnect, true);
            }
        }
    }

    /// The handshake of local socket `id`, shaped like the JavaScript server's
    /// `socket.handshake` (`headers`, `address`, `xdomain`, `secure`, `url`, `query`, `auth`)
    /// so other nodes of a cluster (including Node ones) can read it; `None` if it is gone.
    pub fn handshake(&self, id: &SocketId) -> Option<serde_json::Value> {
        let socket = self.ns.upgrade()?.get(id)?;
        Some(crate::handshake::describe(&socket))
    }

    /// Makes each local socket of `ids` join `rooms`.
    pub fn join(&self, ids: &[SocketId], rooms: &[String]) {
        let Some(ns) = self.ns.upgrade() else { return };
        for id in ids {
            ns.adapter().add_all(id, rooms);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sockeye_engine::Frame;
    use sockeye_protocol::socketio::Str;

    use crate::adapter::{BroadcastOptions, BroadcastPacket};
    use crate::ns::Namespace;
    use crate::packet::Args;
    use crate::socket::SocketRef;
    use crate::testing::{FakeConn, root_namespace};

    fn connected(ns: &Arc<Namespace>, conn: Arc<FakeConn>) -> SocketRef {
        let socket = SocketRef::new(ns.clone(), conn, ns.config.clone(), None);
        ns.member_joined();
        ns.insert(socket.clone());
        ns.adapter()
            .add_all(socket.id(), &[socket.id().as_str().to_owned()]);
        socket.finish_connect().unwrap();
        socket
    }

    fn text(frame: &Frame) -> &[u8] {
        match frame {
            Frame::Text(b) | Frame::Binary(b) => b,
        }
    }

    #[tokio::test]
    async fn broadcast_is_encoded_once_and_shared() {
        let ns = root_namespace();
        let (c1, c2) = (FakeConn::new(0), FakeConn::new(0));
        let s1 = connected(&ns, c1.clone());
        let s2 = connected(&ns, c2.clone());
        ns.adapter().add_all(s1.id(), &["r".into()]);
        ns.adapter().add_all(s2.id(), &["r".into()]);
        let packet = BroadcastPacket {
            ns: Str::from("/"),
            event: Str::from("ev"),
            args: Args::from_value(&bytes::Bytes::from_static(b"\x01\x02")).unwrap(),
        };
        let opts = BroadcastOptions {
            rooms: vec!["r".into(), s1.id().as_str().to_owned()],
            ..BroadcastOptions::default()
        };
        ns.adapter().broadcast(packet, opts).await.unwrap();
        let f1 = c1.frames.lock().unwrap();
        let f2 = c2.frames.lock().unwrap();
        // CONNECT reply, then the packet and its attachment, once each.
        assert_eq!(f1.len(), 3, "{f1:?}");
        assert_eq!(f2.len(), 3, "{f2:?}");
        assert_eq!(
            text(&f1[1]),
            br#"451-["ev",{"_placeholder":true,"num":0}]"#.as_slice()
        );
        for i in 1..3 {
            assert_eq!(
                text(&f1[i]).as_ptr(),
                text(&f2[i]).as_ptr(),
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
        let packet = BroadcastPacket {
            ns: Str::from("/"),
            event: Str::from("tick"),
            args: Args::empty(),
        };
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
}
