//! Our `Emitter` against a sockeye node, over a Unix-socket Redis URL.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::{Peer, SHARED_URL, WAIT, config, count, node, redis_available, unique_key};
use serde_json::json;
use sockeye::Args;
use sockeye_redis::{Emitter, RedisConfig};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_over_a_unix_socket_reaches_sockets_and_servers() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let dir = std::env::temp_dir().join(unique_key("unix"));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("redis.sock");
    let _redis = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--save",
            "",
            "--appendonly",
            "no",
            "--unixsocket",
        ])
        .arg(&sock)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot run redis-server");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !sock.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "redis-server did not open {}",
            sock.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = format!("unix://{}", sock.display());
    let key = unique_key("emitter");
    let a = node(config(&url, &key), "a").await;
    let (tx, mut server_events) = tokio::sync::mpsc::channel(8);
    a.io.on_server_event("/", move |ev| {
        let _ = tx.try_send((ev.event, ev.args.first::<i64>().ok(), ev.ack.is_some()));
    })
    .expect("namespace / exists");
    let mut peer = Peer::start(SHARED_URL, &key, false).await;
    let ids = peer
        .call(json!({"op": "clients", "urls": [{"name": "x", "port": a.addr.port()}, {"name": "y", "port": a.addr.port()}]}))
        .await;
    let x = ids["ids"]["x"].as_str().unwrap().to_owned();

    let emitter = Emitter::connect(RedisConfig::new(&url).key(&key))
        .await
        .unwrap();
    emitter.emit("hello", "all").await.unwrap();
    // Published in this order on one connection, so applied in this order by the node.
    emitter.to([x.clone()]).sockets_join(["j"]).await.unwrap();
    emitter.to(["j"]).emit("in-j", &1).await.unwrap();
    emitter.operator().sockets_leave(["j"]).await.unwrap();
    emitter.to(["j"]).emit("after-leave", &2).await.unwrap();
    emitter.except([x.clone()]).emit("not-x", &3).await.unwrap();
    emitter.of("other").emit("elsewhere", &4).await.unwrap();
    emitter
        .server_side_emit("tick", &Args::from_value(&5).unwrap())
        .await
        .unwrap();
    assert!(
        emitter.emit("disconnect", &0).await.is_err(),
        "reserved names are refused"
    );
    emitter
        .to([x.clone()])
        .disconnect_sockets(false)
        .await
        .unwrap();

    let got = peer
        .wait_for("the emits and x's disconnect", |r| {
            count(r, "x", "__disconnect") == 1 && count(r, "y", "not-x") == 1
        })
        .await;
    assert_eq!(count(&got, "x", "hello"), 1);
    assert_eq!(count(&got, "y", "hello"), 1);
    assert_eq!(count(&got, "x", "in-j"), 1);
    assert_eq!(count(&got, "y", "in-j"), 0);
    assert_eq!(
        count(&got, "x", "after-leave") + count(&got, "y", "after-leave"),
        0
    );
    assert_eq!(count(&got, "x", "not-x"), 0);
    assert_eq!(
        count(&got, "x", "elsewhere") + count(&got, "y", "elsewhere"),
        0
    );
    let ev = tokio::time::timeout(WAIT, server_events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev, ("tick".to_owned(), Some(5), false));
    peer.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
