//! A sockeye node and a Node `socket.io` node with `@socket.io/postgres-adapter` 0.5 form one
//! cluster through the shared PostgreSQL; official `socket.io-client` clients on each node.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use sockeye::{Args, SocketId};

use crate::common::{self, Peer, count, entry, events};

const CLIENTS: [&str; 3] = ["a1", "a2", "n"];

/// Waits until the Node node and the sockeye node count each other.
async fn counted(a: &common::Node, peer: &mut Peer) {
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let node = peer.call(json!({"op": "node_count"})).await["count"].clone();
        let ours = a.pg.server_count("/");
        if node == json!(2) && ours == Some(2) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "server counts: Node {node}, sockeye {ours:?}; want 2 and 2"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_cluster_with_the_node_adapter() {
    let prefix = common::prefix();
    let a = common::node(common::config(&prefix), "a").await;
    let mut peer = Peer::start(&prefix, true).await;
    counted(&a, &mut peer).await;
    assert_eq!(a.io.server_count("/").await.unwrap(), 2);
    let reply = peer
        .call(json!({"op": "clients", "urls": [
            {"name": "a1", "port": a.addr.port()}, {"name": "a2", "port": a.addr.port()},
            {"name": "n", "port": peer.port},
        ]}))
        .await;
    let id = |name: &str| reply["ids"][name].as_str().unwrap().to_owned();
    for (name, room) in [("a1", "red"), ("n", "red"), ("a2", "blue")] {
        let r = peer
            .call(json!({"op": "client_join", "name": name, "room": room}))
            .await;
        assert_eq!(r["ack"], json!("ok"));
    }

    // Broadcasts both ways, rooms and except, binary and large payloads (attachments table).
    a.io.emit("from-a", &1).await.unwrap();
    peer.call(json!({"op": "node_emit", "event": "from-n", "data": 2}))
        .await;
    a.io.to("red")
        .except(id("a1"))
        .emit("red-but-a1", &3)
        .await
        .unwrap();
    peer.call(json!({"op": "node_emit", "event": "red-or-blue", "data": 4, "rooms": ["red", "blue"], "except": [id("a2")]}))
        .await;
    let mut bin = Args::builder();
    bin.push(&5)
        .unwrap()
        .push_binary(bytes::Bytes::from_static(&[1, 2, 3]));
    a.io.of("/")
        .unwrap()
        .emit_args("bin-a", bin.build())
        .await
        .unwrap();
    peer.call(json!({"op": "node_emit", "event": "bin-n", "data": 6, "binary": [4, 5, 6]}))
        .await;
    let big = "y".repeat(20_000);
    a.io.to("red").emit("big-a", &big).await.unwrap();
    peer.call(json!({"op": "node_emit", "event": "big-n", "data": 7, "big": 30000}))
        .await;
    a.io.of("/")
        .unwrap()
        .local()
        .emit("local-a", &8)
        .await
        .unwrap();
    let written = a.pg.stats().attachments_written;
    assert!(
        written >= 2,
        "the binary and the large broadcast went through the table: {written}"
    );

    let expected: Vec<(&str, BTreeSet<&str>)> = [
        (
            "a1",
            &[
                "from-a",
                "from-n",
                "red-or-blue",
                "bin-a",
                "bin-n",
                "big-a",
                "big-n",
                "local-a",
            ][..],
        ),
        (
            "a2",
            &["from-a", "from-n", "bin-a", "bin-n", "big-n", "local-a"][..],
        ),
        (
            "n",
            &[
                "from-a",
                "from-n",
                "red-but-a1",
                "red-or-blue",
                "bin-a",
                "bin-n",
                "big-a",
                "big-n",
            ][..],
        ),
    ]
    .into_iter()
    .map(|(n, evs)| (n, evs.iter().copied().collect()))
    .collect();
    // The Node adapter does not keep its node's messages in order (a pool of connections,
    // and two round trips for an attachment), so no marker can act as a barrier: wait for
    // every expected event and both end markers, then a little more for any duplicate.
    a.io.emit("end", &"a").await.unwrap();
    peer.call(json!({"op": "node_emit", "event": "end", "data": "n"}))
        .await;
    peer.wait_for("every event and 2 end markers", |r| {
        CLIENTS.iter().all(|c| count(r, c, "end") == 2)
            && expected
                .iter()
                .all(|(n, set)| set.iter().all(|e| count(r, n, e) >= 1))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = peer.received().await;
    for (name, set) in &expected {
        let names: Vec<String> = events(&got, name)
            .into_iter()
            .map(|(e, _)| e)
            .filter(|e| e != "end")
            .collect();
        let unique: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            names.len(),
            unique.len(),
            "{name} got a duplicate: {names:?}"
        );
        assert_eq!(&unique, set, "{name} got the wrong events");
    }
    assert_eq!(
        entry(&got, "n", "bin-a").unwrap(),
        json!(["bin-a", 5, {"bin": [1, 2, 3]}]),
        "binary from sockeye arrives as binary on the Node node's client"
    );
    assert_eq!(
        entry(&got, "a1", "bin-n").unwrap(),
        json!(["bin-n", 6, {"bin": [4, 5, 6]}]),
        "binary from Node arrives as binary on sockeye's client"
    );
    assert_eq!(
        entry(&got, "n", "big-a").unwrap(),
        json!(["big-a", {"len": 20_000, "head": "yyyyyyyy"}])
    );
    assert_eq!(
        entry(&got, "a1", "big-n").unwrap(),
        json!(["big-n", 7, {"len": 30_000, "head": "xxxxxxxx"}])
    );

    // fetch_sockets both ways, with rooms and handshake.
    let all = a.io.of("/").unwrap().fetch_sockets().await.unwrap();
    let ids: BTreeSet<String> = all.iter().map(|s| s.id.to_string()).collect();
    let want: BTreeSet<String> = CLIENTS.iter().map(|n| id(n)).collect();
    assert_eq!(ids, want);
    let n_info = all.iter().find(|s| s.id.as_str() == id("n")).unwrap();
    assert!(!n_info.local);
    assert_eq!(
        n_info.rooms.iter().cloned().collect::<BTreeSet<_>>(),
        [id("n"), "red".to_owned()].into_iter().collect()
    );
    assert_eq!(
        n_info.handshake.as_ref().unwrap()["query"]["name"],
        json!("n")
    );
    let from_node = peer.call(json!({"op": "node_fetch"})).await;
    let node_ids: BTreeSet<String> = from_node["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(node_ids, want);
    let a2_seen = from_node["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == json!(id("a2")))
        .unwrap();
    assert_eq!(
        a2_seen["rooms"].as_array().unwrap().len(),
        2,
        "own room and blue: {a2_seen}"
    );
    assert_eq!(a2_seen["handshake"]["query"]["name"], json!("a2"));

    // Broadcast acks collected from both nodes, both ways.
    let stream =
        a.io.of("/")
            .unwrap()
            .timeout(Duration::from_secs(5))
            .emit_with_ack("ask", &())
            .await
            .unwrap();
    assert_eq!(stream.expected(), 3);
    let mut answers: Vec<String> = stream
        .collect_all()
        .await
        .into_iter()
        .map(|(_, r)| r.expect("every client answers").first::<String>().unwrap())
        .collect();
    answers.sort();
    assert_eq!(answers, CLIENTS);
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
    assert_eq!(node_answers, CLIENTS);

    // Server-side emits with acks, both ways.
    let stream =
        a.io.server_side_emit_with_ack("/", "ping-servers", &1, Duration::from_secs(5))
            .await
            .unwrap();
    let servers: Vec<String> = stream
        .collect_all()
        .await
        .into_iter()
        .map(|(_, r)| r.unwrap().first::<String>().unwrap())
        .collect();
    assert_eq!(servers, ["node"]);
    let from_node = peer
        .call(json!({"op": "node_sse_ack", "event": "ping-servers", "data": 1}))
        .await;
    assert_eq!(from_node["responses"], json!(["a"]), "{from_node}");

    // Remote join / leave / disconnect, both ways.
    async fn room_size(a: &common::Node, room: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + common::WAIT;
        loop {
            let got = a.io.to(room).fetch_sockets().await.unwrap().len();
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
    a.io.to("red").join("green").await.unwrap();
    room_size(&a, "green", 2).await;
    let in_green = peer
        .call(json!({"op": "node_fetch", "rooms": ["green"]}))
        .await;
    assert_eq!(in_green["sockets"].as_array().unwrap().len(), 2);
    peer.call(json!({"op": "node_join", "rooms": ["blue"], "join": "violet"}))
        .await;
    room_size(&a, "violet", 1).await;
    peer.call(json!({"op": "node_leave", "rooms": ["green"], "leave": "green"}))
        .await;
    room_size(&a, "green", 0).await;
    a.io.to("violet").leave("violet").await.unwrap();
    room_size(&a, "violet", 0).await;
    peer.call(json!({"op": "clear"})).await;
    a.io.to(SocketId::from(id("n"))).disconnect().await.unwrap();
    peer.call(json!({"op": "node_disconnect", "rooms": [id("a2")]}))
        .await;
    let got = peer
        .wait_for("two disconnects", |r| {
            count(r, "n", "__disconnect") == 1 && count(r, "a2", "__disconnect") == 1
        })
        .await;
    assert_eq!(
        events(&got, "n").last().unwrap().1,
        json!("io server disconnect")
    );
    assert_eq!(count(&got, "a1", "__disconnect"), 0);
    let left: Vec<String> =
        a.io.of("/")
            .unwrap()
            .fetch_sockets()
            .await
            .unwrap()
            .iter()
            .map(|s| s.id.to_string())
            .collect();
    assert_eq!(left, vec![id("a1")]);

    // The Node node leaves: its ADAPTER_CLOSE (or its silence) takes it out of the count.
    peer.stop().await;
    common::until(common::WAIT, "the Node node is no longer counted", || {
        a.pg.server_count("/") == Some(1)
    })
    .await;
    let stats = a.pg.stats();
    assert_eq!(
        (stats.malformed, stats.oversized, stats.bad_attachments),
        (0, 0, 0),
        "{stats:?}"
    );
    let _ = Value::Null;
}
