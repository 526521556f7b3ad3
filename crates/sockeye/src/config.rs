//! Socket.IO-level settings (the Engine.IO ones live in [`sockeye_engine::EngineConfig`]).

use std::time::Duration;

use sockeye_protocol::socketio::{Limits, ParserKind};

use crate::extract::StateMap;

/// Settings of the Socket.IO layer, set through [`crate::SocketIoBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// A session that has not connected to any namespace after this long is closed.
    pub(crate) connect_timeout: Duration,
    /// Default timeout of `call` and broadcasts with ack.
    pub(crate) ack_timeout: Duration,
    /// Events of one socket waiting for their handler, at most.
    pub(crate) inbox_capacity: usize,
    /// How long the reader waits for room in a full inbox before closing the client.
    pub(crate) inbox_timeout: Duration,
    /// Packets held for a socket while its connect step runs, at most.
    pub(crate) connecting_buffer: usize,
    /// A binary packet whose attachments have not all arrived this long after its header
    /// closes the session.
    pub(crate) attachment_timeout: Duration,
    /// Decoder limits.
    pub(crate) limits: Limits,
    /// The Socket.IO wire format.
    pub(crate) parser: ParserKind,
    /// Connection-state recovery, when enabled.
    pub(crate) recovery: Option<crate::recovery::RecoveryConfig>,
    /// Send the CONNECT reply before the connect step; a refusal then disconnects.
    pub(crate) always_connect: bool,
    /// The application's states, read by `State<T>` extractors.
    pub(crate) states: StateMap,
    /// The observer of the data path (Admin UI, metrics); off by default.
    pub(crate) hooks: crate::instrument::Hooks,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            connect_timeout: Duration::from_secs(45),
            ack_timeout: Duration::from_secs(60),
            inbox_capacity: 64,
            inbox_timeout: Duration::from_secs(10),
            connecting_buffer: 256,
            attachment_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            parser: ParserKind::Json,
            recovery: None,
            always_connect: false,
            states: StateMap::default(),
            hooks: crate::instrument::Hooks::default(),
        }
    }
}
