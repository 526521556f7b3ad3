//! The interop app's namespaces and handlers (`shared/interop-app.md` §2 and §3).

use std::time::Duration;

use serde_json::{Value, json};
use sockeye::prelude::*;
use sockeye::{AckError, Args};

use crate::cluster::{Cluster, NodeName};
use crate::dynamic::{Dynamic, object};

/// The non-ASCII event name, routed like `echo-ack`.
pub const UNICODE_EVENT: &str = "ünïcødé-✓-🚀";

/// `make-payload` refuses sizes above this (no ack): the client controls the number and the
/// server must not allocate without bound.
const MAX_MADE_PAYLOAD: u64 = 64 * 1024 * 1024;

/// `ask-client` never waits longer than this, whatever `timeoutMs` says.
const MAX_ASK_TIMEOUT: Duration = Duration::from_secs(60);

/// The server with the settings of §1 and both namespaces registered; with
/// `INTEROP_ALLOW_EIO3=1`, legacy clients too (§6).
/// With `INTEROP_ADMIN=user:password`, the Admin UI's protocol too (§5); on `cluster`'s adapter,
/// with its recovery settings (§4).
pub fn build(cluster: &Cluster) -> Result<SocketIo, String> {
    let legacy = std::env::var("INTEROP_ALLOW_EIO3").as_deref() == Ok("1");
    let builder = SocketIo::builder()
        .path("/socket.io/")
        .ping_interval(Duration::from_millis(1000))
        .ping_timeout(Duration::from_millis(3000))
        .max_payload(1_000_000)
        .connect_timeout(Duration::from_secs(45))
        .allow_eio3(legacy);
    let io = crate::admin::configure(cluster.configure(builder))?.build();
    for ns in ["/", "/custom"] {
        register(&io, ns);
    }
    Ok(io)
}

fn register(io: &SocketIo, ns: &str) {
    let handle = io
        .ns(ns, on_connect)
        .on("echo", echo)
        .on("echo-ack", echo_ack)
        .on(UNICODE_EVENT, echo_ack)
        .on("whoami", whoami)
        // Waits for the client: must not hold back the socket's other events meanwhile.
        .on_concurrent("ask-client", ask_client)
        .on("join", join)
        .on("leave", leave)
        .on("to-room", to_room)
        .on("broadcast", broadcast)
        .on("make-payload", make_payload)
        .on("disconnect-me", disconnect_me);
    crate::cluster::register(handle);
}

