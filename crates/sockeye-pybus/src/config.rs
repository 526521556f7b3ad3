//! [`PyBusConfig`]: where the bus is and its limits.

use std::time::Duration;

/// How a node reaches python-socketio's bus on Redis.
///
/// The defaults are python-socketio's: channel `socketio` on the URL's database.
#[derive(Debug, Clone)]
pub struct PyBusConfig {
    pub(crate) url: String,
    pub(crate) channel: String,
    pub(crate) max_message_size: usize,
    pub(crate) max_depth: usize,
    pub(crate) publish_queue: usize,
    pub(crate) command_timeout: Duration,
    pub(crate) remote_ack_timeout: Duration,
}

impl PyBusConfig {
    /// The bus at `url`, channel `socketio`: Redis (`redis://host:port/db`, `unix:///path`),
    /// or AMQP (`amqp://user:pass@host:port/vhost`, feature `amqp`).
    pub fn new(url: impl Into<String>) -> PyBusConfig {
        PyBusConfig {
            url: url.into(),
            channel: "socketio".to_owned(),
            max_message_size: 1_000_000,
            max_depth: 64,
            publish_queue: 4096,
            command_timeout: Duration::from_secs(5),
            remote_ack_timeout: Duration::from_secs(60),
        }
    }

    /// The channel (python-socketio's `channel` argument; every node must use the same): the
    /// Redis channel, or the AMQP exchange.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = channel.into();
        self
    }

    /// Bus messages larger than this are dropped and counted (default 1 MB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Deepest JSON nesting accepted in event arguments from the bus (default 64).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Messages waiting to be published; beyond, operations fail (default 4096).
    pub fn publish_queue(mut self, messages: usize) -> Self {
        self.publish_queue = messages.max(1);
        self
    }

    /// How long a broker command (publish, declare, connect) may take (default 5 s).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// How long this node waits for its clients' answers to an emit with callback that came
    /// from a python node, which sends no timeout (default 60 s, `AsyncServer.call`'s). Unlike
    /// python nodes, which keep such callbacks forever, the wait is freed then.
    pub fn remote_ack_timeout(mut self, timeout: Duration) -> Self {
        self.remote_ack_timeout = timeout;
        self
    }
}
