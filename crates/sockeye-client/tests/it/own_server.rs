//! The client against our own server (`crates/sockeye`), served by axum on loopback.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::WAIT;
use serde_json::{Value, json};
use sockeye::{ConnectionRefusedError, SocketIo, SocketRef};
use sockeye_client::{Args, Client, Event, Transport};
use tokio::sync::mpsc;
use tokio::time::timeout;

async fn serve() -> String {
    let (layer, io) = SocketIo::builder().build_layer();
    for ns in ["/", "/a", "/b", "/c"] {
        let _ = common::echo_and_ask(&io, ns);
    }
    common::refuse_ns(&io);
    common::serve_layer(layer).await
}

#[tokio::test]
async fn echo_on_each_transport_and_three_namespaces() {
    let url = serve().await;
    for transports in [
        vec![Transport::Polling],
        vec![Transport::Websocket],
        vec![Transport::Polling, Transport::Websocket],
    ] {
        let client = Client::builder(&url)
            .transports(transports.clone())
            .namespaces(["/a", "/b", "/c"])
            .connect()
            .await
            .unwrap();
        for ns in ["/a", "/b", "/c"] {
            let reply = client
                .of(ns)
                .call("echo", &json!({"ns": ns}), WAIT)
                .await
                .unwrap();
            assert_eq!(reply.first::<Value>().unwrap(), json!({"ns": ns}));
        }
        if transports.len() == 2 {
            let deadline = tokio::time::Instant::now() + WAIT;
            while client.transport() != Some(Transport::Websocket) {
                assert!(tokio::time::Instant::now() < deadline, "no upgrade");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let reply = client.of("/b").call("echo", &1, WAIT).await.unwrap();
            assert_eq!(reply.first::<i64>().unwrap(), 1);
        }
        client.disconnect().await;
    }
}

#[tokio::test]
async fn binary_and_acks_both_ways() {
    let url = serve().await;
    let (tx, mut answers) = mpsc::channel(4);
    let client = Client::builder(&url)
        .on("question", |event: Event| async move {
            let data: Bytes = event.data().unwrap();
            let mut args = Args::builder();
            args.push_binary(Bytes::from(data.iter().rev().copied().collect::<Vec<u8>>()));
            args.build()
        })
        .on("answer", move |event: Event| {
            let tx = tx.clone();
            async move {
                tx.send(event.data::<Bytes>().unwrap()).await.unwrap();
            }
        })
        .connect()
        .await
        .unwrap();
    let mut args = Args::builder();
    args.push_binary(Bytes::from_static(&[9, 8, 7]));
    let reply = client.call_args("echo", args.build(), WAIT).await.unwrap();
    assert_eq!(&reply.first::<Bytes>().unwrap()[..], &[9, 8, 7]);

    let mut args = Args::builder();
    args.push_binary(Bytes::from_static(&[1, 2, 3]));
    client.emit_args("ask", args.build()).await.unwrap();
    let answer = timeout(WAIT, answers.recv()).await.unwrap().unwrap();
    assert_eq!(&answer[..], &[3, 2, 1]);
    client.disconnect().await;
}

#[tokio::test]
async fn refusal_with_data() {
    let url = serve().await;
    let result = Client::builder(&url)
        .namespaces(["/refuse"])
        .connect()
        .await;
    common::assert_refused(result, json!({"code": 7}));
}

/// python-socketio's `always_connect` seen from the client: the refused namespace is first
/// connected, then disconnected by the server (not refused with a CONNECT_ERROR).
#[tokio::test]
async fn always_connect_refusal_is_connect_then_server_disconnect() {
    let (layer, io) = SocketIo::builder().always_connect(true).build_layer();
    io.ns("/chat", |_socket: SocketRef| async move {
        Err::<(), _>(ConnectionRefusedError::new("no"))
    });
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let (tx, mut seen) = mpsc::channel(8);
    let on_connect = tx.clone();
    let on_error = tx.clone();
    let _client = Client::builder(format!("http://{addr}"))
        .transports([Transport::Websocket])
        .namespaces(["/chat"])
        .on_connect(move |ns| {
            let tx = on_connect.clone();
            async move {
                tx.send(format!("connect {ns}")).await.unwrap();
            }
        })
        .on_connect_error(move |ns, _e| {
            let tx = on_error.clone();
            async move {
                tx.send(format!("connect_error {ns}")).await.unwrap();
            }
        })
        .on_disconnect(move |ns, reason| {
            let tx = tx.clone();
            async move {
                tx.send(format!("disconnect {ns} {reason:?}"))
                    .await
                    .unwrap();
            }
        })
        .connect()
        .await;
    let first = timeout(WAIT, seen.recv()).await.unwrap().unwrap();
    let second = timeout(WAIT, seen.recv()).await.unwrap().unwrap();
    assert_eq!(first, "connect /chat");
    assert_eq!(second, "disconnect /chat ServerDisconnect");
    // Nothing else: no CONNECT_ERROR, no reconnection of the namespace (with its only
    // namespace gone the client closes, dropping the handlers and so the channel).
    let third = timeout(Duration::from_millis(300), seen.recv()).await;
    assert!(matches!(third, Err(_) | Ok(None)), "unexpected {third:?}");
}
