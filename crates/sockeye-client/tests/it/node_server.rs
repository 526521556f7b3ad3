//! The client against the official Node `socket.io` server (tests/client/server.js).

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{NodeServer, WAIT, free_port};
use serde_json::{Value, json};
use sockeye_client::{
    Args, Client, ClientBuilder, DisconnectReason, Event, SimpleClient, SocketIoError, Status,
    Transport,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

const SHORT: Duration = Duration::from_secs(5);

async fn whoami(client: &Client, ns: &str) -> Value {
    client
        .of(ns)
        .call_args("whoami", Args::empty(), SHORT)
        .await
        .unwrap()
        .first()
        .unwrap()
}

/// Waits until `check` holds, polling; panics after [`WAIT`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn echo_round_trip(builder: ClientBuilder, expect: Transport) {
    let client = builder.connect().await.unwrap();
    if expect == Transport::Websocket {
        eventually("the websocket transport", || {
            client.transport() == Some(Transport::Websocket)
        })
        .await;
    }
    let reply = client
        .call("echo", &json!({"n": 1, "s": "é"}), SHORT)
        .await
        .unwrap();
    assert_eq!(reply.first::<Value>().unwrap(), json!({"n": 1, "s": "é"}));
    assert_eq!(whoami(&client, "/").await["transport"], expect.as_str());
    assert_eq!(client.transport(), Some(expect));
    client.disconnect().await;
    assert_eq!(client.status(), Status::Closed);
}

#[tokio::test]
async fn polling_only() {
    let server = NodeServer::start();
    let builder = Client::builder(server.url()).transports([Transport::Polling]);
    echo_round_trip(builder, Transport::Polling).await;
}

#[tokio::test]
async fn websocket_only() {
    let server = NodeServer::start();
    let builder = Client::builder(server.url()).transports([Transport::Websocket]);
    echo_round_trip(builder, Transport::Websocket).await;
}

#[tokio::test]
async fn polling_then_upgrade() {
    let server = NodeServer::start();
    echo_round_trip(Client::builder(server.url()), Transport::Websocket).await;
}

#[tokio::test]
async fn query_headers_and_auth_reach_the_server() {
    let server = NodeServer::start();
    let client = Client::builder(format!("{}/ignored/path?room=42&x=a%20b", server.url()))
        .header("x-test", "hello")
        .auth(json!({"token": "t1"}))
        .connect()
        .await
        .unwrap();
    let seen = whoami(&client, "/").await;
    assert_eq!(seen["query"]["room"], "42");
    assert_eq!(seen["query"]["x"], "a b");
    assert_eq!(seen["header"], "hello");
    assert_eq!(seen["auth"], json!({"token": "t1"}));
    assert_eq!(client.sid("/").as_deref(), seen["id"].as_str());
    assert_ne!(client.sid("/"), client.engine_sid());
    client.disconnect().await;
}

#[tokio::test]
async fn binary_both_ways() {
    for transports in [vec![Transport::Polling], vec![Transport::Websocket]] {
        let server = NodeServer::start();
        let (tx, mut rx) = mpsc::channel(4);
        let client = Client::builder(server.url())
            .transports(transports)
            .on("bin", move |event: Event| {
                let tx = tx.clone();
                async move {
                    let (raw, nested): (Bytes, NestedBin) = event.args().deserialize().unwrap();
                    tx.send((raw, nested.nested)).await.unwrap();
                }
            })
            .connect()
            .await
            .unwrap();
        // Client to server and back (the server acks with what it received).
        let mut args = Args::builder();
        args.push_binary(Bytes::from_static(&[0, 1, 2, 255]));
        args.push(&json!({"label": "x"})).unwrap();
        let reply = client.call_args("echo", args.build(), SHORT).await.unwrap();
        assert!(reply.has_binary());
        let (data, label): (Bytes, Value) = reply.deserialize().unwrap();
        assert_eq!(&data[..], &[0, 1, 2, 255]);
        assert_eq!(label, json!({"label": "x"}));
        // Server to client.
        client
            .emit_args("binary-please", Args::empty())
            .await
            .unwrap();
        let (raw, inner) = timeout(WAIT, rx.recv()).await.unwrap().unwrap();
        assert_eq!(&raw[..], &[1, 2, 3, 4]);
        assert_eq!(&inner[..], b"hi");
        client.disconnect().await;
    }
}

