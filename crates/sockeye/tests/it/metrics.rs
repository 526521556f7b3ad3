//! Metrics through the `metrics` facade (`SocketIoBuilder::metrics`), read back with
//! metrics-util's debugging recorder. The recorder is global: every metric this test reads
//! is labelled with its own namespace, or only grows (so another test cannot make it fail).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;
use sockeye::prelude::*;
use sockeye::{AckError, RecoveryConfig};
use sockeye_testkit::sio::{Received, SioClient};

use crate::common::{self, WAIT};

fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("no other recorder in this test binary");
        snapshotter
    })
}

/// Every metric as `name{label=value,...}`, summed over the snapshots taken (the recorder
/// resets counters and gauges when read); a histogram as its sample count.
#[derive(Default)]
struct Seen(HashMap<String, f64>);

impl Seen {
    fn take(&mut self) {
        for (key, _, _, value) in snapshotter().snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            match value {
                DebugValue::Counter(n) => *self.0.entry(name).or_default() += n as f64,
                // The recorder resets gauges when read too: what it gives is the change.
                DebugValue::Gauge(g) => *self.0.entry(name).or_default() += g.into_inner(),
                DebugValue::Histogram(samples) => {
                    *self.0.entry(name).or_default() += samples.len() as f64;
                }
            }
        }
    }

    fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(0.0)
    }
}

#[tokio::test]
async fn the_server_counts_connections_packets_handlers_timeouts_and_recoveries() {
    let _ = snapshotter();
    let io = common::builder()
        .metrics(true)
        .connection_state_recovery(RecoveryConfig::default())
        .build();
    io.ns("/metrics", async |_: SocketRef| {})
        .on(
            "echo",
            async |socket: SocketRef, Data(v): Data<serde_json::Value>| {
                let _ = socket.emit("echo", &v);
            },
        )
        .on("ask", async |socket: SocketRef| {
            // The client never answers: one ack timeout.
            let answer = socket
                .call::<serde_json::Value, _>("question", &1, Duration::from_millis(100))
                .await;
            matches!(answer, Err(AckError::Timeout(_)))
        });
    let addr = common::serve(&io).await;
    let mut seen = Seen::default();

    let mut client = SioClient::connected(addr, "/metrics", None, WAIT)
        .await
        .unwrap();
    client.emit("echo", &[json!("hi")]).await.unwrap();
    assert!(client.event("echo", WAIT).await.is_some());
    let id = client.emit_with_ack("ask", &[]).await.unwrap();
    loop {
        match client.next(WAIT).await {
            Some(Received::Ack { id: got, args }) if got == id => {
                assert_eq!(args, [json!(true)], "the server's call timed out");
                break;
            }
            Some(Received::Closed) | None => panic!("no ack"),
            _ => continue,
        }
    }
    seen.take();
    assert_eq!(seen.get("socketio_sockets{ns=/metrics}"), 1.0);
    assert_eq!(seen.get("socketio_connects_total{ns=/metrics}"), 1.0);
    assert_eq!(seen.get("socketio_events_received_total{ns=/metrics}"), 2.0);
    assert!(
        seen.get("socketio_events_sent_total{ns=/metrics}") >= 2.0,
        "echo and question"
    );
    assert_eq!(
        seen.get("socketio_handler_duration_seconds{ns=/metrics}"),
        2.0
    );
    assert_eq!(seen.get("socketio_ack_timeouts_total{ns=/metrics}"), 1.0);
    assert!(seen.get("engineio_connections_total{transport=websocket}") >= 1.0);
    assert!(seen.get("engineio_packets_in_total{}") >= 3.0);
    assert!(seen.get("engineio_bytes_in_total{}") > 0.0);
    assert!(seen.get("engineio_packets_out_total{}") >= 3.0);
    assert!(seen.get("engineio_bytes_out_total{}") > 0.0);

    // A reconnection with a pid nobody kept: a recovery miss.
    let forged = json!({ "pid": "no-such-pid", "offset": "0" });
    let _other = SioClient::connected(addr, "/metrics", Some(forged), WAIT)
        .await
        .unwrap();
    client.emit("echo", &[json!("bye")]).await.unwrap();
    drop(client);
    let mut tries = 0;
    loop {
        seen.take();
        let left = seen
            .0
            .keys()
            .any(|name| name.starts_with("socketio_disconnects_total{ns=/metrics"));
        if left || tries == 100 {
            break;
        }
        tries += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen.get("socketio_recoveries_total{ns=/metrics,outcome=unknown_pid}"),
        1.0
    );
    assert_eq!(
        seen.get("socketio_sockets{ns=/metrics}"),
        1.0,
        "the first client left"
    );
    // The client's socket was dropped without a close frame: transport close or error.
    let disconnects: f64 = seen
        .0
        .iter()
        .filter(|(name, _)| {
            name.starts_with("socketio_disconnects_total{ns=/metrics,reason=transport")
        })
        .map(|(_, n)| n)
        .sum();
    assert_eq!(disconnects, 1.0, "{:?}", seen.0.keys().collect::<Vec<_>>());
    io.close().await;
}
