//! Errors of the adapter and the emitter.

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The URL could not be used.
    #[error(
        "invalid Redis URL {url}: {source}; use redis://host:port, rediss://host:port (feature `tls`) or unix:///path/to/redis.sock"
    )]
    InvalidUrl {
        /// The URL, password removed.
        url: String,
        /// Why the client refused it.
        #[source]
        source: redis::RedisError,
    },
    /// The first connection failed (later outages are retried in the background).
    #[error(
        "cannot connect to Redis at {url}: {source}; check that the server runs and the URL is right"
    )]
    Connect {
        /// The URL, password removed.
        url: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// The connection attempt did not finish in time.
    #[error("connecting to Redis at {url} timed out; check the address and the network")]
    ConnectTimeout {
        /// The URL, password removed.
        url: String,
    },
    /// A `redis+sentinel://` URL that cannot be read.
    #[error(
        "invalid Redis Sentinel URL {url}: {reason}; use redis+sentinel://[user:password@]host:port[,host:port...]/db/service_name"
    )]
    InvalidSentinelUrl {
        /// The URL, password removed.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A Sentinel URL given to a mode that does not resolve it.
    #[error(
        "Redis Sentinel URL {url} is read by the classic adapter and emitter only (RedisAdapterFactory, Emitter); give the streams or sharded mode the redis:// URL of the server"
    )]
    SentinelUnsupported {
        /// The URL, password removed.
        url: String,
    },
    /// The sharded adapter was pointed at a Redis that is not a Redis Cluster.
    #[error(
        "the Redis at {url} is not a Redis Cluster (cluster support disabled); the sharded adapter needs one (redis-server --cluster-enabled yes, Redis 7 or later): use RedisAdapterFactory on a standalone Redis"
    )]
    NotACluster {
        /// The URL, password removed.
        url: String,
    },
    /// A command (publish, `PUBSUB NUMSUB`) failed.
    #[error(
        "Redis command {command} failed: {source}; the connection is retried in the background"
    )]
    Command {
        /// Which command.
        command: &'static str,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// A command did not answer in time.
    #[error("Redis command {command} timed out; is the server overloaded or unreachable?")]
    Timeout {
        /// Which command.
        command: &'static str,
    },
    /// Arguments could not be turned into a broker message.
    #[error("cannot encode the message for Redis: {0}")]
    Encode(String),
}

/// A message that was not handed to the publisher (the `source` of the [`sockeye::AdapterError`]
/// an operation returns). For a broadcast (`io.emit`, `to(..).emit`, ...) the local sockets
/// **did** get the packet ([`LocalOutcome::Delivered`]): do not repeat the emit, which would
/// deliver it twice locally; [`crate::RedisAdapterFactory::publish_again`] retries only the copy
/// for the other nodes. For other operations nothing was done ([`LocalOutcome::NotDone`]): the
/// whole operation may be retried.
///
/// ```no_run
/// # async fn run(io: sockeye::SocketIo, redis: sockeye_redis::RedisAdapterFactory) {
/// use sockeye_redis::NotPublished;
/// if let Err(e) = io.emit("news", "hello").await {
///     match NotPublished::in_emit_error(&e) {
///         // Local clients have it; try the other nodes once more (or count it as lost).
///         Some(not_published) => { let _ = redis.publish_again(not_published); }
///         None => tracing::warn!(error = %e, "emit failed"),
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what} of namespace {ns} {local}, but it was not published to the other nodes: {reason}")]
pub struct NotPublished {
    /// What the message was (`broadcast`, `REMOTE_JOIN request`, ...).
    pub what: &'static str,
    /// The namespace.
    pub ns: String,
    /// What happened on this node.
    pub local: LocalOutcome,
    /// Why it was not published.
    pub reason: NotPublishedReason,
    pub(crate) channel: String,
    pub(crate) payload: bytes::Bytes,
}

impl NotPublished {
    /// The [`NotPublished`] behind an adapter error, if that is what it is.
    pub fn in_adapter_error(error: &sockeye::AdapterError) -> Option<&NotPublished> {
        error
            .source
            .as_deref()
            .and_then(|s| s.downcast_ref::<NotPublished>())
    }

    /// The [`NotPublished`] behind an emit error (`EmitError::Adapter`), if that is what it is.
    pub fn in_emit_error(error: &sockeye::EmitError) -> Option<&NotPublished> {
        match error {
            sockeye::EmitError::Adapter(e) => NotPublished::in_adapter_error(e),
            _ => None,
        }
    }
}

/// What an operation whose broker message was not published did on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocalOutcome {
    /// The packet was handed to this many local sockets (a broadcast): it must not be emitted
    /// again.
    Delivered {
        /// Local recipients (a recipient with a full queue is closed, as without Redis).
        recipients: usize,
    },
    /// Nothing was done on this node either; the operation can be retried as a whole.
    NotDone,
}

impl std::fmt::Display for LocalOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalOutcome::Delivered { recipients } => {
                write!(f, "was delivered to {recipients} local socket(s)")
            }
            LocalOutcome::NotDone => f.write_str("was not applied on this node either"),
        }
    }
}

/// Why a message was not published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotPublishedReason {
    /// The publish queue (`RedisConfig::publish_queue`) is full: Redis is slow or unreachable.
    #[error("the Redis publish queue is full ({capacity} messages); Redis is slow or unreachable")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// The adapter was closed (`RedisAdapterFactory::close`): nothing is published any more.
    #[error("the Redis adapter is closed")]
    Closed,
}

/// A request to the other nodes (`fetch_sockets`, all rooms) that did not get every answer
/// within `RedisConfig::request_timeout` (the `source` of the [`sockeye::AdapterError`]). The
/// answers that did arrive are in `partial`; a node that is frozen, dead or overloaded but
/// still subscribed is counted in `expected` and never answers.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{request} in namespace {ns} timed out after {timeout:?}: {answered} of {expected} other nodes answered; a node may be frozen, dead or overloaded"
)]
pub struct RequestTimeout {
    /// Which request (`fetch_sockets`, `all_rooms`).
    pub request: &'static str,
    /// The namespace.
    pub ns: String,
    /// Nodes that answered in time.
    pub answered: usize,
    /// Other nodes subscribed when the request was sent (`PUBSUB NUMSUB` minus this node).
    pub expected: usize,
    /// The wait.
    pub timeout: std::time::Duration,
    /// What this node and the nodes that answered returned.
    pub partial: Partial,
}

impl RequestTimeout {
    /// The [`RequestTimeout`] behind an adapter error, if that is what it is.
    pub fn in_adapter_error(error: &sockeye::AdapterError) -> Option<&RequestTimeout> {
        error
            .source
            .as_deref()
            .and_then(|s| s.downcast_ref::<RequestTimeout>())
    }
}

/// The answers a timed-out request did get.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Partial {
    /// `fetch_sockets`: this node's sockets and those of the nodes that answered.
    Sockets(Vec<sockeye::adapter::SocketInfo>),
    /// All rooms: this node's rooms and those of the nodes that answered.
    Rooms(std::collections::BTreeSet<String>),
}
