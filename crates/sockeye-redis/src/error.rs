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
