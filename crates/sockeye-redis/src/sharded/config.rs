//! Settings of the sharded adapter.

use crate::config::RedisConfig;

/// Which sharded channels a node subscribes to (the JS option `subscriptionMode`). Every node
/// of one cluster must use the same mode: a node publishes a broadcast on the channel its
/// mode chooses, and only nodes subscribed to that channel receive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SubscriptionMode {
    /// `"static"`: two channels per namespace (the namespace's and this node's response
    /// channel); every broadcast goes through the namespace channel, so every node receives
    /// every broadcast and the namespace's traffic sits on one shard.
    Static,
    /// `"dynamic"` (the JS default): also one channel per public room with a local member
    /// (`<prefix>#<ns>#<room>#`); a broadcast to exactly one public room goes only to the nodes
    /// that have a member. Rooms named like a JS socket id (20 characters) stay on the
    /// namespace channel; sockeye's socket ids have 22, so the JS nodes send to one sockeye
    /// socket on its own channel, and sockeye nodes subscribe one per local socket.
    #[default]
    Dynamic,
    /// `"dynamic-private"`: like `Dynamic`, and private rooms (each socket's own-id room) get a
    /// channel too, so a message to one socket reaches only its node (one subscription per
    /// connected socket).
    DynamicPrivate,
}

impl SubscriptionMode {
    /// The JS option value: `static`, `dynamic` or `dynamic-private`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SubscriptionMode::Static => "static",
            SubscriptionMode::Dynamic => "dynamic",
            SubscriptionMode::DynamicPrivate => "dynamic-private",
        }
    }
}

impl std::fmt::Display for SubscriptionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subscription mode name that is not one of the three.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown subscription mode {0:?}: use static, dynamic or dynamic-private")]
pub struct UnknownMode(pub String);

impl std::str::FromStr for SubscriptionMode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<SubscriptionMode, UnknownMode> {
        match s {
            "static" => Ok(SubscriptionMode::Static),
            "dynamic" => Ok(SubscriptionMode::Dynamic),
            "dynamic-private" => Ok(SubscriptionMode::DynamicPrivate),
            other => Err(UnknownMode(other.to_owned())),
        }
    }
}

/// Settings of [`super::ShardedAdapterFactory`]: the connection settings and limits of a
/// [`RedisConfig`] (its URL is one node of the Redis Cluster, its key the channel prefix, the
/// JS option `channelPrefix`), plus the subscription mode and more seed nodes.
#[derive(Debug, Clone)]
pub struct ShardedConfig {
    pub(crate) redis: RedisConfig,
    pub(crate) seeds: Vec<String>,
    pub(crate) mode: SubscriptionMode,
    pub(crate) receive_queue: usize,
}

impl ShardedConfig {
    /// Sharded settings over `redis` (`redis://host:port` of any node of the cluster), in
    /// `dynamic` mode as the JS adapter.
    pub fn new(redis: RedisConfig) -> ShardedConfig {
        ShardedConfig {
            redis,
            seeds: Vec::new(),
            mode: SubscriptionMode::default(),
            receive_queue: 8192,
        }
    }

    /// More nodes to learn the cluster's layout from, should the first be down at start.
    pub fn seed_nodes<I, S>(mut self, urls: I) -> ShardedConfig
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.seeds.extend(urls.into_iter().map(Into::into));
        self
    }

    /// The channel prefix (JS `channelPrefix`, default `socket.io`): the key of the
    /// [`RedisConfig`]. Every node of one cluster must use the same.
    pub fn prefix(mut self, prefix: impl Into<String>) -> ShardedConfig {
        self.redis = self.redis.key(prefix);
        self
    }

    /// The subscription mode (default [`SubscriptionMode::Dynamic`]).
    pub fn subscription_mode(mut self, mode: SubscriptionMode) -> ShardedConfig {
        self.mode = mode;
        self
    }

    /// Messages received from Redis and not yet handled (default 8192); when full, new ones
    /// are dropped and counted (`StatsSnapshot::receive_queue_full`).
    pub fn receive_queue(mut self, messages: usize) -> ShardedConfig {
        self.receive_queue = messages.max(1);
        self
    }

    /// Every seed URL: the [`RedisConfig`]'s, then [`ShardedConfig::seed_nodes`].
    pub(crate) fn urls(&self) -> Vec<String> {
        let mut urls = vec![self.redis.url.clone()];
        urls.extend(self.seeds.iter().cloned());
        urls
    }
}
