//! One node's NATS connection, shared by the adapters of its namespaces, and its counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_nats::connection::State;

use crate::adapter::NatsAdapter;
use crate::config::NatsConfig;
use crate::error::NatsError;
use crate::jetstream::Js;
use crate::wire::{self, Limits, WireError};

/// The counters of a node (every namespace); see [`StatsSnapshot`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) received: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) oversized: AtomicU64,
    pub(crate) unknown_version: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) publish_failed: AtomicU64,
    pub(crate) missed: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) late_responses: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    pub(crate) reconnects: AtomicU64,
}

impl Stats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            received: get(&self.received),
            malformed: get(&self.malformed),
            oversized: get(&self.oversized),
            unknown_version: get(&self.unknown_version),
            published: get(&self.published),
            publish_failed: get(&self.publish_failed),
            missed: get(&self.missed),
            duplicates: get(&self.duplicates),
            late_responses: get(&self.late_responses),
            disconnects: get(&self.disconnects),
            reconnects: get(&self.reconnects),
        }
    }
}

/// What a node counted since it connected (all namespaces).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Messages received from NATS (other nodes' only).
    pub received: u64,
    /// Dropped: not a message of this format (undecodable, wrong shape).
    pub malformed: u64,
    /// Dropped: larger than `max_message_size`.
    pub oversized: u64,
    /// Dropped: a message of another wire version.
    pub unknown_version: u64,
    /// Messages published.
    pub published: u64,
    /// Messages that could not be published (the caller got an error).
    pub publish_failed: u64,
    /// Broadcasts and room changes of other nodes this node never received: gaps in their
    /// sequence numbers, seen when a later one arrives (core NATS; an outage loses them).
    pub missed: u64,
    /// Messages received twice (same sender, sequence number already seen): dropped.
    pub duplicates: u64,
    /// Answers that came after their request was over.
    pub late_responses: u64,
    /// Times the connection to NATS was lost.
    pub disconnects: u64,
    /// Times it was restored (subscriptions are restored with it).
    pub reconnects: u64,
}

pub(crate) struct Node {
    pub(crate) uid: String,
    pub(crate) config: NatsConfig,
    pub(crate) client: async_nats::Client,
    pub(crate) stats: Arc<Stats>,
    pub(crate) js: Option<Js>,
    runtime: tokio::runtime::Handle,
    adapters: Mutex<Vec<Weak<NatsAdapter>>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("uid", &self.uid)
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}

impl Node {
    pub(crate) async fn connect(config: NatsConfig) -> Result<Arc<Node>, NatsError> {
        if config.prefix.is_empty()
            || !config
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            || config.prefix.starts_with('.')
            || config.prefix.ends_with('.')
            || config.prefix.contains("..")
        {
            return Err(NatsError::Config(format!(
                "prefix {:?} is not a subject prefix (letters, digits, '-', '_', inner '.')",
                config.prefix
            )));
        }
        let stats = Arc::new(Stats::default());
        let events = stats.clone();
        // The first `Connected` event is the connection itself, not a reconnect.
        let first = Arc::new(AtomicBool::new(true));
        let options = async_nats::ConnectOptions::new()
            // A node's own messages never come back to it: it delivers its part itself.
            .no_echo()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .reconnect_delay_callback(|attempt| {
                // 50 ms doubling up to 2 s: an outage is noticed and left quickly.
                let shift = u32::try_from(attempt.min(6)).unwrap_or(6);
                Duration::from_millis(50u64 << shift).min(Duration::from_secs(2))
            })
            .event_callback(move |event| {
                        let stats = events.clone();
                        let first = first.clone();
                async move {
                    match event {
                        async_nats::Event::Connected if first.swap(false, Ordering::AcqRel) => {}
                        async_nats::Event::Disconnected => {
                            Stats::bump(&stats.disconnects);
                            tracing::warn!("NATS connection lost; reconnecting (messages of other nodes meanwhile are lost: see docs/nats.md)");
                        }
                        async_nats::Event::Connected => {
                            Stats::bump(&stats.reconnects);
                            tracing::info!("NATS connection restored; subscriptions restored");
                        }
                        other => tracing::debug!(event = %other, "NATS event"),
                    }
                }
            });
        let client = options
            .connect(config.url.as_str())
            .await
            .map_err(|source| NatsError::Connect {
                url: config.url.clone(),
                source,
            })?;
        let js = match &config.jetstream {
            Some(js_config) => Some(Js::setup(&client, &config.prefix, js_config).await?),
            None => None,
        };
        Ok(Arc::new(Node {
            uid: wire::random_id(16),
            config,
            client,
            stats,
            js,
            runtime: tokio::runtime::Handle::current(),
            adapters: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }))
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_size: self.config.max_message_size,
            max_depth: self.config.max_depth,
        }
    }

    pub(crate) fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn(task)
    }

    pub(crate) fn register(&self, adapter: &Arc<NatsAdapter>) {
        let mut list = self
            .adapters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        list.retain(|a| a.strong_count() > 0);
        list.push(Arc::downgrade(adapter));
    }

    fn adapters(&self) -> Vec<Arc<NatsAdapter>> {
        self.adapters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    pub(crate) async fn ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.adapters().iter().all(|a| a.is_ready()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(crate) fn known_nodes(&self, ns: &str) -> Option<usize> {
        self.adapters()
            .into_iter()
            .find(|a| a.ns() == ns)
            .map(|a| a.live_nodes())
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Publishes on core NATS. Fails at once while the connection is down (nothing is queued
    /// for later: the caller learns now that the other nodes did not get it), and when the
    /// client's queue stays full for `publish_timeout`.
    pub(crate) async fn publish(&self, subject: String, payload: Vec<u8>) -> Result<(), String> {
        let result = if self.is_closed() {
            Err("the adapter is closed".to_owned())
        } else if self.client.connection_state() != State::Connected {
            Err("the connection to NATS is down".to_owned())
        } else {
            match tokio::time::timeout(
                self.config.publish_timeout,
                self.client.publish(subject, payload.into()),
            )
            .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "the NATS client's queue stayed full for {:?}",
                    self.config.publish_timeout
                )),
            }
        };
        match &result {
            Ok(()) => Stats::bump(&self.stats.published),
            Err(_) => Stats::bump(&self.stats.publish_failed),
        }
        result
    }

    /// Counts and logs a refused broker message.
    pub(crate) fn refused(&self, what: &str, e: &WireError) {
        match e {
            WireError::TooLarge(_) => Stats::bump(&self.stats.oversized),
            WireError::UnknownVersion(_) => Stats::bump(&self.stats.unknown_version),
            WireError::Decode(_) | WireError::Schema(_) => Stats::bump(&self.stats.malformed),
        }
        tracing::warn!(what, error = %e, "NATS message dropped");
    }

    pub(crate) async fn shutdown(&self) {
        for adapter in self.adapters() {
            adapter.shut().await;
        }
        self.closed.store(true, Ordering::Release);
        let _ = self.client.flush().await;
    }
}
