//! The official `@socket.io/postgres-emitter` 0.1 reaching the sockets of a sockeye node.
//!
//! Its messages name no namespace (only the channel does) and come from the uid `emitter`:
//! sockeye routes them by channel and never counts the emitter as a node.

use std::collections::BTreeSet;

use serde_json::json;

use crate::common::{self, Peer, WAIT, count, entry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_emitter_reaches_sockeye_sockets() {
    let prefix = common::prefix();
    let a = common::node(common::config(&prefix), "a").await;
    let mut peer = Peer::start(&prefix, false).await;
    let reply = peer
        .call(json!({"op": "clients", "urls": [
            {"name": "e1", "port": a.addr.port()}, {"name": "e2", "port": a.addr.port()},
        ]}))
        .await;
    let id = |name: &str| reply["ids"][name].as_str().unwrap().to_owned();
    let r = peer
        .call(json!({"op": "client_join", "name": "e1", "room": "red"}))
        .await;
    assert_eq!(r["ack"], json!("ok"));

    for cmd in [
        json!({"op": "emitter_emit", "event": "all", "data": 1}),
        json!({"op": "emitter_emit", "event": "red", "data": 2, "rooms": ["red"]}),
        json!({"op": "emitter_emit", "event": "not-red", "data": 3, "except": ["red"]}),
        json!({"op": "emitter_emit", "event": "bin", "data": 4, "rooms": ["red"], "binary": [9, 8, 7]}),
        json!({"op": "emitter_emit", "event": "big", "data": 5, "big": 20000}),
        json!({"op": "emitter_sse", "event": "hello-servers", "data": 6}),
        json!({"op": "emitter_emit", "event": "end", "data": 0}),
    ] {
        peer.call(cmd).await;
    }
    // The official emitter does not keep its messages in order (a pool of connections, and
    // two round trips for an attachment): wait for every one, then check each came once.
    let got = peer
        .wait_for("every emitter message", |r| {
            ["all", "big", "bin", "end", "red"]
                .iter()
                .all(|e| count(r, "e1", e) >= 1)
                && ["all", "big", "end", "not-red"]
                    .iter()
                    .all(|e| count(r, "e2", e) >= 1)
        })
        .await;
    let names = |c: &str| -> Vec<String> {
        let mut v: Vec<String> = common::events(&got, c)
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("e1"), ["all", "big", "bin", "end", "red"]);
    assert_eq!(names("e2"), ["all", "big", "end", "not-red"]);
    assert_eq!(
        entry(&got, "e1", "bin").unwrap(),
        json!(["bin", 4, {"bin": [9, 8, 7]}]),
        "binary through the attachments table"
    );
    assert_eq!(
        entry(&got, "e2", "big").unwrap(),
        json!(["big", 5, {"len": 20_000, "head": "xxxxxxxx"}])
    );
    common::until(WAIT, "the server-side event", || {
        !a.server_events.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(
        *a.server_events.lock().unwrap(),
        vec![("hello-servers".to_owned(), json!(6))]
    );

    // Room changes and disconnects by the emitter.
    peer.call(json!({"op": "emitter_join", "rooms": ["red"], "join": "green"}))
        .await;
    common::until(WAIT, "e1 joined green", || {
        a.io.of("/").unwrap().local().to("green").sockets().len() == 1
    })
    .await;
    let in_room = |room: &'static str| a.io.of("/").unwrap().local().to(room).sockets().len();
    peer.call(json!({"op": "emitter_join", "join": "blue"}))
        .await;
    common::until(WAIT, "both joined blue", || in_room("blue") == 2).await;
    peer.call(json!({"op": "emitter_leave", "rooms": ["green"], "leave": "blue"}))
        .await;
    common::until(WAIT, "e1 left blue", || in_room("blue") == 1).await;
    peer.call(json!({"op": "emitter_emit", "event": "blue", "data": 7, "rooms": ["blue"]}))
        .await;
    peer.wait_for("blue on e2", |r| count(r, "e2", "blue") == 1)
        .await;
    peer.call(json!({"op": "emitter_disconnect", "rooms": [id("e2")]}))
        .await;
    let got = peer
        .wait_for("e2 disconnected", |r| count(r, "e2", "__disconnect") == 1)
        .await;
    assert_eq!(count(&got, "e1", "blue"), 0, "e1 left blue");
    assert_eq!(count(&got, "e2", "blue"), 1);
    assert_eq!(count(&got, "e1", "__disconnect"), 0);
    let left: BTreeSet<String> =
        a.io.of("/")
            .unwrap()
            .fetch_sockets()
            .await
            .unwrap()
            .iter()
            .map(|s| s.id.to_string())
            .collect();
    assert_eq!(left, [id("e1")].into_iter().collect());
    assert_eq!(a.pg.server_count("/"), Some(1), "the emitter is not a node");
    let stats = a.pg.stats();
    assert_eq!(
        (stats.malformed, stats.bad_attachments),
        (0, 0),
        "{stats:?}"
    );
    peer.stop().await;
}
