//! Connection-state recovery (Socket.IO v4.6+): a socket whose transport dropped comes back
//! with the same id, rooms and session, and receives the packets it missed.
//!
//! How it fits together, per namespace:
//! - every socket gets a private id (`pid`), sent in its CONNECT reply next to `sid`;
//! - every event packet sent without ack and not volatile, broadcast or emitted to one socket,
//!   goes through [`RecoveryLog::record`]: it gets the next offset (a decimal sequence number)
//!   as its last argument and is kept, with the rooms it targeted, in a log bounded by count,
//!   bytes and age;
//! - a socket that leaves for a transport reason is kept as a [`Persisted`] session (id, rooms,
//!   session value) under its pid, for `max_disconnection_duration`, at most `max_sessions`;
//! - a CONNECT whose auth carries that `pid` and the `offset` of the last packet the client got
//!   takes the session back, with the logged packets after `offset` that its rooms match.
//!
//! Recording, delivering and restoring happen under one lock, so a packet broadcast while a
//! socket is being restored reaches it exactly once: either it was logged before the restore
//! (and is replayed) or it is delivered after the socket rejoined its rooms.
//!
//! Only the in-memory adapter records the log ([`RecoveringAdapter`]); an adapter that does not
//! (such as the classic Redis adapter) leaves recovery off, with a warning at startup.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore as _;

use crate::adapter::{
    AckStream, Adapter, BoxFuture, BroadcastOptions, BroadcastPacket, MemoryAdapter, Room,
    SocketInfo,
};
use crate::error::AdapterError;
use crate::id::SocketId;
use crate::reason::DisconnectReason;
use crate::state::AnyValue;

/// Settings of connection-state recovery, given to
/// [`crate::SocketIoBuilder::connection_state_recovery`].
///
/// The first two fields are the official server's options, with its defaults; the others bound
/// what the server keeps, which the official server does not.
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
    /// argument text, attachments, event names and target room names.
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

/// Counters of one namespace's recovery state, from [`crate::SocketIo::recovery_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Packets in the log now.
    pub packets: usize,
    /// Bytes of arguments in the log now.
    pub bytes: usize,
    /// Disconnected sockets kept now.
    pub sessions: usize,
    /// Packets logged since the namespace was created.
    pub packets_logged: u64,
    /// Packets dropped from the log for its count, byte or age bound.
    pub packets_dropped: u64,
    /// Sockets kept after a transport-level disconnect.
    pub sessions_persisted: u64,
    /// Kept sockets dropped because `max_disconnection_duration` passed (whether or not their
    /// client came back).
    pub sessions_expired: u64,
    /// Kept sockets dropped for the `max_sessions` bound.
    pub sessions_evicted: u64,
    /// Reconnections that recovered their socket.
    pub recovered: u64,
    /// Reconnections with a kept pid that could not recover (missed packets no longer in the
    /// log, or an offset this log never gave out); each got a fresh socket. A pid whose session
    /// expired counts in `sessions_expired` instead.
    pub failed: u64,
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

/// What a socket keeps for recovery: its private id and whether it was recovered.
#[derive(Debug, Clone)]
pub(crate) struct SocketRecovery {
    pub(crate) pid: Arc<str>,
    pub(crate) recovered: bool,
}

/// A disconnected socket's state, waiting for its client.
pub(crate) struct Persisted {
    pub(crate) id: SocketId,
    pub(crate) rooms: Vec<Room>,
    pub(crate) data: Option<AnyValue>,
    at: Instant,
}

impl Persisted {
    pub(crate) fn new(id: SocketId, rooms: Vec<Room>, data: Option<AnyValue>) -> Persisted {
        Persisted {
            id,
            rooms,
            data,
            at: Instant::now(),
        }
    }
}

struct Logged {
    seq: u64,
    at: Instant,
    rooms: Vec<Room>,
    except: Vec<Room>,
    packet: BroadcastPacket,
    size: usize,
}

impl Logged {
    /// The test of the official server: the socket is in a target room (or there are none) and
    /// in no excluded room.
    fn matches(&self, rooms: &HashSet<&str>) -> bool {
        let included =
            self.rooms.is_empty() || self.rooms.iter().any(|r| rooms.contains(r.as_str()));
        included && !self.except.iter().any(|r| rooms.contains(r.as_str()))
    }
}

#[derive(Default)]
struct State {
    /// The offset the next logged packet gets.
    next: u64,
    /// Consecutive offsets, oldest first.
    packets: VecDeque<Logged>,
    bytes: usize,
    sessions: HashMap<Arc<str>, Persisted>,
    /// Pids in the order they were kept, with the time, to expire and evict oldest first.
    /// An entry whose session was since restored (or kept again later) is stale and skipped.
    order: VecDeque<(Instant, Arc<str>)>,
    stats: RecoveryStats,
}

