//! Settings of the streams adapter and its emitter.

use std::time::Duration;

use crate::RedisConfig;

/// Settings of [`super::StreamsAdapterFactory`] and [`super::StreamsEmitter`]. The defaults
/// are `@socket.io/redis-streams-adapter`'s: stream `socket.io` (one stream), channel prefix
/// `socket.io`, `MAXLEN ~ 10000`, reads of 100 entries blocking 5 s, sessions under
/// `sio:session:`.
///
/// The connection settings (URL, TLS, timeouts, reconnect backoff, message size and depth
/// limits, pending requests and responses) are the [`RedisConfig`]'s; its `key` is not used
/// here (see [`StreamsConfig::channel_prefix`]).
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    pub(crate) redis: RedisConfig,
    pub(crate) stream_name: String,
    pub(crate) stream_count: usize,
    pub(crate) channel_prefix: String,
    pub(crate) max_len: usize,
    pub(crate) read_count: usize,
    pub(crate) block_time: Duration,
    pub(crate) session_key_prefix: String,
    pub(crate) live_sessions: bool,
    pub(crate) max_replay: usize,
}

impl StreamsConfig {
    /// The official adapter's defaults, with these connection settings.
    pub fn new(redis: RedisConfig) -> StreamsConfig {
        StreamsConfig {
            redis,
            stream_name: "socket.io".to_owned(),
            stream_count: 1,
            channel_prefix: "socket.io".to_owned(),
            max_len: 10_000,
            read_count: 100,
            block_time: Duration::from_secs(5),
            session_key_prefix: "sio:session:".to_owned(),
            live_sessions: true,
            max_replay: 10_000,
        }
    }

    /// The stream name (JS `streamName`, default `socket.io`).
    pub fn stream_name(mut self, name: impl Into<String>) -> StreamsConfig {
        self.stream_name = name.into();
        self
    }

    /// How many streams the namespaces are spread over (JS `streamCount`, default 1). With
    /// more than one, namespace `ns` uses stream `<name>-<hashCode(ns) % count>`, as the JS
    /// adapter computes it; every node of a cluster must use the same count.
    pub fn stream_count(mut self, count: usize) -> StreamsConfig {
        self.stream_count = count.max(1);
        self
    }

    /// The prefix of the pub/sub channels (JS `channelPrefix`, default `socket.io`).
    pub fn channel_prefix(mut self, prefix: impl Into<String>) -> StreamsConfig {
        self.channel_prefix = prefix.into();
        self
    }

    /// The approximate length the stream is trimmed to at each write (JS `maxLen`, default
    /// 10 000): the recovery window in entries.
    pub fn max_len(mut self, len: usize) -> StreamsConfig {
        self.max_len = len;
        self
    }

    /// Entries read per XREAD (JS `readCount`, default 100).
    pub fn read_count(mut self, count: usize) -> StreamsConfig {
        self.read_count = count.max(1);
        self
    }

    /// How long one XREAD blocks (JS `blockTimeInMs`, default 5 s).
    pub fn block_time(mut self, time: Duration) -> StreamsConfig {
        self.block_time = time;
        self
    }

    /// The prefix of stored sessions' keys (JS `sessionKeyPrefix`, default `sio:session:`).
    pub fn session_key_prefix(mut self, prefix: impl Into<String>) -> StreamsConfig {
        self.session_key_prefix = prefix.into();
        self
    }

    /// Keeps each recoverable socket's session stored while it is connected (default true),
    /// so that another node can restore it after this node dies; off, a session is stored
    /// only when this node sees the disconnect (the official adapter's behaviour). See
    /// `docs/redis.md`, "Streams mode", for what it costs.
    pub fn live_sessions(mut self, on: bool) -> StreamsConfig {
        self.live_sessions = on;
        self
    }

    /// The most missed packets one recovery replays (default 10 000); past it the client
    /// gets a fresh session rather than a partial replay.
    pub fn max_replay(mut self, packets: usize) -> StreamsConfig {
        self.max_replay = packets;
        self
    }
}
