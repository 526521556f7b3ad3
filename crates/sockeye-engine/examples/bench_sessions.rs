//! Opens N idle WebSocket sessions to `bench_server` and holds them, answering heartbeats:
//! over HTTP/1.1 (one TCP connection each) or over HTTP/2 (extended CONNECT streams of one
//! h2c connection). Prints `READY <n>` once every session is open, then holds until stdin
//! closes. For the per-session memory figures of docs/benchmarks.md.
//!
//! `cargo run --release -p sockeye-engine --example bench_sessions -- PORT N h1|h2`

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Answers the server's PINGs until the stream ends.
async fn hold<S>(mut ws: tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message
            && text.as_str() == "2"
            && ws.send(Message::text("3")).await.is_err()
        {
            return;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).ok_or("PORT")?.parse()?;
    let count: usize = args.get(2).ok_or("N")?.parse()?;
    let mode = args.get(3).map_or("h1", String::as_str);
    let path = "/engine.io/?EIO=4&transport=websocket";
    let mut tasks = Vec::with_capacity(count);
    match mode {
        "h2" => {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .max_concurrent_reset_streams(0)
                .handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
                .await?;
            tokio::spawn(conn);
            for _ in 0..count {
                let mut send = send.clone();
                let mut req = http::Request::builder()
                    .method(http::Method::CONNECT)
                    .uri(format!("http://127.0.0.1:{port}{path}"))
                    .header("sec-websocket-version", "13")
                    .body(Empty::<Bytes>::new())?;
                req.extensions_mut()
                    .insert(hyper::ext::Protocol::from_static("websocket"));
                send.ready().await?;
                let res = send.send_request(req).await?;
                if res.status() != 200 {
                    return Err(format!("extended CONNECT answered {}", res.status()).into());
                }
                let upgraded = hyper::upgrade::on(res).await?;
                let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Client,
                    None,
                )
                .await;
                tasks.push(tokio::spawn(hold(ws)));
            }
        }
        _ => {
            for _ in 0..count {
                let (ws, _) =
                    tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}{path}"))
                        .await?;
                tasks.push(tokio::spawn(hold(ws)));
            }
        }
    }
    println!("READY {}", tasks.len());
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    Ok(())
}
