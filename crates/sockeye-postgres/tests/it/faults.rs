//! Bad input from the database and a lost listening connection.

use std::time::Duration;

use serde_json::json;
use sockeye_testkit::sio::SioClient;

use crate::common::{self, WAIT};

async fn sio(node: &common::Node) -> SioClient {
    SioClient::connected(node.addr, "/", None, WAIT)
        .await
        .unwrap_or_else(|e| panic!("client could not connect: {e}"))
}

/// Malformed notifications and bad attachment rows are dropped and counted, each in its own
/// counter, and the node goes on delivering the good messages after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_notifications_and_bad_attachments_are_dropped_and_counted() {
    let prefix = common::prefix();
    let a = common::node(common::config(&prefix).max_message_size(4000), "a").await;
    let mut c = sio(&a).await;
    let db = common::client().await;
    let channel = format!("{prefix}#/");
    let notify = |payload: String| {
        let db = &db;
        let channel = channel.clone();
        async move {
            db.execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
                .await
                .unwrap();
        }
    };
    let insert = |bytes: Option<Vec<u8>>| {
        let db = &db;
        async move {
            let sql = format!(
                "INSERT INTO {} (payload) VALUES ($1) RETURNING id",
                common::TABLE
            );
            let id: i64 = db.query_one(sql.as_str(), &[&bytes]).await.unwrap().get(0);
            id
        }
    };
    let broadcast = |event: &str| {
        json!({"uid": "emitter", "type": 3, "data": {
            "packet": {"type": 2, "data": [event, 1], "nsp": "/"},
            "opts": {"rooms": [], "except": [], "flags": {}}}})
        .to_string()
    };
    let malformed = [
        "not json".to_owned(),
        "{".to_owned(),
        r#"{"type":"three"}"#.to_owned(),
        r#"{"uid":"emitter","type":3,"data":{"packet":{"type":2,"data":[1]}}}"#.to_owned(),
        r#"{"uid":"emitter","type":3,"data":{"opts":{}}}"#.to_owned(),
        r#"{"uid":"emitter","type":4,"data":{"opts":{"rooms":"r"},"rooms":["x"]}}"#.to_owned(),
        format!("{{\"a\":{}{}}}", "[".repeat(500), "]".repeat(500)),
        broadcast("x").replace(r#""nsp":"/""#, r#""nsp":"/other""#),
        json!({"uid": "emitter", "type": 3, "nsp": "/other"}).to_string(),
    ];
    for m in &malformed {
        notify(m.clone()).await;
    }
    // Over max_message_size (4000) but under NOTIFY's limit.
    notify(broadcast(&"z".repeat(5000))).await;
    // A newer protocol's message type: ignored, not counted as malformed.
    notify(json!({"uid": "emitter", "type": 99, "data": {}}).to_string()).await;
    // Attachment rows: missing, NULL, not msgpack, msgpack but not a message.
    let missing = i64::MAX - 7;
    let null_row = insert(None).await;
    let garbage = insert(Some(vec![0xc1, 0xff, 0x00])).await;
    let not_message = insert(Some(vec![0x93, 0x01, 0x02, 0x03])).await;
    for id in [missing, null_row, garbage, not_message] {
        notify(json!({"uid": "emitter", "type": 3, "attachmentId": id.to_string()}).to_string())
            .await;
    }
    // A good message after all of them is still delivered, and only it.
    notify(broadcast("good")).await;
    assert_eq!(c.event("good", WAIT).await, Some(vec![json!(1)]));
    assert_eq!(
        c.next(Duration::from_millis(300)).await,
        None,
        "nothing else reached the client"
    );
    let stats = a.pg.stats();
    assert_eq!(stats.received, 16, "{stats:?}");
    assert_eq!(stats.malformed, malformed.len() as u64, "{stats:?}");
    assert_eq!(stats.oversized, 1, "{stats:?}");
    assert_eq!(stats.bad_attachments, 4, "{stats:?}");
    assert_eq!(
        a.pg.server_count("/"),
        Some(1),
        "the emitter uid is not a node"
    );
}

