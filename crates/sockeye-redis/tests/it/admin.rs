//! The Admin UI protocol across two sockeye nodes on Redis: each node reports its own stats
//! under its own server id, the socket list and the live events cover both nodes, and the
//! commands sent to one node act on the other's sockets.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{SHARED_URL, WAIT, config, redis_available, serve, unique_key};
use serde_json::{Value, json};
use sockeye::admin::{AdminAuth, AdminOptions};
use sockeye::{SocketIo, SocketRef};
use sockeye_redis::RedisAdapterFactory;
use sockeye_testkit::sio::{Received, SioClient};

async fn admin_node(key: &str, id: &str) -> (SocketIo, SocketAddr) {
    let redis = RedisAdapterFactory::connect(config(SHARED_URL, key))
        .await
        .expect("adapter connects");
    let io = SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
        .adapter(redis.clone())
        .instrument(
            AdminOptions::new(AdminAuth::none())
                .server_id(id)
                .stats_interval(Duration::from_millis(300)),
        )
        .build();
    io.ns("/", async |_: SocketRef| {})
        .on("hello", async |_: SocketRef| {});
    assert!(redis.ready(WAIT).await, "{id}: subscriptions not ready");
    let addr = serve(&io).await;
    (io, addr)
}

/// The next event `name` whose arguments satisfy `pick`, skipping the rest.
async fn event_where(
    client: &mut SioClient,
    name: &str,
    pick: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let args = client
            .event(name, left)
            .await
            .unwrap_or_else(|| panic!("no matching {name} event"));
        if pick(&args) {
            return args;
        }
    }
}

async fn command(admin: &mut SioClient, name: &str, args: &[Value]) -> Value {
    let id = admin.emit_with_ack(name, args).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match admin.next(left).await {
            Some(Received::Ack { id: got, mut args }) if got == id => return args.remove(0),
            Some(Received::Closed) | None => panic!("no ack for {name}"),
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_on_one_node_sees_and_acts_on_both() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let key = unique_key("admin");
    let (a, addr_a) = admin_node(&key, "node-a").await;
    let (b, addr_b) = admin_node(&key, "node-b").await;

    let c1 = SioClient::connected(addr_a, "/", None, WAIT).await.unwrap();
    let mut c2 = SioClient::connected(addr_b, "/", None, WAIT).await.unwrap();
    let mut admin = SioClient::connected(addr_a, "/admin", None, WAIT)
        .await
        .unwrap();

    // The socket list covers both nodes.
    let all = admin.event("all_sockets", WAIT).await.expect("all_sockets");
    let ids: Vec<&str> = all[0]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["nsp"] == "/")
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&c1.sid.as_str()) && ids.contains(&c2.sid.as_str()),
        "{all:?}"
    );

    // Each node reports its own stats.
    event_where(&mut admin, "server_stats", |s| s[0]["serverId"] == "node-b").await;
    event_where(&mut admin, "server_stats", |s| s[0]["serverId"] == "node-a").await;

    // Live events from the other node.
    let c3 = SioClient::connected(addr_b, "/", None, WAIT).await.unwrap();
    event_where(&mut admin, "socket_connected", |s| {
        s[0]["id"] == c3.sid.as_str()
    })
    .await;
    c2.emit("hello", &[json!("from b")]).await.unwrap();
    let received = event_where(&mut admin, "event_received", |s| s[1] == c2.sid.as_str()).await;
    assert_eq!(received[2], json!(["hello", "from b"]));

    // Commands sent to node a act on node b's socket.
    let sid2 = json!(c2.sid);
    assert_eq!(
        command(
            &mut admin,
            "join",
            &[json!("/"), json!("room-z"), sid2.clone()]
        )
        .await,
        json!({ "ok": true })
    );
    event_where(&mut admin, "room_joined", |s| {
        s[1] == "room-z" && s[2] == sid2
    })
    .await;
    let on_b = b
        .get_socket("/", &c2.sid.as_str().into())
        .expect("c2 is on node b");
    assert!(on_b.rooms().contains(&"room-z".to_owned()));
    assert_eq!(
        command(
            &mut admin,
            "emit",
            &[json!("/"), json!("room-z"), json!("notice"), json!("x")]
        )
        .await,
        json!({ "ok": true })
    );
    assert_eq!(c2.event("notice", WAIT).await.unwrap(), [json!("x")]);
    assert_eq!(
        command(
            &mut admin,
            "_disconnect",
            &[json!("/"), json!(false), sid2.clone()]
        )
        .await,
        json!({ "ok": true })
    );
    assert_eq!(c2.next(WAIT).await, Some(Received::Disconnect));
    let gone = event_where(&mut admin, "socket_disconnected", |s| s[1] == sid2).await;
    assert_eq!(gone[2], "server namespace disconnect");

    drop((c1, c3));
    a.close().await;
    b.close().await;
}
