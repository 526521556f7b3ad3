//! Interop with the official `engine.io-client` (npm, pinned in tests/package.json): polling
//! only, WebSocket only, polling then upgrade; text and binary both ways; a 1 MiB message;
//! 200 concurrent clients.

use crate::common;

use std::time::Duration;

use common::*;
use sockeye_engine::CloseReason;

/// Runs the Node client script and returns its JSON result line.
async fn node(
    server: &TestServer,
    mode: &str,
    scenario: &str,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![mode, scenario];
    args.extend_from_slice(extra);
    run_node("client.js", "engine.io-client", server, &args).await
}

/// How the client's `close()` reaches the server: a CLOSE packet over polling, a bare
/// WebSocket close otherwise.
async fn echo(mode: &str, open_transport: &str, final_transport: &str, reason: CloseReason) {
    let server = serve(fast_config().build()).await;
    let result = node(&server, mode, "echo", &[]).await;
    assert_eq!(result["openTransport"], open_transport);
    assert_eq!(result["transport"], final_transport);
    assert_eq!(result["text"], "hello ü 🦀");
    assert_eq!(result["binary"], serde_json::json!([1, 2, 3, 4]));
    let closes = wait_for_closes(&server, 1).await;
    assert_eq!(closes.len(), 1, "{closes:?}");
    assert_eq!(closes[0].1, reason, "{closes:?}");
}

async fn wait_for_closes(server: &TestServer, n: usize) -> Vec<(String, CloseReason)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let closes = server.rec.closes();
        if closes.len() >= n || tokio::time::Instant::now() > deadline {
            return closes;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn official_client_polling_only() {
    echo("polling", "polling", "polling", CloseReason::ClientClose).await;
}

#[tokio::test]
async fn official_client_websocket_only() {
    echo(
        "websocket",
        "websocket",
        "websocket",
        CloseReason::TransportClose,
    )
    .await;
}

#[tokio::test]
async fn official_client_polling_then_upgrade() {
    echo(
        "upgrade",
        "polling",
        "websocket",
        CloseReason::TransportClose,
    )
    .await;
}

async fn big(mode: &str) {
    let server = serve(fast_config().max_payload(3_000_000).build()).await;
    let result = node(&server, mode, "big", &[]).await;
    assert_eq!(result["textLength"], 1 << 20);
    assert_eq!(result["textOk"], true);
    assert_eq!(result["binaryLength"], 1 << 20);
    assert_eq!(result["binaryOk"], true);
}

#[tokio::test]
async fn official_client_one_mib_messages_over_polling() {
    big("polling").await;
}

#[tokio::test]
async fn official_client_one_mib_messages_over_websocket() {
    big("websocket").await;
}

#[tokio::test]
async fn official_client_200_concurrent_upgrading_clients() {
    let server = serve(
        fast_config()
            .ping_interval(Duration::from_secs(5))
            .ping_timeout(Duration::from_secs(5))
            .build(),
    )
    .await;
    let result = node(&server, "upgrade", "many", &["200"]).await;
    assert_eq!(result["ok"], 200);
    assert_eq!(
        server.rec.opened.load(std::sync::atomic::Ordering::SeqCst),
        200
    );
    let closes = wait_for_closes(&server, 200).await;
    assert_eq!(closes.len(), 200);
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test]
async fn official_client_order_is_kept_across_the_upgrade() {
    let server = serve(fast_config().build()).await;
    let result = node(&server, "upgrade", "ordered", &["300"]).await;
    assert_eq!(result["received"], 300);
    assert_eq!(result["inOrder"], true, "{result}");
    assert_eq!(result["transport"], "websocket");
    let upgraded_at = result["upgradedAt"].as_i64().unwrap();
    assert!(
        upgraded_at > 0 && upgraded_at < 300,
        "the upgrade happened while messages were flowing: {result}"
    );
}
