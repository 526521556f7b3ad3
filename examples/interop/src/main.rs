//! The interop app of `shared/interop-app.md` on sockeye.
//!
//! `interop PORT` listens on `127.0.0.1:PORT` (0 picks a free port) and prints
//! `listening on 127.0.0.1:<port>` on stdout once it accepts connections; the interop tests
//! read that line. Logs go to stderr (`RUST_LOG` filters them).

mod admin;
mod app;
mod dynamic;

use std::process::ExitCode;

use tower_layer::Layer as _;

fn main() -> ExitCode {
    example_serve::main_on_port("interop", example_serve::Runtime::MultiThread, || {
        let io = match app::build() {
            Ok(io) => io,
            Err(e) => {
                eprintln!("interop: {e}");
                std::process::exit(2);
            }
        };
        io.layer().layer(admin::UiFiles::from_env())
    })
}
