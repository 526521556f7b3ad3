//! The recovery app of `tests/interop/reference-recovery-server.js` on sockeye, driven by
//! `tests/interop/recovery-client.js` (the official `socket.io-client`).
//!
//! `recovery PORT` listens on `127.0.0.1:PORT` (0 picks a free port) and prints
//! `listening on 127.0.0.1:<port>` once it accepts connections. One port, two servers:
//! - path `/socket.io/`: connection-state recovery on, 3 s window, middlewares skipped on
//!   recovery;
//! - path `/plain/`: recovery off.
//!
//! Both have on `/`: a connect middleware counting its runs in the session (`mwRuns`),
//! `join(room)`, `tag(value)` (kept in the session), `whoami` answering
//! `{id, recovered, tag, mwRuns}`, and `publish(room, from, to)` broadcasting `item(i)` to
//! `room` for each `i` in `from..to` before it answers `"published"`.

use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sockeye::prelude::*;
use sockeye::{Args, RecoveryConfig};
use tower_layer::Layer as _;

/// The session value of the app (JS `socket.data`).
#[derive(Clone, Default, Serialize, Deserialize)]
struct SocketData {
    tag: Option<String>,
    middleware_runs: u32,
}

/// Most items one `publish` may ask for: the client picks the range.
const MAX_PUBLISH: i64 = 10_000;

fn build(path: &str, recovery: Option<RecoveryConfig>) -> SocketIo {
    let mut builder = SocketIo::builder()
        .path(path)
        .ping_interval(Duration::from_millis(1000))
        .ping_timeout(Duration::from_millis(3000));
    if let Some(config) = recovery {
        builder = builder.connection_state_recovery(config);
    }
    let io = builder.build();
    io.ns("/", on_connect)
        .use_connect(count_middleware_runs)
        .on("join", join)
        .on("tag", tag)
        .on("whoami", whoami)
        .on("publish", publish);
    io
}

/// Accepts every connection (the middleware runs first).
async fn on_connect() {}

/// Counts its runs in the session: a recovered socket skips it (`skip_middlewares`).
async fn count_middleware_runs(socket: SocketRef) {
    let mut data = socket.get_session::<SocketData>().unwrap_or_default();
    data.middleware_runs += 1;
    socket.save_session(data);
}

async fn join(socket: SocketRef, args: Args) -> Result<Json<&'static str>, NoAck> {
    let room = args.first::<String>().map_err(|_| NoAck)?;
    socket.join(room);
    Ok(Json("joined"))
}

async fn tag(socket: SocketRef, args: Args) -> Result<Json<&'static str>, NoAck> {
    let tag = args.first::<String>().map_err(|_| NoAck)?;
    let mut data = socket.get_session::<SocketData>().unwrap_or_default();
    data.tag = Some(tag);
    socket.save_session(data);
    Ok(Json("tagged"))
}

async fn whoami(socket: SocketRef, data: Option<Session<SocketData>>) -> Json<Value> {
    let data = data.map(Session::into_inner).unwrap_or_default();
    Json(json!({
        "id": socket.id(),
        "recovered": socket.recovered(),
        "tag": data.tag,
        "mwRuns": data.middleware_runs,
    }))
}

/// `publish(room, from, to)`: broadcasts `item(i)` to `room` for each `i` in `from..to`, in
/// order, then acks `"published"`.
async fn publish(io: SocketIo, args: Args) -> Result<Json<&'static str>, NoAck> {
    let parsed = (
        args.nth::<String>(0),
        args.nth::<i64>(1),
        args.nth::<i64>(2),
    );
    let (Ok(room), Ok(from), Ok(to)) = parsed else {
        return Err(NoAck);
    };
    for i in from..to.min(from.saturating_add(MAX_PUBLISH)) {
        if let Err(e) = io.to(&room).emit("item", &i).await {
            tracing::warn!(room, i, error = %e, "item not published");
        }
    }
    Ok(Json("published"))
}

fn main() -> ExitCode {
    example_serve::main_on_port("recovery", example_serve::Runtime::MultiThread, || {
        let recovering = build(
            "/socket.io/",
            Some(RecoveryConfig {
                max_disconnection_duration: Duration::from_secs(3),
                skip_middlewares: true,
                ..RecoveryConfig::default()
            }),
        );
        let plain = build("/plain/", None);
        // Requests outside /socket.io/ go on to the plain server (404 outside /plain/).
        recovering.layer().layer(plain.service())
    })
}
