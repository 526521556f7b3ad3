//! The bench app of sio-bench's README on sockeye: `echo` and `broadcast` on `/`.

use sockeye::{Args, Event, Reply, SocketIo, SocketRef};
use sockeye_redis::RedisAdapterFactory;

use crate::config::Settings;

/// The server with `settings` applied and the bench handlers registered on `/`; broadcasts
/// also reach the other nodes through `redis` when given.
pub fn build(settings: &Settings, redis: Option<RedisAdapterFactory>) -> SocketIo {
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
    if let Some(redis) = redis {
        builder = builder.adapter(redis);
    }
    let io = builder.build();
    let broadcaster = io.clone();
    let _ = io
        .ns("/", |_socket: SocketRef, _auth| async move {})
        // The arguments come back as the ack unchanged, binary attachments included.
        .on("echo", |_socket: SocketRef, event: Event| async move {
            event.args
        })
        .on("broadcast", move |_socket: SocketRef, event: Event| {
            let io = broadcaster.clone();
            async move { broadcast(&io, event.args) }
        });
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

/// Re-emits `args` to every socket of `/`, the sender included, then acks with no arguments.
fn broadcast(io: &SocketIo, args: Args) -> Reply {
    match io.of("/") {
        Ok(all) => {
            // A receiver whose queue is full is closed by the engine (slow-reader policy);
            // the load generator counts what was delivered, so the ack still goes out.
            if let Err(e) = all.emit_args("broadcast", args) {
                tracing::debug!(error = %e, "broadcast not sent to every socket");
            }
            Reply::Empty
        }
        Err(e) => {
            tracing::warn!(error = %e, "namespace / is gone: broadcast dropped, no ack");
            Reply::None
        }
    }
}
