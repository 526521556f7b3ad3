//! The heap an idle Engine.IO WebSocket session costs the server, against a stated budget.
//!
//! The server (engine, hyper connection, WebSocket, session, timers) runs on a current-thread
//! runtime on the test's own thread, the only thread the counting allocator
//! (`sockeye_testkit::heap`) counts; the clients run on a thread of their own, so their buffers
//! are not counted. The live heap is sampled before the clients connect and once every one of
//! them has its handshake and sits idle; the difference per session is what one idle session
//! holds.

use crate::common;

use std::sync::mpsc;
use std::time::Duration;

use futures_util::StreamExt;
use sockeye_testkit::heap::{count_this_thread, live};

/// Sessions in the measurement: enough to amortise the engine's session map.
const N: usize = 500;

/// Heap bytes one idle WebSocket session may hold on the server. Measured when set (issue 21):
/// 5 073 bytes in 23.0 blocks (two runs alike). The budget leaves room for allocator noise
/// and fails when a change grows an idle session by 1 KiB.
const BUDGET_BYTES: f64 = 5_632.0;
/// Heap blocks one idle WebSocket session may hold.
const BUDGET_BLOCKS: f64 = 26.0;

#[test]
fn idle_websocket_session_fits_the_heap_budget() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    count_this_thread();
    rt.block_on(async {
        let server = common::serve(
            common::fast_config()
                .ping_interval(Duration::from_secs(60))
                .ping_timeout(Duration::from_secs(60))
                .build(),
        )
        .await;
        let url = server.ws_url("EIO=4&transport=websocket");
        let (bytes0, blocks0) = live();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let clients = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut held = Vec::with_capacity(N);
                for _ in 0..N {
                    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
                        .await
                        .unwrap();
                    let open = ws.next().await.unwrap().unwrap();
                    assert!(open.to_text().unwrap().starts_with("0{"));
                    held.push(ws);
                }
                ready_tx.send(()).unwrap();
                // Hold the sessions idle until the server side was sampled.
                tokio::task::spawn_blocking(move || done_rx.recv())
                    .await
                    .unwrap()
                    .unwrap();
                drop(held);
            });
        });
        ready_rx.await.unwrap();
        // Let the server finish what the last handshakes started.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(server.engine.session_count(), N);
        let (bytes1, blocks1) = live();
        done_tx.send(()).unwrap();
        let per_bytes = (bytes1 - bytes0) as f64 / N as f64;
        let per_blocks = (blocks1 - blocks0) as f64 / N as f64;
        println!(
            "engine: idle WebSocket session ({N} sessions): {per_bytes:.0} bytes in {per_blocks:.2} heap blocks"
        );
        clients.join().unwrap();
        assert!(
            per_bytes <= BUDGET_BYTES,
            "an idle engine session holds {per_bytes:.0} heap bytes; budget {BUDGET_BYTES}"
        );
        assert!(
            per_blocks <= BUDGET_BLOCKS,
            "an idle engine session holds {per_blocks:.2} heap blocks; budget {BUDGET_BLOCKS}"
        );
    });
}
