//! The sio-bench bench app on sockeye (see `shared/sio-bench/README.md`, "Bench app
//! contract"): `echo` acks its arguments, `broadcast` re-emits them to every socket of `/`
//! then acks with no arguments; binary attachments travel unchanged.
//!
//! `bench-app [PORT]` (or `PORT`; default 4004; 0 picks a free port) listens on 127.0.0.1 and
//! prints `listening on 127.0.0.1:<port>` on stdout once it accepts connections.
//! Optional environment overrides: `PING_INTERVAL`, `PING_TIMEOUT`, `CONNECT_TIMEOUT`
//! (milliseconds) and `MAX_PAYLOAD` (bytes, default 10 MB like the anchors). With
//! `BROKER_URL` (or `REDIS_URL`; optionally `REDIS_KEY`, the channel prefix) broadcasts go
//! through a cluster adapter, so receivers on several bench-app nodes all get them, and the
//! server-side event `whoami` from another node is answered with the process id.
//! `BENCH_ADAPTER` picks the adapter: `redis` (default, the classic Redis adapter),
//! `redis-streams` (`sockeye_redis::streams`), `python-redis` or `python-amqp`
//! (python-socketio's bus, `sockeye-pybus`; an `amqp://` URL) or `postgres`
//! (`sockeye-postgres`; a `postgres://` URL) or `nats` (`sockeye-nats` on core NATS; a
//! `nats://` URL). Logs go to stderr
//! (`RUST_LOG`, default `warn`).
//!
//! The tokio runtime is multi-threaded with the default worker count, which follows the CPU
//! affinity mask: one worker under `taskset -c 0`, like the socketioxide anchor.

mod app;
mod cluster;
mod config;
mod serve;

use std::io::Write;
use std::process::ExitCode;

use crate::config::Settings;

fn main() -> ExitCode {
    example_serve::init_logging();

    let settings =
        match Settings::from_sources(std::env::args().nth(1), |name| std::env::var(name).ok()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("bench-app: {e}");
                return ExitCode::from(2);
            }
        };
    let runtime = match example_serve::Runtime::MultiThread.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-app: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let (listener, bound) = match example_serve::listen_on_loopback(settings.port).await {
            Ok(bound) => bound,
            Err(e) => {
                eprintln!("bench-app: {e}");
                return ExitCode::FAILURE;
            }
        };
        let cluster = match &settings.redis_url {
            None => None,
            Some(url) => match cluster::Cluster::connect(
                settings.adapter,
                url,
                settings.redis_key.as_deref(),
            )
            .await
            {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("bench-app: {e}");
                    return ExitCode::FAILURE;
                }
            },
        };
        let io = app::build(&settings, cluster.as_ref());
        if let Some(cluster) = cluster {
            // Subscribed before the "listening" line: no broadcast of the run is missed.
            if !cluster.ready(std::time::Duration::from_secs(10)).await {
                eprintln!("bench-app: broker subscriptions not confirmed within 10 s");
                return ExitCode::FAILURE;
            }
        }
        println!("listening on {bound}");
        // Whoever reads the line (a test, a script) must see it now, not at exit.
        let _ = std::io::stdout().flush();
        tokio::select! {
            () = serve::serve(listener, io.clone()) => {}
            _ = tokio::signal::ctrl_c() => io.close().await,
            () = terminated() => io.close().await,
        }
        ExitCode::SUCCESS
    })
}

/// Resolves on SIGTERM (what process managers send for a rolling restart): the server then
/// closes every session with a reason, as on Ctrl-C.
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "SIGTERM handler not installed");
            std::future::pending::<()>().await;
        }
    }
}