/// Refuses `auth.reject === true`; otherwise emits `auth` with the CONNECT payload (`{}` if
/// none). Emitted before the CONNECT reply is sent, the event is held back until after it.
async fn on_connect(
    socket: SocketRef,
    auth: Option<Auth<Value>>,
) -> Result<(), ConnectionRefusedError> {
    let auth = auth.map(|Auth(auth)| auth);
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

/// Emits `echo-back` to the sender with the received arguments, binary included.
async fn echo(socket: SocketRef, args: Args) {
    if let Err(e) = socket.emit_args("echo-back", args) {
        tracing::warn!(error = %e, "echo-back not sent");
    }
}

/// Acknowledges with the received arguments, binary attachments included, unchanged.
async fn echo_ack(args: Args) -> Args {
    args
}

/// The socket's id, namespace, auth and transport; in cluster mode (§4) its node's name and
/// whether it was recovered too.
async fn whoami(socket: SocketRef, State(node): State<NodeName>) -> Json<Value> {
    let mut me = json!({
        "id": socket.id().as_str(),
        "ns": socket.ns(),
        "auth": socket.auth().cloned().unwrap_or_else(|| json!({})),
        "transport": socket.transport().as_str(),
    });
    if let (Some(node), Some(fields)) = (node.0, me.as_object_mut()) {
        fields.insert("node".to_owned(), Value::String(node));
        fields.insert("recovered".to_owned(), Value::Bool(socket.recovered()));
    }
    Json(me)
}

/// Emits `server-ask` with the payload and relays the client's answer, or a timeout.
async fn ask_client(socket: SocketRef, args: Args) -> Result<Json<Dynamic>, NoAck> {
    let Ok(request) = args.first::<Dynamic>() else {
        tracing::debug!("ask-client without a request object");
        return Err(NoAck);
    };
    let payload = request.get("payload").cloned().unwrap_or(Dynamic::Null);
    let timeout = request
        .get("timeoutMs")
        .and_then(Dynamic::as_u64)
        .map_or(Duration::ZERO, Duration::from_millis)
        .min(MAX_ASK_TIMEOUT);
    let args = Args::from_value(&payload).map_err(|e| {
        tracing::warn!(error = %e, "ask-client payload not re-encodable");
        NoAck
    })?;
    let answer = match socket.call_args("server-ask", args, timeout).await {
        Ok(reply) => match reply.deserialize::<Vec<Dynamic>>() {
            Ok(items) => object([("ok", Dynamic::Bool(true)), ("reply", Dynamic::Seq(items))]),
            Err(e) => {
                tracing::warn!(error = %e, "server-ask answer not decodable");
                return Err(NoAck);
            }
        },
        Err(AckError::Timeout(_)) => object([
            ("ok", Dynamic::Bool(false)),
            ("error", Dynamic::Str("timeout".to_owned())),
        ]),
        Err(e) => {
            tracing::debug!(error = %e, "server-ask failed");
            return Err(NoAck);
        }
    };
    Ok(Json(answer))
}

/// Joins the room named by the first argument; acks with the socket's rooms.
async fn join(socket: SocketRef, args: Args) -> Result<Json<Vec<String>>, NoAck> {
    let room = args.first::<String>().map_err(|_| NoAck)?;
    socket.join(room);
    Ok(Json(rooms(&socket)))
}

/// Leaves the room named by the first argument; acks with the socket's rooms.
async fn leave(socket: SocketRef, args: Args) -> Result<Json<Vec<String>>, NoAck> {
    let room = args.first::<String>().map_err(|_| NoAck)?;
    socket.leave(&room);
    Ok(Json(rooms(&socket)))
}

/// The socket's rooms, sorted, without its own id room.
fn rooms(socket: &SocketRef) -> Vec<String> {
    let own = socket.id().as_str();
    let mut rooms: Vec<String> = socket.rooms().into_iter().filter(|r| r != own).collect();
    rooms.sort();
    rooms
}

/// Emits `room-msg` to the room's other sockets, then acks `true`.
async fn to_room(socket: SocketRef, args: Args) -> Result<Json<bool>, NoAck> {
    let room = args.first::<String>().map_err(|_| NoAck)?;
    let payload = args.nth::<Dynamic>(1).unwrap_or(Dynamic::Null);
    let message = object([
        ("room", Dynamic::Str(room.clone())),
        ("from", Dynamic::Str(socket.id().as_str().to_owned())),
        ("payload", payload),
    ]);
    if let Err(e) = socket.to(room).emit("room-msg", &message).await {
        tracing::warn!(error = %e, "room-msg not sent");
    }
    Ok(Json(true))
}

/// Emits `broadcast-msg` to every socket of the namespace, the sender included, then acks
/// `true`.
async fn broadcast(socket: SocketRef, ns: Namespace, args: Args) -> Json<bool> {
    let payload = args.first::<Dynamic>().unwrap_or(Dynamic::Null);
    let message = object([
        ("from", Dynamic::Str(socket.id().as_str().to_owned())),
        ("payload", payload),
    ]);
    if let Err(e) = ns.broadcast().emit("broadcast-msg", &message).await {
        tracing::warn!(error = %e, "broadcast-msg not sent");
    }
    Json(true)
}

/// Disconnects the socket from this namespace; no ack.
async fn disconnect_me(socket: SocketRef) -> NoAck {
    socket.disconnect();
    NoAck
}

/// Acks with a string of `size` `x`, or `size` bytes 0x2a when `binary` is true.
async fn make_payload(args: Args) -> Result<Json<Dynamic>, NoAck> {
    let request = args.first::<Dynamic>().map_err(|_| NoAck)?;
    let size = request.get("size").and_then(Dynamic::as_u64).unwrap_or(0);
    if size > MAX_MADE_PAYLOAD {
        tracing::warn!(size, "make-payload size above the cap: no ack");
        return Err(NoAck);
    }
    let size = usize::try_from(size).map_err(|_| NoAck)?;
    if request.get("binary") == Some(&Dynamic::Bool(true)) {
        Ok(Json(Dynamic::Binary(vec![0x2a; size])))
    } else {
        Ok(Json(Dynamic::Str("x".repeat(size))))
    }
}
