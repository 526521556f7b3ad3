//! `cargo run -p admin` → http://127.0.0.1:3000/admin-ui/ (login admin / admin; `PORT=NNNN`).
//! See the crate docs (`src/lib.rs`) for the settings.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let port: u16 = match std::env::var("PORT").ok().filter(|p| !p.is_empty()) {
        None => 3000,
        Some(p) => match p.parse() {
            Ok(port) => port,
            Err(_) => {
                eprintln!("PORT={p:?} is not a port number");
                return ExitCode::FAILURE;
            }
        },
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}; pick another port with PORT=NNNN");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        // Tests read this line to find the port.
        Ok(addr) => println!("admin listening on http://{addr}"),
        Err(e) => eprintln!("local address unknown: {e}"),
    }
    if let Err(e) = admin::serve(listener).await {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
