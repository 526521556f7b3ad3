//! The client with the `socket.io-msgpack-parser` wire format, against our own server and the
//! official Node server, over each transport.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::{NodeServer, WAIT};
use serde_json::{Value, json};
use sockeye::{SocketIo, SocketRef};
use sockeye_client::{Args, Client, Event, ParserKind, Transport};
use tokio::sync::mpsc;
use tokio::time::timeout;

const SHORT: Duration = Duration::from_secs(5);

fn transport_sets() -> [Vec<Transport>; 3] {
    [
        vec![Transport::Polling],
        vec![Transport::Websocket],
        vec![Transport::Polling, Transport::Websocket],
    ]
}

/// Our server with the msgpack parser: `echo` acks its arguments, `ask` calls the client's
/// `question` and emits the answer as `answer`, `bin` emits binary; `/refuse` refuses.
async fn serve_msgpack() -> String {
    let (layer, io) = SocketIo::builder()
        .parser(ParserKind::MsgPack)
        .build_layer();
    let _ = common::echo_and_ask(&io, "/").on(
        "binary-please",
        |socket: SocketRef, _event: sockeye::Event| async move {
            let mut args = Args::builder();
            args.push_binary(Bytes::from_static(&[1, 2, 3, 4]));
            args.push(&"after").unwrap();
            socket.emit_args("bin", args.build()).unwrap();
        },
    );
    common::refuse_ns(&io);
    common::serve_layer(layer).await
}

/// Binary and JSON arguments both ways, a server call the client answers, an event from the
/// server with binary: every message counted.
async fn exercise(url: &str, transports: Vec<Transport>) {
    let (bin_tx, mut bins) = mpsc::channel(8);
    let (answer_tx, mut answers) = mpsc::channel(8);
    let client = Client::builder(url)
        .parser(ParserKind::MsgPack)
        .transports(transports.clone())
        .on("question", |event: Event| async move {
            let n: i64 = event.data().unwrap();
            json!({"double": n * 2})
        })
        .on("answer", move |event: Event| {
            let tx = answer_tx.clone();
            async move { tx.send(event.args().clone()).await.unwrap() }
        })
        .on("bin", move |event: Event| {
            let tx = bin_tx.clone();
            async move {
                // The second argument differs by server (a string, or an object holding binary).
                let raw: Bytes = event.args().first().unwrap();
                tx.send(raw).await.unwrap();
            }
        })
        .connect()
        .await
        .unwrap();

    let mut args = Args::builder();
    args.push_binary(Bytes::from_static(&[0, 1, 2, 255]));
    args.push(&json!({"label": "x", "n": 1.5})).unwrap();
    let reply = client.call_args("echo", args.build(), SHORT).await.unwrap();
    let (data, label): (Bytes, Value) = reply.deserialize().unwrap();
    assert_eq!(&data[..], &[0, 1, 2, 255], "{transports:?}");
    assert_eq!(label, json!({"label": "x", "n": 1.5}));

    client.emit("ask", &21).await.unwrap();
    let answer = timeout(WAIT, answers.recv()).await.unwrap().unwrap();
    let answer: Value = answer.first().unwrap();
    // The Node server wraps the ack arguments in an array; ours emits them as they came.
    assert!(
        answer == json!({"double": 42}) || answer == json!([{"double": 42}]),
        "{answer}"
    );

    client
        .emit_args("binary-please", Args::empty())
        .await
        .unwrap();
    let raw = timeout(WAIT, bins.recv()).await.unwrap().unwrap();
    assert_eq!(&raw[..], &[1, 2, 3, 4]);
    client.disconnect().await;
    // Exactly one answer and one binary event arrived.
    assert!(answers.try_recv().is_err());
    assert!(bins.try_recv().is_err());
}

async fn refused_with_data(url: &str, data: Value) {
    let result = Client::builder(url)
        .parser(ParserKind::MsgPack)
        .namespaces(["/", "/refuse"])
        .connect()
        .await;
    common::assert_refused(result, data);
}

#[tokio::test]
async fn msgpack_client_against_our_server() {
    let url = serve_msgpack().await;
    for transports in transport_sets() {
        exercise(&url, transports).await;
    }
    refused_with_data(&url, json!({"code": 7})).await;
}

#[tokio::test]
async fn msgpack_client_against_the_node_server() {
    let server = NodeServer::start_msgpack();
    let url = server.url();
    for transports in transport_sets() {
        exercise(&url, transports).await;
    }
    refused_with_data(&url, json!({"reason": "token missing", "code": 401})).await;
}

#[tokio::test]
async fn json_client_against_a_msgpack_server_fails_to_connect() {
    let url = serve_msgpack().await;
    let result = Client::builder(&url)
        .transports([Transport::Websocket])
        .connect()
        .await;
    assert!(
        result.is_err(),
        "a JSON client connected to a msgpack server"
    );
}
