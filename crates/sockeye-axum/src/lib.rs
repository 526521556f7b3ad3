//! axum-style handler functions and extractors for the [sockeye] Socket.IO server.
//!
//! Handlers are plain `async fn`s (or plain `fn`s) whose arguments are extractors, like axum
//! HTTP handlers; an event handler's return value is the ack.
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use sockeye_axum::prelude::*;
//!
//! #[derive(Clone)]
//! struct Db;
//! #[derive(Deserialize)]
//! struct Token { token: String }
//! #[derive(Clone)]
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
//!     let sent = socket.to(msg.room).emit("chat", &(user.name.as_str(), msg.text.as_str()));
//!     Json(Receipt { delivered: sent.is_ok() })
//! }
//!
//! async fn on_leave(socket: SocketRef, reason: DisconnectReason) {
//!     tracing::info!(id = %socket.id(), %reason, "left");
//! }
//!
//! async fn rest_send(io: SocketIo, axum::Json(text): axum::Json<String>) -> &'static str {
//!     let sent = io.to("lobby").map(|room| room.emit("chat", &("server", text)));
//!     if matches!(sent, Ok(Ok(()))) { "sent" } else { "not sent" }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let (layer, io) = SocketIo::builder().with_state(Db).build_layer();
//! io.ns("/", on_connect).on("chat", on_chat).on_disconnect(on_leave);
//! let app = axum::Router::new()
//!     .route("/send", axum::routing::post(rest_send))
//!     .layer(layer);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! Why this shape: Rust's orphan rules only allow blanket impls for functions on a trait of
//! the same crate, so this crate has its own handler traits ([`ConnectHandler`],
//! [`EventHandler`], [`DisconnectHandler`]) and its own [`SocketIo`] handle, which wraps
//! sockeye's (every method of it through `Deref`) and registers these handlers with the same
//! method names (`ns`, `on`, `on_disconnect`). The handle also carries the states, so handlers
//! need no global.
//!
//! Failed extraction never panics: the handler is not called, the reason is logged, an event
//! whose sender asked for an ack gets `{"error":{"code":..,"message":..}}`, and a connection is
//! refused with that message. See [`extract`] for every extractor and how to write your own.
//!
//! The user guide is `docs/guide/` in the repository.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod ack;
mod class;
mod context;
pub mod extract;
mod handler;
mod io;
mod layer;
mod rejection;
mod state;

pub use ack::{IntoAck, Json};
pub use class::NamespaceHandler;
pub use handler::{ConnectHandler, DisconnectHandler, EventHandler, marker};
pub use io::{NsHandle, SocketIo, SocketIoBuilder};
pub use layer::{SocketIoLayer, WithSocketIo};
pub use rejection::Rejection;
pub use state::State;

pub use bytes::Bytes;
pub use serde_json::Value;
pub use sockeye::{
    AckSender, AckValue, Args, ConnectionRefusedError, DisconnectReason, EmitError, Event, NoAck,
    RecoveryConfig, Reply, SocketId, SocketIoService, SocketRef, Transport,
};

/// Everything a handler module needs: `use sockeye_axum::prelude::*;`.
pub mod prelude {
    pub use crate::ack::{IntoAck, Json};
    pub use crate::extract::{
        Auth, Bin, Cookies, Data, EventName, Extension, HttpExtension, Namespace, Query,
        RemoteAddr, Session, TryData,
    };
    pub use crate::io::SocketIo;
    pub use crate::rejection::Rejection;
    pub use crate::state::State;
    pub use sockeye::{
        AckSender, ConnectionRefusedError, DisconnectReason, NoAck, SocketRef, Transport,
    };
}

/// The README's example, compiled as a doctest so it stays true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
