//! Server-side emits in streams mode, between sockeye, the official Node server with
//! `@socket.io/redis-streams-adapter` 0.3.1 (tests/redis/streams-peer.js) and
//! `StreamsEmitter`. The official adapter sends them over pub/sub (type 9 on
//! `<prefix>#<ns>#`), not as stream entries, so that is what the emitter writes; no official
//! streams emitter package exists (npm has none), so the Node server is the reference reader.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sockeye::{Args, SocketIo, SocketRef};
use sockeye_redis::streams::{StreamsAdapterFactory, StreamsEmitter};

use crate::common::{Peer, SHARED_URL, WAIT, redis_available};
use crate::streams_contract::{config, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_and_node_server_side_emits_reach_sockeye_and_node_servers() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let prefix = unique("streams-sse");
    let adapter = StreamsAdapterFactory::connect(config(&prefix))
        .await
        .unwrap();
    let io = SocketIo::builder().adapter(adapter.clone()).build();
    io.ns("/", |_s: SocketRef| async {});
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::new(Mutex::new(Vec::new()));
    {
        let got = got.clone();
        io.on_server_event("/", move |ev| {
            let args: Value = ev.args.deserialize().unwrap_or(Value::Null);
            got.lock().unwrap().push((ev.event.clone(), args));
        })
        .unwrap();
    }
    assert!(adapter.ready(WAIT).await);
    let mut peer = Peer::start_script(
        "streams-peer.js",
        "@socket.io/redis-streams-adapter",
        &[SHARED_URL, &prefix],
    )
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while io.server_count("/").await.unwrap() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Node server never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The emitter: both servers get it once, with its arguments.
    let emitter = StreamsEmitter::connect(config(&prefix)).await.unwrap();
    let args = Args::from_values([json!({"k": 1}), json!("two")]).unwrap();
    let receivers = emitter
        .of("/")
        .server_side_emit("to-servers", &args)
        .await
        .unwrap();
    assert_eq!(receivers, 2, "both nodes are subscribed");
    // A sockeye node's server-side emit reaches the Node server (and not itself).
    io.server_side_emit("/", "to-servers", &3).await.unwrap();
    // An emitter on another namespace reaches no one here.
    let elsewhere = emitter
        .of("/other")
        .server_side_emit("to-servers", &args)
        .await
        .unwrap();
    assert_eq!(elsewhere, 0, "nobody serves /other");

    let deadline = tokio::time::Instant::now() + WAIT;
    let node_events = loop {
        let events = peer.call(json!({"op": "server_events"})).await["events"].take();
        if events.as_array().is_some_and(|e| e.len() >= 2) {
            break events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Node server got {events}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let node_events = {
        let again = peer.call(json!({"op": "server_events"})).await["events"].take();
        assert_eq!(again, node_events, "nothing more arrived");
        again
    };
    assert_eq!(
        node_events,
        json!([[{"k": 1}, "two"], [3]]),
        "the Node server: the emitter's, then sockeye's, each once"
    );
    assert_eq!(
        got.lock().unwrap().clone(),
        vec![("to-servers".to_owned(), json!([{"k": 1}, "two"]))],
        "the sockeye node: the emitter's once, not its own"
    );
    peer.stop().await;
}
