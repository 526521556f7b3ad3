//! `engine-conformance PORT`: the echo server of the official Engine.IO test suite.

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let port = match std::env::args().nth(1) {
        None => 3000,
        Some(arg) => arg.parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("usage: engine-conformance PORT (got {arg:?}, expected a number 0-65535)"),
            )
        })?,
    };
    let (addr, engine) = engine_conformance::spawn(port).await?;
    tracing::info!(%addr, "engine.io echo server listening at /engine.io/");
    tokio::signal::ctrl_c().await?;
    engine.close().await;
    Ok(())
}