#[derive(serde::Deserialize)]
struct NestedBin {
    nested: Bytes,
}

#[tokio::test]
async fn client_answers_server_acks_by_return_and_by_sender() {
    let server = NodeServer::start();
    let (tx, mut answers) = mpsc::channel(4);
    let client = Client::builder(server.url())
        .on("question", |event: Event| async move {
            let n: i64 = event.data().unwrap();
            json!({"double": n * 2})
        })
        .on("answer", move |event: Event| {
            let tx = tx.clone();
            async move {
                tx.send(event.data::<Value>().unwrap()).await.unwrap();
            }
        })
        .connect()
        .await
        .unwrap();
    client.emit("ask", &21).await.unwrap();
    let answer = timeout(WAIT, answers.recv()).await.unwrap().unwrap();
    assert_eq!(answer, json!([{"double": 42}]));
    client.disconnect().await;

    // The explicit sender, with a binary ack.
    let (tx, mut answers) = mpsc::channel(4);
    let client = Client::builder(server.url())
        .on("question", |mut event: Event| async move {
            let ack = event.take_ack().unwrap();
            let mut args = Args::builder();
            args.push_binary(Bytes::from_static(b"\x07\x08"));
            ack.send(args.build()).await.unwrap();
            // Ignored: the ack was already sent.
            json!("ignored")
        })
        .on("answer", move |event: Event| {
            let tx = tx.clone();
            async move {
                tx.send(event.args().first::<Vec<Bytes>>().unwrap())
                    .await
                    .unwrap();
            }
        })
        .connect()
        .await
        .unwrap();
    client.emit("ask", &1).await.unwrap();
    let answer = timeout(WAIT, answers.recv()).await.unwrap().unwrap();
    // Node received a Buffer and sends it back as a binary attachment.
    assert_eq!(answer, vec![Bytes::from_static(b"\x07\x08")]);
    client.disconnect().await;
}

#[tokio::test]
async fn unhandled_event_with_ack_gets_an_empty_ack() {
    let server = NodeServer::start();
    let (tx, mut answers) = mpsc::channel(4);
    let client = Client::builder(server.url())
        .on("answer", move |event: Event| {
            let tx = tx.clone();
            async move {
                tx.send(event.data::<Value>().unwrap()).await.unwrap();
            }
        })
        .connect()
        .await
        .unwrap();
    client.emit("ask", &1).await.unwrap();
    assert_eq!(
        timeout(WAIT, answers.recv()).await.unwrap().unwrap(),
        json!([])
    );
    client.disconnect().await;
}

#[tokio::test]
async fn catch_all_gets_unmatched_events() {
    let server = NodeServer::start();
    let (tx, mut seen) = mpsc::channel(4);
    let client = Client::builder(server.url())
        .namespaces(["/", "/b"])
        .on_any(move |event: Event| {
            let tx = tx.clone();
            async move {
                let data: Value = event.data().unwrap();
                tx.send((event.namespace().to_owned(), event.name().to_owned(), data))
                    .await
                    .unwrap();
            }
        })
        .connect()
        .await
        .unwrap();
    client.of("/b").emit("echo", &"x").await.unwrap();
    let got = timeout(WAIT, seen.recv()).await.unwrap().unwrap();
    assert_eq!(got, ("/b".to_owned(), "echo".to_owned(), json!("x")));
    client.disconnect().await;
}

#[tokio::test]
async fn three_namespaces_on_one_connection() {
    let server = NodeServer::start();
    let connected = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&connected);
    let client = Client::builder(server.url())
        .namespaces(["/a", "b", "/c"])
        .on_connect(move |_ns| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        })
        .connect()
        .await
        .unwrap();
    assert_eq!(client.namespaces(), ["/a", "/b", "/c"]);
    let mut sids = Vec::new();
    for ns in ["/a", "/b", "/c"] {
        let seen = whoami(&client, ns).await;
        assert_eq!(seen["nsp"], ns);
        assert_eq!(client.sid(ns).as_deref(), seen["id"].as_str());
        sids.push(seen["id"].as_str().unwrap().to_owned());
    }
    sids.dedup();
    assert_eq!(sids.len(), 3);
    eventually("three connect callbacks", || {
        connected.load(Ordering::SeqCst) == 3
    })
    .await;
    // "/" was not requested.
    let err = client.emit("echo", &1).await.unwrap_err();
    assert!(
        matches!(err, SocketIoError::BadNamespace(ref ns) if ns == "/"),
        "{err:?}"
    );
    client.disconnect().await;
}

