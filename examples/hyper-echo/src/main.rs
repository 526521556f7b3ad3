//! `cargo run -p hyper-echo` → ws://127.0.0.1:3003/socket.io/ (or `PORT=NNNN`).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let port: u16 = match std::env::var("PORT").map(|p| p.parse()) {
        Err(_) => 3003,
        Ok(Ok(port)) => port,
        Ok(Err(e)) => {
            eprintln!("invalid PORT: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Ok(addr) = listener.local_addr() {
        println!("hyper-echo listening on http://{addr}");
    }
    if let Err(e) = hyper_echo::run(listener).await {
        eprintln!("server error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