/// The listening backend is terminated (`pg_terminate_backend`): the node counts the loss,
/// reconnects, listens again, and broadcasts flow both ways afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backend_is_relistened_and_counted() {
    let prefix = common::prefix();
    let a = common::node(common::config(&prefix), "a").await;
    let b = common::node(common::config(&prefix), "b").await;
    common::until(WAIT, "both nodes count each other", || {
        a.pg.server_count("/") == Some(2) && b.pg.server_count("/") == Some(2)
    })
    .await;
    let mut on_a = sio(&a).await;
    let mut on_b = sio(&b).await;
    b.io.emit("before", &1).await.unwrap();
    assert_eq!(on_a.event("before", WAIT).await, Some(vec![json!(1)]));

    let db = common::client().await;
    let killed: Vec<bool> = db
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND query LIKE 'LISTEN%'",
            &[&a.pg.application_name()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(killed, vec![true], "exactly the listening backend of a");
    common::until(WAIT, "a lost and re-established its listener", || {
        let s = a.pg.stats();
        s.listen_losses == 1 && s.reconnects == 1
    })
    .await;
    assert!(a.pg.ready(WAIT).await, "a listens again");
    b.io.emit("after", &2).await.unwrap();
    assert_eq!(on_a.event("after", WAIT).await, Some(vec![json!(2)]));
    a.io.emit("from-a", &3).await.unwrap();
    assert_eq!(on_b.event("from-a", WAIT).await, Some(vec![json!(3)]));
    assert_eq!(on_a.event("from-a", WAIT).await, Some(vec![json!(3)]));
    assert_eq!(a.pg.server_count("/"), Some(2));
    assert_eq!(b.pg.stats().listen_losses, 0);
}

/// A node that vanishes without `ADAPTER_CLOSE` (its runtime dropped at once, as a killed
/// process) stops being counted once it has been silent for `heartbeat_timeout`; cluster
/// requests then stop waiting for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_forgotten_after_the_heartbeat_timeout() {
    let prefix = common::prefix();
    let config = {
        let prefix = prefix.clone();
        move || {
            common::config(&prefix)
                .heartbeat_interval(Duration::from_millis(200))
                .heartbeat_timeout(Duration::from_millis(800))
        }
    };
    let a = common::node(config(), "a").await;
    // Node b lives in a runtime of its own, on a thread of its own, until `kill` fires.
    let (kill, killed) = tokio::sync::oneshot::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let b_config = config();
    let b_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let b = common::node(b_config, "b").await;
            started_tx.send(b.addr).unwrap();
            let _ = killed.await;
            std::mem::forget(b);
        });
        // Every task of b (server, sessions, adapter, heartbeats, connections) ends here.
        drop(rt);
    });
    let b_addr = started.await.unwrap();
    common::until(WAIT, "a counts b", || a.pg.server_count("/") == Some(2)).await;
    // Heartbeats keep a quiet node counted well past the timeout.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(a.pg.server_count("/"), Some(2), "heartbeats keep b counted");
    let _on_b = SioClient::connected(b_addr, "/", None, WAIT).await.unwrap();
    assert_eq!(
        a.io.of("/").unwrap().fetch_sockets().await.unwrap().len(),
        1
    );
    let gone = std::time::Instant::now();
    kill.send(()).unwrap();
    tokio::task::spawn_blocking(move || b_thread.join().unwrap())
        .await
        .unwrap();
    common::until(WAIT, "a forgets b", || a.pg.server_count("/") == Some(1)).await;
    let after = gone.elapsed();
    assert!(
        after >= Duration::from_millis(500),
        "b was forgotten by its silence, not by a goodbye: {after:?}"
    );
    let started = std::time::Instant::now();
    let sockets = a.io.of("/").unwrap().fetch_sockets().await.unwrap();
    assert!(sockets.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "fetch_sockets no longer waits for b (it would wait request_timeout, 3 s)"
    );
}
