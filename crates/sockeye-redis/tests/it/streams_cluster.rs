//! A mixed streams-mode cluster: two sockeye nodes and the official Node server with
//! `@socket.io/redis-streams-adapter` 0.3 (tests/redis/streams-peer.js) on one Redis, driven
//! by the official `socket.io-client`: broadcasts from every node, rooms and except, fetch,
//! server count, and recovery of a session persisted by the other implementation, both ways.

use std::time::Duration;

use serde_json::{Value, json};
use sockeye::{Event, RecoveryConfig, SocketIo, SocketRef};
use sockeye_redis::streams::StreamsAdapterFactory;

use crate::common::{self, Peer, SHARED_URL, WAIT, events, redis_available};
use crate::streams_contract::{config, unique};

struct Node {
    io: SocketIo,
    addr: std::net::SocketAddr,
    _adapter: StreamsAdapterFactory,
}

async fn node(prefix: &str) -> Node {
    let adapter = StreamsAdapterFactory::connect(config(prefix))
        .await
        .unwrap();
    let io = SocketIo::builder()
        .adapter(adapter.clone())
        .connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(30),
            ..RecoveryConfig::default()
        })
        .build();
    io.ns("/", |_s: SocketRef| async {})
        .on("join", |s: SocketRef, e: Event| async move {
            let room: String = e.args.first().unwrap_or_default();
            s.join(room);
            json!("ok")
        })
        .on("whoami", |s: SocketRef| async move {
            json!({"id": s.id(), "recovered": s.recovered(), "rooms": s.rooms()})
        });
    assert!(adapter.ready(WAIT).await, "streams adapter not ready");
    let addr = common::serve(&io).await;
    Node {
        io,
        addr,
        _adapter: adapter,
    }
}

/// The events `client` received, the peer's `__disconnect` markers left out.
fn received(got: &Value, client: &str) -> Vec<(String, Value)> {
    events(got, client)
        .into_iter()
        .filter(|(e, _)| !e.starts_with("__"))
        .collect()
}

fn names(got: &Value, client: &str) -> Vec<String> {
    received(got, client).into_iter().map(|(e, _)| e).collect()
}

