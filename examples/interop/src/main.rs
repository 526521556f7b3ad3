//! The interop app of `shared/interop-app.md` on sockeye.
//!
//! `interop PORT` listens on `127.0.0.1:PORT` (0 picks a free port) and prints
//! `listening on 127.0.0.1:<port>` on stdout once it accepts connections; the interop tests
//! read that line. Logs go to stderr (`RUST_LOG` filters them).

mod app;
mod dynamic;

use std::process::ExitCode;

fn main() -> ExitCode {
    example_serve::main_on_port("interop", example_serve::Runtime::MultiThread, || {
        app::build().service()
    })
}