#[tokio::test]
async fn refusal_surfaces_message_and_data() {
    let server = NodeServer::start();
    let (tx, mut errors) = mpsc::channel(4);
    let result = Client::builder(server.url())
        .namespaces(["/", "/refuse"])
        .on_connect_error(move |ns, error| {
            let tx = tx.clone();
            async move {
                tx.send((ns, error.to_string())).await.unwrap();
            }
        })
        .connect()
        .await;
    common::assert_refused(result, json!({"reason": "token missing", "code": 401}));
    let (ns, text) = timeout(WAIT, errors.recv()).await.unwrap().unwrap();
    assert_eq!(ns, "/refuse");
    assert!(text.contains("not authorized"), "{text}");
}

#[tokio::test]
async fn call_times_out_and_unknown_namespace_is_bad() {
    let server = NodeServer::start();
    let client = Client::builder(server.url()).connect().await.unwrap();
    let started = std::time::Instant::now();
    let err = client
        .call("no-ack", &1, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, SocketIoError::Timeout), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let err = client.of("/nowhere").emit("echo", &1).await.unwrap_err();
    assert!(
        matches!(err, SocketIoError::BadNamespace(ref ns) if ns == "/nowhere"),
        "{err:?}"
    );
    // The connection still works after the timeout.
    assert_eq!(
        client
            .call("echo", &5, SHORT)
            .await
            .unwrap()
            .first::<i64>()
            .unwrap(),
        5
    );
    client.disconnect().await;
}

#[tokio::test]
async fn server_disconnect_is_final() {
    let server = NodeServer::start();
    let (tx, mut reasons) = mpsc::channel(4);
    let client = Client::builder(server.url())
        .reconnection_delay(Duration::from_millis(50))
        .on_disconnect(move |ns, reason| {
            let tx = tx.clone();
            async move {
                tx.send((ns, reason)).await.unwrap();
            }
        })
        .connect()
        .await
        .unwrap();
    client.emit("disconnect-me", &()).await.unwrap();
    let (ns, reason) = timeout(WAIT, reasons.recv()).await.unwrap().unwrap();
    assert_eq!(
        (ns.as_str(), reason),
        ("/", DisconnectReason::ServerDisconnect)
    );
    timeout(WAIT, client.closed()).await.unwrap();
    let err = client.emit("echo", &1).await.unwrap_err();
    assert!(matches!(err, SocketIoError::Disconnected), "{err:?}");
}

#[tokio::test]
async fn namespace_disconnected_by_server_becomes_bad() {
    let server = NodeServer::start();
    let (tx, mut reasons) = mpsc::channel(4);
    let client = Client::builder(server.url())
        .namespaces(["/", "/bye"])
        .on_disconnect(move |ns, reason| {
            let tx = tx.clone();
            async move {
                tx.send((ns, reason)).await.unwrap();
            }
        })
        .connect()
        .await;
    // The server kicks /bye right after accepting it; depending on timing `connect` returns
    // before or after, but /bye must end up disconnected and / keeps working.
    let client = client.unwrap();
    let (ns, reason) = timeout(WAIT, reasons.recv()).await.unwrap().unwrap();
    assert_eq!(
        (ns.as_str(), reason),
        ("/bye", DisconnectReason::ServerDisconnect)
    );
    let err = client.of("/bye").emit("echo", &1).await.unwrap_err();
    assert!(matches!(err, SocketIoError::BadNamespace(_)), "{err:?}");
    assert_eq!(
        client
            .call("echo", &1, SHORT)
            .await
            .unwrap()
            .first::<i64>()
            .unwrap(),
        1
    );
    client.disconnect().await;
}

