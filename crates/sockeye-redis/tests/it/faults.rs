//! Faults: Redis going away and coming back, nodes that stopped answering, hostile broker input.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::{Peer, SHARED_URL, WAIT, config, count, node, redis_available, unique_key};
use serde_json::json;
use sockeye::{AckError, Args};
use sockeye_redis::{Partial, RequestTimeout};
use tokio::process::{Child, Command};

/// A private `redis-server` on `port`, killed by PID when dropped.
pub(crate) async fn private_redis(port: u16) -> Child {
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot run redis-server: is it installed?");
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(client) = redis::Client::open(url.as_str())
            && let Ok(Ok(mut conn)) = tokio::time::timeout(
                Duration::from_secs(1),
                client.get_multiplexed_async_connection(),
            )
            .await
            && redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok()
        {
            return child;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "private redis-server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn spare_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_survive_a_redis_restart_and_resubscribe() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let port = spare_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut redis = private_redis(port).await;
    let key = unique_key("restart");
    let a = node(config(&url, &key), "a").await;
    let b = node(config(&url, &key), "b").await;
    // The clients' peer uses the shared Redis only for its (unused) emitter.
    let mut peer = Peer::start(SHARED_URL, &key, false).await;
    peer.call(json!({"op": "clients", "urls": [
        {"name": "x", "port": a.addr.port()}, {"name": "y", "port": b.addr.port()}]}))
        .await;
    a.io.emit("before", &1).await.unwrap();
    peer.wait_for("before on both", |r| {
        count(r, "x", "before") == 1 && count(r, "y", "before") == 1
    })
    .await;

    // Redis goes away: local clients are still served, the lost publish is counted.
    redis.kill().await.unwrap();
    a.io.emit("during", &2).await.unwrap();
    peer.wait_for("during on x", |r| count(r, "x", "during") == 1)
        .await;
    eventually("the lost publish to be counted", || {
        let s = a.redis.stats();
        s.publish_failed + s.queue_full >= 1
    })
    .await;
    assert!(
        a.io.of("/").unwrap().fetch_sockets().await.is_ok(),
        "fetch degrades to local sockets"
    );

    // Redis is back: both subscribers reconnect and resubscribe.
    let _redis = private_redis(port).await;
    eventually("both subscribers to reconnect", || {
        a.redis.stats().reconnects >= 1 && b.redis.stats().reconnects >= 1
    })
    .await;
    assert!(a.redis.ready(WAIT).await && b.redis.ready(WAIT).await);
    // The publisher reconnects on first use; retry until a broadcast crosses again.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut n = 0;
    loop {
        n += 1;
        a.io.emit("after", &n).await.unwrap();
        let r = peer.received().await;
        if count(&r, "y", "after") >= 1 {
            assert_eq!(
                count(&r, "y", "during"),
                0,
                "published during the outage: lost, as documented"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no broadcast crossed after the restart: {r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all = b.io.of("/").unwrap().fetch_sockets().await.unwrap();
    assert_eq!(all.len(), 2);
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_a_dead_node_time_out_cleanly() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let key = unique_key("dead");
    let cfg = config(SHARED_URL, &key).request_timeout(Duration::from_millis(500));
    let a = node(cfg, "a").await;
    // A node that subscribed and then stopped answering (frozen process, stuck event loop).
    let client = redis::Client::open(SHARED_URL).unwrap();
    let mut zombie = client.get_async_pubsub().await.unwrap();
    zombie.subscribe(format!("{key}-request#/#")).await.unwrap();
    assert_eq!(a.redis.server_count("/").await.unwrap(), 2);

    let started = tokio::time::Instant::now();
    let err = a.io.of("/").unwrap().fetch_sockets().await.unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(err.to_string().contains("0 of 1"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let timeout = RequestTimeout::in_adapter_error(&err).expect("a typed RequestTimeout");
    assert_eq!((timeout.answered, timeout.expected), (0, 1));
    assert_eq!(
        timeout.partial,
        Partial::Sockets(Vec::new()),
        "no local socket"
    );

    let err = a.redis.all_rooms("/").await.unwrap_err();
    let timeout = RequestTimeout::in_adapter_error(&err).expect("a typed RequestTimeout");
    assert_eq!(
        (timeout.request, timeout.answered, timeout.expected),
        ("all_rooms", 0, 1)
    );

    let results = a
        .redis
        .server_side_emit_with_ack(
            "/",
            "ping-servers",
            Args::from_value(&1).unwrap(),
            Duration::from_millis(300),
        )
        .await
        .unwrap()
        .collect_all()
        .await;
    assert_eq!(results.len(), 1);
    assert!(
        matches!(results[0].1, Err(AckError::Timeout(_))),
        "{results:?}"
    );

    let stream =
        a.io.of("/")
            .unwrap()
            .timeout(Duration::from_millis(300))
            .emit_with_ack("ask", &())
            .await
            .unwrap();
    assert_eq!(stream.expected(), 0, "a silent node reports no clients");
    assert!(stream.collect_all().await.is_empty());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_broker_messages_are_dropped_and_counted() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    // A panic while decoding a broker message would be caught by tokio in the subscriber
    // task and only show as messages no longer read: the watch makes it fail the test.
    let _watch = sockeye_testkit::panics::PanicWatch::start();
    let key = unique_key("hostile");
    let a = node(config(SHARED_URL, &key).max_message_size(100_000), "a").await;
    let b = node(config(SHARED_URL, &key), "b").await;
    let client = redis::Client::open(SHARED_URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let garbage: Vec<(String, Vec<u8>)> = vec![
        (format!("{key}#/#"), vec![0xc1]),
        (format!("{key}#/#"), vec![0x93, 0xa1, b'u']),
        (format!("{key}#/#"), vec![0xdd, 0xff, 0xff, 0xff, 0xff]),
        (format!("{key}#/#"), [0x91u8; 500].to_vec()),
        (format!("{key}#/#room#"), b"not msgpack at all".to_vec()),
        (format!("{key}-request#/#"), b"{\"type\":".to_vec()),
        (
            format!("{key}-request#/#"),
            b"{\"type\":99,\"requestId\":\"x\"}".to_vec(),
        ),
        (format!("{key}-request#/#"), b"{\"type\":5}".to_vec()),
        (
            format!("{key}-request#/#"),
            b"{\"type\":6,\"data\":[1,2]}".to_vec(),
        ),
        (
            format!("{key}-request#/#"),
            b"{\"type\":2,\"opts\":{\"rooms\":5},\"rooms\":[]}".to_vec(),
        ),
        (format!("{key}-response#/#"), b"{\"nothing\":1}".to_vec()),
        // A wire version of the wrong type is malformed.
        (
            format!("{key}-request#/#"),
            b"{\"type\":1,\"requestId\":\"x\",\"sockeyeWire\":\"2\"}".to_vec(),
        ),
    ];
    let n = garbage.len() as u64;
    // Messages of a future wire version: dropped and counted apart from the malformed ones.
    let newer: Vec<(String, Vec<u8>)> = vec![
        (
            format!("{key}-request#/#"),
            b"{\"type\":1,\"requestId\":\"x\",\"sockeyeWire\":2}".to_vec(),
        ),
        (
            format!("{key}-response#/#"),
            b"{\"requestId\":\"x\",\"sockeyeWire\":3}".to_vec(),
        ),
        // [uid, {type: 2, data: ["ev"], nsp: "/"}, {rooms: [], sockeyeWire: 2}] in msgpack.
        (format!("{key}#/#"), {
            let mut m = vec![0x93, 0xa1, b'u', 0x83, 0xa4];
            m.extend_from_slice(b"type");
            m.extend_from_slice(&[0x02, 0xa4]);
            m.extend_from_slice(b"data");
            m.extend_from_slice(&[0x91, 0xa2, b'e', b'v', 0xa3]);
            m.extend_from_slice(b"nsp");
            m.extend_from_slice(&[0xa1, b'/', 0x82, 0xa5]);
            m.extend_from_slice(b"rooms");
            m.extend_from_slice(&[0x90, 0xab]);
            m.extend_from_slice(b"sockeyeWire");
            m.push(0x02);
            m
        }),
    ];
    for (channel, payload) in newer.iter().chain(&garbage) {
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .unwrap();
    }
    let huge = vec![0x90u8; 200_000];
    redis::cmd("PUBLISH")
        .arg(format!("{key}#/#"))
        .arg(huge)
        .query_async::<i64>(&mut conn)
        .await
        .unwrap();
    eventually("every bad message to be counted", || {
        let s = a.redis.stats();
        s.malformed >= n && s.oversized >= 1 && s.unknown_version >= 3
    })
    .await;
    let stats = a.redis.stats();
    assert_eq!(
        (stats.malformed, stats.oversized, stats.unknown_version),
        (n, 1, 3),
        "{stats:?}"
    );
    // Both nodes still work together.
    assert_eq!(a.redis.server_count("/").await.unwrap(), 2);
    assert!(
        a.io.of("/")
            .unwrap()
            .fetch_sockets()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        b.io.of("/")
            .unwrap()
            .fetch_sockets()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn urls_bad_and_unreachable_fail_with_clear_errors_and_valkey_scheme_works() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    use sockeye_redis::{Emitter, RedisAdapterFactory, RedisConfig, RedisError};
    let err = RedisAdapterFactory::connect(RedisConfig::new("http://user:secret@127.0.0.1:1"))
        .await
        .unwrap_err();
    assert!(matches!(err, RedisError::InvalidUrl { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("unix://") && !text.contains("secret"),
        "{text}"
    );

    let closed = spare_port();
    let err =
        RedisAdapterFactory::connect(RedisConfig::new(format!("redis://:pw@127.0.0.1:{closed}")))
            .await
            .unwrap_err();
    assert!(
        matches!(
            err,
            RedisError::Connect { .. } | RedisError::ConnectTimeout { .. }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("check that the server runs")
            || err.to_string().contains("timed out")
    );
    assert!(!err.to_string().contains(":pw@"), "{err}");

    // Valkey speaks the same protocol; the `valkey://` scheme is accepted as is.
    let valkey = SHARED_URL.replace("redis://", "valkey://");
    let emitter = Emitter::connect(RedisConfig::new(valkey).key(unique_key("valkey")))
        .await
        .unwrap();
    emitter.emit("x", &1).await.unwrap();
}

/// Pass: a node's own broadcasts and server-side events come back to it from Redis (its
/// subscriber listens on the channels it publishes to; `stats().received` counts them) and are
/// skipped by node uid: its local client gets each broadcast once (from the local delivery),
/// its own server-side handler never runs, while the other node gets every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_messages_are_skipped_by_node_uid() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    use crate::faults_proxy::LocalClient;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let key = unique_key("own");
    let a = node(config(SHARED_URL, &key), "a").await;
    let b = node(config(SHARED_URL, &key), "b").await;
    let mut on_a = LocalClient::connect(a.addr).await;
    let mut on_b = LocalClient::connect(b.addr).await;
    let hits: [Arc<AtomicUsize>; 2] = Default::default();
    for (n, hit) in [&a, &b].into_iter().zip(&hits) {
        let hit = hit.clone();
        n.io.on_server_event("/", move |ev| {
            if ev.event == "own" {
                hit.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    }
    assert!(a.redis.ready(WAIT).await && b.redis.ready(WAIT).await);
    let before = a.redis.stats();
    const N: usize = 20;
    for i in 0..N {
        a.io.emit("own", &i).await.unwrap();
        a.redis
            .server_side_emit("/", "own", &Args::from_value(&i).unwrap())
            .unwrap();
    }
    for i in 0..N {
        assert_eq!(on_b.next_event().await, format!(r#"42["own",{i}]"#));
        assert_eq!(on_a.next_event().await, format!(r#"42["own",{i}]"#));
    }
    eventually("b to get every server-side event", || {
        hits[1].load(Ordering::SeqCst) == N
    })
    .await;
    eventually("a's own messages to come back from Redis", || {
        a.redis.stats().received - before.received >= 2 * N as u64
    })
    .await;
    // Give a duplicate the time to show: b's copies arrived, a's came back (counted above).
    assert_eq!(
        on_a.event_within(Duration::from_millis(300)).await,
        None,
        "node a delivered its own broadcast twice"
    );
    assert_eq!(
        hits[0].load(Ordering::SeqCst),
        0,
        "node a ran its own server-side events"
    );
}
