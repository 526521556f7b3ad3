//! Socket.IO v4 clients over Engine.IO v3 (`allow_eio3`, feature `eio3`), on the wire: the
//! server connects `/` by itself, CONNECT replies carry no `sid` (nor a recovery `pid`), a
//! second CONNECT to `/` is harmless, an application's refusal sends the bare data or message
//! while an unknown namespace sends the same object as to v5 clients, and the client pings.
//! (The official `socket.io-client` 2.x runs the interop app in legacy mode:
//! examples/interop/tests/it/interop.rs.)

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use sockeye::{ConnectionRefusedError, Event, RecoveryConfig, SocketIo, SocketRef};
use tokio_tungstenite::tungstenite::Message as WsMsg;

use crate::common::{WAIT, builder, serve};

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A v3 WebSocket session: the stream, after the `0{...}` handshake.
async fn open_v3(addr: std::net::SocketAddr) -> Stream {
    let url = format!("ws://{addr}/socket.io/?EIO=3&transport=websocket");
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .unwrap();
    assert!(next_text(&mut ws).await.starts_with("0{"));
    ws
}

async fn next_text(ws: &mut Stream) -> String {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(WsMsg::Text(t))) => return t.to_string(),
            Some(Ok(WsMsg::Ping(_) | WsMsg::Pong(_))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn send(ws: &mut Stream, text: &str) {
    ws.send(WsMsg::text(text.to_owned())).await.unwrap();
}

async fn server(recovery: bool) -> std::net::SocketAddr {
    let mut b = builder().allow_eio3(true);
    if recovery {
        b = b.connection_state_recovery(RecoveryConfig::default());
    }
    let io: SocketIo = b.build();
    for ns in ["/", "/custom"] {
        io.ns(ns, |socket: SocketRef| async move {
            let _ = socket.emit("hello", &"there");
        })
        .on(
            "echo",
            |_s: SocketRef, event: Event| async move { event.args },
        );
    }
    io.ns("/with-data", |_s: SocketRef| async {})
        .use_connect(|_s: SocketRef| async {
            Err::<(), _>(ConnectionRefusedError::with_data(
                "not allowed",
                json!({"code": 4001}),
            ))
        });
    io.ns("/message-only", |_s: SocketRef| async {})
        .use_connect(|_s: SocketRef| async {
            Err::<(), _>(ConnectionRefusedError::new("not allowed"))
        });
    serve(&io).await
}

#[tokio::test]
async fn root_is_connected_by_the_server_and_replies_carry_no_sid() {
    for recovery in [false, true] {
        let addr = server(recovery).await;
        let mut ws = open_v3(addr).await;
        // No CONNECT sent: the server connects `/` itself, without sid (or pid).
        assert_eq!(next_text(&mut ws).await, "40");
        assert_eq!(next_text(&mut ws).await, r#"42["hello","there"]"#);
        // A CONNECT to `/` anyway changes nothing; events flow.
        send(&mut ws, "40").await;
        send(&mut ws, r#"421["echo","é",{"n":1}]"#).await;
        assert_eq!(next_text(&mut ws).await, r#"431["é",{"n":1}]"#);
        send(&mut ws, "40/custom,").await;
        assert_eq!(next_text(&mut ws).await, "40/custom,");
        assert_eq!(next_text(&mut ws).await, r#"42/custom,["hello","there"]"#);
    }
}

#[tokio::test]
async fn refusals_send_the_data_or_the_message_and_unknown_namespaces_the_object() {
    let addr = server(false).await;
    let mut ws = open_v3(addr).await;
    assert_eq!(next_text(&mut ws).await, "40");
    assert_eq!(next_text(&mut ws).await, r#"42["hello","there"]"#);
    send(&mut ws, "40/with-data,").await;
    assert_eq!(next_text(&mut ws).await, r#"44/with-data,{"code":4001}"#);
    send(&mut ws, "40/message-only,").await;
    assert_eq!(next_text(&mut ws).await, r#"44/message-only,"not allowed""#);
    send(&mut ws, "40/nope,").await;
    assert_eq!(
        next_text(&mut ws).await,
        r#"44/nope,{"message":"Invalid namespace"}"#
    );
}

#[tokio::test]
async fn the_client_pings_and_the_server_answers() {
    let addr = server(false).await;
    let mut ws = open_v3(addr).await;
    assert_eq!(next_text(&mut ws).await, "40");
    assert_eq!(next_text(&mut ws).await, r#"42["hello","there"]"#);
    send(&mut ws, "2").await;
    assert_eq!(next_text(&mut ws).await, "3");
    // Nothing else is sent meanwhile: the server never pings a v3 client.
    let quiet = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(quiet.is_err(), "unexpected frame: {quiet:?}");
}
