//! The publisher's lag and losses through the `metrics` facade (crate feature `metrics`, which
//! turns on sockeye's own). Without the feature every call here is empty and [`Stamp`] has no
//! field, so an adapter built without it pays nothing.

use crate::broker::Outgoing;

/// When a message was handed to the publisher: its publish lag runs from here.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp(#[cfg(feature = "metrics")] std::time::Instant);

impl Stamp {
    /// Now.
    #[cfg(feature = "metrics")]
    pub(crate) fn now() -> Stamp {
        Stamp(std::time::Instant::now())
    }

    /// Nothing to remember without the feature.
    #[cfg(not(feature = "metrics"))]
    pub(crate) fn now() -> Stamp {
        Stamp()
    }
}

/// Redis answered the PUBLISH of `batch`: one lag sample per message.
pub(crate) fn published(batch: &[Outgoing]) {
    #[cfg(feature = "metrics")]
    {
        let lag = metrics::histogram!("socketio_redis_publish_lag_seconds");
        for msg in batch {
            lag.record(msg.queued.0.elapsed().as_secs_f64());
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = batch;
}

/// `n` messages were lost for the other nodes: `reason` is `queue_full`, `closed` or
/// `redis_error`.
pub(crate) fn lost(n: usize, reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("socketio_redis_publish_failures_total", "reason" => reason)
        .increment(n as u64);
    #[cfg(not(feature = "metrics"))]
    let _ = (n, reason);
}
