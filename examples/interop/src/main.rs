//! The interop app of `shared/interop-app.md` on sockeye.
//!
//! `interop PORT` listens on `127.0.0.1:PORT` (0 picks a free port) and prints
//! `listening on 127.0.0.1:<port>` on stdout once it accepts connections (in cluster mode,
//! once its adapter is subscribed); the interop tests read that line. Logs go to stderr
//! (`RUST_LOG` filters them).

mod admin;
mod app;
mod cluster;
mod dynamic;

use std::process::ExitCode;

use tower_layer::Layer as _;

fn main() -> ExitCode {
    example_serve::init_logging();
    let Some(port) = std::env::args().nth(1).and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: interop PORT (a TCP port number; 0 picks a free one)");
        return ExitCode::from(2);
    };
    let rt = match example_serve::Runtime::MultiThread.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("interop: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        // The broker is connected before the port is bound: a node that cannot join its
        // cluster exits instead of serving alone.
        let cluster = match cluster::Cluster::from_env().await {
            Ok(cluster) => cluster,
            Err(e) => {
                eprintln!("interop: {e}");
                return ExitCode::from(2);
            }
        };
        let io = match app::build(&cluster) {
            Ok(io) => io,
            Err(e) => {
                eprintln!("interop: {e}");
                return ExitCode::from(2);
            }
        };
        cluster.ready().await;
        let (listener, bound) = match example_serve::listen_on_loopback(port).await {
            Ok(bound) => bound,
            Err(e) => {
                eprintln!("interop: {e}");
                return ExitCode::FAILURE;
            }
        };
        let service = io.layer().layer(admin::UiFiles::from_env());
        println!("listening on {bound}");
        example_serve::serve_http(listener, service).await;
        ExitCode::SUCCESS
    })
}
