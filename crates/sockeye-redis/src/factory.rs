//! [`RedisAdapterFactory`]: connects once per node and builds each namespace's adapter.

use std::sync::Arc;
use std::time::Duration;

use sockeye::adapter::{AckStream, Adapter, AdapterFactory, LocalNamespace};
use sockeye::{AdapterError, Args};

use crate::adapter::RedisAdapter;
use std::collections::BTreeSet;

use crate::broker::{Broker, BrokerHandle, Outgoing};
use crate::config::RedisConfig;
use crate::error::NotPublished;
use crate::error::RedisError;
use crate::stats::StatsSnapshot;
use crate::wire;

/// The Redis adapter factory of one node: give it to `SocketIo::builder().adapter(..)`.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use sockeye_redis::{RedisAdapterFactory, RedisConfig};
/// let redis = RedisAdapterFactory::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
/// let (layer, io) = sockeye::SocketIo::builder().adapter(redis.clone()).build_layer();
/// redis.ready(std::time::Duration::from_secs(5)).await;
/// # let _ = (layer, io); Ok(()) }
/// ```
///
/// It holds two connections for every namespace of the node: one publisher and one
/// subscriber, as the JS adapter's `pubClient` and `subClient`.
#[derive(Clone)]
pub struct RedisAdapterFactory {
    broker: Arc<BrokerHandle>,
    uid: Arc<str>,
}

impl std::fmt::Debug for RedisAdapterFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapterFactory")
            .field("uid", &self.uid)
            .field("url", &self.broker.config.redacted_url())
            .finish_non_exhaustive()
    }
}

impl RedisAdapterFactory {
    /// Connects to Redis. Fails when Redis cannot be reached now; later outages are survived
    /// (see the crate documentation).
    pub async fn connect(config: RedisConfig) -> Result<RedisAdapterFactory, RedisError> {
        let broker = Broker::connect(config).await?;
        Ok(RedisAdapterFactory {
            broker,
            uid: Arc::from(wire::random_id(6)),
        })
    }

    /// This node's id in broker messages (it ignores its own messages by it).
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// Waits until the channels of every namespace created so far are subscribed; false if
    /// that did not happen within `timeout`. Messages published before are not received.
    pub async fn ready(&self, timeout: Duration) -> bool {
        self.broker.ready(timeout).await
    }

    /// The counters: received, dropped, published, lost.
    pub fn stats(&self) -> StatsSnapshot {
        self.broker.stats.snapshot()
    }

    fn adapter(&self, ns: &str) -> Result<Arc<RedisAdapter>, AdapterError> {
        self.broker.adapter(ns).ok_or_else(|| {
            AdapterError::new(format!(
                "namespace {ns} has no Redis adapter on this node; register it first"
            ))
        })
    }

    /// Sends `event` to the other nodes' server-side handlers of namespace `ns`.
    pub fn server_side_emit(&self, ns: &str, event: &str, args: &Args) -> Result<(), AdapterError> {
        self.adapter(ns)?.emit_to_servers(event, args)
    }

    /// Like [`RedisAdapterFactory::server_side_emit`], yielding each other node's answer; a
    /// node that does not answer within `timeout` yields [`sockeye::AckError::Timeout`].
    pub async fn server_side_emit_with_ack(
        &self,
        ns: &str,
        event: &str,
        args: Args,
        timeout: Duration,
    ) -> Result<AckStream, AdapterError> {
        let adapter = self.adapter(ns)?;
        let packet = sockeye::adapter::BroadcastPacket::new(
            sockeye::Str::from(ns),
            sockeye::Str::from(event),
            args,
        );
        adapter.server_side_emit_with_ack(packet, timeout).await
    }

    /// Every room of namespace `ns` on every node (JS `allRooms`): this node's rooms and each
    /// other node's within `RedisConfig::request_timeout`. A node that does not answer in
    /// time (frozen, dead, overloaded) makes it fail with a [`crate::RequestTimeout`] source
    /// that holds the rooms that did arrive and the counts.
    pub async fn all_rooms(&self, ns: &str) -> Result<BTreeSet<String>, AdapterError> {
        self.adapter(ns)?.all_rooms().await
    }

    /// Queues once more the copy for the other nodes of a message that was refused (see
    /// [`NotPublished`]): only the other nodes receive it, this node's sockets are not sent it
    /// again. Fails the same way if the queue is still full.
    pub fn publish_again(&self, message: &NotPublished) -> Result<(), AdapterError> {
        self.broker
            .publish(Outgoing {
                channel: message.channel.clone(),
                payload: message.payload.clone(),
                what: message.what,
                queued: crate::metrics::Stamp::now(),
            })
            .map_err(|(msg, reason)| msg.refused(reason, &message.ns, message.local))
    }

    /// How many nodes share namespace `ns` (`PUBSUB NUMSUB` of its request channel).
    pub async fn server_count(&self, ns: &str) -> Result<usize, AdapterError> {
        self.adapter(ns)?.server_count().await
    }

    /// Stops the connections' tasks; adapters built before stop receiving and publishing.
    pub fn close(&self) {
        self.broker.shutdown();
    }
}

impl AdapterFactory for RedisAdapterFactory {
    fn create(&self, local: LocalNamespace) -> Arc<dyn Adapter> {
        let ns = local.name().to_owned();
        let adapter = RedisAdapter::new(self.broker.clone(), local, self.uid.to_string());
        self.broker.register(&ns, &adapter);
        adapter
    }
}
