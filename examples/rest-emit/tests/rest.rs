//! The rest-emit app: an HTTP POST reaches the sockets of the room.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../chat/tests/it/sio.rs"]
mod sio;

use std::time::Duration;

use sio::{Sio, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn post(addr: std::net::SocketAddr, path: &str, body: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut out))
        .await
        .expect("HTTP response timed out")
        .unwrap();
    out
}

#[tokio::test]
async fn an_http_post_emits_into_the_room() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, rest_emit::app()).await.unwrap() });

    let (mut subscriber, reply) = Sio::connect(addr, "").await;
    assert!(reply.starts_with("40{"), "{reply}");
    subscriber.send(r#"421["subscribe","news"]"#).await;
    let ack = subscriber.recv().await;
    assert!(
        ack.starts_with("431[[") && ack.contains(r#""news""#),
        "{ack}"
    );
    let (mut outsider, _) = Sio::connect(addr, "").await;

    let response = post(addr, "/rooms/news/messages", r#"{"text":"breaking"}"#).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with(r#"{"room":"news","local_recipients":1}"#),
        "{response}"
    );
    assert_eq!(
        subscriber.recv().await,
        r#"42["message",{"room":"news","text":"breaking"}]"#
    );
    outsider.expect_silence(Duration::from_millis(200)).await;

    let bad = post(addr, "/rooms/news/messages", r#"{"txt":1}"#).await;
    assert!(bad.starts_with("HTTP/1.1 422"), "{bad}");
}
