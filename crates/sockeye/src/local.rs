//! The handle an adapter uses to reach the sockets of its namespace on this node.

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt as _;
use sockeye_protocol::socketio::Str;

use crate::adapter::{AckStream, BroadcastPacket};
use crate::error::AckError;
use crate::id::SocketId;
use crate::ns::Namespace;
use crate::packet;
use crate::reason::DisconnectReason;

/// This node's side of a namespace, given to its adapter.
///
/// It holds the namespace weakly (the namespace owns the adapter), so every method does
/// nothing once the namespace is gone.
#[derive(Clone)]
pub struct LocalNamespace {
    ns: Weak<Namespace>,
    name: Str,
}

impl std::fmt::Debug for LocalNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNamespace")
            .field("name", &self.name.as_str())
            .finish()
    }
}

impl LocalNamespace {
    pub(crate) fn new(ns: Weak<Namespace>, name: Str) -> LocalNamespace {
        LocalNamespace { ns, name }
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
        for id in ids {
            if let Some(socket) = ns.get(id)
                && let Err(e) = socket.send_encoded(&frames, volatile)
            {
                tracing::debug!(socket = %id, error = %e, "broadcast not delivered");
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
        for id in ids {
            let Some(socket) = ns.get(id) else { continue };
            let pending = socket.register_ack(ack_id);
            let id = id.clone();
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

    /// Disconnects each local socket of `ids` (a DISCONNECT packet, then its disconnect
    /// handler); with `close`, also closes its whole Engine.IO session.
    pub fn disconnect(&self, ids: &[SocketId], close: bool) {
        let Some(ns) = self.ns.upgrade() else { return };
        for id in ids {
            if let Some(socket) = ns.get(id) {
                if close {
                    socket.close_session();
                } else {
                    socket.disconnect_with(DisconnectReason::ServerDisconnect, true);
                }
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
