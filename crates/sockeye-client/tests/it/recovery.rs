//! Connection-state recovery from the client's side (socket.io-client 4.6+ semantics): the
//! client keeps the `pid` of its CONNECT reply and the last offset, presents both after a
//! transport loss, reports `recovered()`, and its handlers get the events it missed, once, in
//! order. Against our server (in-memory recovery) and the official Node server
//! (tests/interop/reference-recovery-server.js).
//!
//! The transport loss is real: the client goes through a TCP fault proxy that resets every
//! connection and refuses new ones while a second client publishes.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::WAIT;
use serde_json::{Value, json};
use sockeye::{RecoveryConfig, SocketIo, SocketRef};
use sockeye_client::{Args, Client, Event, Transport};
use sockeye_testkit::FaultProxy;

const SHORT: Duration = Duration::from_secs(5);

/// Items received by the recovering client: `(value, offset)`.
type Received = Arc<Mutex<Vec<(i64, Option<String>)>>>;

/// Our server with the recovery app's `join`, `whoami` and `publish` on `/`.
async fn serve_ours(window: Duration) -> String {
    let (layer, io) = SocketIo::builder()
        .connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: window,
            ..RecoveryConfig::default()
        })
        .build_layer();
    io.ns("/", |_socket: SocketRef| async move {})
        .on(
            "join",
            |socket: SocketRef, event: sockeye::Event| async move {
                if let Ok(room) = event.args.first::<String>() {
                    socket.join(room);
                }
                sockeye::Json("joined")
            },
        )
        .on("whoami", |socket: SocketRef| async move {
            sockeye::Json(json!({"id": socket.id(), "recovered": socket.recovered()}))
        })
        .on(
            "publish",
            |io: SocketIo, event: sockeye::Event| async move {
                let room = event.args.nth::<String>(0).unwrap_or_default();
                let from = event.args.nth::<i64>(1).unwrap_or(0);
                let to = event.args.nth::<i64>(2).unwrap_or(0).min(from + 1000);
                for i in from..to {
                    io.to(&room).emit("item", &i).await.unwrap();
                }
                sockeye::Json("published")
            },
        );
    common::serve_layer(layer).await
}

/// The official Node server running tests/interop/reference-recovery-server.js (recovery on
/// `/socket.io/`, 3 s window), killed by PID when dropped.
struct NodeRecoveryServer {
    child: Child,
    url: String,
}

