//! Three sockeye nodes and one Node `socket.io` node with `@socket.io/redis-adapter` form one
//! cluster through the shared Redis; official `socket.io-client` clients on each node.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Peer, SHARED_URL, config, count, events, node, redis_available, unique_key};
use serde_json::json;
use sockeye::{Args, SocketId};
use sockeye_redis::{Emitter, RedisConfig};

const CLIENTS: [&str; 5] = ["a1", "a2", "b", "c", "n"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_cluster_broadcasts_rooms_fetch_acks_and_emitters() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let key = unique_key("mixed");
    let a = node(config(SHARED_URL, &key), "a").await;
    let b = node(config(SHARED_URL, &key), "b").await;
    let c = node(config(SHARED_URL, &key), "c").await;
    let mut peer = Peer::start(SHARED_URL, &key, true).await;
    let reply = peer
        .call(json!({"op": "clients", "urls": [
            {"name": "a1", "port": a.addr.port()}, {"name": "a2", "port": a.addr.port()},
            {"name": "b", "port": b.addr.port()}, {"name": "c", "port": c.addr.port()},
            {"name": "n", "port": peer.port},
        ]}))
        .await;
    let id = |name: &str| reply["ids"][name].as_str().unwrap().to_owned();
    assert_eq!(
        a.redis.server_count("/").await.unwrap(),
        4,
        "3 sockeye nodes + 1 Node node"
    );

    // Rooms: red = a1, c, n; blue = b.
    for (name, room) in [("a1", "red"), ("c", "red"), ("n", "red"), ("b", "blue")] {
        let r = peer
            .call(json!({"op": "client_join", "name": name, "room": room}))
            .await;
        assert_eq!(r["ack"], json!("ok"));
    }

    // A broadcast from every node reaches every client exactly once.
    a.io.emit("from-a", &1).await.unwrap();
    b.io.emit("from-b", &2).await.unwrap();
    peer.call(json!({"op": "node_emit", "event": "from-n", "data": 3}))
        .await;
    // Rooms and except across nodes.
    c.io.to("red")
        .except(id("a1"))
        .emit("red-but-a1", &4)
        .await
        .unwrap();
    peer.call(json!({"op": "node_emit", "event": "red-or-blue", "data": 5, "rooms": ["red", "blue"], "except": [id("c")]}))
        .await;
    // Local stays local.
    b.io.of("/")
        .unwrap()
        .local()
        .emit("local-b", &6)
        .await
        .unwrap();
    // The official emitter and ours, with binary.
    peer.call(json!({"op": "emitter_emit", "event": "js-emitter", "data": 7, "rooms": ["red"], "binary": [1, 2, 3]}))
        .await;
    let emitter = Emitter::connect(RedisConfig::new(SHARED_URL).key(&key))
        .await
        .unwrap();
    emitter.to(["blue"]).emit("rs-emitter", &8).await.unwrap();

    let expected: Vec<(&str, BTreeSet<&str>)> = [
        (
            "a1",
            &["from-a", "from-b", "from-n", "red-or-blue", "js-emitter"][..],
        ),
        ("a2", &["from-a", "from-b", "from-n"][..]),
        (
            "b",
            &[
                "from-a",
                "from-b",
                "from-n",
                "red-or-blue",
                "local-b",
                "rs-emitter",
            ][..],
        ),
        (
            "c",
            &["from-a", "from-b", "from-n", "red-but-a1", "js-emitter"][..],
        ),
        (
            "n",
            &[
                "from-a",
                "from-b",
                "from-n",
                "red-but-a1",
                "red-or-blue",
                "js-emitter",
            ][..],
        ),
    ]
    .into_iter()
    .map(|(n, evs)| (n, evs.iter().copied().collect()))
    .collect();
    // Barrier: one marker from each origin after everything else; Redis keeps each
    // publisher's order, so once the markers are in, any duplicate would be too.
    for origin in [&a, &b, &c] {
        origin.io.emit("end", &origin.name).await.unwrap();
    }
    peer.call(json!({"op": "node_emit", "event": "end", "data": "n"}))
        .await;
    let got = peer
        .wait_for("every event and 4 end markers", |r| {
            CLIENTS.iter().all(|c| count(r, c, "end") == 4)
                && expected
                    .iter()
                    .all(|(n, set)| set.iter().all(|e| count(r, n, e) >= 1))
        })
        .await;
    for (name, set) in &expected {
        let evs = events(&got, name);
        let names: Vec<&str> = evs
            .iter()
            .map(|(e, _)| e.as_str())
            .filter(|e| *e != "end")
            .collect();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(
            names.len(),
            unique.len(),
            "{name} got a duplicate: {names:?}"
        );
        assert_eq!(&unique, set, "{name} got the wrong events");
    }
    let js_bin = events(&got, "c")
        .into_iter()
        .find(|(e, _)| e == "js-emitter")
        .unwrap();
    assert_eq!(js_bin.1, json!(7));
    let raw = &got["c"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e[0] == "js-emitter")
        .unwrap()[2];
    assert_eq!(
        raw,
        &json!({"bin": [1, 2, 3]}),
        "binary from the JS emitter arrives as binary"
    );

    // fetch_sockets sees every socket of every node, with rooms and handshake.
    let all = b.io.of("/").unwrap().fetch_sockets().await.unwrap();
    let ids: BTreeSet<String> = all.iter().map(|s| s.id.to_string()).collect();
    let want: BTreeSet<String> = CLIENTS.iter().map(|n| id(n)).collect();
    assert_eq!(ids, want);
    let n_info = all.iter().find(|s| s.id.as_str() == id("n")).unwrap();
    assert!(!n_info.local && n_info.rooms.contains(&"red".to_owned()));
    assert_eq!(
        n_info.handshake.as_ref().unwrap()["query"]["name"],
        json!("n")
    );
    let reds = a.io.to("red").fetch_sockets().await.unwrap();
    let red_ids: BTreeSet<String> = reds.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(red_ids, [id("a1"), id("c"), id("n")].into_iter().collect());
    // ... and the Node node sees the sockeye sockets, with their handshake.
    let from_node = peer.call(json!({"op": "node_fetch"})).await;
    let node_ids: BTreeSet<String> = from_node["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(node_ids, want);
    let b_seen = from_node["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == json!(id("b")))
        .unwrap();
    assert_eq!(
        b_seen["rooms"].as_array().unwrap().len(),
        2,
        "own room and blue: {b_seen}"
    );
    assert_eq!(b_seen["handshake"]["query"]["name"], json!("b"));

    // Broadcast acks are collected from every node.
    let stream =
        a.io.of("/")
            .unwrap()
            .timeout(Duration::from_secs(5))
            .emit_with_ack("ask", &())
            .await
            .unwrap();
    assert_eq!(stream.expected(), 5);
    let mut answers: Vec<String> = stream
        .collect_all()
        .await
        .into_iter()
        .map(|(_, r)| r.expect("every client answers").first::<String>().unwrap())
        .collect();
    answers.sort();
    assert_eq!(answers, ["a1", "a2", "b", "c", "n"]);
    let from_node = peer
        .call(json!({"op": "node_ack", "event": "ask", "timeout": 5000}))
        .await;
    let mut node_answers: Vec<String> = from_node["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    node_answers.sort();
    assert_eq!(node_answers, ["a1", "a2", "b", "c", "n"]);

    // Server-side emit with acks, both ways.
    let stream = a
        .redis
        .server_side_emit_with_ack(
            "/",
            "ping-servers",
            Args::from_value(&1).unwrap(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let mut servers: Vec<String> = stream
        .collect_all()
        .await
        .into_iter()
        .map(|(_, r)| r.unwrap().first::<String>().unwrap())
        .collect();
    servers.sort();
    assert_eq!(servers, ["b", "c", "node"]);
    let from_node = peer
        .call(json!({"op": "node_sse_ack", "event": "ping-servers", "data": 1, "timeout": 5000}))
        .await;
    let mut servers: Vec<String> = from_node["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    servers.sort();
    assert_eq!(servers, ["a", "b", "c"], "{from_node}");

    // socketsJoin / socketsLeave / disconnect across nodes.
    peer.call(json!({"op": "clear"})).await;
    // Remote room changes are applied when the request arrives, and requests from different
    // nodes are not ordered with each other: wait for each step through fetch.
    async fn rooms_reach(node: &common::Node, room: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + common::WAIT;
        loop {
            let got = node.io.to(room).fetch_sockets().await.unwrap().len();
            if got == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{room}: {got} sockets, want {n}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    b.io.of("/").unwrap().join("green").await.unwrap(); // everyone
    rooms_reach(&a, "green", 5).await;
    c.io.of("/")
        .unwrap()
        .to(id("a1"))
        .leave("green")
        .await
        .unwrap();
    peer.call(json!({"op": "emitter_join", "rooms": ["blue"], "join": "violet"}))
        .await;
    rooms_reach(&a, "green", 4).await;
    rooms_reach(&a, "violet", 1).await;
    peer.call(json!({"op": "node_emit", "event": "green", "data": 1, "rooms": ["green"]}))
        .await;
    c.io.to("violet").emit("violet", &1).await.unwrap();
    let got = peer
        .wait_for("green and violet", |r| {
            ["a2", "b", "c", "n"]
                .iter()
                .all(|n| count(r, n, "green") == 1)
                && count(r, "b", "violet") == 1
        })
        .await;
    assert_eq!(count(&got, "a1", "green"), 0, "a1 left green");
    // Disconnects, by a sockeye node and by the official emitter.
    b.io.of("/")
        .unwrap()
        .to(SocketId::from(id("c")))
        .disconnect()
        .await
        .unwrap();
    peer.call(json!({"op": "emitter_disconnect", "rooms": [id("n")]}))
        .await;
    let got = peer
        .wait_for("two disconnects", |r| {
            count(r, "c", "__disconnect") == 1 && count(r, "n", "__disconnect") == 1
        })
        .await;
    assert_eq!(
        events(&got, "c").last().unwrap().1,
        json!("io server disconnect")
    );

    peer.stop().await;
}
