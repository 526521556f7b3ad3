//! Counters of what the bus received, dropped and published.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) received: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) oversized: AtomicU64,
    pub(crate) ignored: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) publish_failed: AtomicU64,
    pub(crate) late_answers: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) duplicates: AtomicU64,
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
            ignored: get(&self.ignored),
            published: get(&self.published),
            publish_failed: get(&self.publish_failed),
            late_answers: get(&self.late_answers),
            reconnects: get(&self.reconnects),
            duplicates: get(&self.duplicates),
        }
    }
}

/// The bus counters of one node ([`crate::PyBusFactory::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Messages read from the channel.
    pub received: u64,
    /// Dropped: not JSON, or not the schema of their method.
    pub malformed: u64,
    /// Dropped: larger than `max_message_size`.
    pub oversized: u64,
    /// Valid but not for this node: an unknown method, an unregistered namespace, an answer
    /// for another host.
    pub ignored: u64,
    /// Messages published.
    pub published: u64,
    /// Messages Redis did not take (the operation returned an error).
    pub publish_failed: u64,
    /// Answers that came after their wait ended.
    pub late_answers: u64,
    /// Times the subscriber reconnected.
    pub reconnects: u64,
    /// AMQP: messages the broker delivered again after a lost connection that this node had
    /// already handled (their acknowledgement was lost with it), dropped.
    pub duplicates: u64,
}
