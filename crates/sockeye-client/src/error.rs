//! The errors of the client.

use std::time::Duration;

use serde_json::Value;

/// Everything a client operation can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SocketIoError {
    /// The Engine.IO connection could not be opened or was lost: the server is unreachable,
    /// answered with an HTTP error, sent something that is not Engine.IO v4, or stopped
    /// answering. Check the URL, the `path` option and that the server speaks Socket.IO v4+.
    #[error("connection error: {0}")]
    Connection(#[from] ConnectionError),
    /// The server refused a namespace connection (a middleware called `next(err)`); `message`
    /// is the error's message and `data` its `data` field, if any. Fix the credentials sent in
    /// `auth` or the headers the middleware checks.
    #[error("the server refused namespace {namespace}: {message}")]
    ConnectionRefused {
        /// The namespace that was refused.
        namespace: String,
        /// The error message given by the server.
        message: String,
        /// Extra data the server attached to the error (`err.data`), if any.
        data: Option<Value>,
    },
    /// An acknowledgement did not arrive in time (`call`), or the client did not connect within
    /// its wait timeout, or `SimpleClient::receive` found no event in time.
    #[error("timed out waiting for the server")]
    Timeout,
    /// The namespace is not connected on this client: it was never requested in the connect
    /// options, was refused, or the server disconnected it. Add it to `namespaces` when
    /// connecting.
    #[error("{0} is not a connected namespace")]
    BadNamespace(String),
    /// The client is disconnected (by `disconnect`, by the server, or after giving up
    /// reconnecting) and is not buffering emits; connect a new client.
    #[error("the client is disconnected")]
    Disconnected,
}

/// Why the Engine.IO connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// The URL could not be used: it must be `http`, `https`, `ws` or `wss` with a host.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An option cannot work, e.g. an empty transport list or an invalid header.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The server answered an HTTP request with an error status (e.g. 400 for a bad session or
    /// 403 when an `allowRequest` check refused the handshake).
    #[error("unexpected status {status} from the server: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The start of the response body (the server's error JSON, usually).
        body: String,
    },
    /// The network failed: connection refused, reset, or a request timed out.
    #[error("transport failure: {0}")]
    Transport(String),
    /// The server sent bytes that are not valid Engine.IO v4 or Socket.IO v5.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A wait of the client ran out: `what` names it and `after` is its bound, one of the
    /// documented options (`connect_timeout` for TCP, TLS and a proxy tunnel;
    /// `request_timeout` for an HTTP request, the WebSocket handshake, the OPEN packet and the
    /// upgrade probe; `pingInterval + request_timeout` for a long-poll GET).
    #[error("{what} did not finish within {after:?}")]
    Timeout {
        /// The operation that took too long.
        what: String,
        /// The bound it had.
        after: Duration,
    },
    /// The server sent more than the client accepts in one piece (`ClientBuilder::max_payload`:
    /// a polling response body, a WebSocket frame or message, or a Socket.IO packet with its
    /// attachments).
    #[error("the server sent more than the client's limit of {limit} bytes in one message")]
    PayloadTooLarge {
        /// The limit that was passed, in bytes.
        limit: usize,
    },
    /// The server stopped sending heartbeats (no ping within `pingInterval + pingTimeout`).
    #[error("the server stopped sending heartbeats")]
    PingTimeout,
    /// The server closed the Engine.IO session.
    #[error("the server closed the connection")]
    ServerClosed,
}

/// The result type of client operations.
pub type Result<T, E = SocketIoError> = std::result::Result<T, E>;
