//! Settings of the adapter and the emitter.

use std::time::Duration;

/// Settings shared by [`crate::RedisAdapterFactory`] and [`crate::Emitter`].
///
/// The defaults match `@socket.io/redis-adapter`: key prefix `socket.io`, 5 s request timeout.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub(crate) url: String,
    pub(crate) key: String,
    pub(crate) request_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) max_depth: usize,
    pub(crate) publish_queue: usize,
    pub(crate) max_pending_requests: usize,
    pub(crate) max_responses: usize,
    pub(crate) reconnect_min: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) command_timeout: Duration,
    #[cfg(feature = "tls")]
    pub(crate) tls_root_cert: Option<Vec<u8>>,
}

impl RedisConfig {
    /// Settings for the server at `url`: `redis://[user:password@]host[:port][/db]`,
    /// `rediss://...` (TLS, needs the `tls` feature), `unix:///path/to/redis.sock`; Valkey URLs
    /// (`valkey://`) work the same. The classic adapter and emitter also take Redis Sentinel
    /// URLs as python-socketio does,
    /// `redis+sentinel://[user:password@]host:port[,host:port...][/db[/service_name]]` (or
    /// `valkey+sentinel://`; the credentials are the master's, the service name defaults to the
    /// key), and ask the sentinels for the master at each (re)connection.
    pub fn new(url: impl Into<String>) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            key: "socket.io".to_owned(),
            request_timeout: Duration::from_secs(5),
            max_message_size: 1_000_000,
            max_depth: 64,
            publish_queue: 4096,
            max_pending_requests: 1024,
            max_responses: 4096,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            command_timeout: Duration::from_secs(2),
            #[cfg(feature = "tls")]
            tls_root_cert: None,
        }
    }

    /// The channel prefix (JS option `key`, default `socket.io`). Every node and emitter of one
    /// cluster must use the same prefix.
    pub fn key(mut self, key: impl Into<String>) -> RedisConfig {
        self.key = key.into();
        self
    }

    /// How long a request to the other nodes (fetch sockets, server-side emit with ack, the
    /// client counts of a broadcast with ack) waits for every answer (default 5 s).
    pub fn request_timeout(mut self, timeout: Duration) -> RedisConfig {
        self.request_timeout = timeout;
        self
    }

    /// Largest broker message accepted, in bytes (default 1 000 000); larger ones are dropped
    /// and counted.
    pub fn max_message_size(mut self, bytes: usize) -> RedisConfig {
        self.max_message_size = bytes.max(64);
        self
    }

    /// Deepest nesting accepted in a broker message (default 64).
    pub fn max_depth(mut self, depth: usize) -> RedisConfig {
        self.max_depth = depth.max(4);
        self
    }

    /// Messages waiting to be published (default 4096); when full, new ones are refused and
    /// counted.
    pub fn publish_queue(mut self, messages: usize) -> RedisConfig {
        self.publish_queue = messages.max(1);
        self
    }

    /// Requests to other nodes in flight per namespace (default 1024).
    pub fn max_pending_requests(mut self, requests: usize) -> RedisConfig {
        self.max_pending_requests = requests.max(1);
        self
    }

    /// Answers buffered per request (default 4096): bounds a broadcast with ack to that many
    /// remote acknowledgements.
    pub fn max_responses(mut self, responses: usize) -> RedisConfig {
        self.max_responses = responses.max(1);
        self
    }

    /// Reconnect backoff of the subscriber connection: first delay, doubled up to `max`
    /// (defaults 100 ms and 5 s).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> RedisConfig {
        self.reconnect_min = min;
        self.reconnect_max = max.max(min);
        self
    }

    /// Timeout of one Redis command or connection attempt (default 2 s).
    pub fn command_timeout(mut self, timeout: Duration) -> RedisConfig {
        self.command_timeout = timeout;
        self
    }

    /// For `rediss://`: trust only this CA certificate (PEM) instead of the bundled web
    /// roots, e.g. a private CA.
    #[cfg(feature = "tls")]
    pub fn tls_root_cert(mut self, pem: impl Into<Vec<u8>>) -> RedisConfig {
        self.tls_root_cert = Some(pem.into());
        self
    }

    /// The URL without its password, for logs and errors.
    pub(crate) fn redacted_url(&self) -> String {
        match self.url.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}"),
                None => self.url.clone(),
            },
            None => self.url.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RedisConfig;

    #[test]
    fn passwords_never_reach_logs() {
        let c = RedisConfig::new("redis://user:secret@10.0.0.1:6380/2");
        assert_eq!(c.redacted_url(), "redis://***@10.0.0.1:6380/2");
        assert_eq!(
            RedisConfig::new("unix:///tmp/r.sock").redacted_url(),
            "unix:///tmp/r.sock"
        );
    }
}
