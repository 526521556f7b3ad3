//! `idle-server PORT`: the echo engine with the default timings (25 s / 20 s), for measuring
//! the memory held per idle client (see bench/idle.sh).

use sockeye_engine::{Engine, EngineConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    // IDLE_WS_READ_BUFFER tunes the WebSocket read buffer, to compare footprints.
    let mut config = EngineConfig::builder();
    if let Some(size) = std::env::var("IDLE_WS_READ_BUFFER")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config = config.ws_read_buffer_size(size);
    }
    let engine = Engine::new(engine_conformance::Echo, config.build());
    // The bench script reads the port from this line.
    println!("listening {addr}");
    // IDLE_EXIT_AFTER=SECS exits while clients are held (for heap profilers' leak reports).
    let exit_after = std::env::var("IDLE_EXIT_AFTER")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(std::time::Duration::MAX, std::time::Duration::from_secs);
    tokio::select! {
        () = engine_conformance::serve(listener, engine) => {}
        () = tokio::time::sleep(exit_after) => std::process::exit(0),
    }
    Ok(())
}
