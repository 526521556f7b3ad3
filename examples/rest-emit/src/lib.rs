//! The rest-emit example: REST → real-time. Sockets subscribe to rooms; an ordinary axum HTTP
//! handler (`POST /rooms/{room}/messages`) takes the `SocketIo` handle as an argument and emits
//! into the room.

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use sockeye::prelude::*;

#[derive(Deserialize)]
struct NewMessage {
    text: String,
}

#[derive(Serialize)]
struct Delivered {
    room: String,
    /// Sockets of this node in the room when the message was sent.
    local_recipients: usize,
}

/// `subscribe` joins a room; the ack lists the socket's rooms.
fn subscribe(socket: SocketRef, Data(room): Data<String>) -> Json<Vec<String>> {
    socket.join(room);
    Json(socket.rooms())
}

/// The HTTP side: no socket in sight, only the server handle (put in the request by the layer).
async fn post_message(
    io: SocketIo,
    Path(room): Path<String>,
    axum::Json(msg): axum::Json<NewMessage>,
) -> Result<axum::Json<Delivered>, (StatusCode, String)> {
    let operator = io.to(&room);
    let local_recipients = operator.sockets().len();
    operator
        .emit(
            "message",
            &serde_json::json!({ "room": room, "text": msg.text }),
        )
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(axum::Json(Delivered {
        room,
        local_recipients,
    }))
}

/// The app.
pub fn app() -> Router {
    let (layer, io) = SocketIo::builder().build_layer();
    io.ns("/", || ()).on("subscribe", subscribe);
    Router::new()
        .route("/rooms/{room}/messages", post(post_message))
        .layer(layer)
}
