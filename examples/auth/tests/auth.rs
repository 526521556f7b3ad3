//! The auth app against a raw Socket.IO client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../chat/tests/it/sio.rs"]
mod sio;

use sio::Sio;

async fn serve() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, auth::app()).await.unwrap() });
    addr
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_refused_with_message_and_data() {
    let addr = serve().await;
    let (_c, reply) = Sio::connect(addr, r#"{"token":"wrong"}"#).await;
    assert_eq!(
        reply,
        r#"44{"message":"invalid token","data":{"hint":"try alice-token or bob-token","reason":"unknown_token"}}"#
    );
    let (_c, reply) = Sio::connect(addr, "").await;
    assert!(
        reply.starts_with(r#"44{"message":"authentication required","data":{"#),
        "{reply}"
    );
}

#[tokio::test]
async fn a_valid_token_connects_and_the_session_holds_the_user() {
    let addr = serve().await;
    let (mut bob, reply) = Sio::connect(addr, r#"{"token":"bob-token"}"#).await;
    assert!(reply.starts_with(r#"40{"sid":"#), "{reply}");
    bob.send(r#"421["whoami"]"#).await;
    assert_eq!(bob.recv().await, r#"431[{"name":"bob","admin":false}]"#);
    bob.send(r#"422["admin"]"#).await;
    assert_eq!(bob.recv().await, r#"432["forbidden: admins only"]"#);
    let (mut alice, _) = Sio::connect(addr, r#"{"token":"alice-token"}"#).await;
    alice.send(r#"421["admin"]"#).await;
    assert_eq!(alice.recv().await, r#"431["welcome, admin"]"#);
}
