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

use serde_json::json;
use sockeye::{ConnectionRefusedError, Event, RecoveryConfig, Reply, SocketIo, SocketRef};
use tower_layer::Layer as _;

/// The session value of the app (JS `socket.data`).
#[derive(Clone, Default)]
struct Data {
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
    let publisher = io.clone();
    io.ns(
        "/",
        |_socket: SocketRef, _auth: Option<serde_json::Value>| async {},
    )
    .use_connect(|socket: SocketRef| async move {
        let mut data = socket.get_session::<Data>().unwrap_or_default();
        data.middleware_runs += 1;
        socket.save_session(data);
        Ok::<(), ConnectionRefusedError>(())
    })
    .on("join", |socket: SocketRef, event: Event| async move {
        let Ok(room) = event.args.first::<String>() else {
            return Reply::None;
        };
        socket.join(room);
        reply("joined")
    })
    .on("tag", |socket: SocketRef, event: Event| async move {
        let Ok(tag) = event.args.first::<String>() else {
            return Reply::None;
        };
        let mut data = socket.get_session::<Data>().unwrap_or_default();
        data.tag = Some(tag);
        socket.save_session(data);
        reply("tagged")
    })
    .on("whoami", |socket: SocketRef, _event: Event| async move {
        let data = socket.get_session::<Data>().unwrap_or_default();
        reply(json!({
            "id": socket.id(),
            "recovered": socket.recovered(),
            "tag": data.tag,
            "mwRuns": data.middleware_runs,
        }))
    })
    .on("publish", move |_socket: SocketRef, event: Event| {
        let io = publisher.clone();
        async move {
            let parsed = (
                event.args.nth::<String>(0),
                event.args.nth::<i64>(1),
                event.args.nth::<i64>(2),
            );
            let (Ok(room), Ok(from), Ok(to)) = parsed else {
                return Reply::None;
            };
            for i in from..to.min(from.saturating_add(MAX_PUBLISH)) {
                let sent = io.to(room.clone()).map(|to| to.emit("item", &i));
                if !matches!(sent, Ok(Ok(()))) {
                    tracing::warn!(room, i, "item not published");
                }
            }
            reply("published")
        }
    });
    io
}

fn reply<T: serde::Serialize>(value: T) -> Reply {
    sockeye::Args::from_value(&value).map_or(Reply::None, Reply::Ack)
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
