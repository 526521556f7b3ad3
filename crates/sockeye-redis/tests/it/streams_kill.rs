//! kill -9 recovery in streams mode: a sockeye node process is killed (SIGKILL, so it persists
//! nothing at the end), its client reconnects to another sockeye node and is recovered: same
//! id, rooms and session value, and the broadcasts sent while it was away replayed once, in
//! order. This works because each node keeps its recoverable sockets' sessions stored while
//! they are connected (`StreamsConfig::live_sessions`), which the official adapter does not.
//!
//! The nodes are processes: this test binary runs again as `streams_kill::node_process` (an
//! ignored test, the process body) with the prefix in the environment. The client is the
//! official socket.io-client (tests/redis/streams-peer.js).
//!
//! Repeat it by hand: `for i in $(seq 20); do cargo test -p sockeye-redis --test it
//! streams_kill::kill_9 || break; done`.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use sockeye::{Event, RecoveryConfig, SocketIo, SocketRef};
use sockeye_redis::streams::StreamsAdapterFactory;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::common::{self, Peer, SHARED_URL, WAIT, events, redis_available};
use crate::streams_contract::{config, unique};

const PREFIX_ENV: &str = "SOCKEYE_STREAMS_NODE_PREFIX";

/// The process body of a node (not a test on its own: `kill_9_*` runs it). Serves `/` with
/// recovery on (30 s window): `join(room)`, `tag(value)` (saved in the session), `whoami`
/// and `publish(room, from, to)` (broadcasts `item(i)` for each i, in order, then acks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the body of a node process started by streams_kill::kill_9_*"]
async fn node_process() {
    let prefix = std::env::var(PREFIX_ENV)
        .unwrap_or_else(|_| panic!("not a test on its own: run by streams_kill::kill_9_*"));
    let adapter = StreamsAdapterFactory::connect(config(&prefix))
        .await
        .unwrap();
    let io = SocketIo::builder()
        .adapter(adapter.clone())
        .connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(30),
            ..RecoveryConfig::default()
        })
        .build();
    io.ns("/", |_s: SocketRef| async {})
        .on("join", |s: SocketRef, e: Event| async move {
            s.join(e.args.first::<String>().unwrap_or_default());
            json!("ok")
        })
        .on("tag", |s: SocketRef, e: Event| async move {
            s.save_session(json!({"tag": e.args.first::<String>().unwrap_or_default()}));
            json!("ok")
        })
        .on("whoami", |s: SocketRef| async move {
            json!({
                "id": s.id(),
                "recovered": s.recovered(),
                "rooms": s.rooms(),
                "session": s.get_session::<Value>(),
            })
        })
        .on("publish", |io: SocketIo, e: Event| async move {
            let room = e.args.nth::<String>(0).unwrap_or_default();
            let from = e.args.nth::<i64>(1).unwrap_or(0);
            let to = e.args.nth::<i64>(2).unwrap_or(0).min(from + 1000);
            for i in from..to {
                io.to(&room).emit("item", &i).await.unwrap();
            }
            json!("published")
        });
    assert!(adapter.ready(WAIT).await);
    let addr = common::serve(&io).await;
    println!("PORT {}", addr.port());
    std::future::pending::<()>().await;
}

pub(crate) struct NodeProcess {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

pub(crate) async fn spawn_node(prefix: &str) -> NodeProcess {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "streams_kill::node_process",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(PREFIX_ENV, prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(port) = line.strip_prefix("PORT ") {
                return port.trim().parse::<u16>().unwrap();
            }
        }
        panic!("the node process exited before listening");
    })
    .await
    .expect("the node process did not start in time");
    // Keep reading so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    NodeProcess { child, port }
}

pub(crate) fn items(received: &Value, client: &str) -> Vec<i64> {
    events(received, client)
        .into_iter()
        .filter(|(e, _)| e == "item")
        .map(|(_, v)| v.as_i64().unwrap())
        .collect()
}

