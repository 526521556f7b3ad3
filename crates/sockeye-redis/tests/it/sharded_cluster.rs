//! A mixed sharded cluster: two sockeye nodes and the official Node server with
//! `createShardedAdapter` of `@socket.io/redis-adapter` 8.3 (tests/redis/sharded-peer.js) on a
//! 3-master Redis Cluster the test starts, driven by the official `socket.io-client`, in each
//! subscription mode: broadcasts from every node (rooms, except, one socket, binary), the room
//! channels each mode subscribes, fetch, server count, broadcast acks and server-side acks
//! both ways, remote join/leave/disconnect both ways, and malformed messages dropped and
//! counted.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use sockeye::{Event, SocketId, SocketIo, SocketRef};
use sockeye_redis::sharded::{ShardedAdapterFactory, SubscriptionMode};
use sockeye_testkit::redis_cluster::{RedisCluster, redis_cluster_or_skip};

use crate::common::{self, Peer, WAIT, count, events};

struct Node {
    io: SocketIo,
    adapter: ShardedAdapterFactory,
    addr: std::net::SocketAddr,
}

async fn node(
    cluster: &RedisCluster,
    prefix: &str,
    mode: SubscriptionMode,
    name: &'static str,
) -> Node {
    let config = crate::sharded_contract::config(cluster)
        .subscription_mode(mode)
        .prefix(prefix);
    let adapter = ShardedAdapterFactory::connect(config).await.unwrap();
    let io = SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
        .adapter(adapter.clone())
        .build();
    io.ns("/", |_s: SocketRef| async {})
        .on("join", |s: SocketRef, e: Event| async move {
            let room: String = e.args.first().unwrap_or_default();
            s.join(room);
            json!("ok")
        });
    io.on_server_event("/", move |ev| {
        if ev.event == "ping-servers"
            && let Some(ack) = ev.ack
        {
            let _ = ack.send(name);
        }
    })
    .unwrap();
    assert!(adapter.ready(WAIT).await, "{name}: subscriptions not ready");
    let addr = common::serve(&io).await;
    Node { io, adapter, addr }
}

/// A cluster connection of the test itself, to look at subscriptions and publish garbage.
async fn admin(cluster: &RedisCluster) -> redis::cluster_async::ClusterConnection {
    redis::cluster::ClusterClient::new(cluster.urls())
        .unwrap()
        .get_async_connection()
        .await
        .unwrap()
}

/// Subscribers of a sharded channel over the whole cluster.
async fn shard_subscribers(
    conn: &mut redis::cluster_async::ClusterConnection,
    channel: &str,
) -> i64 {
    let reply: redis::Value = redis::cmd("PUBSUB")
        .arg("SHARDNUMSUB")
        .arg(channel)
        .query_async(conn)
        .await
        .unwrap();
    match reply {
        redis::Value::Map(entries) => entries
            .iter()
            .map(|(_, v)| match v {
                redis::Value::Int(n) => *n,
                _ => 0,
            })
            .sum(),
        redis::Value::Array(items) => match items.get(1) {
            Some(redis::Value::Int(n)) => *n,
            _ => 0,
        },
        other => panic!("unexpected SHARDNUMSUB reply {other:?}"),
    }
}

