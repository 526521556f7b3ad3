//! [`PostgresConfig`]: where the database is and how the adapter uses it.

use std::time::Duration;

/// Settings of the PostgreSQL adapter. The defaults are those of `@socket.io/postgres-adapter`
/// 0.5 where it has the setting; a mixed cluster must agree on `channel_prefix`, `table_name`
/// and the heartbeat timings.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    pub(crate) conn: String,
    pub(crate) channel_prefix: String,
    pub(crate) table_name: String,
    pub(crate) payload_threshold: usize,
    pub(crate) cleanup_interval: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) reconnect_delay: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) max_depth: usize,
    pub(crate) max_pending_requests: usize,
    pub(crate) max_responses: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) create_table: bool,
}

impl PostgresConfig {
    /// Settings for the database at `conn`: a URL (`postgres://user@host:5432/db`) or a
    /// key-value string (`host=127.0.0.1 user=postgres dbname=test`), as `tokio-postgres`
    /// parses them. Connections are plain TCP or Unix sockets (no TLS).
    pub fn new(conn: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            conn: conn.into(),
            channel_prefix: "socket.io".into(),
            table_name: "socket_io_attachments".into(),
            payload_threshold: 8000,
            cleanup_interval: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(5),
            reconnect_delay: Duration::from_secs(2),
            max_message_size: 16 * 1024 * 1024,
            max_depth: 64,
            max_pending_requests: 1024,
            max_responses: 10_000,
            queue_capacity: 10_000,
            create_table: true,
        }
    }

    /// The prefix of the notification channels (`<prefix>#<namespace>`); default `socket.io`.
    pub fn channel_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.channel_prefix = prefix.into();
        self
    }

    /// The attachments table (default `socket_io_attachments`): letters, digits, `_` and one
    /// optional `schema.` qualifier, checked by [`crate::PostgresAdapterFactory::connect`].
    pub fn table_name(mut self, name: impl Into<String>) -> Self {
        self.table_name = name.into();
        self
    }

    /// Messages whose JSON is longer than this many bytes go through the attachments table;
    /// default 8000 (PostgreSQL refuses `NOTIFY` payloads from 8000 bytes on).
    pub fn payload_threshold(mut self, bytes: usize) -> Self {
        self.payload_threshold = bytes.min(7999);
        self
    }

    /// How often rows older than this are deleted from the attachments table; default 30 s.
    pub fn cleanup_interval(mut self, every: Duration) -> Self {
        self.cleanup_interval = every;
        self
    }

    /// How long after its last message a node sends a heartbeat; default 5 s.
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.heartbeat_interval = every;
        self
    }

    /// How long a node may stay silent before the others stop counting it; default 10 s.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// How long a cluster request (fetch sockets, the client counts of a broadcast with ack)
    /// waits for the other nodes, and a publish for the database; default 5 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The mean wait before reconnecting a lost connection (randomised between half and one
    /// and a half times it, as the Node adapter does); default 2 s.
    pub fn reconnect_delay(mut self, delay: Duration) -> Self {
        self.reconnect_delay = delay;
        self
    }

    /// Largest notification or attachment accepted, in bytes; default 16 MiB. Larger ones are
    /// dropped and counted.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Deepest nesting of arrays and maps accepted in a message; default 64.
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Cluster requests one namespace may have in flight; default 1024.
    pub fn max_pending_requests(mut self, n: usize) -> Self {
        self.max_pending_requests = n.max(1);
        self
    }

    /// Answers buffered for one request; default 10 000.
    pub fn max_responses(mut self, n: usize) -> Self {
        self.max_responses = n.max(1);
        self
    }

    /// Messages waiting to be published; beyond, a publish fails at once; default 10 000.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(1);
        self
    }

    /// Whether to `CREATE TABLE IF NOT EXISTS` the attachments table at connect (default
    /// true; turn it off when the database user may not create tables and the table exists).
    pub fn create_table(mut self, create: bool) -> Self {
        self.create_table = create;
        self
    }
}
