//! The bench app of sio-bench's README on sockeye: `echo` and `broadcast` on `/`.

use sockeye::Args;
use sockeye::prelude::*;

use crate::cluster::Cluster;
use crate::config::Settings;

/// The server with `settings` applied and the bench handlers registered on `/`; broadcasts
/// also reach the other nodes through `cluster` when given.
pub fn build(settings: &Settings, cluster: Option<&Cluster>) -> SocketIo {
    let mut builder = SocketIo::builder().max_payload(settings.max_payload);
    if let Some(interval) = settings.ping_interval {
        builder = builder.ping_interval(interval);
    }
    if let Some(timeout) = settings.ping_timeout {
        builder = builder.ping_timeout(timeout);
    }
    if let Some(timeout) = settings.connect_timeout {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(cluster) = cluster {
        builder = cluster.apply(builder);
    }
    #[cfg(feature = "admin")]
    {
        use sockeye::admin::{AdminAuth, AdminMode, AdminOptions};
        let mode = match std::env::var("BENCH_ADMIN").as_deref() {
            Ok("production") => Some(AdminMode::Production),
            Ok("development") => Some(AdminMode::Development),
            _ => None,
        };
        if let Some(mode) = mode {
            tracing::info!(?mode, "Admin UI instrumentation on");
            builder = builder.instrument(AdminOptions::new(AdminAuth::none()).mode(mode));
        }
    }
    let io = builder.build();
    io.ns("/", on_connect)
        .on("echo", echo)
        .on("broadcast", broadcast)
        .on("join", join)
        .on("leave", leave)
        .on("room-broadcast", room_broadcast);
    // In a cluster, the server-side event `whoami` from another node is answered with this
    // process's id, so a cluster test can tell which nodes answered a request.
    if let Err(e) = io.on_server_event("/", |event| {
        if event.event == "whoami"
            && let Some(ack) = event.ack
            && let Err(e) = ack.send(&std::process::id())
        {
            tracing::debug!(error = %e, "whoami not answered");
        }
    }) {
        tracing::warn!(error = %e, "server-side events not handled");
    }
    io
}

/// Accepts every connection (no extractor: nothing is read or cloned).
async fn on_connect() {}

/// The arguments come back as the ack unchanged, binary attachments included. A plain `fn`:
/// it has nothing to wait for, so the server calls it at once (no future to build and poll).
fn echo(args: Args) -> Args {
    args
}

/// Re-emits `args` to every socket of `/`, the sender included, then acks with no arguments.
///
/// Through the `Namespace` extractor's operator (one reference count, no lookup): a broadcast
/// built from the sender's socket tells the server that this socket fans out, so its events
/// run in a task of their own and the receivers' connections get their turn before the
/// sender's ack is written (`docs/server.md`, "Where a socket's events run").
async fn broadcast(ns: Namespace, args: Args) {
    // A receiver whose queue is full is closed by the engine (slow-reader policy); the load
    // generator counts what was delivered, so the ack still goes out.
    if let Err(e) = ns.broadcast().emit_args("broadcast", args).await {
        tracing::debug!(error = %e, "broadcast not sent to every socket");
    }
}

/// Joins the room named by the first argument (the long soak's room churn).
fn join(socket: SocketRef, args: Args) {
    if let Ok(room) = args.first::<String>() {
        socket.join(room);
    }
}

/// Leaves the room named by the first argument.
fn leave(socket: SocketRef, args: Args) {
    if let Ok(room) = args.first::<String>() {
        socket.leave(&room);
    }
}

/// Emits the second argument as `broadcast` to the room named by the first one, on every node.
async fn room_broadcast(ns: Namespace, args: Args) {
    let Ok(room) = args.first::<String>() else {
        return;
    };
    let payload = args.nth::<serde_json::Value>(1).unwrap_or_default();
    if let Err(e) = ns.broadcast().to(room).emit("broadcast", &payload).await {
        tracing::debug!(error = %e, "room broadcast not sent to every socket");
    }
}
