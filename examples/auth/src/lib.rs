//! The auth example: the client sends a token in the CONNECT payload (`io({ auth: { token } })`);
//! the connect handler checks it against a user table held in `State`, stores the user in the
//! session, or refuses with a message and data that the page shows.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use sockeye::prelude::*;

const INDEX: &str = include_str!("../static/index.html");

/// The official browser client as `npm ci` installs it for the chat example (see its README);
/// the page falls back to the Socket.IO CDN when it is missing.
const CLIENT_JS_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../chat/node_modules/socket.io-client/dist/socket.io.min.js"
);

/// The users, by token (a real app asks its database or verifies a signed token).
#[derive(Clone)]
pub struct Users(Arc<HashMap<String, User>>);

impl Users {
    /// Two demo users: tokens `alice-token` and `bob-token`.
    pub fn demo() -> Users {
        let mut map = HashMap::new();
        for (token, name, admin) in [("alice-token", "alice", true), ("bob-token", "bob", false)] {
            map.insert(
                token.to_owned(),
                User {
                    name: name.to_owned(),
                    admin,
                },
            );
        }
        Users(Arc::new(map))
    }
}

/// Who a socket is, kept in its session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    name: String,
    admin: bool,
}

#[derive(Deserialize)]
struct Credentials {
    token: String,
}

async fn on_connect(
    socket: SocketRef,
    auth: Option<Auth<Credentials>>,
    State(users): State<Users>,
) -> Result<(), ConnectionRefusedError> {
    let Some(Auth(credentials)) = auth else {
        return Err(ConnectionRefusedError::with_data(
            "authentication required",
            serde_json::json!({ "reason": "no_token", "hint": "connect with io({ auth: { token } })" }),
        ));
    };
    let Some(user) = users.0.get(&credentials.token) else {
        tracing::info!(id = %socket.id(), "refused: unknown token");
        return Err(ConnectionRefusedError::with_data(
            "invalid token",
            serde_json::json!({ "reason": "unknown_token", "hint": "try alice-token or bob-token" }),
        ));
    };
    socket.save_session(user.clone());
    Ok(())
}

async fn whoami(user: Session<User>) -> Json<User> {
    Json(user.into_inner())
}

fn admin_only(user: Session<User>) -> Result<Json<&'static str>, Json<&'static str>> {
    if user.admin {
        Ok(Json("welcome, admin"))
    } else {
        Err(Json("forbidden: admins only"))
    }
}

/// The browser client, read once; `None` (and a warning) when npm has not installed it.
fn load_client_js() -> Option<Bytes> {
    let path = Path::new(CLIENT_JS_PATH);
    match std::fs::read(path) {
        Ok(js) => Some(Bytes::from(js)),
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

/// The app: the page, the client bundle and the Socket.IO server.
pub fn app() -> Router {
    let (layer, io) = SocketIo::builder().with_state(Users::demo()).build_layer();
    io.ns("/", on_connect)
        .on("whoami", whoami)
        .on("admin", admin_only);
    let client_js = load_client_js();
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route(
            "/socket.io.min.js",
            get(move || {
                let js = client_js.clone();
                async move {
                    match js {
                        Some(js) => {
                            ([(header::CONTENT_TYPE, "application/javascript")], js).into_response()
                        }
                        None => StatusCode::NOT_FOUND.into_response(),
                    }
                }
            }),
        )
        .layer(layer)
}
