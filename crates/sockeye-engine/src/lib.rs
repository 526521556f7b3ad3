//! The Engine.IO v4 server of sockeye: sessions over HTTP long-polling and WebSocket, the
//! upgrade between them, the heartbeat, behind a tower [`Layer`](tower_layer::Layer).
//!
//! An [`Engine`] holds the options, the [`EngineHandler`] (the layer above: Socket.IO, or an
//! application speaking bare Engine.IO) and the sessions. Mount it beside other routes with
//! [`Engine::layer`], or alone with [`Engine::service`]; requests outside the engine path
//! reach the wrapped service untouched.
//!
//! # Slow-reader policy
//!
//! Each session has one outgoing queue of at most `max_queued_frames` frames, the same for
//! polling and WebSocket; frames share their payload (`Bytes`), so a broadcast costs one
//! reference per recipient. Memory per session is thus bounded whatever the client does.
//!
//! - [`Session::send`] never blocks. On a full queue it refuses the frame with
//!   [`SendError::QueueFull`] and closes the session with [`CloseReason::SlowReader`]: nothing
//!   is dropped silently while the session lives, and the client reconnects.
//! - Back-pressure on input: before handing the next inbound message to
//!   [`EngineHandler::on_message`], the engine waits until the queue is at most half full.
//!   A client that sends requests and never reads the answers is therefore slowed down, not
//!   buffered; if the queue stays above half for `slow_reader_timeout`, or a WebSocket write
//!   does not complete within it, the session is closed with [`CloseReason::SlowReader`].
//! - Heartbeat pings never wait behind data: a due ping is written before any queued frame
//!   (first in the polling payload, next WebSocket frame).
//!
//! # Example: beside axum routes
//!
//! ```no_run
//! use std::sync::Arc;
//! use sockeye_engine::{CloseReason, Engine, EngineConfig, EngineHandler, Message, Session};
//!
//! struct Echo;
//! impl EngineHandler for Echo {
//!     type Data = ();
//!     fn on_open(&self, _session: &Arc<Session<()>>) {}
//!     async fn on_message(&self, session: &Arc<Session<()>>, message: Message) {
//!         let frame = match message {
//!             Message::Text(text) => {
//!                 sockeye_engine::Frame::message(std::str::from_utf8(&text).unwrap_or(""))
//!             }
//!             Message::Binary(data) => sockeye_engine::Frame::Binary(data),
//!         };
//!         let _ = session.send(frame);
//!     }
//!     fn on_close(&self, _session: &Arc<Session<()>>, _reason: CloseReason) {}
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let engine = Engine::new(Echo, EngineConfig::default());
//! let app = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .layer(engine.layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! # Example: on bare hyper
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use sockeye_engine::{CloseReason, Engine, EngineConfig, EngineHandler, Message, Session};
//! # struct Echo;
//! # impl EngineHandler for Echo {
//! #     type Data = ();
//! #     fn on_open(&self, _: &Arc<Session<()>>) {}
//! #     async fn on_message(&self, _: &Arc<Session<()>>, _: Message) {}
//! #     fn on_close(&self, _: &Arc<Session<()>>, _: CloseReason) {}
//! # }
//! use hyper_util::rt::{TokioExecutor, TokioIo};
//! use hyper_util::server::conn::auto::Builder;
//! use hyper_util::service::TowerToHyperService;
//!
//! # async fn run() -> std::io::Result<()> {
//! let engine = Engine::new(Echo, EngineConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     tcp.set_nodelay(true)?;
//!     let service = TowerToHyperService::new(engine.service());
//!     tokio::spawn(async move {
//!         let _ = Builder::new(TokioExecutor::new())
//!             .serve_connection_with_upgrades(TokioIo::new(tcp), service)
//!             .await;
//!     });
//! }
//! # }
//! ```
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod close;
mod compress;
mod config;
mod engine;
mod handler;
mod head;
mod http_util;
mod payload;
mod polling;
mod service;
mod session;
mod ws;
mod ws_io;

pub use close::{CloseReason, SendError};
pub use config::{
    AllowRequest, CookieConfig, DeflateConfig, EngineConfig, EngineConfigBuilder, SameSite,
    Transports,
};
pub use engine::{BoxError, Engine, RemoteAddr, WeakEngine};
pub use handler::EngineHandler;
pub use payload::Protocol;
pub use service::{EngineLayer, EngineService, NotFound, ResponseBody, ResponseFuture};
pub use session::{Session, Transport};
pub use sockeye_protocol::engine::{Frame, Message};
