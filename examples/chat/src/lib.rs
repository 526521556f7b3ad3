//! The chat example: rooms, nicknames in the session, typing indicators, broadcasts that skip
//! the sender. The page and the official browser client (the copy npm installed in
//! `examples/chat`) are served by the same axum app.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use sockeye::SocketIoBuilder;
use sockeye::prelude::*;
use sockeye_redis::{RedisAdapterFactory, RedisConfig};

/// The page.
const INDEX: &str = include_str!("../static/index.html");

/// Where new users start.
pub const DEFAULT_ROOM: &str = "general";
const MAX_NICK: usize = 32;
const MAX_ROOM: usize = 32;
const MAX_TEXT: usize = 2000;

/// What the client sends when it connects (`io({ auth: { nickname } })`).
#[derive(Deserialize)]
struct Hello {
    nickname: String,
}

/// The session: who the socket is and where it talks.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct User {
    nick: String,
    room: String,
}

#[derive(Deserialize)]
struct ChatIn {
    text: String,
}

#[derive(Serialize)]
struct ChatOut<'a> {
    nick: &'a str,
    text: &'a str,
}

#[derive(Serialize)]
struct Presence<'a> {
    nick: &'a str,
    room: &'a str,
}

#[derive(Serialize)]
struct Typing<'a> {
    nick: &'a str,
    typing: bool,
}

/// An ack telling the client whether its request was applied.
#[derive(Serialize)]
struct Done {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

impl Done {
    fn ok() -> Json<Done> {
        Json(Done {
            ok: true,
            error: None,
        })
    }
    fn err(error: &'static str) -> Json<Done> {
        Json(Done {
            ok: false,
            error: Some(error),
        })
    }
}

async fn on_connect(
    socket: SocketRef,
    Auth(hello): Auth<Hello>,
) -> Result<(), ConnectionRefusedError> {
    let nick = hello.nickname.trim();
    if nick.is_empty() || nick.chars().count() > MAX_NICK {
        return Err(ConnectionRefusedError::with_data(
            "choose a nickname of 1 to 32 characters",
            serde_json::json!({ "field": "nickname" }),
        ));
    }
    let user = User {
        nick: nick.to_owned(),
        room: DEFAULT_ROOM.to_owned(),
    };
    socket.join(DEFAULT_ROOM);
    announce(&socket, "joined", &user).await;
    tracing::info!(id = %socket.id(), nick = %user.nick, "connected");
    socket.save_session(user);
    Ok(())
}

/// Tells the others in the user's room that the user `event` (joined or left) it.
async fn announce(socket: &SocketRef, event: &str, user: &User) {
    let presence = Presence {
        nick: &user.nick,
        room: &user.room,
    };
    if let Err(e) = socket.to(user.room.as_str()).emit(event, &presence).await {
        tracing::warn!(error = %e, event, "presence not broadcast");
    }
}

async fn on_chat(socket: SocketRef, Data(msg): Data<ChatIn>, user: Session<User>) -> Json<Done> {
    let text = msg.text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT {
        return Done::err("a message has 1 to 2000 characters");
    }
    let out = ChatOut {
        nick: &user.nick,
        text,
    };
    match socket.to(user.room.as_str()).emit("message", &out).await {
        Ok(()) => Done::ok(),
        Err(e) => {
            tracing::warn!(error = %e, "message not broadcast");
            Done::err("the message could not be delivered")
        }
    }
}

/// Relays a typing indicator to the room (the page sends it without an ack).
async fn on_typing(socket: SocketRef, Data(typing): Data<bool>, user: Session<User>) {
    let out = Typing {
        nick: &user.nick,
        typing,
    };
    // Volatile: a lost typing indicator is better than a queue of stale ones.
    let sent = socket
        .to(user.room.as_str())
        .volatile()
        .emit("typing", &out)
        .await;
    if let Err(e) = sent {
        tracing::debug!(error = %e, "typing indicator not relayed");
    }
}

async fn on_join(
    socket: SocketRef,
    Data(room): Data<String>,
    mut user: Session<User>,
) -> Json<Done> {
    let room = room.trim().to_owned();
    if room.is_empty() || room.chars().count() > MAX_ROOM {
        return Done::err("a room name has 1 to 32 characters");
    }
    if room == user.room {
        return Done::ok();
    }
    announce(&socket, "left", &user).await;
    socket.leave(&user.room);
    socket.join(room.clone());
    user.room = room;
    announce(&socket, "joined", &user).await;
    user.save();
    Done::ok()
}

async fn on_leave(socket: SocketRef, user: Option<Session<User>>, reason: DisconnectReason) {
    if let Some(user) = user {
        announce(&socket, "left", &user).await;
        tracing::info!(nick = %user.nick, %reason, "disconnected");
    }
}

/// Where `npm ci` in `examples/chat` puts the official browser client (socket.io-client,
/// pinned by `examples/chat/package-lock.json`).
pub fn client_js_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("node_modules/socket.io-client/dist/socket.io.min.js")
}

