//! The interop app's namespaces and handlers (`shared/interop-app.md` §2 and §3).

use std::time::Duration;

use serde_json::{Value, json};
use sockeye::{
    AckError, AckValue, Args, ConnectionRefusedError, Event, NoAck, Reply, SocketIo, SocketRef,
};

use crate::dynamic::{Dynamic, object};

/// The non-ASCII event name, routed like `echo-ack`.
pub const UNICODE_EVENT: &str = "ünïcødé-✓-🚀";

/// `make-payload` refuses sizes above this (no ack): the client controls the number and the
/// server must not allocate without bound.
const MAX_MADE_PAYLOAD: u64 = 64 * 1024 * 1024;

/// `ask-client` never waits longer than this, whatever `timeoutMs` says.
const MAX_ASK_TIMEOUT: Duration = Duration::from_secs(60);

/// The server with the settings of §1 and both namespaces registered.
pub fn build() -> SocketIo {
    let io = SocketIo::builder()
        .path("/socket.io/")
        .ping_interval(Duration::from_millis(1000))
        .ping_timeout(Duration::from_millis(3000))
        .max_payload(1_000_000)
        .connect_timeout(Duration::from_secs(45))
        .build();
    for ns in ["/", "/custom"] {
        register(&io, ns);
    }
    io
}

fn register(io: &SocketIo, ns: &str) {
    let broadcaster = io.clone();
    let _ = io
        .ns(ns, on_connect)
        .on("echo", |socket: SocketRef, event: Event| async move {
            if let Err(e) = socket.emit_args("echo-back", event.args) {
                tracing::warn!(error = %e, "echo-back not sent");
            }
        })
        .on("echo-ack", echo_ack)
        .on(UNICODE_EVENT, echo_ack)
        .on("whoami", whoami)
        // Waits for the client: must not hold back the socket's other events meanwhile.
        .on_concurrent("ask-client", ask_client)
        .on("join", |socket: SocketRef, event: Event| async move {
            let Ok(room) = event.args.first::<String>() else {
                return Reply::None;
            };
            socket.join(room);
            rooms_reply(&socket)
        })
        .on("leave", |socket: SocketRef, event: Event| async move {
            let Ok(room) = event.args.first::<String>() else {
                return Reply::None;
            };
            socket.leave(&room);
            rooms_reply(&socket)
        })
        .on("to-room", to_room)
        .on("broadcast", move |socket: SocketRef, event: Event| {
            let io = broadcaster.clone();
            async move { broadcast(&io, &socket, &event) }
        })
        .on("make-payload", make_payload)
        .on(
            "disconnect-me",
            |socket: SocketRef, _event: Event| async move {
                socket.disconnect();
                NoAck
            },
        );
}

/// Refuses `auth.reject === true`; otherwise emits `auth` with the CONNECT payload (`{}` if
/// none). Emitted before the CONNECT reply is sent, the event is held back until after it.
async fn on_connect(socket: SocketRef, auth: Option<Value>) -> Result<(), ConnectionRefusedError> {
    if auth.as_ref().and_then(|a| a.get("reject")) == Some(&Value::Bool(true)) {
        return Err(ConnectionRefusedError::with_data(
            "rejected by server",
            json!({"code": 4001, "reason": "auth.reject was set"}),
        ));
    }
    let payload = auth.unwrap_or_else(|| json!({}));
    if let Err(e) = socket.emit("auth", &payload) {
        tracing::warn!(error = %e, "auth event not sent");
    }
    Ok(())
}

/// Acknowledges with the received arguments, binary attachments included, unchanged.
async fn echo_ack(_socket: SocketRef, event: Event) -> Args {
    event.args
}

async fn whoami(socket: SocketRef, _event: Event) -> AckValue<Value> {
    AckValue(json!({
        "id": socket.id().as_str(),
        "ns": socket.ns(),
        "auth": socket.auth().cloned().unwrap_or_else(|| json!({})),
        "transport": socket.transport().as_str(),
    }))
}

