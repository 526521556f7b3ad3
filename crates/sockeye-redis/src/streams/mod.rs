//! Streams mode: wire-compatible with `@socket.io/redis-streams-adapter` 0.3, with
//! connection-state recovery across nodes.
//!
//! Broadcasts, joins, leaves and disconnects are entries of a Redis stream (`XADD … MAXLEN ~`),
//! which every node reads with a blocking `XREAD` from the last id it handled; requests
//! (fetch sockets, server-side emits, broadcasts with acks) and their responses go over pub/sub.
//! Every node, this one included, delivers broadcasts as its reader reads them, so all nodes
//! deliver in stream order and an entry's id is its recovery offset. Sessions are stored as
//! the official adapter stores them (`SET sio:session:<pid> <base64 msgpack> PX <ms>`) and
//! restored as it restores them (`GET`+`DEL` in one transaction, the offset must still be in
//! the stream, then the later broadcasts that match the session's rooms).
//!
//! It lives in `sockeye-redis` next to the classic adapter because it shares the connection
//! settings (URL, TLS, timeouts, backoff), the limits and the checked decoding of untrusted
//! broker input; the two wire formats are apart (`crate::wire` and `streams::wire`).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use sockeye_redis::RedisConfig;
//! use sockeye_redis::streams::{StreamsAdapterFactory, StreamsConfig};
//!
//! let redis = RedisConfig::new("redis://127.0.0.1:6379");
//! let adapter = StreamsAdapterFactory::connect(StreamsConfig::new(redis)).await?;
//! let (layer, io) = sockeye::SocketIo::builder()
//!     .adapter(adapter.clone())
//!     .connection_state_recovery(sockeye::RecoveryConfig::default())
//!     .build_layer();
//! adapter.ready(Duration::from_secs(5)).await;
//! io.emit("hello", "every client of every node").await?;
//! # let _ = layer; Ok(()) }
//! ```

mod adapter;
mod config;
mod emitter;
mod node;
pub(crate) mod wire;

use std::sync::Arc;
use std::time::Duration;

use sockeye::adapter::{Adapter, AdapterFactory, LocalNamespace};

pub use adapter::StreamsAdapter;
pub use config::StreamsConfig;
pub use emitter::StreamsEmitter;

use crate::error::RedisError;
use crate::stats::StatsSnapshot;

/// Builds the streams adapter of each namespace; all of them share one node's connections
/// (a command connection, one reader connection per stream, one subscriber).
#[derive(Clone, Debug)]
pub struct StreamsAdapterFactory {
    node: Arc<node::Node>,
}

impl StreamsAdapterFactory {
    /// Connects to Redis; fails when it cannot be reached now (later outages are survived:
    /// see `docs/redis.md`).
    pub async fn connect(config: StreamsConfig) -> Result<StreamsAdapterFactory, RedisError> {
        Ok(StreamsAdapterFactory {
            node: node::Node::connect(config).await?,
        })
    }

    /// This node's id in cluster messages.
    pub fn uid(&self) -> &str {
        &self.node.uid
    }

    /// Waits until every namespace created so far reads its stream and is subscribed to its
    /// channels; false if that did not happen within `timeout`.
    pub async fn ready(&self, timeout: Duration) -> bool {
        self.node.ready(timeout).await
    }

    /// The counters: received, dropped (malformed, oversized), published, lost, and the gaps
    /// the stream readers found (`stream_gaps`: the last entry a reader handled was gone at
    /// its next read; see `docs/redis.md`, "What an outage loses").
    pub fn stats(&self) -> StatsSnapshot {
        self.node.stats.snapshot()
    }

    /// Stops the reader, subscriber and publisher tasks.
    pub fn close(&self) {
        self.node.shutdown();
    }
}

impl AdapterFactory for StreamsAdapterFactory {
    fn create(&self, local: LocalNamespace) -> Arc<dyn Adapter> {
        let adapter = StreamsAdapter::new(self.node.clone(), local);
        self.node.register(&adapter);
        adapter
    }
}
