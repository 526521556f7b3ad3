//! `cargo run -p chat` → http://127.0.0.1:3000 (or `PORT=8080`, or `cargo run -p chat -- 8080`).
//! `REDIS_URL=redis://127.0.0.1:6379` makes several chat processes one chat (Redis adapter).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let port = match chat::port_from_env() {
        Ok(port) => port,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
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
        Ok(addr) => println!("chat listening on http://{addr}"),
        Err(e) => eprintln!("local address unknown: {e}"),
    }
    if let Err(e) = chat::serve(listener).await {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