/// Moves `client` to the node at `to` the way a reconnect through a load balancer would:
/// its transport is killed (the first node keeps its session), `missed` runs, then it
/// connects to `to` with its pid and offset. Returns the reconnect's `{id, recovered}`.
async fn move_client(
    peer: &mut Peer,
    client: &str,
    to: u16,
    missed: impl std::future::Future<Output = ()>,
) -> Value {
    let dropped = peer
        .call(json!({"op": "client_drop", "name": client, "port": to}))
        .await;
    assert!(
        dropped["pid"].is_string(),
        "the client got a pid: {dropped}"
    );
    assert!(
        dropped["offset"].is_string(),
        "the client got an offset: {dropped}"
    );
    // Let the old node see the transport go and store the session.
    tokio::time::sleep(Duration::from_millis(300)).await;
    missed.await;
    peer.call(json!({"op": "client_reconnect", "name": client}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_streams_cluster_with_the_node_adapter() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let prefix = unique("streams-mixed");
    let a = node(&prefix).await;
    let b = node(&prefix).await;
    let mut peer = Peer::start_script(
        "streams-peer.js",
        "@socket.io/redis-streams-adapter",
        &[SHARED_URL, &prefix],
    )
    .await;
    let reply = peer
        .call(json!({"op": "clients", "urls": [
            {"name": "a1", "port": a.addr.port()},
            {"name": "b1", "port": b.addr.port()},
            {"name": "n1", "port": peer.port},
        ]}))
        .await;
    let id = |name: &str| reply["ids"][name].as_str().unwrap().to_owned();

    // Server count: both implementations count 3 (PUBSUB NUMSUB of the namespace channel),
    // once the Node server's subscription (made in the background at its start) is in place.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let count = a.io.server_count("/").await.unwrap();
        if count == 3 {
            break;
        }
        assert!(count < 3, "more nodes than started: {count}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the count never reached 3: {count}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        peer.call(json!({"op": "node_count"})).await["count"],
        json!(3)
    );

    // Rooms: red = a1, n1; blue = b1.
    for (name, room) in [("a1", "red"), ("n1", "red"), ("b1", "blue")] {
        let r = peer
            .call(json!({"op": "client_join", "name": name, "room": room}))
            .await;
        assert_eq!(r["ack"], json!("ok"));
    }

    a.io.emit("from-a", &1).await.unwrap();
    b.io.emit("from-b", &2).await.unwrap();
    peer.call(json!({"op": "node_emit", "event": "from-n", "data": 3}))
        .await;
    b.io.to("red")
        .except(id("a1"))
        .emit("red-not-a1", &4)
        .await
        .unwrap();
    peer.call(json!({"op": "node_emit", "event": "rb-not-n1", "data": 5, "rooms": ["red", "blue"], "except": [id("n1")]}))
        .await;
    a.io.emit("last", &6).await.unwrap();
    let got = peer
        .wait_for("5 events on every client", |r| {
            ["a1", "b1", "n1"].iter().all(|c| names(r, c).len() >= 5)
        })
        .await;
    let sorted = |client: &str| {
        let mut list = names(&got, client);
        list.sort();
        list
    };
    assert_eq!(
        sorted("a1"),
        ["from-a", "from-b", "from-n", "last", "rb-not-n1"]
    );
    assert_eq!(
        sorted("b1"),
        ["from-a", "from-b", "from-n", "last", "rb-not-n1"]
    );
    assert_eq!(
        sorted("n1"),
        ["from-a", "from-b", "from-n", "last", "red-not-a1"]
    );
    // The peer's emits are fire-and-forget, so their place among the others is whatever the
    // stream says; sockeye nodes deliver in stream order, so their clients agree on it.
    assert_eq!(
        names(&got, "a1"),
        names(&got, "b1"),
        "one order on every sockeye node"
    );
    // Every event carries its stream offset as last argument (recovery is on everywhere).
    for (client, list) in got.as_object().unwrap() {
        for e in list.as_array().unwrap() {
            let last = e.as_array().unwrap().last().unwrap();
            assert!(
                last.as_str().is_some_and(|s| s.contains('-')),
                "{client}: {e} has no stream offset"
            );
        }
    }

    // fetch_sockets from both implementations sees all three sockets with their rooms.
    let mut fetched: Vec<(String, Vec<String>)> =
        a.io.of("/")
            .unwrap()
            .fetch_sockets()
            .await
            .unwrap()
            .into_iter()
            .map(|s| {
                let mut rooms = s.rooms;
                rooms.sort();
                (s.id.as_str().to_owned(), rooms)
            })
            .collect();
    fetched.sort();
    let mut want: Vec<(String, Vec<String>)> = [("a1", "red"), ("b1", "blue"), ("n1", "red")]
        .iter()
        .map(|(c, r)| {
            let mut rooms = vec![id(c), (*r).to_owned()];
            rooms.sort();
            (id(c), rooms)
        })
        .collect();
    want.sort();
    assert_eq!(fetched, want);
    let node_fetch = peer
        .call(json!({"op": "node_fetch", "rooms": ["red"]}))
        .await;
    let mut red: Vec<String> = node_fetch["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    red.sort();
    let mut want_red = vec![id("a1"), id("n1")];
    want_red.sort();
    assert_eq!(red, want_red);

    // Recovery of a session persisted by sockeye (node a), restored by the Node server.
    peer.call(json!({"op": "clear"})).await;
    let port_n = peer.port;
    let back = move_client(&mut peer, "a1", port_n, async {
        for i in 0..3 {
            b.io.to("red").emit("missed", &i).await.unwrap();
        }
    })
    .await;
    assert_eq!(
        back["recovered"],
        json!(true),
        "Node restored sockeye's session: {back}"
    );
    assert_eq!(back["id"], json!(id("a1")));
    // Recovery of a session persisted by the Node server, restored by sockeye (node b).
    let port_b = b.addr.port();
    let back = move_client(&mut peer, "n1", port_b, async {
        for i in 3..6 {
            a.io.to("red").emit("missed", &i).await.unwrap();
        }
    })
    .await;
    assert_eq!(
        back["recovered"],
        json!(true),
        "sockeye restored Node's session: {back}"
    );
    assert_eq!(back["id"], json!(id("n1")));
    let me = peer
        .call(json!({"op": "client_whoami", "name": "n1"}))
        .await;
    assert_eq!(me["me"]["recovered"], json!(true));
    let mut rooms: Vec<String> = serde_json::from_value(me["me"]["rooms"].clone()).unwrap();
    rooms.sort();
    let mut want_rooms = vec![id("n1"), "red".to_owned()];
    want_rooms.sort();
    assert_eq!(rooms, want_rooms, "the room survived the move");

    a.io.to("red").emit("after", &9).await.unwrap();
    let got = peer
        .wait_for("the broadcast after both moves", |r| {
            ["a1", "n1"]
                .iter()
                .all(|c| names(r, c).contains(&"after".to_owned()))
        })
        .await;
    let data = |client: &str| -> Vec<(String, Value)> { received(&got, client) };
    // a1 missed 0..3 while away (sent by b) and got 3..6 live on the Node node; n1 got 0..3
    // live and missed 3..6 while away (sent by a). Each once, in order.
    let expect: Vec<(String, Value)> = (0..6)
        .map(|i| ("missed".to_owned(), json!(i)))
        .chain([("after".to_owned(), json!(9))])
        .collect();
    assert_eq!(data("a1"), expect, "a1: 6 sent to red, each once, in order");
    assert_eq!(data("n1"), expect, "n1: 6 sent to red, each once, in order");
    peer.call(json!({"op": "close_clients"})).await;
    peer.stop().await;
}

/// `StreamsEmitter`: broadcasts to a room (with `except`), joins and disconnects, written as
/// stream entries with uid `emitter`, reach the sockets of a sockeye node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_emitter_reaches_a_node() {
    use sockeye_redis::streams::StreamsEmitter;
    use sockeye_testkit::sio::{Received, SioClient};
    if !redis_available(SHARED_URL).await {
        return;
    }
    let prefix = unique("streams-emitter");
    let a = node(&prefix).await;
    let mut c1 = SioClient::connected(a.addr, "/", None, WAIT).await.unwrap();
    let mut c2 = SioClient::connected(a.addr, "/", None, WAIT).await.unwrap();
    let emitter = StreamsEmitter::connect(config(&prefix)).await.unwrap();
    // Join by emitter: both into "e", then c2 excluded from a broadcast to "e".
    emitter
        .clone()
        .to(c1.sid.clone())
        .sockets_join(&["e"])
        .await
        .unwrap();
    emitter
        .clone()
        .to(c2.sid.clone())
        .sockets_join(&["e"])
        .await
        .unwrap();
    let args = sockeye::Args::from_values([json!({"n": 1})]).unwrap();
    emitter
        .clone()
        .to("e")
        .except(c2.sid.clone())
        .emit("news", &args)
        .await
        .unwrap();
    emitter.clone().to("e").emit("all", &args).await.unwrap();
    let event = |r: Option<Received>| match r {
        Some(Received::Event { name, args, .. }) => (name, args[0].clone()),
        other => panic!("expected an event, got {other:?}"),
    };
    assert_eq!(
        event(c1.next(WAIT).await),
        ("news".to_owned(), json!({"n": 1}))
    );
    assert_eq!(
        event(c1.next(WAIT).await),
        ("all".to_owned(), json!({"n": 1}))
    );
    assert_eq!(
        event(c2.next(WAIT).await),
        ("all".to_owned(), json!({"n": 1})),
        "c2 was excluded from the first"
    );
    emitter
        .clone()
        .to(c2.sid.clone())
        .disconnect_sockets(false)
        .await
        .unwrap();
    assert!(
        matches!(
            c2.next(WAIT).await,
            Some(Received::Disconnect | Received::Closed)
        ),
        "the emitter's disconnect reached c2"
    );
}
