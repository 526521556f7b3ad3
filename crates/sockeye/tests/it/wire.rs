//! Exact wire strings of the official Socket.IO protocol suite (conformance-notes §2), over
//! raw WebSocket frames and raw long-polling.

use crate::common;

use std::time::Duration;

use common::{F, Polling, Ws, builder, serve};
use serde_json::{Value, json};
use sockeye::extract::Auth;
use sockeye::{Event, SocketIo, SocketRef};

/// The suite's app: `auth` on connect, `message` echoed as `message-back`, `message-with-ack`
/// acknowledged with its arguments; on `/` and `/custom`.
fn app(io: &SocketIo) {
    for ns in ["/", "/custom"] {
        io.ns(
            ns,
            |socket: SocketRef, auth: Option<Auth<Value>>| async move {
                let auth = auth.map_or_else(|| json!({}), |Auth(auth)| auth);
                socket.emit("auth", &auth).unwrap();
            },
        )
        .on("message", |socket: SocketRef, event: Event| async move {
            socket.emit_args("message-back", event.args).unwrap();
        })
        .on(
            "message-with-ack",
            |_s: SocketRef, event: Event| async move { event.args },
        );
    }
}

async fn server() -> std::net::SocketAddr {
    let io = builder().connect_timeout(Duration::from_secs(1)).build();
    app(&io);
    serve(&io).await
}

#[tokio::test]
async fn connect_root_replies_sid_then_auth_event() {
    let addr = server().await;
    let mut ws = Ws::open(addr).await;
    let eio_sid = ws.handshake["sid"].as_str().unwrap().to_owned();
    ws.send("40").await;
    let sid = ws.expect_connect("/").await;
    assert_ne!(sid, eio_sid, "the socket id is not the Engine.IO sid");
    assert!(sid.len() >= 20, "at least 120 bits of id: {sid}");
    ws.expect(r#"42["auth",{}]"#).await;
}

#[tokio::test]
async fn connect_with_auth_payload() {
    let addr = server().await;
    let mut ws = Ws::open(addr).await;
    ws.send(r#"40{"token":"123"}"#).await;
    ws.expect_connect("/").await;
    ws.expect(r#"42["auth",{"token":"123"}]"#).await;
}

#[tokio::test]
async fn connect_custom_namespace() {
    let addr = server().await;
    let mut ws = Ws::open(addr).await;
    ws.send("40").await;
    let root = ws.expect_connect("/").await;
    ws.expect(r#"42["auth",{}]"#).await;
    ws.send(r#"40/custom,{"token":"abc"}"#).await;
    let custom = ws.expect_connect("/custom").await;
    ws.expect(r#"42/custom,["auth",{"token":"abc"}]"#).await;
    assert_ne!(root, custom, "a fresh id per namespace connection");
}

#[tokio::test]
async fn connect_custom_without_comma() {
    let addr = server().await;
    let mut ws = Ws::open(addr).await;
    ws.send("40/custom").await;
    ws.expect_connect("/custom").await;
    ws.expect(r#"42/custom,["auth",{}]"#).await;
}

#[tokio::test]
async fn unknown_namespace_is_refused_like_the_js_server() {
    let addr = server().await;
    let mut ws = Ws::open(addr).await;
    ws.send("40/random").await;
    ws.expect(r#"44/random,{"message":"Invalid namespace"}"#)
        .await;
}

#[tokio::test]
async fn session_without_connect_is_closed_after_connect_timeout() {
    let addr = server().await;
    let mut ws = Ws::open(addr).await;
    let started = std::time::Instant::now();
    assert_eq!(
        ws.recv_within(Duration::from_secs(5)).await,
        Some(F::Closed)
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn namespace_disconnect_keeps_the_engine_session() {
    let io = SocketIo::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(2000))
        .build();
    app(&io);
    let addr = serve(&io).await;
    let mut ws = Ws::open(addr).await;
    ws.send("40").await;
    ws.expect_connect("/").await;
    ws.expect(r#"42["auth",{}]"#).await;
    ws.send("41").await;
    // Read raw: the next frame must be the heartbeat PING, nothing before it.
    use futures_util::StreamExt;
    let next = tokio::time::timeout(Duration::from_secs(5), ws.ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.into_text().unwrap().as_str(), "2");
}

#[tokio::test]
async fn leaving_custom_keeps_main_namespace_working() {
    let addr = server().await;
    let mut ws = Ws::open(addr).await;
    ws.send("40").await;
    ws.expect_connect("/").await;
    ws.expect(r#"42["auth",{}]"#).await;
    ws.send("40/custom").await;
    ws.expect_connect("/custom").await;
    ws.expect(r#"42/custom,["auth",{}]"#).await;
    ws.send("41/custom").await;
    ws.send(r#"42["message","message to main namespace"]"#)
        .await;
    ws.expect(r#"42["message-back","message to main namespace"]"#)
        .await;
}

#[tokio::test]
async fn event_is_echoed_with_compact_json_in_key_order() {
    let addr = server().await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.expect(r#"42["auth",{}]"#).await;
    ws.send(r#"42["message",1,"2",{"3":[true]}]"#).await;
    ws.expect(r#"42["message-back",1,"2",{"3":[true]}]"#).await;
}

#[tokio::test]
async fn binary_event_is_echoed_with_its_attachments() {
    let addr = server().await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.expect(r#"42["auth",{}]"#).await;
    ws.send(r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    ws.send_bin(&[1, 2, 3]).await;
    ws.send_bin(&[4, 5, 6]).await;
    ws.expect(
        r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    )
    .await;
    assert_eq!(ws.recv().await, F::B(vec![1, 2, 3]));
    assert_eq!(ws.recv().await, F::B(vec![4, 5, 6]));
}

#[tokio::test]
async fn ack_carries_the_same_arguments() {
    let addr = server().await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.expect(r#"42["auth",{}]"#).await;
    ws.send(r#"42456["message-with-ack",1,"2",{"3":[false]}]"#)
        .await;
    ws.expect(r#"43456[1,"2",{"3":[false]}]"#).await;
}

#[tokio::test]
async fn binary_ack_carries_the_attachments() {
    let addr = server().await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.expect(r#"42["auth",{}]"#).await;
    ws.send(r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    ws.send_bin(&[1, 2, 3]).await;
    ws.send_bin(&[4, 5, 6]).await;
    ws.expect(r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    assert_eq!(ws.recv().await, F::B(vec![1, 2, 3]));
    assert_eq!(ws.recv().await, F::B(vec![4, 5, 6]));
}

#[tokio::test]
async fn polling_connect_event_and_ack() {
    let addr = server().await;
    let p = Polling::open(addr).await;
    assert_eq!(p.post("40").await, 200);
    let (status, body) = p.get().await;
    assert_eq!(status, 200);
    let mut parts = body.split('\x1e');
    let connect = parts.next().unwrap();
    assert!(connect.starts_with(r#"40{"sid":""#), "{body}");
    assert!(
        !connect.contains(&p.sid),
        "socket id differs from the engine sid"
    );
    assert_eq!(parts.next(), Some(r#"42["auth",{}]"#), "{body}");
    assert_eq!(p.post(r#"421["message-with-ack","x"]"#).await, 200);
    let (_, body) = p.get().await;
    assert_eq!(body, r#"431["x"]"#);
}
