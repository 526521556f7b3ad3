//! Graceful shutdown: every session is told, `on_close` runs once each, new handshakes are
//! refused, and `close()` returns within its deadline.

use crate::common;

use std::time::Duration;

use common::*;
use sockeye_engine::CloseReason;

#[tokio::test]
async fn close_tells_every_session_and_refuses_new_ones() {
    let server = serve(
        fast_config()
            .ping_interval(Duration::from_secs(20))
            .shutdown_timeout(Duration::from_secs(3))
            .build(),
    )
    .await;
    let client = http();
    let polling_sid = handshake(&server, &client).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={polling_sid}"));
    let pending_get = {
        let client = client.clone();
        let q = q.clone();
        tokio::spawn(async move { get(&client, &q).await })
    };
    let mut sockets = Vec::new();
    for _ in 0..5 {
        sockets.push(ws_session(&server).await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    server.engine.close().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "close took {:?}",
        started.elapsed()
    );
    assert_eq!(pending_get.await.unwrap(), (200, "1".into()));
    for (ws, _) in &mut sockets {
        assert_eq!(wait_ws_close(ws).await, Some(1000));
    }
    let closes = server.rec.closes();
    assert_eq!(closes.len(), 6, "{closes:?}");
    assert!(
        closes
            .iter()
            .all(|(_, r)| *r == CloseReason::ServerShutdown)
    );
    assert_eq!(server.engine.session_count(), 0);
    let (status, _) = get(&client, &server.url("EIO=4&transport=polling")).await;
    assert_eq!(status, 503);
    assert!(
        tokio_tungstenite::connect_async(server.ws_url("EIO=4&transport=websocket"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_running_handler_finishes_before_on_close() {
    use futures_util::SinkExt;
    let server = serve(fast_config().ping_interval(Duration::from_secs(20)).build()).await;
    let (mut ws, sid) = ws_session(&server).await;
    ws.send(tokio_tungstenite::tungstenite::Message::text("4slow"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(ws);
    assert_eq!(
        server.rec.wait_close(&sid).await,
        CloseReason::TransportClose
    );
    assert_eq!(
        *server.rec.slow_done.lock().unwrap(),
        vec![false],
        "the handler ran to the end, before on_close"
    );
}
