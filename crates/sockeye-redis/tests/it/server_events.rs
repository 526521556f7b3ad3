//! Server-side events between two sockeye nodes on Redis, received through
//! `SocketIo::on_server_event` (the adapter delivers them via `LocalNamespace::server_event`).

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SHARED_URL, WAIT, config, node, redis_available, unique_key};
use sockeye::AckError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_emit_with_ack_reaches_the_other_nodes_socketio_handler_and_answers() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let key = unique_key("server-events");
    let a = node(config(SHARED_URL, &key), "a").await;
    let b = node(config(SHARED_URL, &key), "b").await;

    // What each node's handler saw: (event, args as JSON, whether an ack was offered).
    let seen_by_a: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = seen_by_a.clone();
    a.io.on_server_event("/", move |ev| sink.lock().unwrap().push(ev.event))
        .unwrap();
    let seen_by_b: Arc<Mutex<Vec<(String, serde_json::Value, bool)>>> = Arc::default();
    let sink = seen_by_b.clone();
    b.io.on_server_event("/", move |ev| {
        let args: serde_json::Value = ev.args.deserialize().unwrap();
        sink.lock()
            .unwrap()
            .push((ev.event.clone(), args.clone(), ev.ack.is_some()));
        if ev.event == "sum"
            && let Some(ack) = ev.ack
        {
            let total: i64 = args[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .sum();
            ack.send(&serde_json::json!({"node": "b", "total": total}))
                .unwrap();
        }
    })
    .unwrap();

    let stream =
        a.io.server_side_emit_with_ack("/", "sum", &[2, 3, 4], WAIT)
            .await
            .unwrap();
    assert_eq!(stream.expected(), 1, "one other node shares the namespace");
    let answers = tokio::time::timeout(WAIT + Duration::from_secs(5), stream.collect_all())
        .await
        .expect("the ack stream ends");
    assert_eq!(answers.len(), 1, "{answers:?}");
    let answer: serde_json::Value = answers[0].1.as_ref().unwrap().first().unwrap();
    assert_eq!(answer, serde_json::json!({"node": "b", "total": 9}));
    assert_eq!(
        *seen_by_b.lock().unwrap(),
        [("sum".to_owned(), serde_json::json!([[2, 3, 4]]), true)]
    );

    // Without ack: the handler gets no answer slot; the sender never receives its own events.
    a.io.server_side_emit("/", "note", &"hi").await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen_by_b.lock().unwrap().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "b never got the event without ack"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        seen_by_b.lock().unwrap()[1],
        ("note".to_owned(), serde_json::json!(["hi"]), false)
    );
    assert!(seen_by_a.lock().unwrap().is_empty(), "a heard itself");

    // A node whose handler does not answer is reported as a timeout, not dropped.
    let stream =
        a.io.server_side_emit_with_ack("/", "unanswered", &1, Duration::from_millis(300))
            .await
            .unwrap();
    let answers = tokio::time::timeout(WAIT, stream.collect_all())
        .await
        .expect("the ack stream ends at its timeout");
    assert!(
        matches!(answers.as_slice(), [(_, Err(AckError::Timeout(_)))]),
        "{answers:?}"
    );

    // Registering on a namespace that does not exist says so.
    let err = a.io.on_server_event("/nope", |_| {}).unwrap_err();
    assert!(err.to_string().contains("/nope"), "{err}");

    a.io.close().await;
    b.io.close().await;
}
