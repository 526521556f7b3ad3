//! The in-memory adapter's recovery store: a log of stamped packets and the sessions of
//! sockets that left, both bounded by count, bytes and age.
//!
//! Offsets are decimal sequence numbers, one counter per namespace. Recording and delivering a
//! packet happen under one lock, so the log's order is the order recipients got the packets.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use sockeye_protocol::socketio::Str;

use crate::adapter::{BroadcastOptions, BroadcastPacket, PersistedSession, Room};
use crate::recovery::RecoveryConfig;

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

struct Kept {
    session: PersistedSession,
    at: Instant,
}

#[derive(Default)]
struct State {
    /// The offset the next logged packet gets.
    next: u64,
    /// Consecutive offsets, oldest first.
    packets: VecDeque<Logged>,
    bytes: usize,
    sessions: HashMap<String, Kept>,
    /// Pids in the order they were kept, with the time, to expire and evict oldest first.
    /// An entry whose session was since taken (or kept again later) is stale and skipped.
    order: VecDeque<(Instant, String)>,
}

/// One namespace's packet log and kept sessions. See the module documentation.
pub(crate) struct RecoveryLog {
    config: RecoveryConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for RecoveryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("RecoveryLog")
            .field("packets", &state.packets.len())
            .field("sessions", &state.sessions.len())
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

    /// Stamps `packet` with the next offset, logs it with the rooms `opts` targets, and hands
    /// the stamped packet to `deliver` while the log is locked, so the log's order is the
    /// delivery order. A packet that cannot be measured is still logged (its size counts 0).
    pub(crate) fn record<R>(
        &self,
        mut packet: BroadcastPacket,
        opts: &BroadcastOptions,
        deliver: impl FnOnce(&BroadcastPacket) -> R,
    ) -> R {
        let mut state = self.lock();
        let seq = state.next;
        state.next += 1;
        packet.offset = Some(Str::from(seq.to_string()));
        let now = Instant::now();
        let (rooms, except) = (opts.rooms.clone(), opts.except.clone());
        let size = size_of(&packet) + rooms.iter().chain(&except).map(String::len).sum::<usize>();
        state.bytes += size;
        let out = deliver(&packet);
        state.packets.push_back(Logged {
            seq,
            at: now,
            rooms,
            except,
            packet,
            size,
        });
        // A packet alone over the byte bound is dropped from the log at once, and was still
        // delivered stamped, so the client's offset stays one this log gave out.
        self.prune(&mut state, now);
        out
    }

    /// Keeps the state of a socket that left for a transport reason.
    pub(crate) fn persist(&self, session: PersistedSession) {
        let mut state = self.lock();
        let now = Instant::now();
        let pid = session.pid.clone();
        state.order.push_back((now, pid.clone()));
        if state
            .sessions
            .insert(pid, Kept { session, at: now })
            .is_some()
        {
            // A pid is kept once at a time; a second disconnect of the same pid replaces it.
            tracing::debug!("recovery session kept twice: the newer one stays");
        }
        self.prune(&mut state, now);
    }

    /// Takes the session kept under `pid`, if it is still kept.
    pub(crate) fn take(&self, pid: &str) -> Option<PersistedSession> {
        let mut state = self.lock();
        self.prune(&mut state, Instant::now());
        state.sessions.remove(pid).map(|kept| kept.session)
    }

    /// The logged packets after `offset` that `session`'s rooms match, oldest first; `None`
    /// unless every packet after `offset` is still in the log.
    pub(crate) fn missed(
        &self,
        session: &PersistedSession,
        offset: &str,
    ) -> Option<Vec<BroadcastPacket>> {
        let mut state = self.lock();
        self.prune(&mut state, Instant::now());
        let Some(after) = first_missed(&state, offset) else {
            tracing::debug!(
                offset,
                "recovery failed: the missed packets are no longer in the log"
            );
            return None;
        };
        // Its own-id room counts whether or not it is listed among the rooms.
        let rooms: HashSet<&str> = session
            .rooms
            .iter()
            .map(String::as_str)
            .chain([session.id.as_str()])
            .collect();
        Some(
            state
                .packets
                .iter()
                .skip(after)
                .filter(|logged| logged.matches(&rooms))
                .map(|logged| logged.packet.clone())
                .collect(),
        )
    }

    /// Drops what is too old or over a bound.
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
        }
        while let Some((at, pid)) = state.order.front().cloned() {
            let live = state.sessions.get(&pid).is_some_and(|kept| kept.at == at);
            if !live {
                state.order.pop_front();
                continue;
            }
            if old(at) || state.sessions.len() > self.config.max_sessions {
                state.sessions.remove(&pid);
                state.order.pop_front();
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
                .retain(|(at, pid)| sessions.get(pid).is_some_and(|kept| kept.at == *at));
        }
    }

    #[cfg(test)]
    fn counts(&self) -> (usize, usize, usize) {
        let state = self.lock();
        (state.packets.len(), state.bytes, state.sessions.len())
    }
}

