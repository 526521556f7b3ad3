//! The chat app against raw Socket.IO clients.

use std::time::Duration;

use crate::sio::Sio;
use serde_json::json;

/// Serves `app` on an ephemeral loopback port.
async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn join(addr: std::net::SocketAddr, nick: &str) -> Sio {
    let (c, reply) = Sio::connect(addr, &json!({ "nickname": nick }).to_string()).await;
    assert!(reply.starts_with("40{\"sid\":"), "{reply}");
    c
}

#[tokio::test]
async fn messages_reach_the_room_but_not_the_sender() {
    let (app, _io) = chat::app();
    let addr = serve(app).await;
    let mut alice = join(addr, "alice").await;
    let mut bob = join(addr, "bob").await;
    assert_eq!(
        alice.recv_event().await,
        json!(["joined", {"nick": "bob", "room": "general"}])
    );
    alice.send(r#"421["chat",{"text":" hello "}]"#).await;
    assert_eq!(alice.recv().await, r#"431[{"ok":true}]"#);
    assert_eq!(
        bob.recv_event().await,
        json!(["message", {"nick": "alice", "text": "hello"}])
    );
    alice.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn rooms_separate_conversations_and_typing_is_relayed() {
    let (app, _io) = chat::app();
    let addr = serve(app).await;
    let mut alice = join(addr, "alice").await;
    let mut bob = join(addr, "bob").await;
    let _ = alice.recv_event().await; // bob joined
    bob.send(r#"421["join","rust"]"#).await;
    assert_eq!(bob.recv().await, r#"431[{"ok":true}]"#);
    assert_eq!(
        alice.recv_event().await,
        json!(["left", {"nick": "bob", "room": "general"}])
    );
    alice.send(r#"42["typing",true]"#).await;
    alice.send(r#"422["chat",{"text":"anyone?"}]"#).await;
    assert_eq!(alice.recv().await, r#"432[{"ok":true}]"#);
    bob.expect_silence(Duration::from_millis(200)).await;
    let mut carol = join(addr, "carol").await;
    carol.send(r#"423["join","rust"]"#).await;
    assert_eq!(carol.recv().await, r#"433[{"ok":true}]"#);
    assert_eq!(
        bob.recv_event().await,
        json!(["joined", {"nick": "carol", "room": "rust"}])
    );
    carol.send(r#"42["typing",true]"#).await;
    assert_eq!(
        bob.recv_event().await,
        json!(["typing", {"nick": "carol", "typing": true}])
    );
}

#[tokio::test]
async fn bad_nicknames_are_refused_and_bad_messages_get_an_error_ack() {
    let (app, _io) = chat::app();
    let addr = serve(app).await;
    let (_c, reply) = Sio::connect(addr, r#"{"nickname":"  "}"#).await;
    assert_eq!(
        reply,
        r#"44{"message":"choose a nickname of 1 to 32 characters","data":{"field":"nickname"}}"#
    );
    let mut alice = join(addr, "alice").await;
    alice.send(r#"421["chat","not an object"]"#).await;
    let ack = alice.recv().await;
    assert!(
        ack.starts_with(r#"431[{"error":{"code":"invalid_data""#),
        "{ack}"
    );
    alice.send(r#"422["chat",{"text":""}]"#).await;
    assert_eq!(
        alice.recv().await,
        r#"432[{"ok":false,"error":"a message has 1 to 2000 characters"}]"#
    );
}
