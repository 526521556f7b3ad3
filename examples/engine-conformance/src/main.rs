//! `engine-conformance PORT`: the echo server of the official Engine.IO test suite.

use tracing_subscriber::EnvFilter;

// One thread, like the Node reference server: connections and their reads are served in the
// order the kernel reports them. The suite's "forcefully closes the session" sends a long-poll
// `GET` and a `POST 1` on two connections at once and needs the `GET` served first; on the
// multi-threaded runtime the I/O driver wakes both connection tasks through the worker's LIFO
// slot, the later one runs first, and the test failed in 7-25 % of the runs (docs/conformance.md).
#[tokio::main(flavor = "current_thread")]
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
