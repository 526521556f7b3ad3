//! An emit with callback from a python node (its message as python-socketio publishes it, no
//! sockeye keys): the sockeye node answers on the bus in python's `callback` form, and unlike a
//! python node it stops waiting at `remote_ack_timeout`, so a late answer is not published.
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use sockeye::SocketIo;
use sockeye_pybus::{PyBusConfig, PyBusFactory};
use sockeye_testkit::contract::{WAIT, serve};
use sockeye_testkit::sio::{Received, SioClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_a_python_origin_and_frees_the_wait_at_the_timeout() {
    let channel = format!("sockeye-pyorigin-{:08x}", rand::random::<u32>());
    let bus = PyBusFactory::connect(
        PyBusConfig::new("redis://127.0.0.1:6379/0")
            .channel(channel.clone())
            .remote_ack_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap_or_else(|e| panic!("the Redis at 127.0.0.1:6379 is needed: {e}"));
    let io = SocketIo::builder().adapter(bus.clone()).build();
    io.ns("/", || async {});
    let (addr, server) = serve(&io).await;
    let mut client = SioClient::connected(addr, "/", None, WAIT).await.unwrap();
    let sid = client.sid.clone();

    let redis = redis::Client::open("redis://127.0.0.1:6379/0").unwrap();
    let mut listen = redis.get_async_pubsub().await.unwrap();
    listen.subscribe(&channel).await.unwrap();
    let mut bus_messages = listen.into_on_message();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let ask = |id: u64| {
        json!({
            "method": "emit", "event": "q", "data": ["?"], "binary": false, "namespace": "/",
            "room": sid, "skip_sid": null, "callback": [sid, "/", id], "host_id": "pyhost",
        })
        .to_string()
    };
    let mut next_published = async |within: Duration| -> Option<Value> {
        let msg = tokio::time::timeout(within, bus_messages.next())
            .await
            .ok()??;
        Some(serde_json::from_slice(msg.get_payload_bytes()).unwrap())
    };

    let () = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(ask(41))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(next_published(WAIT).await.is_some(), "the question itself");
    let Some(Received::Event { ack: Some(id), .. }) = client.next(WAIT).await else {
        panic!("the client should be asked with an ack id");
    };
    client.ack(id, &[json!("yes")]).await.unwrap();
    let answer = next_published(WAIT).await.expect("the answer on the bus");
    assert_eq!(answer["method"], "callback");
    assert_eq!(answer["host_id"], "pyhost", "addressed to the origin");
    assert_eq!(answer["sid"], json!(sid), "the callback's room, as sent");
    assert_eq!(answer["namespace"], "/");
    assert_eq!(answer["id"], 41);
    assert_eq!(answer["args"], json!(["yes"]));

    let () = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(ask(42))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(next_published(WAIT).await.is_some(), "the second question");
    let Some(Received::Event { ack: Some(id), .. }) = client.next(WAIT).await else {
        panic!("the client should be asked again");
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    client.ack(id, &[json!("late")]).await.unwrap();
    assert_eq!(
        next_published(Duration::from_millis(500)).await,
        None,
        "nothing is published for an answer after remote_ack_timeout (no count either: the origin is python)"
    );
    server.abort();
}
