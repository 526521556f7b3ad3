//! The hyper-echo server against a raw Socket.IO client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../chat/tests/it/sio.rs"]
mod sio;

use sio::{Sio, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn events_are_echoed_and_acknowledged() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(hyper_echo::run(listener));

    let (mut c, reply) = Sio::connect(addr, "").await;
    assert!(reply.starts_with("40{"), "{reply}");
    c.send(r#"427["ping",{"n":1},"two"]"#).await;
    assert_eq!(c.recv().await, r#"42["ping",{"n":1},"two"]"#);
    assert_eq!(c.recv().await, r#"437[{"n":1},"two"]"#);

    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /elsewhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");
}
