//! `cargo run -p rest-emit` → http://127.0.0.1:3002 (or `PORT=NNNN`), then
//! `curl -X POST -H 'content-type: application/json' -d '{"text":"hi"}' http://127.0.0.1:3002/rooms/news/messages`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let port: u16 = match std::env::var("PORT").map(|p| p.parse()) {
        Err(_) => 3002,
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
        println!("rest-emit listening on http://{addr}");
    }
    if let Err(e) = axum::serve(listener, rest_emit::app()).await {
        eprintln!("server error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
