//! The embedded in-memory adapter: one node, and connection-state recovery kept in memory.

mod log;

use std::time::Duration;

use self::log::RecoveryLog;
use super::{
    AckStream, Adapter, BoxFuture, BroadcastOptions, BroadcastPacket, LocalNamespace,
    PersistedSession, Room, SocketInfo,
};
use crate::error::AdapterError;

/// The default adapter: one node, so every operation is the local one.
///
/// When the server enables connection-state recovery, it also keeps the namespace's packet log
/// and the sessions of sockets that left, in memory, bounded by the
/// [`crate::RecoveryConfig`] (see its fields).
pub struct MemoryAdapter {
    local: LocalNamespace,
    log: Option<RecoveryLog>,
}

impl std::fmt::Debug for MemoryAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryAdapter")
            .field("ns", &self.local.name())
            .field("log", &self.log)
            .finish()
    }
}

impl MemoryAdapter {
    /// An adapter delivering to the sockets of `local`, with a recovery log when the server
    /// enables recovery.
    pub fn new(local: LocalNamespace) -> MemoryAdapter {
        let log = local.recovery_config().cloned().map(RecoveryLog::new);
        MemoryAdapter { local, log }
    }
}

fn no_log() -> AdapterError {
    AdapterError::new("connection-state recovery is not enabled on this server")
}

impl Adapter for MemoryAdapter {
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            match &self.log {
                // Stamped and delivered under the log's lock: log order is delivery order.
                Some(log) if !opts.flags.volatile => {
                    log.record(packet, &opts, |stamped| self.local.deliver(stamped, &opts));
                }
                _ => {
                    self.local.deliver(&packet, &opts);
                }
            }
            Ok(())
        })
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        // Packets with an ack id carry no offset and are not replayed (as the official server).
        Box::pin(async move { Ok(self.local.deliver_with_ack(&packet, &opts, timeout)) })
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        Box::pin(async move { Ok(self.local.fetch(&opts)) })
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            self.local.add_rooms(&opts, &rooms);
            Ok(())
        })
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            self.local.del_rooms(&opts, &rooms);
            Ok(())
        })
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            self.local.disconnect(&opts, close);
            Ok(())
        })
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

    fn supports_recovery(&self) -> bool {
        true
    }

    fn persist_session(
        &self,
        session: PersistedSession,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let result = match &self.log {
            Some(log) => {
                log.persist(session);
                Ok(())
            }
            None => Err(no_log()),
        };
        Box::pin(std::future::ready(result))
    }

    fn take_session(
        &self,
        pid: &str,
    ) -> BoxFuture<'_, Result<Option<PersistedSession>, AdapterError>> {
        let result = match &self.log {
            Some(log) => Ok(log.take(pid)),
            None => Err(no_log()),
        };
        Box::pin(std::future::ready(result))
    }

    fn missed_packets<'a>(
        &'a self,
        session: &'a PersistedSession,
        offset: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<BroadcastPacket>>, AdapterError>> {
        let result = match &self.log {
            Some(log) => Ok(log.missed(session, offset)),
            None => Err(no_log()),
        };
        Box::pin(std::future::ready(result))
    }
}
