//! Counters of what the adapter received, dropped and could not publish.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by every namespace of one factory.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) received: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) oversized: AtomicU64,
    pub(crate) bad_attachments: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) attachments_written: AtomicU64,
    pub(crate) publish_failed: AtomicU64,
    pub(crate) queue_full: AtomicU64,
    pub(crate) listen_losses: AtomicU64,
    pub(crate) reconnects: AtomicU64,
}

/// A snapshot of the adapter's counters (see [`crate::PostgresAdapterFactory::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Notifications received from other nodes and emitters on a listened channel, malformed
    /// ones included (the database's echo of this node's own is not counted).
    pub received: u64,
    /// Notifications or attachments dropped because they did not decode or did not match
    /// the protocol.
    pub malformed: u64,
    /// Notifications or attachments dropped because they exceeded `max_message_size`.
    pub oversized: u64,
    /// Notifications dropped because their attachment row was missing, unreadable or
    /// malformed.
    pub bad_attachments: u64,
    /// Messages published (notified).
    pub published: u64,
    /// Of those, messages sent through the attachments table.
    pub attachments_written: u64,
    /// Messages that could not be published (database unreachable or failing): lost.
    pub publish_failed: u64,
    /// Messages refused because the publish queue was full: lost.
    pub queue_full: u64,
    /// Times the listening connection was lost: whatever was notified until it was back
    /// (see `reconnects`) never reached this node.
    pub listen_losses: u64,
    /// Times the listening connection was re-established and every channel listened again.
    pub reconnects: u64,
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
            bad_attachments: get(&self.bad_attachments),
            published: get(&self.published),
            attachments_written: get(&self.attachments_written),
            publish_failed: get(&self.publish_failed),
            queue_full: get(&self.queue_full),
            listen_losses: get(&self.listen_losses),
            reconnects: get(&self.reconnects),
        }
    }
}
