//! kill -9 recovery on a mixed cluster, 20 times in a row: each time a sockeye node process
//! is killed (SIGKILL: it persists nothing on the way out) while its official
//! `socket.io-client` is connected; the client reconnects to the official Node server running
//! `@socket.io/redis-streams-adapter` 0.3.1 (tests/redis/streams-peer.js), which restores the
//! session that the sockeye node kept stored while it was alive (`live_sessions`): same socket
//! id, rooms and session value (`socket.data` on the Node side), `recovered` on both sides, and
//! the broadcasts sent while it was away replayed once, in order, before the later ones.
//! The official adapter alone cannot do this: it stores a session only when its server sees
//! the disconnect.

use std::time::Duration;

use serde_json::{Value, json};
use sockeye::{RecoveryConfig, SocketIo, SocketRef};
use sockeye_redis::streams::StreamsAdapterFactory;

use crate::common::{self, Peer, SHARED_URL, WAIT, events, redis_available};
use crate::streams_contract::{config, unique};
use crate::streams_kill::{items, map_get, spawn_node, stored_session};

const RUNS: usize = 20;
/// Items broadcast to the client's room before the kill, while it is away, and after.
const BEFORE: i64 = 3;
const MISSED: i64 = 3;
const AFTER: i64 = 2;

/// Waits until the live copy of `pid`'s session holds socket `id`, `room` and `tag`.
async fn live_copy_stored(prefix: &str, pid: &str, id: &str, room: &str, tag: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(s) = stored_session(prefix, pid).await {
            let rooms: Vec<&str> = map_get(&s, "rooms")
                .and_then(|r| r.as_array())
                .map(|r| r.iter().filter_map(rmpv::Value::as_str).collect())
                .unwrap_or_default();
            let stored_tag = map_get(&s, "data")
                .and_then(|d| map_get(d, "tag"))
                .and_then(rmpv::Value::as_str);
            if map_get(&s, "sid").and_then(rmpv::Value::as_str) == Some(id)
                && rooms.contains(&room)
                && stored_tag == Some(tag)
            {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the live session of {id} was never stored"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_recovered_by_the_node_server_20_times() {
    kills_then_recoveries(Target::NodeServer).await;
}

/// The same with a sockeye node (a process) as the one the clients reconnect to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_recovered_by_a_sockeye_node_20_times() {
    kills_then_recoveries(Target::Sockeye).await;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The official Node server of tests/redis/streams-peer.js.
    NodeServer,
    /// A sockeye node process (`streams_kill::node_process`).
    Sockeye,
}

async fn kills_then_recoveries(target: Target) {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let started = tokio::time::Instant::now();
    let prefix = unique("streams-kill-mixed");
    // The publisher: a sockeye node in this process that stays up.
    let adapter = StreamsAdapterFactory::connect(config(&prefix))
        .await
        .unwrap();
    let io = SocketIo::builder()
        .adapter(adapter.clone())
        .connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(30),
            ..RecoveryConfig::default()
        })
        .build();
    io.ns("/", |_s: SocketRef| async {});
    assert!(adapter.ready(WAIT).await);
    let _served = common::serve(&io).await;
    let mut peer = Peer::start_script(
        "streams-peer.js",
        "@socket.io/redis-streams-adapter",
        &[SHARED_URL, &prefix],
    )
    .await;
    // The node every killed node's client reconnects to.
    let survivor = match target {
        Target::NodeServer => None,
        Target::Sockeye => Some(spawn_node(&prefix).await),
    };
    let target_port = survivor.as_ref().map_or(peer.port, |n| n.port);
    let publish = |room: String, from: i64, to: i64| {
        let io = io.clone();
        async move {
            for i in from..to {
                io.to(room.as_str()).emit("item", &i).await.unwrap();
            }
        }
    };
    let call = |name: &str, event: &str, args: Value| json!({"op": "client_call", "name": name, "event": event, "args": args});

    let (mut sent, mut missed, mut replayed, mut twice, mut recovered) = (0, 0, 0, 0, 0);
    let mut failures: Vec<String> = Vec::new();
    let mut next = tokio::spawn({
        let prefix = prefix.clone();
        async move { spawn_node(&prefix).await }
    });
    for run in 0..RUNS {
        let mut a = next.await.unwrap();
        // The next run's node starts while this one runs.
        next = tokio::spawn({
            let prefix = prefix.clone();
            async move { spawn_node(&prefix).await }
        });
        let (name, room, tag) = (format!("c{run}"), format!("r{run}"), format!("t{run}"));
        let reply = peer
            .call(json!({"op": "clients", "urls": [{"name": name, "port": a.port}]}))
            .await;
        let id = reply["ids"][&name].as_str().unwrap().to_owned();
        assert_eq!(
            peer.call(call(&name, "join", json!([room]))).await["reply"],
            json!("ok")
        );
        assert_eq!(
            peer.call(call(&name, "tag", json!([tag]))).await["reply"],
            json!("ok")
        );
        publish(room.clone(), 0, BEFORE).await;
        peer.wait_for("the items before the kill", |r| {
            items(r, &name).len() == usize::try_from(BEFORE).unwrap()
        })
        .await;
        let state = peer.call(json!({"op": "client_state", "name": name})).await;
        let pid = state["pid"].as_str().unwrap().to_owned();
        live_copy_stored(&prefix, &pid, &id, &room, &tag).await;

        // kill -9 while the client is connected.
        a.child.start_kill().unwrap();
        let _ = a.child.wait().await;
        peer.wait_for("the client to see its node die", |r| {
            events(r, &name).iter().any(|(e, _)| e == "__disconnect")
        })
        .await;
        publish(room.clone(), BEFORE, BEFORE + MISSED).await;
        peer.call(json!({"op": "client_retarget", "name": name, "port": target_port}))
            .await;
        let back = peer
            .call(json!({"op": "client_reconnect", "name": name}))
            .await;
        let me = peer.call(call(&name, "whoami", json!([]))).await["reply"].take();
        let after_reconnect = items(&peer.received().await, &name).len();
        publish(room.clone(), BEFORE + MISSED, BEFORE + MISSED + AFTER).await;
        let total = BEFORE + MISSED + AFTER;
        let got = peer
            .wait_for("the items after the reconnect", |r| {
                items(r, &name).contains(&(total - 1))
            })
            .await;
        let _ = got;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let list = items(&peer.received().await, &name);

        let mut rooms: Vec<String> =
            serde_json::from_value(me["rooms"].clone()).unwrap_or_default();
        rooms.sort();
        let mut want_rooms = vec![id.clone(), room.clone()];
        want_rooms.sort();
        let ok_session = back["recovered"] == json!(true)
            && back["id"] == json!(id)
            && me["recovered"] == json!(true)
            && me["id"] == json!(id)
            && rooms == want_rooms
            // The session value: `socket.data` on Node, the saved session on sockeye.
            && me[if target == Target::NodeServer { "data" } else { "session" }] == json!({"tag": tag});
        if ok_session {
            recovered += 1;
        } else {
            failures.push(format!("run {run}: not recovered as it was: {back} {me}"));
        }
        let want: Vec<i64> = (0..total).collect();
        let unique: std::collections::BTreeSet<i64> = list.iter().copied().collect();
        sent += total;
        missed += want.iter().filter(|i| !unique.contains(i)).count();
        twice += list.len() - unique.len();
        // The ones sent while away that arrived before the later ones: the replay.
        replayed += list
            .iter()
            .skip(usize::try_from(BEFORE).unwrap())
            .take(after_reconnect.saturating_sub(usize::try_from(BEFORE).unwrap()))
            .filter(|i| (BEFORE..BEFORE + MISSED).contains(*i))
            .count();
        if list != want {
            failures.push(format!("run {run}: items {list:?}, want {want:?}"));
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "kill -9, recovered by {target:?}: {RUNS} runs in {elapsed:?}: recovered {recovered}, sent {sent}, missed \
         {missed}, replayed {replayed} (of {}), delivered twice {twice}",
        i64::try_from(RUNS).unwrap() * MISSED
    );
    let runs = i64::try_from(RUNS).unwrap();
    assert_eq!(
        (recovered, sent, missed, replayed, twice),
        (
            RUNS,
            runs * (BEFORE + MISSED + AFTER),
            0,
            usize::try_from(runs * MISSED).unwrap(),
            0
        ),
        "(recovered, sent, missed, replayed, delivered twice) over {RUNS} kills: {failures:#?}"
    );
    drop(next.await);
    drop(survivor);
    peer.call(json!({"op": "close_clients"})).await;
    peer.stop().await;
}