/// One namespace's packet log and kept sessions. See the module documentation.
pub(crate) struct RecoveryLog {
    config: RecoveryConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for RecoveryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryLog")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RecoveryLog {
    pub(crate) fn new(config: RecoveryConfig) -> RecoveryLog {
        RecoveryLog {
            config,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    pub(crate) fn stats(&self) -> RecoveryStats {
        let state = self.lock();
        RecoveryStats {
            packets: state.packets.len(),
            bytes: state.bytes,
            sessions: state.sessions.len(),
            ..state.stats
        }
    }

    /// Stamps `packet` with the next offset, logs it with the rooms it targets, and hands the
    /// stamped packet to `deliver` while the log is locked (see the module documentation).
    /// A packet that cannot be stamped is delivered as it is, unlogged.
    pub(crate) fn record<R>(
        &self,
        packet: BroadcastPacket,
        rooms: Vec<Room>,
        except: Vec<Room>,
        deliver: impl FnOnce(&BroadcastPacket) -> R,
    ) -> R {
        let mut state = self.lock();
        let seq = state.next;
        let stamped = match packet.args.appended(&seq.to_string()) {
            Ok(args) => BroadcastPacket { args, ..packet },
            Err(e) => {
                tracing::error!(error = %e, "recovery offset not added: packet sent unlogged");
                drop(state);
                return deliver(&packet);
            }
        };
        state.next += 1;
        let now = Instant::now();
        let size = size_of(&stamped) + rooms.iter().chain(&except).map(String::len).sum::<usize>();
        state.bytes += size;
        state.stats.packets_logged += 1;
        state.packets.push_back(Logged {
            seq,
            at: now,
            rooms,
            except,
            packet: stamped.clone(),
            size,
        });
        // A packet alone over the byte bound is dropped from the log at once, and still
        // delivered stamped, so the client's offset stays one this log gave out.
        self.prune(&mut state, now);
        deliver(&stamped)
    }

    /// Keeps the state of a socket that left for a transport reason.
    pub(crate) fn persist(&self, pid: Arc<str>, session: Persisted) {
        let mut state = self.lock();
        let now = Instant::now();
        state.order.push_back((session.at, pid.clone()));
        if state.sessions.insert(pid, session).is_some() {
            // A pid is kept once at a time; a second disconnect of the same pid replaces it.
            tracing::debug!("recovery session kept twice: the newer one stays");
        }
        state.stats.sessions_persisted += 1;
        self.prune(&mut state, now);
    }

    /// Takes the session of `pid` back if it is still kept and every packet after `offset` is
    /// still in the log; `attach` then runs, under the log lock, with the session and the
    /// packets its rooms match, oldest first. `None` (and `attach` not run) otherwise.
    pub(crate) fn restore<R>(
        &self,
        pid: &str,
        offset: &str,
        attach: impl FnOnce(Persisted, Vec<BroadcastPacket>) -> R,
    ) -> Option<R> {
        let mut state = self.lock();
        let now = Instant::now();
        self.prune(&mut state, now);
        // Whatever happens next, this session is used up: a failed attempt gets a new pid.
        let session = state.sessions.remove(pid)?;
        let Some(after) = self.first_missed(&state, offset) else {
            state.stats.failed += 1;
            tracing::debug!(
                pid,
                offset,
                "recovery failed: the missed packets are no longer in the log"
            );
            return None;
        };
        // Its own-id room counts whether or not the adapter listed it among the rooms.
        let rooms: HashSet<&str> = session
            .rooms
            .iter()
            .map(String::as_str)
            .chain([session.id.as_str()])
            .collect();
        let missed: Vec<BroadcastPacket> = state
            .packets
            .iter()
            .skip(after)
            .filter(|logged| logged.matches(&rooms))
            .map(|logged| logged.packet.clone())
            .collect();
        drop(rooms);
        state.stats.recovered += 1;
        tracing::debug!(socket = %session.id, missed = missed.len(), "socket recovered");
        Some(attach(session, missed))
    }

    /// The index in the log of the first packet after `offset`, if every packet after it is
    /// still there.
    fn first_missed(&self, state: &State, offset: &str) -> Option<usize> {
        let seq: u64 = offset.parse().ok()?;
        // An offset this log never gave out (another server, a forged one) proves nothing.
        if seq >= state.next {
            return None;
        }
        let front = state
            .packets
            .front()
            .map_or(state.next, |logged| logged.seq);
        // Packets `seq + 1 ..` must all be here: the first one kept is at most `seq + 1`.
        if front > seq + 1 {
            return None;
        }
        usize::try_from(seq + 1 - front).ok()
    }

    /// Drops what is too old or over a bound. Expired sessions are counted.
    fn prune(&self, state: &mut State, now: Instant) {
        let max_age = self.config.max_disconnection_duration;
        let old = |at: Instant| now.saturating_duration_since(at) > max_age;
        while let Some(front) = state.packets.front() {
            let over = state.packets.len() > self.config.max_packets
                || state.bytes > self.config.max_bytes
                || old(front.at);
            if !over {
                break;
            }
            let size = front.size;
            state.packets.pop_front();
            state.bytes -= size;
            state.stats.packets_dropped += 1;
        }
        while let Some((at, pid)) = state.order.front().cloned() {
            let live = state.sessions.get(&pid).is_some_and(|s| s.at == at);
            if !live {
                state.order.pop_front();
                continue;
            }
            if old(at) {
                state.sessions.remove(&pid);
                state.order.pop_front();
                state.stats.sessions_expired += 1;
            } else if state.sessions.len() > self.config.max_sessions {
                state.sessions.remove(&pid);
                state.order.pop_front();
                state.stats.sessions_evicted += 1;
            } else {
                break;
            }
        }
        // Stale entries behind a live one are only skipped when they reach the front; keep
        // their number bounded by compacting when they dominate.
        if state.order.len() > 2 * self.config.max_sessions.max(16) {
            let sessions = &state.sessions;
            state
                .order
                .retain(|(at, pid)| sessions.get(pid).is_some_and(|s| s.at == *at));
        }
    }
}

/// What a logged packet's arguments cost, roughly: their text, attachments and the event name
/// (the caller adds the room names).
fn size_of(packet: &BroadcastPacket) -> usize {
    let json = packet.args.raw_json().map_or(0, <[u8]>::len);
    let binary: usize = packet
        .args
        .attachments()
        .iter()
        .map(bytes::Bytes::len)
        .sum();
    json + binary + packet.event.as_str().len()
}

/// The in-memory adapter with the recovery log: broadcasts without ack and not volatile are
/// stamped and logged before they are delivered.
pub(crate) struct RecoveringAdapter {
    inner: MemoryAdapter,
    log: Arc<RecoveryLog>,
}

impl RecoveringAdapter {
    pub(crate) fn new(inner: MemoryAdapter, log: Arc<RecoveryLog>) -> RecoveringAdapter {
        RecoveringAdapter { inner, log }
    }
}

impl Adapter for RecoveringAdapter {
    fn add_all(&self, id: &SocketId, rooms: &[Room]) {
        self.inner.add_all(id, rooms);
    }

    fn del(&self, id: &SocketId, room: &str) {
        self.inner.del(id, room);
    }

    fn del_all(&self, id: &SocketId) {
        self.inner.del_all(id);
    }

    fn socket_rooms(&self, id: &SocketId) -> Vec<Room> {
        self.inner.socket_rooms(id)
    }

    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        self.inner.local_sockets(opts)
    }

    fn local_rooms(&self) -> Vec<Room> {
        self.inner.local_rooms()
    }

    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        if opts.flags.volatile {
            return self.inner.broadcast(packet, opts);
        }
        let (rooms, except) = (opts.rooms.clone(), opts.except.clone());
        // The in-memory adapter queues for every recipient when called, not when polled, so
        // delivery happens while the log is locked.
        self.log.record(packet, rooms, except, |stamped| {
            self.inner.broadcast(stamped.clone(), opts)
        })
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        // Packets with an ack id carry no offset and are not replayed (as the official server).
        self.inner.broadcast_with_ack(packet, opts, timeout)
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        self.inner.fetch_sockets(opts)
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.add_sockets(opts, rooms)
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.del_sockets(opts, rooms)
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.disconnect_sockets(opts, close)
    }

