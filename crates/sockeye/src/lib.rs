//! The Socket.IO v5 server of sockeye, on tower and hyper (and axum).
//!
//! ```no_run
//! use std::time::Duration;
//! use sockeye::{Args, ConnectionRefusedError, DisconnectReason, Event, SocketIo, SocketRef};
//!
//! # async fn run() -> std::io::Result<()> {
//! let (layer, io) = SocketIo::builder()
//!     .ping_interval(Duration::from_secs(25))
//!     .connect_timeout(Duration::from_secs(45))
//!     .build_layer();
//!
//! io.ns("/", |socket: SocketRef, auth: Option<serde_json::Value>| async move {
//!     if auth.as_ref().and_then(|a| a.get("token")).is_none() {
//!         return Err(ConnectionRefusedError::with_data("no token", serde_json::json!({"code": 401})));
//!     }
//!     let _ = socket.emit("welcome", "hello");
//!     Ok(())
//! })
//! .on("echo", |socket: SocketRef, event: Event| async move {
//!     // Sent back to the sender, and the same arguments become the ack.
//!     let _ = socket.emit_args("echo-back", event.args.clone());
//!     event.args
//! })
//! .on("join", |socket: SocketRef, event: Event| async move {
//!     let room: String = event.args.first().unwrap_or_default();
//!     socket.join(room.clone());
//!     let _ = socket.to(room).emit("joined", socket.id());
//! })
//! .on_disconnect(|socket: SocketRef, reason: DisconnectReason| async move {
//!     tracing::info!(id = %socket.id(), %reason, rooms = ?socket.rooms(), "left");
//! });
//!
//! let app = axum::Router::new().layer(layer);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! See `docs/server.md` for the ordering model, ack semantics, back-pressure and the adapter
//! seam.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod ack;
pub mod adapter;
mod client;
mod config;
mod conn;
mod error;
mod event;
mod handler;
mod handshake;
mod id;
mod inbox;
mod io;
mod local;
mod ns;
mod operators;
mod packet;
mod pattern;
mod reason;
mod recovery;
mod registry;
mod reserved;
mod server_event;
mod socket;
mod state;
mod sync;
#[cfg(test)]
mod testing;

pub use client::{ClientState, SocketIoHandler};
pub use error::{
    AckError, AdapterError, ConnectionRefusedError, EmitError, NamespaceNotFound, RegisterError,
};
pub use event::{AckSender, Event};
pub use handler::{
    AckValue, ConnectHandler, ConnectMiddleware, ConnectResult, DisconnectHandler, EventHandler,
    EventMiddleware, EventRejected, HandlerFuture, IntoConnectResult, IntoReply, NoAck, Reply,
};
pub use id::SocketId;
pub use io::{NsHandle, SocketIo, SocketIoBuilder, SocketIoLayer, SocketIoService};
pub use operators::{BroadcastOperator, IntoRooms};
pub use packet::{Args, BroadcastPacket};
pub use pattern::{NsParams, PatternError};
pub use reason::DisconnectReason;
pub use recovery::{RecoveryConfig, RecoveryStats};
pub use reserved::RESERVED_EVENTS;
pub use server_event::{ServerAck, ServerEvent, ServerEventHandler};
pub use socket::SocketRef;
pub use state::Extensions;

pub use sockeye_engine::{
    CookieConfig, EngineConfig, EngineConfigBuilder, RemoteAddr, SameSite, Transport, Transports,
};
pub use sockeye_protocol::socketio::{ArgsBuilder, Limits, ParserKind, Str};
