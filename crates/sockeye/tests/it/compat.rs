//! python-socketio conveniences and semantics (docs/python-socketio-checklist.md): `send`,
//! namespace `?query` suffixes, `always_connect`. Raw frames over WebSocket.

use crate::common;

use std::time::Duration;

use common::{Ws, builder, serve};
use serde_json::Value;
use sockeye::extract::Auth;
use sockeye::{Event, SocketRef};

fn no_auth() -> impl Fn(SocketRef) -> std::future::Ready<()> + Send + Sync + 'static {
    |_s| std::future::ready(())
}

/// Row 64: `send` is `emit("message")` on the socket, on a broadcast operator and on the
/// server handle; each client gets each message exactly once.
#[tokio::test]
async fn send_is_a_message_event_on_socket_operator_and_server() {
    let io = builder().build();
    io.ns("/", no_auth())
        .on("me", |socket: SocketRef, _e: Event| async move {
            socket.send("to you").unwrap();
        })
        .on("others", |socket: SocketRef, _e: Event| async move {
            socket
                .broadcast()
                .send(&serde_json::json!({"n": 1}))
                .await
                .unwrap();
        });
    let addr = serve(&io).await;
    let (mut s1, _) = Ws::open_connected(addr).await;
    let (mut s2, _) = Ws::open_connected(addr).await;

    s1.send(r#"42["me"]"#).await;
    s1.expect(r#"42["message","to you"]"#).await;
    s2.expect_silence(Duration::from_millis(100)).await;

    s1.send(r#"42["others"]"#).await;
    s2.expect(r#"42["message",{"n":1}]"#).await;
    s1.expect_silence(Duration::from_millis(100)).await;

    io.send(&[1, 2]).await.unwrap();
    for s in [&mut s1, &mut s2] {
        s.expect(r#"42["message",[1,2]]"#).await;
        s.expect_silence(Duration::from_millis(50)).await;
    }
}

/// Row 30: a CONNECT to `/chat?x=1` (legacy clients) joins `/chat`; the reply and later
/// packets name `/chat`, and the query is not part of the socket's namespace.
#[tokio::test]
async fn namespace_query_suffix_is_stripped() {
    let io = builder().build();
    let (tx, mut seen) = tokio::sync::mpsc::channel(4);
    io.ns("/chat", move |socket: SocketRef| {
        let tx = tx.clone();
        async move {
            tx.send(socket.ns().to_owned()).await.unwrap();
        }
    })
    .on("where", |socket: SocketRef, _e: Event| async move {
        sockeye::Args::from_value(&socket.ns()).unwrap()
    });
    let addr = serve(&io).await;
    let mut ws = Ws::open(addr).await;
    ws.send("40/chat?x=1&y=2,").await;
    ws.expect_connect("/chat").await;
    assert_eq!(seen.recv().await.unwrap(), "/chat");
    // Later packets may carry the suffix too: they reach the same socket.
    ws.send(r#"42/chat?x=1,7["where"]"#).await;
    ws.expect(r#"43/chat,7["/chat"]"#).await;
    ws.send(r#"42/chat,8["where"]"#).await;
    ws.expect(r#"43/chat,8["/chat"]"#).await;
    assert_eq!(
        io.of("/chat").unwrap().sockets().len(),
        1,
        "one socket in /chat"
    );
    assert!(seen.try_recv().is_err(), "the connect handler ran once");
    // An unknown namespace with a query is refused under its bare name.
    ws.send("40/nope?x=1,").await;
    ws.expect(r#"44/nope,{"message":"Invalid namespace"}"#)
        .await;
}

/// Row 41: with `always_connect` the CONNECT reply comes before the connect handler runs (its
/// emit follows the reply), and a refusal then disconnects: the client sees connect, the
/// emit, then DISCONNECT; no disconnect handler runs and the namespace holds no socket.
#[tokio::test]
async fn always_connect_replies_first_and_a_refusal_disconnects() {
    let io = builder().always_connect(true).build();
    let (tx, mut disconnects) = tokio::sync::mpsc::channel::<()>(4);
    io.ns(
        "/chat",
        |socket: SocketRef, auth: Option<Auth<Value>>| async move {
            // Emitted from the handler: with always_connect the reply is already out.
            socket.emit("hello", "from connect").unwrap();
            if auth.as_ref().and_then(|Auth(a)| a.get("reject")) == Some(&serde_json::json!(true)) {
                return Err(sockeye::ConnectionRefusedError::new("no"));
            }
            Ok(())
        },
    )
    .on_disconnect(move |_s: SocketRef, _reason: sockeye::DisconnectReason| {
        let tx = tx.clone();
        async move {
            tx.send(()).await.unwrap();
        }
    })
    .on("ping", |_s: SocketRef, _e: Event| async move {
        sockeye::Args::from_value(&"pong").unwrap()
    });
    let addr = serve(&io).await;
    let mut ws = Ws::open(addr).await;

    ws.send(r#"40/chat,{"reject":true}"#).await;
    ws.expect_connect("/chat").await;
    ws.expect(r#"42/chat,["hello","from connect"]"#).await;
    ws.expect("41/chat,").await;
    ws.expect_silence(Duration::from_millis(100)).await;
    assert!(io.of("/chat").unwrap().sockets().is_empty());
    assert!(disconnects.try_recv().is_err(), "no disconnect handler");

    // Accepted: same order, and the socket then works.
    ws.send("40/chat,").await;
    ws.expect_connect("/chat").await;
    ws.expect(r#"42/chat,["hello","from connect"]"#).await;
    ws.send(r#"42/chat,1["ping"]"#).await;
    ws.expect(r#"43/chat,1["pong"]"#).await;
    assert_eq!(io.of("/chat").unwrap().sockets().len(), 1);
    assert!(disconnects.try_recv().is_err());
}

/// Without `always_connect` (the default) the same refusal is a CONNECT_ERROR and the
/// handler's emit is never sent.
#[tokio::test]
async fn without_always_connect_a_refusal_is_a_connect_error() {
    let io = builder().build();
    io.ns("/chat", |socket: SocketRef| async move {
        socket.emit("hello", "from connect").unwrap();
        Err::<(), _>(sockeye::ConnectionRefusedError::new("no"))
    });
    let addr = serve(&io).await;
    let mut ws = Ws::open(addr).await;
    ws.send("40/chat,").await;
    ws.expect(r#"44/chat,{"message":"no"}"#).await;
    ws.expect_silence(Duration::from_millis(100)).await;
}
