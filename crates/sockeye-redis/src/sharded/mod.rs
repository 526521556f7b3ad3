//! Sharded mode: wire-compatible with `createShardedAdapter` of `@socket.io/redis-adapter`
//! 8.3, on Redis 7's sharded pub/sub (`SPUBLISH` / `SSUBSCRIBE`) over a Redis Cluster.
//!
//! Classic pub/sub sends every message to every node of a Redis Cluster; sharded pub/sub sends
//! it only to the shard that owns the channel's slot, so the cluster's pub/sub capacity grows
//! with its shards. Each namespace has its channel (`<prefix>#<ns>#`, all of its requests
//! and broadcasts) and each node a response channel (`<prefix>#<ns>#<uid>#`); in the dynamic
//! modes each room with a local member has one more (see [`SubscriptionMode`]). Messages are
//! the cluster messages of `socket.io-adapter` 2.5, JSON, or msgpack when they hold binary.
//! Sockeye nodes and Node nodes with the official adapter form one cluster.
//!
//! Pub/sub stores nothing: a node that is disconnected from a shard misses what is published
//! there meanwhile, and a message that cannot be published is lost (the operation fails and
//! says so). There is no connection-state recovery across nodes in this mode (use
//! [`crate::streams`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use sockeye_redis::RedisConfig;
//! use sockeye_redis::sharded::{ShardedAdapterFactory, ShardedConfig, SubscriptionMode};
//!
//! let config = ShardedConfig::new(RedisConfig::new("redis://127.0.0.1:7000"))
//!     .seed_nodes(["redis://127.0.0.1:7001"])
//!     .subscription_mode(SubscriptionMode::Dynamic);
//! let adapter = ShardedAdapterFactory::connect(config).await?;
//! let (layer, io) = sockeye::SocketIo::builder().adapter(adapter.clone()).build_layer();
//! adapter.ready(Duration::from_secs(5)).await;
//! io.to("room").emit("hello", "members of the room, on every node").await?;
//! # let _ = layer; Ok(()) }
//! ```

mod adapter;
mod config;
mod node;
pub(crate) mod wire;

use std::sync::Arc;
use std::time::Duration;

use sockeye::adapter::{Adapter, AdapterFactory, LocalNamespace};

pub use adapter::ShardedAdapter;
pub use config::{ShardedConfig, SubscriptionMode, UnknownMode};

use crate::error::RedisError;
use crate::stats::StatsSnapshot;

/// Builds the sharded adapter of each namespace; all of them share one node's cluster
/// connection.
#[derive(Clone, Debug)]
pub struct ShardedAdapterFactory {
    node: Arc<NodeHandle>,
}

/// Stops the node's tasks when the last factory clone is dropped.
#[derive(Debug)]
struct NodeHandle(Arc<node::Node>);

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

impl ShardedAdapterFactory {
    /// Connects to the Redis Cluster; fails when it cannot be reached now or is not a
    /// cluster ([`RedisError::NotACluster`]). Later outages are survived: the client library
    /// reconnects and resubscribes.
    pub async fn connect(config: ShardedConfig) -> Result<ShardedAdapterFactory, RedisError> {
        Ok(ShardedAdapterFactory {
            node: Arc::new(NodeHandle(node::Node::connect(config).await?)),
        })
    }

    /// This node's id in cluster messages.
    pub fn uid(&self) -> &str {
        &self.node.0.uid
    }

    /// The subscription mode.
    pub fn subscription_mode(&self) -> SubscriptionMode {
        self.node.0.config.mode
    }

    /// Waits until every channel wanted so far (namespaces, and rooms in the dynamic modes) is
    /// subscribed; false if that did not happen within `timeout`.
    pub async fn ready(&self, timeout: Duration) -> bool {
        self.node.0.ready(timeout).await
    }

    /// The counters: received, dropped (malformed, oversized, receive queue full), published,
    /// lost.
    pub fn stats(&self) -> StatsSnapshot {
        self.node.0.stats.snapshot()
    }

    /// Stops the node's tasks; adapters built before stop receiving.
    pub fn close(&self) {
        self.node.0.shutdown();
    }
}

impl AdapterFactory for ShardedAdapterFactory {
    fn create(&self, local: LocalNamespace) -> Arc<dyn Adapter> {
        let ns = local.name().to_owned();
        let adapter = ShardedAdapter::new(self.node.0.clone(), local);
        self.node.0.register(&ns, &adapter);
        adapter.subscribe();
        adapter
    }
}