/// The stored session under `pid`, decoded (`sid`, `rooms`, `data`), if there is one.
pub(crate) async fn stored_session(prefix: &str, pid: &str) -> Option<rmpv::Value> {
    let client = redis::Client::open(SHARED_URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let raw: Option<String> = redis::cmd("GET")
        .arg(format!("{prefix}:session:{pid}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw?)
        .unwrap();
    Some(rmpv::decode::read_value(&mut bytes.as_slice()).unwrap())
}

pub(crate) fn map_get<'a>(v: &'a rmpv::Value, key: &str) -> Option<&'a rmpv::Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_recovered_on_another_node() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let prefix = unique("streams-kill");
    let mut a = spawn_node(&prefix).await;
    let b = spawn_node(&prefix).await;
    let mut peer = Peer::start_script(
        "streams-peer.js",
        "@socket.io/redis-streams-adapter",
        &[SHARED_URL, &prefix],
    )
    .await;
    let reply = peer
        .call(json!({"op": "clients", "urls": [
            {"name": "c", "port": a.port}, {"name": "p", "port": b.port},
        ]}))
        .await;
    let id = reply["ids"]["c"].as_str().unwrap().to_owned();
    let call = |name: &str, event: &str, args: Value| json!({"op": "client_call", "name": name, "event": event, "args": args});
    assert_eq!(
        peer.call(call("c", "join", json!(["r"]))).await["reply"],
        json!("ok")
    );
    assert_eq!(
        peer.call(call("c", "tag", json!(["t1"]))).await["reply"],
        json!("ok")
    );
    let (before, missed, after) = (5, 5, 2);
    let publish = |from: i64, to: i64| call("p", "publish", json!(["r", from, to]));
    peer.call(publish(0, before)).await;
    peer.wait_for("the items before the kill", |r| items(r, "c").len() == 5)
        .await;

    // The live copy of c's session is in Redis, in the official format, rooms and tag in.
    let state = peer.call(json!({"op": "client_state", "name": "c"})).await;
    let pid = state["pid"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(s) = stored_session(&prefix, &pid).await {
            let rooms: Vec<&str> = map_get(&s, "rooms")
                .and_then(|r| r.as_array())
                .map(|r| r.iter().filter_map(rmpv::Value::as_str).collect())
                .unwrap_or_default();
            let tag = map_get(&s, "data")
                .and_then(|d| map_get(d, "tag"))
                .and_then(rmpv::Value::as_str);
            if map_get(&s, "sid").and_then(rmpv::Value::as_str) == Some(id.as_str())
                && rooms.contains(&"r")
                && tag == Some("t1")
            {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the live session was never stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // kill -9: the node persists nothing on the way out.
    a.child.start_kill().unwrap();
    let _ = a.child.wait().await;
    peer.wait_for("c to see its node die", |r| {
        events(r, "c").iter().any(|(e, _)| e == "__disconnect")
    })
    .await;
    peer.call(publish(before, before + missed)).await;
    peer.call(json!({"op": "client_retarget", "name": "c", "port": b.port}))
        .await;
    let back = peer
        .call(json!({"op": "client_reconnect", "name": "c"}))
        .await;
    assert_eq!(
        back["recovered"],
        json!(true),
        "recovered on the client side: {back}"
    );
    assert_eq!(back["id"], json!(id), "same socket id");
    let me = peer.call(call("c", "whoami", json!([]))).await["reply"].take();
    assert_eq!(
        me["recovered"],
        json!(true),
        "recovered on the server side: {me}"
    );
    let mut rooms: Vec<String> = serde_json::from_value(me["rooms"].clone()).unwrap();
    rooms.sort();
    let mut want = vec![id.clone(), "r".to_owned()];
    want.sort();
    assert_eq!(rooms, want, "same rooms");
    assert_eq!(me["session"], json!({"tag": "t1"}), "same session value");
    peer.call(publish(before + missed, before + missed + after))
        .await;
    let got = peer
        .wait_for("every item", |r| items(r, "c").len() >= 12)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got_after = peer.received().await;
    let list = items(&got_after, "c");
    let total = before + missed + after;
    let replayed_and_later: Vec<i64> = list.iter().copied().filter(|i| *i >= before).collect();
    assert_eq!(
        list,
        (0..total).collect::<Vec<_>>(),
        "sent {total} ({before} before the kill, {missed} while away, {after} after): each \
         once, in order; got {} with {} after the kill",
        list.len(),
        replayed_and_later.len(),
    );
    drop(got);
    peer.call(json!({"op": "close_clients"})).await;
    peer.stop().await;
    drop(b);
}