#[tokio::test]
async fn client_disconnect_is_final_and_reported() {
    let server = NodeServer::start();
    let (tx, mut reasons) = mpsc::channel(4);
    let client = Client::builder(server.url())
        .on_disconnect(move |ns, reason| {
            let tx = tx.clone();
            async move {
                tx.send((ns, reason)).await.unwrap();
            }
        })
        .connect()
        .await
        .unwrap();
    client.disconnect().await;
    let (_, reason) = timeout(WAIT, reasons.recv()).await.unwrap().unwrap();
    assert_eq!(reason, DisconnectReason::ClientDisconnect);
    assert_eq!(client.status(), Status::Closed);
    assert!(matches!(
        client.emit("echo", &1).await,
        Err(SocketIoError::Disconnected)
    ));
}

#[tokio::test]
async fn transport_loss_reconnects_with_fresh_auth() {
    let server = NodeServer::start();
    let auth_calls = Arc::new(AtomicU32::new(0));
    let calls = Arc::clone(&auth_calls);
    let (tx, mut reasons) = mpsc::channel(4);
    let client = Client::builder(server.url())
        .namespaces(["/", "/admin"])
        .reconnection_delay(Duration::from_millis(100))
        .auth_fn(move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { json!({"token": "secret", "n": n}) }
        })
        .on_disconnect(move |ns, reason| {
            let tx = tx.clone();
            async move {
                tx.send((ns, reason)).await.unwrap();
            }
        })
        .connect()
        .await
        .unwrap();
    let first_sid = client.sid("/admin").unwrap();
    let first_auth = whoami(&client, "/admin").await["auth"]["n"].clone();
    client.emit("drop-transport", &()).await.unwrap();
    for _ in 0..2 {
        let (_, reason) = timeout(WAIT, reasons.recv()).await.unwrap().unwrap();
        assert!(reason.will_reconnect(), "{reason:?}");
    }
    eventually("the reconnection", || {
        client.namespaces().len() == 2 && client.sid("/admin").as_ref() != Some(&first_sid)
    })
    .await;
    let seen = whoami(&client, "/admin").await;
    assert_ne!(
        seen["auth"]["n"], first_auth,
        "auth must be evaluated again"
    );
    let connections: u32 = client
        .of("/admin")
        .call_args("connections", Args::empty(), SHORT)
        .await
        .unwrap()
        .first()
        .unwrap();
    assert!(connections >= 2);
    client.disconnect().await;
}

#[tokio::test]
async fn server_restart_client_reconnects_and_keeps_working() {
    let mut server = NodeServer::start();
    let port = server.port;
    let client = Client::builder(server.url())
        .reconnection_delay(Duration::from_millis(100))
        .reconnection_delay_max(Duration::from_millis(300))
        .request_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    assert_eq!(
        client
            .call("echo", &1, SHORT)
            .await
            .unwrap()
            .first::<i64>()
            .unwrap(),
        1
    );
    server.kill();
    let mut status = Status::Connected;
    eventually("the loss to be noticed", || {
        status = client.status();
        status == Status::Reconnecting
    })
    .await;
    // While the server is down emits are refused (no buffering configured).
    assert!(matches!(
        client.emit("echo", &1).await,
        Err(SocketIoError::Disconnected)
    ));
    let _server = NodeServer::start_on(port);
    eventually("the reconnection", || client.sid("/").is_some()).await;
    assert_eq!(
        client
            .call("echo", &2, SHORT)
            .await
            .unwrap()
            .first::<i64>()
            .unwrap(),
        2
    );
    client.disconnect().await;
}

#[tokio::test]
async fn emits_are_buffered_while_reconnecting() {
    let server = NodeServer::start();
    let (tx, mut reasons) = mpsc::channel(4);
    let client = Client::builder(server.url())
        .reconnection_delay(Duration::from_millis(200))
        .buffer_while_reconnecting(8)
        .on_disconnect(move |_ns, reason| {
            let tx = tx.clone();
            async move {
                tx.send(reason).await.unwrap();
            }
        })
        .connect()
        .await
        .unwrap();
    client.emit("drop-transport", &()).await.unwrap();
    timeout(WAIT, reasons.recv()).await.unwrap().unwrap();
    for id in ["a", "b"] {
        client.emit("counted", &id).await.unwrap();
    }
    eventually("the reconnection", || client.sid("/").is_some()).await;
    let counts: Value = client
        .call_args("counts", Args::empty(), SHORT)
        .await
        .unwrap()
        .first()
        .unwrap();
    assert_eq!(counts, json!({"a": 1, "b": 1}));
    client.disconnect().await;
}

