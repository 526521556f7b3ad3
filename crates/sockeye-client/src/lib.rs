//! A Socket.IO v5 client (Engine.IO v4), sharing its wire format with the sockeye server.
//!
//! - [`Client`]: async (tokio), several namespaces on one connection, event handlers with
//!   acks both ways, reconnection with back-off, emit buffering and at-least-once retries.
//! - [`SimpleClient`]: one namespace, events pulled with `receive(timeout)`.
//! - [`blocking`]: the same two for code without an async runtime.
//!
//! Transports: HTTP long-polling with an upgrade to WebSocket (the default), or either alone.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod blocking;
mod client;
mod conn;
pub(crate) mod engine;
pub mod error;
mod event;
mod options;
mod proxy;
mod simple;
mod tls;

pub use client::{Client, ClientBuilder, Namespace};
pub use conn::Status;
pub use engine::Transport;
pub use error::{ConnectionError, Result, SocketIoError};
pub use event::{AckSender, DisconnectReason, Event, IntoAck};
/// The rustls version the `tls` feature uses, for [`ClientBuilder::tls_config`].
#[cfg(feature = "tls")]
pub use rustls;
pub use simple::SimpleClient;
/// permessage-deflate options for [`ClientBuilder::ws_deflate`].
pub use sockeye_protocol::deflate::DeflateConfig;
/// The Socket.IO wire format, chosen with [`ClientBuilder::parser`]; `MsgPack` needs the
/// `msgpack` feature.
pub use sockeye_protocol::socketio::ParserKind;
/// Event and ack arguments, shared with the server ([`Args::from_value`], [`Args::builder`]
/// for several or binary arguments; `first`, `nth`, `deserialize` to read them).
pub use sockeye_protocol::socketio::{Args, ArgsBuilder, DecodeError};
