//! [`NatsConfig`] and [`JetStreamConfig`].

use std::time::Duration;

/// How a node connects to NATS, and its limits. Every field has a default; set them with the
/// builder methods.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated (`nats://127.0.0.1:4222`).
    pub url: String,
    /// First token of every subject; nodes share a cluster when they share it (default
    /// `sockeye`). Letters, digits, `-`, `_` and `.` only.
    pub prefix: String,
    /// How long a cluster request (fetch sockets, ...) waits for the other nodes' answers.
    pub request_timeout: Duration,
    /// How long a publish may wait for room in the client's outgoing queue before it fails.
    pub publish_timeout: Duration,
    /// How often each namespace tells the others it is alive (server count).
    pub heartbeat_interval: Duration,
    /// A node not heard from for this long no longer counts (a killed node).
    pub heartbeat_timeout: Duration,
    /// Largest message accepted from NATS; larger ones are dropped and counted.
    pub max_message_size: usize,
    /// Deepest nesting of arrays and maps accepted from NATS.
    pub max_depth: usize,
    /// Requests this node may have in flight per namespace.
    pub max_pending_requests: usize,
    /// Answers buffered per request (and remote acks waited for per broadcast).
    pub max_responses: usize,
    /// Connection-state recovery across nodes through JetStream; `None` (the default) is core
    /// NATS only, without recovery.
    pub jetstream: Option<JetStreamConfig>,
}

impl NatsConfig {
    /// The defaults, for the server at `url`.
    pub fn new(url: impl Into<String>) -> NatsConfig {
        NatsConfig {
            url: url.into(),
            prefix: "sockeye".to_owned(),
            request_timeout: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(2),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(10),
            max_message_size: 1 << 20,
            max_depth: 64,
            max_pending_requests: 1024,
            max_responses: 4096,
            jetstream: None,
        }
    }

    /// Sets [`NatsConfig::prefix`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`NatsConfig::request_timeout`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`NatsConfig::publish_timeout`].
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// Sets [`NatsConfig::heartbeat_interval`] and [`NatsConfig::heartbeat_timeout`].
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.heartbeat_interval = interval;
        self.heartbeat_timeout = timeout;
        self
    }

    /// Sets [`NatsConfig::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`NatsConfig::max_depth`].
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Enables connection-state recovery across nodes through JetStream.
    pub fn jetstream(mut self, js: JetStreamConfig) -> Self {
        self.jetstream = Some(js);
        self
    }
}

/// The JetStream half: the stream every broadcast and room change is appended to (its
/// sequence is the recovery offset) and the key-value bucket sessions are kept in.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// The stream's name (created if absent; subjects `<prefix>.log.>`).
    pub stream: String,
    /// Entries older than this are dropped from the stream: a client away longer cannot be
    /// replayed to and gets a fresh session.
    pub max_age: Duration,
    /// At most this many entries are kept (oldest dropped first).
    pub max_messages: i64,
    /// The key-value bucket of sessions (created if absent).
    pub bucket: String,
    /// How long the bucket keeps a session (the longest `max_disconnection_duration` any
    /// namespace uses; each session also carries its own expiry).
    pub session_ttl: Duration,
    /// Most packets replayed to one client; a client that missed more gets a fresh session.
    pub max_replay: usize,
    /// Keep the session of every connected socket in the bucket while it is connected, so that
    /// a client whose node dies is recovered by another node.
    pub live_sessions: bool,
}

impl JetStreamConfig {
    /// The defaults: stream `SOCKEYE`, one hour or 100 000 entries, bucket `sockeye-sessions`
    /// keeping sessions 2 minutes (the default recovery window), live sessions on.
    pub fn new() -> JetStreamConfig {
        JetStreamConfig {
            stream: "SOCKEYE".to_owned(),
            max_age: Duration::from_secs(3600),
            max_messages: 100_000,
            bucket: "sockeye-sessions".to_owned(),
            session_ttl: Duration::from_secs(120),
            max_replay: 10_000,
            live_sessions: true,
        }
    }

    /// Sets [`JetStreamConfig::stream`].
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = name.into();
        self
    }

    /// Sets [`JetStreamConfig::bucket`].
    pub fn bucket(mut self, name: impl Into<String>) -> Self {
        self.bucket = name.into();
        self
    }

    /// Sets [`JetStreamConfig::max_age`] and [`JetStreamConfig::max_messages`].
    pub fn retention(mut self, max_age: Duration, max_messages: i64) -> Self {
        self.max_age = max_age;
        self.max_messages = max_messages;
        self
    }

    /// Sets [`JetStreamConfig::session_ttl`].
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// Sets [`JetStreamConfig::live_sessions`].
    pub fn live_sessions(mut self, on: bool) -> Self {
        self.live_sessions = on;
        self
    }
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        JetStreamConfig::new()
    }
}