/// Emits `server-ask` with the payload and relays the client's answer, or a timeout.
async fn ask_client(socket: SocketRef, event: Event) -> Reply {
    let Ok(request) = event.args.first::<Dynamic>() else {
        tracing::debug!("ask-client without a request object");
        return Reply::None;
    };
    let payload = request.get("payload").cloned().unwrap_or(Dynamic::Null);
    let timeout = request
        .get("timeoutMs")
        .and_then(Dynamic::as_u64)
        .map_or(Duration::ZERO, Duration::from_millis)
        .min(MAX_ASK_TIMEOUT);
    let args = match Args::from_value(&payload) {
        Ok(args) => args,
        Err(e) => {
            tracing::warn!(error = %e, "ask-client payload not re-encodable");
            return Reply::None;
        }
    };
    let answer = match socket.call_args("server-ask", args, timeout).await {
        Ok(reply) => match reply.deserialize::<Vec<Dynamic>>() {
            Ok(items) => object([("ok", Dynamic::Bool(true)), ("reply", Dynamic::Seq(items))]),
            Err(e) => {
                tracing::warn!(error = %e, "server-ask answer not decodable");
                return Reply::None;
            }
        },
        Err(AckError::Timeout(_)) => object([
            ("ok", Dynamic::Bool(false)),
            ("error", Dynamic::Str("timeout".to_owned())),
        ]),
        Err(e) => {
            tracing::debug!(error = %e, "server-ask failed");
            return Reply::None;
        }
    };
    ack_with(&answer)
}

/// The socket's rooms, sorted, without its own id room.
fn rooms_reply(socket: &SocketRef) -> Reply {
    let own = socket.id().as_str();
    let mut rooms: Vec<String> = socket.rooms().into_iter().filter(|r| r != own).collect();
    rooms.sort();
    ack_with(&rooms)
}

async fn to_room(socket: SocketRef, event: Event) -> Reply {
    let Ok(room) = event.args.first::<String>() else {
        return Reply::None;
    };
    let payload = event.args.nth::<Dynamic>(1).unwrap_or(Dynamic::Null);
    let message = object([
        ("room", Dynamic::Str(room.clone())),
        ("from", Dynamic::Str(socket.id().as_str().to_owned())),
        ("payload", payload),
    ]);
    if let Err(e) = socket.to(room).emit("room-msg", &message) {
        tracing::warn!(error = %e, "room-msg not sent");
    }
    ack_with(&true)
}

fn broadcast(io: &SocketIo, socket: &SocketRef, event: &Event) -> Reply {
    let payload = event.args.first::<Dynamic>().unwrap_or(Dynamic::Null);
    let message = object([
        ("from", Dynamic::Str(socket.id().as_str().to_owned())),
        ("payload", payload),
    ]);
    match io.of(socket.ns()) {
        Ok(all) => {
            if let Err(e) = all.emit("broadcast-msg", &message) {
                tracing::warn!(error = %e, "broadcast-msg not sent");
            }
        }
        Err(e) => tracing::warn!(error = %e, "namespace gone"),
    }
    ack_with(&true)
}

async fn make_payload(_socket: SocketRef, event: Event) -> Reply {
    let Ok(request) = event.args.first::<Dynamic>() else {
        return Reply::None;
    };
    let size = request.get("size").and_then(Dynamic::as_u64).unwrap_or(0);
    if size > MAX_MADE_PAYLOAD {
        tracing::warn!(size, "make-payload size above the cap: no ack");
        return Reply::None;
    }
    let Ok(size) = usize::try_from(size) else {
        return Reply::None;
    };
    if request.get("binary") == Some(&Dynamic::Bool(true)) {
        ack_with(&Dynamic::Binary(vec![0x2a; size]))
    } else {
        ack_with(&"x".repeat(size))
    }
}

/// An ack with one argument (binary parts become attachments).
fn ack_with<T: serde::Serialize + ?Sized>(value: &T) -> Reply {
    match Args::from_value(value) {
        Ok(args) => Reply::Ack(args),
        Err(e) => {
            tracing::warn!(error = %e, "ack not encodable");
            Reply::None
        }
    }
}