    fn server_side_emit(&self, packet: BroadcastPacket) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.server_side_emit(packet)
    }

    fn server_side_emit_with_ack(
        &self,
        packet: BroadcastPacket,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        self.inner.server_side_emit_with_ack(packet, timeout)
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        self.inner.server_count()
    }

    fn supports_recovery(&self) -> bool {
        true
    }

    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Args;
    use sockeye_protocol::socketio::Str;

    fn packet(n: u32) -> BroadcastPacket {
        BroadcastPacket {
            ns: Str::from("/"),
            event: Str::from("ev"),
            args: Args::from_value(&n).unwrap(),
        }
    }

    fn log(config: RecoveryConfig) -> RecoveryLog {
        RecoveryLog::new(config)
    }

    fn offsets(packets: &[BroadcastPacket]) -> Vec<String> {
        packets
            .iter()
            .map(|p| p.args.nth::<String>(p.args.len() - 1).unwrap())
            .collect()
    }

    #[test]
    fn replays_what_the_rooms_match_after_the_offset() {
        let log = log(RecoveryConfig::default());
        let stamped = log.record(packet(0), vec![], vec![], Clone::clone);
        assert_eq!(stamped.args.nth::<String>(1).unwrap(), "0");
        log.record(packet(1), vec!["a".into()], vec![], |_| ());
        log.record(packet(2), vec!["b".into()], vec![], |_| ());
        log.record(packet(3), vec![], vec!["a".into()], |_| ());
        log.record(packet(4), vec!["me".into()], vec![], |_| ());
        let pid = new_pid();
        log.persist(
            pid.clone(),
            Persisted::new(SocketId::from("me"), vec!["a".into()], None),
        );
        let missed = log.restore(&pid, "0", |_, missed| missed).unwrap();
        assert_eq!(offsets(&missed), ["1", "4"]);
        // Used up: a second attempt with the same pid fails.
        assert!(log.restore(&pid, "0", |_, m| m).is_none());
        let stats = log.stats();
        assert_eq!((stats.recovered, stats.sessions, stats.packets), (1, 0, 5));
    }

    #[test]
    fn fails_when_missed_packets_left_the_log() {
        let log = log(RecoveryConfig {
            max_packets: 3,
            ..RecoveryConfig::default()
        });
        for n in 0..6 {
            log.record(packet(n), vec![], vec![], |_| ());
        }
        assert_eq!(log.stats().packets, 3);
        assert_eq!(log.stats().packets_dropped, 3);
        let keep = |log: &RecoveryLog| {
            let pid = new_pid();
            log.persist(
                pid.clone(),
                Persisted::new(SocketId::from("x"), vec![], None),
            );
            pid
        };
        // Packets 3, 4, 5 are kept: offset 2 misses nothing that is gone.
        let pid = keep(&log);
        assert_eq!(log.restore(&pid, "2", |_, m| m.len()), Some(3));
        // Offset 1 would need packet 2, dropped.
        let pid = keep(&log);
        assert_eq!(log.restore(&pid, "1", |_, m| m.len()), None);
        // An offset never given out, or not a number.
        let pid = keep(&log);
        assert_eq!(log.restore(&pid, "6", |_, m| m.len()), None);
        let pid = keep(&log);
        assert_eq!(log.restore(&pid, "x", |_, m| m.len()), None);
        // The newest offset: nothing missed.
        let pid = keep(&log);
        assert_eq!(log.restore(&pid, "5", |_, m| m.len()), Some(0));
        assert_eq!(log.stats().failed, 3);
    }

    #[test]
    fn byte_bound_and_session_bound_hold() {
        let log = log(RecoveryConfig {
            max_bytes: 64,
            max_sessions: 2,
            ..RecoveryConfig::default()
        });
        for n in 0..100 {
            log.record(packet(n), vec![], vec![], |_| ());
        }
        assert!(log.stats().bytes <= 64, "{:?}", log.stats());
        let pids: Vec<_> = (0..5).map(|_| new_pid()).collect();
        for pid in &pids {
            log.persist(
                pid.clone(),
                Persisted::new(SocketId::from("x"), vec![], None),
            );
        }
        let stats = log.stats();
        assert_eq!((stats.sessions, stats.sessions_evicted), (2, 3));
        // The newest two are the ones kept.
        assert!(log.restore(&pids[0], "99", |_, _| ()).is_none());
        assert!(log.restore(&pids[4], "99", |_, _| ()).is_some());
    }

    #[test]
    fn sessions_expire() {
        let log = log(RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(20),
            ..RecoveryConfig::default()
        });
        log.record(packet(0), vec![], vec![], |_| ());
        let pid = new_pid();
        log.persist(
            pid.clone(),
            Persisted::new(SocketId::from("x"), vec![], None),
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(log.restore(&pid, "0", |_, _| ()).is_none());
        let stats = log.stats();
        assert_eq!(
            (stats.sessions_expired, stats.sessions, stats.packets),
            (1, 0, 0)
        );
    }

    #[test]
    fn connect_reply_carries_sid_then_pid_in_every_parser() {
        use sockeye_protocol::socketio::{Decoder, Limits, PacketData, ParserKind};
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