/// The browser client as npm installed it, read once; `None` (and a warning) when it is not
/// installed: the page then falls back to the official CDN.
fn load_client_js(path: &Path) -> Option<Bytes> {
    match std::fs::read(path) {
        Ok(js) => {
            tracing::debug!(path = %path.display(), "serving the Socket.IO browser client installed by npm");
            Some(Bytes::from(js))
        }
        Err(e) => {
            tracing::warn!(
                path = %path.display(),
                error = %e,
                "the Socket.IO browser client is not installed: run `npm ci` in examples/chat; \
                 until then /socket.io.min.js answers 404 and the page loads the client from the \
                 Socket.IO CDN"
            );
            None
        }
    }
}

/// `GET /socket.io.min.js`: the npm copy, or 404 when there is none.
fn client_js_response(js: Option<Bytes>) -> axum::response::Response {
    match js {
        Some(js) => ([(header::CONTENT_TYPE, "application/javascript")], js).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The whole app on one node (in-memory adapter): the page, the client bundle and the
/// Socket.IO server.
pub fn app() -> (Router, SocketIo) {
    app_with(SocketIo::builder())
}

/// The whole app with the server settings of `builder` (e.g. its adapter).
pub fn app_with(builder: SocketIoBuilder) -> (Router, SocketIo) {
    let (layer, io) = builder.build_layer();
    io.ns("/", on_connect)
        .on("chat", on_chat)
        .on("typing", on_typing)
        .on("join", on_join)
        .on_disconnect(on_leave);
    let client_js = load_client_js(&client_js_path());
    let router = Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route(
            "/socket.io.min.js",
            get(move || {
                let js = client_js.clone();
                async move { client_js_response(js) }
            }),
        )
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .layer(layer);
    (router, io)
}

/// The port from the first argument, else `PORT`, else 3000.
pub fn port_from_env() -> Result<u16, String> {
    let raw = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok());
    match raw {
        None => Ok(3000),
        Some(p) => p
            .parse()
            .map_err(|e| format!("invalid port {p:?}: {e}; pass a number (0 picks a free one)")),
    }
}

/// Why the chat could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `REDIS_URL` was set but the Redis adapter could not connect.
    #[error("cannot use Redis at REDIS_URL: {0}; start Redis or unset REDIS_URL to run one node")]
    Redis(#[from] sockeye_redis::RedisError),
    /// The HTTP server failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// How long a node waits for its Redis subscriptions before serving.
const REDIS_READY: Duration = Duration::from_secs(10);

/// The server settings: the Redis adapter when `REDIS_URL` is set (channel prefix from
/// `REDIS_KEY`, default `socket.io`), so several chat nodes share rooms; in-memory otherwise.
async fn builder_from_env() -> Result<(SocketIoBuilder, Option<RedisAdapterFactory>), ServeError> {
    let Some(url) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        return Ok((SocketIo::builder(), None));
    };
    let mut config = RedisConfig::new(url);
    if let Some(key) = std::env::var("REDIS_KEY").ok().filter(|k| !k.is_empty()) {
        config = config.key(key);
    }
    let redis = RedisAdapterFactory::connect(config).await?;
    Ok((SocketIo::builder().adapter(redis.clone()), Some(redis)))
}

/// Serves the app on `listener` with TCP_NODELAY on every accepted socket (chat messages are
/// small: Nagle's algorithm would only add latency). Uses Redis when `REDIS_URL` is set.
pub async fn serve(listener: tokio::net::TcpListener) -> Result<(), ServeError> {
    use axum::serve::ListenerExt;
    let (builder, redis) = builder_from_env().await?;
    let (app, _io) = app_with(builder);
    if let Some(redis) = redis {
        // Serving before the namespace channel is subscribed would lose the first remote
        // broadcasts; go on anyway after the wait, since later ones will arrive.
        if !redis.ready(REDIS_READY).await {
            tracing::warn!("Redis subscriptions not confirmed within 10 s; serving anyway");
        }
        tracing::info!(uid = redis.uid(), "using the Redis adapter");
    }
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "TCP_NODELAY not set");
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
