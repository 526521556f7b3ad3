//! Bus messages are untrusted: poisoned, oversized and foreign messages published on the
//! channel are dropped and counted, and the node goes on delivering the valid ones.
use std::time::Duration;

use serde_json::json;
use sockeye::SocketIo;
use sockeye_pybus::{PyBusConfig, PyBusFactory};
use sockeye_testkit::contract::{WAIT, serve};
use sockeye_testkit::sio::SioClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoned_and_oversized_messages_are_dropped_and_counted() {
    let channel = format!("sockeye-bad-{:08x}", rand::random::<u32>());
    let bus = PyBusFactory::connect(
        PyBusConfig::new("redis://127.0.0.1:6379/0")
            .channel(channel.clone())
            .max_message_size(4096),
    )
    .await
    .unwrap_or_else(|e| panic!("the Redis at 127.0.0.1:6379 is needed: {e}"));
    let io = SocketIo::builder().adapter(bus.clone()).build();
    io.ns("/", || async {});
    let (addr, server) = serve(&io).await;
    let mut client = SioClient::connected(addr, "/", None, WAIT).await.unwrap();

    let redis = redis::Client::open("redis://127.0.0.1:6379/0").unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let deep = format!(
        r#"{{"method":"emit","event":"e","data":{}{},"host_id":"x"}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let big = format!(
        r#"{{"method":"emit","event":"e","data":["{}"],"host_id":"x"}}"#,
        "a".repeat(5000)
    );
    let poisoned: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        b"\xff\xfe\x00".to_vec(),
        br#"{"method":"emit","event":"e","data":5,"host_id":"x"}"#.to_vec(),
        br#"{"method":"emit","event":"e","data":[[{"_placeholder":true,"num":0}],"%%"],"binary":true,"host_id":"x"}"#.to_vec(),
        br#"{"method":"emit","event":"e","data":[1]}"#.to_vec(),
        deep.into_bytes(),
    ];
    let ignored: Vec<Vec<u8>> = vec![
        br#"{"method":"fetch_sockets","host_id":"x"}"#.to_vec(),
        br#"{"method":"emit","event":"e","data":[1],"namespace":"/nowhere","host_id":"x"}"#.to_vec(),
        br#"{"method":"callback","host_id":"someone-else","sid":"s","namespace":"/","id":1,"args":[]}"#.to_vec(),
    ];
    let good = json!({
        "method": "emit", "event": "still", "data": [1], "binary": false, "namespace": "/",
        "room": null, "skip_sid": null, "callback": null, "host_id": "x",
    });
    for payload in poisoned.iter().chain(&ignored).chain([&big.into_bytes()]) {
        let () = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(&payload[..])
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let () = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(good.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        client.event("still", WAIT).await,
        Some(vec![json!(1)]),
        "the valid message after the bad ones is delivered"
    );
    assert_eq!(
        client.event("e", Duration::from_millis(300)).await,
        None,
        "nothing of the bad ones reached the client"
    );
    let stats = bus.stats();
    assert_eq!(stats.malformed, poisoned.len() as u64, "{stats:?}");
    assert_eq!(stats.oversized, 1, "{stats:?}");
    assert_eq!(stats.ignored, ignored.len() as u64, "{stats:?}");
    server.abort();
}