/// The index in the log of the first packet after `offset`, if every packet after it is still
/// there.
fn first_missed(state: &State, offset: &str) -> Option<usize> {
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
    let offset = packet.offset.as_ref().map_or(0, |o| o.as_str().len());
    json + binary + packet.event.as_str().len() + offset
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::id::SocketId;
    use crate::packet::Args;

    fn packet(n: u32) -> BroadcastPacket {
        BroadcastPacket::new(
            Str::from("/"),
            Str::from("ev"),
            Args::from_value(&n).unwrap(),
        )
    }

    fn opts(rooms: &[&str], except: &[&str]) -> BroadcastOptions {
        BroadcastOptions {
            rooms: rooms.iter().map(|r| (*r).to_owned()).collect(),
            except: except.iter().map(|r| (*r).to_owned()).collect(),
            ..BroadcastOptions::default()
        }
    }

    fn session(pid: &str, id: &str, rooms: &[&str]) -> PersistedSession {
        PersistedSession {
            id: SocketId::from(id),
            pid: pid.to_owned(),
            ns: "/".to_owned(),
            rooms: rooms.iter().map(|r| (*r).to_owned()).collect(),
            data: None,
        }
    }

    fn offsets(packets: &[BroadcastPacket]) -> Vec<String> {
        packets
            .iter()
            .map(|p| p.offset.as_ref().unwrap().as_str().to_owned())
            .collect()
    }

    #[test]
    fn replays_what_the_rooms_match_after_the_offset() {
        let log = RecoveryLog::new(RecoveryConfig::default());
        let stamped = log.record(packet(0), &opts(&[], &[]), Clone::clone);
        assert_eq!(stamped.offset.as_ref().unwrap().as_str(), "0");
        log.record(packet(1), &opts(&["a"], &[]), |_| ());
        log.record(packet(2), &opts(&["b"], &[]), |_| ());
        log.record(packet(3), &opts(&[], &["a"]), |_| ());
        log.record(packet(4), &opts(&["me"], &[]), |_| ());
        log.persist(session("p", "me", &["a"]));
        let kept = log.take("p").unwrap();
        let missed = log.missed(&kept, "0").unwrap();
        assert_eq!(offsets(&missed), ["1", "4"]);
        // Used up: a second attempt with the same pid finds nothing.
        assert!(log.take("p").is_none());
        assert_eq!(log.counts().0, 5);
    }

    #[test]
    fn fails_when_missed_packets_left_the_log() {
        let log = RecoveryLog::new(RecoveryConfig {
            max_packets: 3,
            ..RecoveryConfig::default()
        });
        for n in 0..6 {
            log.record(packet(n), &opts(&[], &[]), |_| ());
        }
        assert_eq!(log.counts().0, 3);
        let s = session("p", "x", &[]);
        // Packets 3, 4, 5 are kept: offset 2 misses nothing that is gone.
        assert_eq!(log.missed(&s, "2").map(|m| m.len()), Some(3));
        // Offset 1 would need packet 2, dropped.
        assert!(log.missed(&s, "1").is_none());
        // An offset never given out, or not a number.
        assert!(log.missed(&s, "6").is_none());
        assert!(log.missed(&s, "x").is_none());
        // The newest offset: nothing missed.
        assert_eq!(log.missed(&s, "5").map(|m| m.len()), Some(0));
    }

    #[test]
    fn byte_bound_and_session_bound_hold() {
        let log = RecoveryLog::new(RecoveryConfig {
            max_bytes: 64,
            max_sessions: 2,
            ..RecoveryConfig::default()
        });
        for n in 0..100 {
            log.record(packet(n), &opts(&[], &[]), |_| ());
        }
        assert!(log.counts().1 <= 64, "{:?}", log.counts());
        for n in 0..5 {
            log.persist(session(&format!("p{n}"), "x", &[]));
        }
        assert_eq!(log.counts().2, 2);
        // The newest two are the ones kept.
        assert!(log.take("p0").is_none());
        assert!(log.take("p4").is_some());
    }

    #[test]
    fn sessions_and_packets_expire() {
        let log = RecoveryLog::new(RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(20),
            ..RecoveryConfig::default()
        });
        log.record(packet(0), &opts(&[], &[]), |_| ());
        log.persist(session("p", "x", &[]));
        std::thread::sleep(Duration::from_millis(60));
        assert!(log.take("p").is_none());
        assert_eq!(log.counts(), (0, 0, 0));
    }
}
