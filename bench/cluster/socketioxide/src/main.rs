//! The sio-bench bench app (the socketioxide anchor's handlers) on socketioxide with the
//! socketioxide-redis adapter, so several processes share broadcasts through one Redis.
//!
//! Usage: cluster-socketioxide PORT   with REDIS_URL (default redis://127.0.0.1:6379) and
//! optionally REDIS_KEY (channel prefix). Binds 127.0.0.1 only; prints
//! `listening on 127.0.0.1:PORT` once Redis is subscribed and the port accepts connections.

use axum::serve::ListenerExt;
use rmpv::Value;
use socketioxide::{
    SocketIo,
    adapter::Adapter,
    extract::{AckSender, Data, SocketRef},
};
use socketioxide_redis::{RedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
    socket.on(
        "echo",
        |Data::<Value>(data), ack: AckSender<A>| async move {
            ack.send(&data).ok();
        },
    );
    // As the anchor: io.emit("broadcast", data) to every socket of "/" on every node, then ack.
    socket.on(
        "broadcast",
        |io: SocketIo<A>, Data::<Value>(data), ack: AckSender<A>| async move {
            let _ = io.emit("broadcast", &data).await;
            ack.send(&()).ok();
        },
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(4002);
    let mut url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // The redis driver of socketioxide-redis needs RESP3 (push messages).
    if !url.contains("protocol=") {
        url.push_str(if url.contains('?') {
            "&protocol=resp3"
        } else {
            "?protocol=resp3"
        });
    }
    let client = redis::Client::open(url)?;
    let mut config = RedisAdapterConfig::default();
    if let Ok(key) = std::env::var("REDIS_KEY") {
        config = config.with_prefix(key);
    }
    let adapter = RedisAdapterCtr::new_with_redis_config(&client, config).await?;
    let (layer, io) = SocketIo::builder()
        .max_payload(10_000_000)
        .with_adapter::<RedisAdapter<_>>(adapter)
        .build_layer();
    io.ns("/", on_connect).await?;

    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    println!("listening on 127.0.0.1:{port}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
