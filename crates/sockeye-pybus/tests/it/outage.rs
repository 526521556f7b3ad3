//! Redis going away and coming back, on a private `redis-server` (the shared one is never
//! restarted): during the outage a broadcast fails and the application sees it (its local
//! part was delivered); afterwards both nodes resubscribe and broadcasts flow again, and
//! nothing is delivered twice.
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use sockeye::SocketIo;
use sockeye_pybus::{PyBusConfig, PyBusError, PyBusFactory};
use sockeye_testkit::contract::{WAIT, serve};
use sockeye_testkit::sio::SioClient;
use tokio::process::{Child, Command};

/// A private `redis-server` on `port`, killed when dropped.
async fn private_redis(port: u16) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot run redis-server: is it installed?");
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "private redis-server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_publishes_visibly_and_the_bus_recovers() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut redis = private_redis(port).await;
    let url = format!("redis://127.0.0.1:{port}/0");
    let config = || PyBusConfig::new(url.clone()).command_timeout(Duration::from_secs(1));
    let a = PyBusFactory::connect(config()).await.unwrap();
    let b = PyBusFactory::connect(config()).await.unwrap();
    let io_a = SocketIo::builder().adapter(a.clone()).build();
    let io_b = SocketIo::builder().adapter(b.clone()).build();
    io_a.ns("/", || async {});
    io_b.ns("/", || async {});
    let (addr_a, server_a) = serve(&io_a).await;
    let (addr_b, server_b) = serve(&io_b).await;
    let mut here = SioClient::connected(addr_a, "/", None, WAIT).await.unwrap();
    let mut there = SioClient::connected(addr_b, "/", None, WAIT).await.unwrap();

    io_a.emit("n", &1).await.unwrap();
    assert_eq!(there.event("n", WAIT).await, Some(vec![json!(1)]));
    assert_eq!(here.event("n", WAIT).await, Some(vec![json!(1)]));

    redis.kill().await.unwrap();
    let err = io_a
        .emit("n", &2)
        .await
        .expect_err("no Redis: the emit must fail");
    let sockeye::EmitError::Adapter(err) = err else {
        panic!("expected an adapter error, got {err:?}")
    };
    assert!(
        matches!(
            PyBusError::in_adapter_error(&err),
            Some(PyBusError::NotPublished {
                what: "broadcast",
                ..
            })
        ),
        "a NotPublished error: {err}"
    );
    assert_eq!(
        here.event("n", WAIT).await,
        Some(vec![json!(2)]),
        "the local part was delivered, as the error says"
    );

    let _redis = private_redis(port).await;
    for f in [&a, &b] {
        let deadline = tokio::time::Instant::now() + WAIT;
        while f.stats().reconnects == 0 {
            assert!(tokio::time::Instant::now() < deadline, "never resubscribed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(f.ready(WAIT).await, "resubscribed after the restart");
    }
    // The publisher reconnects on its next command: retry until one goes through.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut k = 3;
    while io_a.emit("n", &k).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never published again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        k += 1;
    }
    assert_eq!(
        there.event("n", WAIT).await,
        Some(vec![json!(k)]),
        "the other node gets the broadcast after the outage, and not the failed ones"
    );
    assert_eq!(
        there.event("n", Duration::from_millis(300)).await,
        None,
        "once"
    );
    assert!(a.stats().publish_failed >= 1, "{:?}", a.stats());
    server_a.abort();
    server_b.abort();
}
