//! Connection-state recovery (Socket.IO v4.6+): a socket whose transport dropped comes back
//! with the same id, rooms and session, and receives the packets it missed.
//!
//! The server drives it; the namespace's adapter keeps the state (see [`crate::adapter`]):
//! - every socket gets a private id (`pid`), sent in its CONNECT reply next to `sid`;
//! - the adapter stamps every broadcast without ack and not volatile with an offset (the last
//!   argument recipients see), and keeps it; with recovery on, a socket's own emits go through
//!   the adapter too (as a broadcast to its own room), so they are stamped and kept alike;
//! - a socket that leaves for a transport reason is handed to [`crate::adapter::Adapter::persist_session`];
//! - a CONNECT whose auth carries that `pid` and the `offset` of the last packet the client got
//!   takes the session back: the server attaches the socket to its old rooms first, holding
//!   what is delivered to it, then asks the adapter for the packets after `offset`. Packets both
//!   held and replayed (broadcast between the two steps) carry the same offset and are sent
//!   once, so the client gets every packet it missed exactly once, in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::RngCore as _;

use crate::reason::DisconnectReason;

/// Settings of connection-state recovery, given to
/// [`crate::SocketIoBuilder::connection_state_recovery`].
///
/// The first two fields are the official server's options, with its defaults; the others bound
/// what the in-memory adapter keeps, which the official server does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// How long a disconnected socket's state is kept (default 2 minutes).
    pub max_disconnection_duration: Duration,
    /// A recovered socket skips the namespace's connect middlewares (default true); its connect
    /// handler still runs, and [`crate::SocketRef::recovered`] is true there.
    pub skip_middlewares: bool,
    /// Packets kept in each namespace's log, at most (default 10 000). A client whose missed
    /// packets were dropped from the log is not recovered: it gets a fresh socket.
    pub max_packets: usize,
    /// Bytes kept in each namespace's log, at most (default 16 MiB), counted as the packets'
    /// argument text, attachments, event names, offsets and target room names.
    pub max_bytes: usize,
    /// Disconnected sockets kept per namespace, at most (default 10 000); past it the one that
    /// left first is dropped.
    pub max_sessions: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
            max_packets: 10_000,
            max_bytes: 16 * 1024 * 1024,
            max_sessions: 10_000,
        }
    }
}

/// Counters of one namespace's connection-state recovery, from
/// [`crate::SocketIo::recovery_stats`]. The server keeps them, whatever the adapter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Sockets handed to the adapter to keep after a transport-level disconnect.
    pub sessions_persisted: u64,
    /// Sockets the adapter failed to keep (their client will get a fresh socket).
    pub persist_errors: u64,
    /// Reconnections that recovered their socket.
    pub recovered: u64,
    /// Reconnections whose `pid` matched no kept session (expired, evicted, already used, or
    /// forged); each got a fresh socket.
    pub unknown_pid: u64,
    /// Reconnections whose session was found but whose missed packets could not all be given
    /// (trimmed from the log, or an offset the cluster never gave out); each got a fresh
    /// socket.
    pub failed: u64,
    /// Reconnections during which the adapter failed (e.g. its backend was down); each got a
    /// fresh socket.
    pub errors: u64,
}

/// The live counters behind [`RecoveryStats`].
#[derive(Debug, Default)]
pub(crate) struct RecoveryCounters {
    pub(crate) sessions_persisted: AtomicU64,
    pub(crate) persist_errors: AtomicU64,
    pub(crate) recovered: AtomicU64,
    pub(crate) unknown_pid: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) errors: AtomicU64,
}

impl RecoveryCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> RecoveryStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RecoveryStats {
            sessions_persisted: get(&self.sessions_persisted),
            persist_errors: get(&self.persist_errors),
            recovered: get(&self.recovered),
            unknown_pid: get(&self.unknown_pid),
            failed: get(&self.failed),
            errors: get(&self.errors),
        }
    }
}

/// True for the reasons after which the client may come back and recover: the transport went
/// away, not the client or the server deciding to leave.
pub(crate) fn is_recoverable(reason: DisconnectReason) -> bool {
    matches!(
        reason,
        DisconnectReason::TransportClose
            | DisconnectReason::TransportError
            | DisconnectReason::PingTimeout
            | DisconnectReason::ServerShutdown
    )
}

/// A new private id: 128 random bits, hex. It authorises recovery, so it is never shown to
/// other clients.
pub(crate) fn new_pid() -> Arc<str> {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    let mut out = String::with_capacity(32);
    for byte in raw {
        out.push_str(&format!("{byte:02x}"));
    }
    Arc::from(out)
}

/// What a socket keeps for recovery: its private id, whether it was recovered, and the queue
/// of its own emits, which go through the adapter.
pub(crate) struct SocketRecovery {
    pub(crate) pid: Arc<str>,
    pub(crate) recovered: bool,
    pub(crate) outbox: crate::outbox::Outbox,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockeye_protocol::socketio::Str;

    #[test]
    fn connect_reply_carries_sid_then_pid_in_every_parser() {
        use sockeye_protocol::socketio::{Decoder, Limits, PacketData, ParserKind};
        #[allow(unused_mut)] // pushed to only with the `msgpack` feature
        let mut kinds = vec![ParserKind::Json];
        #[cfg(feature = "msgpack")]
        kinds.push(ParserKind::MsgPack);
        for kind in kinds {
            let encoded = crate::packet::connect(kind, &Str::from("/"), "S", Some("P")).unwrap();
            let frames = encoded.frames();
            if kind == ParserKind::Json {
                let sockeye_engine::Frame::Text(text) = &frames[0] else {
                    panic!("text frame expected");
                };
                assert_eq!(&text[..], br#"40{"sid":"S","pid":"P"}"#);
            }
            let message = match &frames[0] {
                sockeye_engine::Frame::Text(t) => {
                    sockeye_protocol::engine::Message::Text(t.slice(1..))
                }
                sockeye_engine::Frame::Binary(b) => {
                    sockeye_protocol::engine::Message::Binary(b.clone())
                }
            };
            let packet = Decoder::new(kind, Limits::default())
                .decode(message)
                .unwrap()
                .unwrap();
            let PacketData::Connect(Some(payload)) = packet.data else {
                panic!("CONNECT with a payload expected");
            };
            let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            assert_eq!(
                value,
                serde_json::json!({"sid": "S", "pid": "P"}),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn pids_are_long_and_distinct() {
        let (a, b) = (new_pid(), new_pid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }
}
