//! Counters of what the adapter received, dropped and could not publish.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by every namespace of one factory.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) received: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) oversized: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) publish_failed: AtomicU64,
    pub(crate) queue_full: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) late_responses: AtomicU64,
    pub(crate) unknown_version: AtomicU64,
    pub(crate) stream_gaps: AtomicU64,
    pub(crate) receive_queue_full: AtomicU64,
}

/// A snapshot of the adapter's counters (see [`crate::RedisAdapterFactory::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Broker messages received on a subscribed channel.
    pub received: u64,
    /// Messages dropped because they did not decode or did not match the schema.
    pub malformed: u64,
    /// Messages dropped because they exceeded `max_message_size`.
    pub oversized: u64,
    /// Messages published.
    pub published: u64,
    /// Messages that could not be published (Redis unreachable or failing): they are lost.
    pub publish_failed: u64,
    /// Messages refused because the publish queue was full: they are lost.
    pub queue_full: u64,
    /// Times the subscriber connection was re-established after a loss.
    pub reconnects: u64,
    /// Responses that arrived for no pending request (late, or for a full request).
    pub late_responses: u64,
    /// Messages dropped because their wire version (`sockeyeWire`) is newer than this node
    /// speaks (a future sockeye's format); see `docs/redis.md`.
    pub unknown_version: u64,
    /// Streams mode only: times a stream reader found the last entry it had handled gone
    /// from the stream at its next read (Redis restarted without it, the stream was deleted,
    /// or it was trimmed past a stalled reader), so entries written after it may have been
    /// lost for this node; each is logged. Always 0 in the classic mode.
    pub stream_gaps: u64,
    /// Messages dropped on arrival because the receive queue was full (sharded adapter,
    /// `ShardedConfig::receive_queue`): this node missed them.
    pub receive_queue_full: u64,
}

impl Stats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            received: get(&self.received),
            malformed: get(&self.malformed),
            oversized: get(&self.oversized),
            published: get(&self.published),
            publish_failed: get(&self.publish_failed),
            queue_full: get(&self.queue_full),
            reconnects: get(&self.reconnects),
            late_responses: get(&self.late_responses),
            unknown_version: get(&self.unknown_version),
            stream_gaps: get(&self.stream_gaps),
            receive_queue_full: get(&self.receive_queue_full),
        }
    }
}
