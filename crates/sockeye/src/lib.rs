//! Socket.IO for Rust: the server, on tower, hyper and axum.
//!
//! One crate, one [`SocketIo`]: register namespaces and their handlers, mount the layer on an
//! axum `Router` (or any tower service), emit from anywhere. Handlers are async functions
//! whose arguments are extractors, as in axum; an event handler's return value is its ack;
//! a connect handler returns `Result<_, ConnectionRefusedError>`, and a refusal reaches the
//! client with its message and data.
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use sockeye::prelude::*;
//!
//! #[derive(Clone)]
//! struct Db;
//! #[derive(Deserialize)]
//! struct Token { token: String }
//! #[derive(Clone, Serialize, Deserialize)]
//! struct User { name: String }
//! #[derive(Deserialize)]
//! struct ChatMsg { room: String, text: String }
//! #[derive(Serialize)]
//! struct Receipt { delivered: bool }
//!
//! async fn on_connect(
//!     socket: SocketRef,
//!     Auth(auth): Auth<Token>,
//!     State(_db): State<Db>,
//! ) -> Result<(), ConnectionRefusedError> {
//!     if auth.token.is_empty() {
//!         return Err(ConnectionRefusedError::with_data("bad token", serde_json::json!({"retry": false})));
//!     }
//!     socket.save_session(User { name: auth.token });
//!     Ok(())
//! }
//!
//! async fn on_chat(socket: SocketRef, Data(msg): Data<ChatMsg>, user: Session<User>) -> Json<Receipt> {
//!     let sent = socket.to(msg.room).emit("chat", &(user.name.as_str(), msg.text.as_str())).await;
//!     Json(Receipt { delivered: sent.is_ok() })
//! }
//!
//! async fn on_leave(socket: SocketRef, reason: DisconnectReason) {
//!     tracing::info!(id = %socket.id(), %reason, "left");
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let (layer, io) = SocketIo::builder().with_state(Db).build_layer();
//! io.ns("/", on_connect).on("chat", on_chat).on_disconnect(on_leave);
//! let app = axum::Router::new().layer(layer);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! A closure is a handler like any other:
//! `io.ns("/", |socket: SocketRef| async move { let _ = socket.emit("welcome", "hi"); })`.
//!
//! Features: `msgpack` (the `socket.io-msgpack-parser` wire format,
//! [`ParserKind::MsgPack`]); `axum` ([`SocketIo`] and [`extract::State`] as axum HTTP
//! extractors, axum's `ConnectInfo` as the peer address, `axum::Json` as an ack); `admin`
//! (the official Socket.IO Admin UI's protocol, [`SocketIoBuilder::instrument`]); `metrics`
//! (counters, gauges and a handler-latency histogram through the `metrics` facade,
//! [`SocketIoBuilder::metrics`], and `tracing` spans around connect steps and event handlers).
//!
//! The user guide is `docs/guide/` in the repository; `docs/server.md` describes the ordering
//! model, ack semantics, back-pressure and the adapter seam.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod ack;
pub mod adapter;
#[cfg(feature = "admin")]
pub mod admin;
mod config;
mod conn;
mod connection;
mod error;
mod event;
pub mod extract;
mod handler;
mod handshake;
mod id;
mod inbox;
mod instrument;
mod io;
mod layer;
mod local;
#[cfg(feature = "metrics")]
mod metrics;
mod ns;
mod operators;
mod outbox;
mod packet;
mod pattern;
mod reason;
mod recovery;
mod registry;
mod reply;
mod reserved;
mod rooms;
mod server_event;
mod session;
mod socket;
mod state;
mod sync;
#[cfg(test)]
mod testing;

pub use connection::{ConnectionState, SocketIoHandler};
pub use error::{
    AckError, AdapterError, ConnectionRefusedError, EmitError, NamespaceNotFound, RegisterError,
};
pub use event::{AckSender, Event};
pub use handler::class::NamespaceHandler;
pub use handler::{
    ConnectHandler, ConnectResult, DisconnectHandler, EventHandler, EventMiddleware, EventRejected,
    HandlerFuture, IntoConnectResult, marker,
};
pub use id::SocketId;
pub use io::{NsHandle, SocketIo, SocketIoBuilder, SocketIoService};
pub use layer::{SocketIoLayer, WithSocketIo};
pub use operators::{BroadcastOperator, IntoRooms};
pub use packet::Args;
pub use pattern::{NsParams, PatternError};
pub use reason::DisconnectReason;
pub use recovery::{RecoveryConfig, RecoveryStats};
pub use reply::{IntoAck, Json, NoAck, Reply};
pub use reserved::RESERVED_EVENTS;
pub use server_event::{ServerAck, ServerEvent, ServerEventHandler};
pub use socket::SocketRef;
pub use state::Extensions;

pub use bytes::Bytes;
pub use sockeye_engine::{
    CookieConfig, DeflateConfig, Engine, EngineConfig, EngineConfigBuilder, Protocol, RemoteAddr,
    SameSite, Transport, Transports,
};
pub use sockeye_protocol::socketio::{ArgsBuilder, Limits, ParserKind, Str};

/// Everything a handler module needs: `use sockeye::prelude::*;`.
///
/// It exports `Json`, `State`, `Query` and `Extension`, names axum has too. In a module that
/// imports axum's beside this prelude, the explicit import wins. With the `axum` feature,
/// `axum::Json` is a valid ack and sockeye's `State` also works in axum HTTP handlers (reading
/// the same states), so for those two either works; `Query` and `Extension` are socket
/// extractors only: name axum's by path in HTTP handlers. The guide's "axum" page has the
/// details.
pub mod prelude {
    pub use crate::event::{AckSender, Event};
    pub use crate::extract::{
        Auth, Bin, Cookies, Data, EventName, Extension, HttpExtension, Namespace, Query, Rejection,
        Session, State, TryData,
    };
    pub use crate::io::SocketIo;
    pub use crate::packet::Args;
    pub use crate::reason::DisconnectReason;
    pub use crate::reply::{IntoAck, Json, NoAck};
    pub use crate::socket::SocketRef;
    pub use crate::{ConnectionRefusedError, RemoteAddr, Transport};
}

/// The README's example, compiled as a doctest so it stays true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;

/// The examples of the user guide (`docs/guide/`) and of `docs/server.md`, compiled (and, unless
/// marked `no_run`, run) as doctests so they stay true. The pages with axum HTTP handlers need
/// the `axum` feature (`cargo test -p sockeye --all-features --doc`).
#[cfg(doctest)]
pub mod doc_pages {
    #[doc = include_str!("../../../docs/guide/quick-start.md")]
    pub struct QuickStart;
    #[doc = include_str!("../../../docs/guide/handlers-and-extractors.md")]
    pub struct HandlersAndExtractors;
    #[cfg(feature = "axum")]
    #[doc = include_str!("../../../docs/guide/rooms-and-broadcasts.md")]
    pub struct RoomsAndBroadcasts;
    #[doc = include_str!("../../../docs/guide/acks-and-calls.md")]
    pub struct AcksAndCalls;
    #[doc = include_str!("../../../docs/guide/sessions.md")]
    pub struct Sessions;
    #[doc = include_str!("../../../docs/guide/errors.md")]
    pub struct Errors;
    #[cfg(feature = "axum")]
    #[doc = include_str!("../../../docs/guide/axum.md")]
    pub struct Axum;
    #[doc = include_str!("../../../docs/server.md")]
    pub struct Server;
}