async fn wait_subscribers(
    conn: &mut redis::cluster_async::ClusterConnection,
    channel: &str,
    want: i64,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = shard_subscribers(conn, channel).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{channel}: {got} subscribers, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn rooms_reach(io: &SocketIo, room: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = io.to(room).fetch_sockets().await.unwrap().len();
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

fn sorted_strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

async fn mixed(mode: SubscriptionMode) {
    let Some(cluster) = tokio::task::spawn_blocking(|| redis_cluster_or_skip(3))
        .await
        .unwrap()
    else {
        return;
    };
    let prefix = common::unique_key(&format!("sharded-{mode}"));
    let a = node(&cluster, &prefix, mode, "a").await;
    let b = node(&cluster, &prefix, mode, "b").await;
    let mut peer = Peer::start_script(
        "sharded-peer.js",
        "@socket.io/redis-adapter",
        &[&cluster.urls().join(","), &prefix, mode.as_str()],
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
    let mut admin = admin(&cluster).await;

    // Server count: PUBSUB SHARDNUMSUB of the namespace channel, the same on both sides.
    let ns_channel = format!("{prefix}#/#");
    wait_subscribers(&mut admin, &ns_channel, 3).await;
    assert_eq!(a.io.server_count("/").await.unwrap(), 3);
    assert_eq!(b.io.server_count("/").await.unwrap(), 3);
    assert_eq!(
        peer.call(json!({"op": "node_count"})).await["count"],
        json!(3)
    );

    // Rooms: red = a1, n1; blue = b1. The room channels each mode subscribes: none in
    // static, public rooms in dynamic, and every socket's own room too in dynamic-private.
    for (name, room) in [("a1", "red"), ("n1", "red"), ("b1", "blue")] {
        let r = peer
            .call(json!({"op": "client_join", "name": name, "room": room}))
            .await;
        assert_eq!(r["ack"], json!("ok"));
    }
    let red = if mode == SubscriptionMode::Static {
        0
    } else {
        2
    };
    wait_subscribers(&mut admin, &format!("{prefix}#/#red#"), red).await;
    wait_subscribers(&mut admin, &format!("{prefix}#/#blue#"), red / 2).await;
    // Own-id rooms: sockeye's socket ids have 22 characters, so in `dynamic` the Node node
    // sends to one of them on its own channel, which sockeye's nodes subscribe; Node's ids
    // have 20 and stay on the namespace channel except in `dynamic-private`.
    let (sockeye_own, node_own) = match mode {
        SubscriptionMode::Static => (0, 0),
        SubscriptionMode::Dynamic => (1, 0),
        _ => (1, 1),
    };
    for (name, own) in [("a1", sockeye_own), ("b1", sockeye_own), ("n1", node_own)] {
        wait_subscribers(&mut admin, &format!("{prefix}#/#{}#", id(name)), own).await;
    }
    assert!(a.adapter.ready(WAIT).await && b.adapter.ready(WAIT).await);

    // Broadcasts from every node, each reaching the right clients exactly once.
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
    a.io.to(id("n1")).emit("to-n1", &6).await.unwrap();
    peer.call(json!({"op": "node_emit", "event": "to-b1", "data": 7, "rooms": [id("b1")]}))
        .await;
    peer.call(json!({"op": "node_emit", "event": "bin-red", "data": 8, "rooms": ["red"], "binary": [1, 2, 3]}))
        .await;
    b.io.to("red")
        .emit("bin-red-rs", &bytes::Bytes::from_static(&[4, 5]))
        .await
        .unwrap();
    for origin in [&a, &b] {
        origin.io.emit("end", &0).await.unwrap();
    }
    peer.call(json!({"op": "node_emit", "event": "end", "data": 0}))
        .await;
    let expected: Vec<(&str, BTreeSet<&str>)> = vec![
        (
            "a1",
            [
                "from-a",
                "from-b",
                "from-n",
                "rb-not-n1",
                "bin-red",
                "bin-red-rs",
            ]
            .into(),
        ),
        (
            "b1",
            ["from-a", "from-b", "from-n", "rb-not-n1", "to-b1"].into(),
        ),
        (
            "n1",
            [
                "from-a",
                "from-b",
                "from-n",
                "red-not-a1",
                "to-n1",
                "bin-red",
                "bin-red-rs",
            ]
            .into(),
        ),
    ];
    let got = peer
        .wait_for("every event and 3 end markers", |r| {
            ["a1", "b1", "n1"].iter().all(|c| count(r, c, "end") == 3)
                && expected
                    .iter()
                    .all(|(n, set)| set.iter().all(|e| count(r, n, e) >= 1))
        })
        .await;
    // Let anything sent twice arrive before the check.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = {
        let again = peer.received().await;
        assert_eq!(events(&again, "a1").len(), events(&got, "a1").len());
        again
    };
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
    let raw = |client: &str, event: &str| -> Value {
        got[client]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e[0] == event)
            .unwrap()
            .clone()
    };
    assert_eq!(
        raw("a1", "bin-red"),
        json!(["bin-red", 8, {"bin": [1, 2, 3]}])
    );
    assert_eq!(
        raw("n1", "bin-red-rs"),
        json!(["bin-red-rs", {"bin": [4, 5]}])
    );

    // fetch_sockets both ways, with rooms and handshake.
    let all = b.io.of("/").unwrap().fetch_sockets().await.unwrap();
    let ids: BTreeSet<String> = all.iter().map(|s| s.id.to_string()).collect();
    let want: BTreeSet<String> = ["a1", "b1", "n1"].iter().map(|n| id(n)).collect();
    assert_eq!(ids, want);
    let n_info = all.iter().find(|s| s.id.as_str() == id("n1")).unwrap();
    assert!(!n_info.local);
    assert_eq!(
        n_info.rooms.iter().cloned().collect::<BTreeSet<_>>(),
        [id("n1"), "red".to_owned()].into_iter().collect()
    );
    assert_eq!(
        n_info.handshake.as_ref().unwrap()["query"]["name"],
        json!("n1")
    );
    let reds: BTreeSet<String> =
        a.io.to("red")
            .fetch_sockets()
            .await
            .unwrap()
            .iter()
            .map(|s| s.id.to_string())
            .collect();
    assert_eq!(reds, [id("a1"), id("n1")].into_iter().collect());
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
        .find(|s| s["id"] == json!(id("b1")))
        .unwrap();
    assert_eq!(sorted_strings(&b_seen["rooms"]), {
        let mut v = vec![id("b1"), "blue".to_owned()];
        v.sort();
        v
    });
    assert_eq!(b_seen["handshake"]["query"]["name"], json!("b1"));

    // Broadcast acks, both ways: every client answers its name.
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
    assert_eq!(answers, ["a1", "b1", "n1"]);
    let from_node = peer
        .call(json!({"op": "node_ack", "event": "ask", "timeout": 5000}))
        .await;
    assert_eq!(sorted_strings(&from_node["responses"]), ["a1", "b1", "n1"]);

    // Server-side emits with acks, both ways.
    let stream =
        a.io.server_side_emit_with_ack("/", "ping-servers", &1, Duration::from_secs(5))
            .await
            .unwrap();
    let mut servers: Vec<String> = stream
        .collect_all()
        .await
        .into_iter()
        .map(|(_, r)| r.unwrap().first::<String>().unwrap())
        .collect();
    servers.sort();
    assert_eq!(servers, ["b", "node"]);
    let from_node = peer
        .call(json!({"op": "node_sse_ack", "event": "ping-servers", "data": 1}))
        .await;
    assert_eq!(
        sorted_strings(&from_node["responses"]),
        ["a", "b"],
        "{from_node}"
    );

    // Remote join and leave, both ways, then a broadcast to the room.
    peer.call(json!({"op": "clear"})).await;
    b.io.of("/").unwrap().join("green").await.unwrap();
    rooms_reach(&a.io, "green", 3).await;
    peer.call(json!({"op": "node_leave", "rooms": [id("a1")], "leave": "green"}))
        .await;
    rooms_reach(&a.io, "green", 2).await;
    if mode != SubscriptionMode::Static {
        // a1 was the only member on node a: its node gave the room channel up.
        wait_subscribers(&mut admin, &format!("{prefix}#/#green#"), 2).await;
    }
    assert!(a.adapter.ready(WAIT).await && b.adapter.ready(WAIT).await);
    a.io.to("green").emit("green", &1).await.unwrap();
    peer.call(json!({"op": "node_emit", "event": "green", "data": 2, "rooms": ["green"]}))
        .await;
    let got = peer
        .wait_for("green twice on b1 and n1", |r| {
            count(r, "b1", "green") == 2 && count(r, "n1", "green") == 2
        })
        .await;
    assert_eq!(count(&got, "a1", "green"), 0, "a1 left green");

    // Malformed sharded messages are dropped and counted; the nodes keep working. On the
    // namespace channel only what the Node adapter survives (it throws on a well-formed
    // BROADCAST without opts, and its process dies); the rest on each sockeye node's response
    // channel, which the Node node does not hear.
    let before = (a.adapter.stats().malformed, b.adapter.stats().malformed);
    let on_namespace: [&[u8]; 3] = [
        b"{not json",
        &[0xc1, 0xff, 0x00],
        br#"{"uid":"x","nsp":"/","type":99}"#,
    ];
    let on_response: [&[u8]; 2] = [
        br#"{"uid":"x","nsp":"/","type":3,"data":{"packet":7}}"#,
        br#"{"uid":"x","nsp":"/","type":8,"data":{"sockets":[]}}"#,
    ];
    let mut sends: Vec<(String, &[u8])> = on_namespace
        .iter()
        .map(|p| (ns_channel.clone(), *p))
        .collect();
    for node in [&a, &b] {
        let channel = format!("{ns_channel}{}#", node.adapter.uid());
        sends.extend(on_response.iter().map(|p| (channel.clone(), *p)));
    }
    for (channel, payload) in sends {
        let _: redis::Value = redis::cmd("SPUBLISH")
            .arg(&channel)
            .arg(payload)
            .query_async(&mut admin)
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = (a.adapter.stats().malformed, b.adapter.stats().malformed);
        if now.0 - before.0 == 5 && now.1 - before.1 == 5 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "malformed counters moved from {before:?} to {now:?}, want +5 each"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Disconnects, both ways.
    a.io.of("/")
        .unwrap()
        .to(SocketId::from(id("n1")))
        .disconnect()
        .await
        .unwrap();
    peer.call(json!({"op": "node_disconnect", "rooms": [id("b1")]}))
        .await;
    let got = peer
        .wait_for("two disconnects", |r| {
            count(r, "n1", "__disconnect") == 1 && count(r, "b1", "__disconnect") == 1
        })
        .await;
    assert_eq!(
        events(&got, "n1").last().unwrap().1,
        json!("io server disconnect")
    );
    assert_eq!(
        events(&got, "b1").last().unwrap().1,
        json!("io server disconnect")
    );
    assert_eq!(count(&got, "a1", "__disconnect"), 0);
    assert_eq!(a.adapter.stats().receive_queue_full, 0);

    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_sharded_cluster_dynamic() {
    mixed(SubscriptionMode::Dynamic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_sharded_cluster_static() {
    mixed(SubscriptionMode::Static).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_sharded_cluster_dynamic_private() {
    mixed(SubscriptionMode::DynamicPrivate).await;
}

/// A Redis without cluster support is refused at connect, by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_redis_is_refused_by_name() {
    if !common::redis_available(common::SHARED_URL).await {
        return;
    }
    let config = sockeye_redis::sharded::ShardedConfig::new(sockeye_redis::RedisConfig::new(
        common::SHARED_URL,
    ));
    let err = ShardedAdapterFactory::connect(config).await.unwrap_err();
    assert!(
        matches!(err, sockeye_redis::RedisError::NotACluster { .. }),
        "{err}"
    );
}