impl NodeRecoveryServer {
    fn start() -> NodeRecoveryServer {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let script = root.join("tests/interop/reference-recovery-server.js");
        assert!(
            root.join("tests/node_modules/socket.io").exists(),
            "run `npm ci` in tests/ (scripts/test does it)"
        );
        let mut child = Command::new("node")
            .arg(&script)
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node`: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the Node recovery server did not start within 20 s");
        NodeRecoveryServer {
            child,
            url: format!("http://{addr}"),
        }
    }
}

impl Drop for NodeRecoveryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn values(received: &Received) -> Vec<i64> {
    received.lock().unwrap().iter().map(|(v, _)| *v).collect()
}

/// A client through `proxy` that reconnects fast and records every `item`.
async fn recovering_client(proxy: &FaultProxy, received: &Received) -> Client {
    let sink = Arc::clone(received);
    Client::builder(format!("http://{}", proxy.addr()))
        .transports([Transport::Websocket])
        .reconnection_delay(Duration::from_millis(50))
        .reconnection_delay_max(Duration::from_millis(200))
        .randomization_factor(0.0)
        .on("item", move |event: Event| {
            let sink = Arc::clone(&sink);
            async move {
                let value = event.data::<i64>().unwrap();
                sink.lock()
                    .unwrap()
                    .push((value, event.offset().map(str::to_owned)));
            }
        })
        .connect()
        .await
        .unwrap()
}

async fn publish(publisher: &Client, room: &str, from: i64, to: i64) {
    let args = Args::from_values([json!(room), json!(from), json!(to)]).unwrap();
    let reply = publisher.call_args("publish", args, SHORT).await.unwrap();
    assert_eq!(reply.first::<String>().unwrap(), "published");
}

async fn whoami(client: &Client) -> Value {
    client
        .call_args("whoami", Args::empty(), SHORT)
        .await
        .unwrap()
        .first()
        .unwrap()
}

/// Connect, join, receive 3 items, lose the transport, miss 5, reconnect: recovered, same sid,
/// the 5 missed items replayed once and in order, and the room still joined afterwards.
async fn recovers_after_transport_loss(url: &str) {
    let upstream = url.trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let received: Received = Arc::default();
    let client = recovering_client(&proxy, &received).await;
    assert!(!client.recovered("/"), "a first connect is never recovered");
    let publisher = Client::builder(url).connect().await.unwrap();
    let reply = client.call("join", &"r", SHORT).await.unwrap();
    assert_eq!(reply.first::<String>().unwrap(), "joined");
    publish(&publisher, "r", 0, 3).await;
    eventually("the first 3 items", || received.lock().unwrap().len() == 3).await;
    assert!(
        received.lock().unwrap().iter().all(|(_, o)| o.is_some()),
        "every broadcast of a recovering server carries an offset: {:?}",
        received.lock().unwrap()
    );
    let sid = client.sid("/").unwrap();

    proxy.refuse_new(true);
    proxy.reset_all();
    eventually("the client to notice the loss", || !client.is_connected()).await;
    // Published while the client cannot reach the server.
    publish(&publisher, "r", 3, 8).await;
    proxy.refuse_new(false);

    eventually("the client to be recovered", || client.recovered("/")).await;
    assert_eq!(client.sid("/").as_deref(), Some(sid.as_str()), "same sid");
    assert_eq!(whoami(&client).await["recovered"], json!(true));
    eventually("the 5 missed items", || received.lock().unwrap().len() >= 8).await;
    // The room survived: a later broadcast to it still arrives.
    publish(&publisher, "r", 8, 10).await;
    eventually("the items after recovery", || {
        received.lock().unwrap().len() >= 10
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = values(&received);
    assert_eq!(
        got,
        (0..10).collect::<Vec<_>>(),
        "sent 10 (3 before, 5 while away, 2 after); each must arrive once, in order"
    );
    let offsets: Vec<_> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, o)| o.clone())
        .collect();
    let mut unique = offsets.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), offsets.len(), "distinct offsets: {offsets:?}");
    client.disconnect().await;
    publisher.disconnect().await;
}

/// Past the server's window the session is gone: the client connects afresh (new sid,
/// `recovered()` false) and nothing is replayed.
async fn fresh_after_expiry(url: &str, window: Duration) {
    let upstream = url.trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let received: Received = Arc::default();
    let client = recovering_client(&proxy, &received).await;
    let publisher = Client::builder(url).connect().await.unwrap();
    client.call("join", &"e", SHORT).await.unwrap();
    publish(&publisher, "e", 0, 1).await;
    eventually("the first item", || received.lock().unwrap().len() == 1).await;
    let sid = client.sid("/").unwrap();
    proxy.refuse_new(true);
    proxy.reset_all();
    eventually("the client to notice the loss", || !client.is_connected()).await;
    publish(&publisher, "e", 1, 3).await;
    tokio::time::sleep(window + Duration::from_millis(1500)).await;
    proxy.refuse_new(false);
    eventually("the reconnect", || client.sid("/").is_some()).await;
    assert!(!client.recovered("/"));
    assert_ne!(
        client.sid("/").unwrap(),
        sid,
        "a fresh session has a new sid"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        values(&received),
        vec![0],
        "nothing replayed into a fresh session"
    );
    client.disconnect().await;
    publisher.disconnect().await;
}

#[tokio::test]
async fn recovers_from_our_server() {
    let url = serve_ours(Duration::from_secs(10)).await;
    recovers_after_transport_loss(&url).await;
}

#[tokio::test]
async fn recovers_from_the_node_server() {
    let server = NodeRecoveryServer::start();
    recovers_after_transport_loss(&server.url).await;
}

#[tokio::test]
async fn fresh_session_after_the_window_on_our_server() {
    let window = Duration::from_millis(500);
    let url = serve_ours(window).await;
    fresh_after_expiry(&url, window).await;
}

#[tokio::test]
async fn a_server_without_recovery_is_never_recovered() {
    // The Node app's `/plain/` path has recovery off: no pid, no offsets, never recovered.
    let server = NodeRecoveryServer::start();
    let upstream = server.url.trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let received: Received = Arc::default();
    let sink = Arc::clone(&received);
    let client = Client::builder(format!("http://{}", proxy.addr()))
        .path("/plain/")
        .transports([Transport::Websocket])
        .reconnection_delay(Duration::from_millis(50))
        .randomization_factor(0.0)
        .on("item", move |event: Event| {
            let sink = Arc::clone(&sink);
            async move {
                let offset = event.offset().map(str::to_owned);
                sink.lock().unwrap().push((event.data().unwrap(), offset));
            }
        })
        .connect()
        .await
        .unwrap();
    client.call("join", &"p", SHORT).await.unwrap();
    let publisher = Client::builder(&server.url)
        .path("/plain/")
        .connect()
        .await
        .unwrap();
    publish(&publisher, "p", 0, 2).await;
    eventually("2 items", || received.lock().unwrap().len() == 2).await;
    assert_eq!(*received.lock().unwrap(), vec![(0, None), (1, None)]);
    let sid = client.sid("/").unwrap();
    proxy.reset_all();
    eventually("the reconnect", || {
        client.sid("/").is_some_and(|s| s != sid)
    })
    .await;
    assert!(!client.recovered("/"));
    client.disconnect().await;
    publisher.disconnect().await;
}