#[tokio::test]
async fn retries_deliver_at_least_once() {
    let server = NodeServer::start();
    let client = Client::builder(server.url())
        .retries(2)
        .ack_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    // The server ignores the first delivery of each id and acks the second.
    client.emit("flaky", &"m1").await.unwrap();
    // An event that is never acked exhausts the retries.
    let err = client.emit("no-ack", &1).await.unwrap_err();
    assert!(matches!(err, SocketIoError::Timeout), "{err:?}");
    client.disconnect().await;
}

#[tokio::test]
async fn first_connect_failure_and_retry() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let err = Client::builder(&url).connect().await.unwrap_err();
    assert!(matches!(err, SocketIoError::Connection(_)), "{err:?}");

    let attempt = tokio::spawn(
        Client::builder(&url)
            .retry_first_connect(true)
            .reconnection_delay(Duration::from_millis(100))
            .reconnection_delay_max(Duration::from_millis(200))
            .connect(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _server = NodeServer::start_on(port);
    let client = timeout(WAIT, attempt).await.unwrap().unwrap().unwrap();
    assert!(client.sid("/").is_some());
    client.disconnect().await;
}

#[tokio::test]
async fn wrong_path_is_a_connection_error() {
    let server = NodeServer::start();
    // Node's HTTP server never answers a path nobody handles: the request timeout bounds it.
    let err = Client::builder(server.url())
        .path("/not-socket-io")
        .request_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, SocketIoError::Connection(_)), "{err:?}");
    // A bad session id is answered with HTTP 400 and its JSON body.
    let err = Client::builder(format!("{}?sid=unknown", server.url()))
        .transports([Transport::Polling])
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, SocketIoError::Connection(sockeye_client::ConnectionError::Status { status: 400, ref body }) if body.contains("Session ID unknown")),
        "{err:?}"
    );
}

#[tokio::test]
async fn simple_client_receive_and_timeout() {
    let server = NodeServer::start();
    let simple = SimpleClient::connect(Client::builder(server.url()), "/a")
        .await
        .unwrap();
    assert!(simple.sid().is_some());
    let err = simple
        .receive(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, SocketIoError::Timeout), "{err:?}");
    simple.emit("echo", &json!({"k": 1})).await.unwrap();
    let (name, args) = simple.receive(WAIT).await.unwrap();
    assert_eq!(name, "echo");
    assert_eq!(args.first::<Value>().unwrap(), json!({"k": 1}));
    let reply = simple.call("echo", &3, SHORT).await.unwrap();
    assert_eq!(reply.first::<i64>().unwrap(), 3);
    simple.disconnect().await;
    let err = simple.receive(WAIT).await.unwrap_err();
    assert!(matches!(err, SocketIoError::Disconnected), "{err:?}");
}

#[test]
fn blocking_clients_without_a_runtime() {
    let server = NodeServer::start();
    let client = sockeye_client::blocking::Client::connect(
        Client::builder(server.url()).namespaces(["/", "/b"]),
    )
    .unwrap();
    let reply = client.call("/b", "echo", &"hi", SHORT).unwrap();
    assert_eq!(reply.first::<String>().unwrap(), "hi");
    assert!(matches!(
        client.emit("/zzz", "echo", &1),
        Err(SocketIoError::BadNamespace(_))
    ));
    client.disconnect();
    client.wait();

    let simple =
        sockeye_client::blocking::SimpleClient::connect(Client::builder(server.url()), "/")
            .unwrap();
    assert!(matches!(
        simple.receive(Duration::from_millis(100)),
        Err(SocketIoError::Timeout)
    ));
    simple.emit("echo", &7).unwrap();
    let (name, args) = simple.receive(WAIT).unwrap();
    assert_eq!((name.as_str(), args.first::<i64>().unwrap()), ("echo", 7));
    simple.disconnect();
}
