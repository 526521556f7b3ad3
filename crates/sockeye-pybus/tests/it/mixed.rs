//! A mixed cluster: one python-socketio 5.18 node (`tests/pybus/node.py`: AsyncRedisManager,
//! or AsyncAioPikaManager with feature `amqp`) and one sockeye node on the same bus, driven by the official python-socketio
//! client (`tests/pybus/drive.py`): broadcasts, rooms, binary arguments, emits and callbacks
//! to a socket id on the other node, remote room changes, close_room and remote disconnects,
//! each way.
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use sockeye::prelude::*;
use sockeye::{Bytes, SocketIo};
use sockeye_pybus::{PyBusConfig, PyBusFactory};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: scripts/test creates it (python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt)",
        python.display()
    );
    python
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The sockeye node's events: the same as `tests/pybus/node.py`'s.
fn register(io: &SocketIo) {
    io.ns(
        "/",
        |socket: SocketRef, auth: Option<Auth<Value>>| async move {
            let rooms = auth
                .and_then(|Auth(a)| a.get("rooms").cloned())
                .and_then(|r| serde_json::from_value::<Vec<String>>(r).ok())
                .unwrap_or_default();
            socket.join_all(rooms);
        },
    )
    .on(
        "broadcast",
        |ns: Namespace, Data(payload): Data<Value>| async move {
            ns.broadcast().emit("broadcast-msg", &payload).await.is_ok()
        },
    )
    .on("bin-broadcast", |ns: Namespace| async move {
        let mut b = Args::builder();
        b.push_binary(Bytes::from_static(b"\x00\x01\xff"));
        b.push(&json!({"n": 1})).unwrap();
        ns.broadcast().emit_args("bin-msg", b.build()).await.is_ok()
    })
    .on("to-room", |ns: Namespace, args: Args| async move {
        let room: String = args.first().unwrap_or_default();
        let payload: Value = args.nth(1).unwrap_or(Value::Null);
        ns.broadcast()
            .to(room)
            .emit("room-msg", &payload)
            .await
            .is_ok()
    })
    .on_concurrent(
        "ask-sid",
        |ns: Namespace, Data(req): Data<Value>| async move {
            use futures_util::StreamExt as _;
            let sid = req["sid"].as_str().unwrap_or_default().to_owned();
            let timeout = Duration::from_millis(req["timeoutMs"].as_u64().unwrap_or(1000));
            let stream = ns
                .broadcast()
                .to(sid)
                .timeout(timeout)
                .emit_with_ack("server-ask", &req["payload"])
                .await;
            let first = match stream {
                Ok(mut s) => s.next().await,
                Err(e) => return Json(json!({"ok": false, "error": e.to_string()})),
            };
            Json(match first {
                Some((_, Ok(args))) => {
                    json!({"ok": true, "reply": args.deserialize::<Value>().unwrap_or(Value::Null)})
                }
                _ => json!({"ok": false, "error": "timeout"}),
            })
        },
    )
    .on(
        "disconnect-sid",
        |ns: Namespace, Data(req): Data<Value>| async move {
            let sid = req["sid"].as_str().unwrap_or_default().to_owned();
            ns.broadcast().to(sid).disconnect().await.is_ok()
        },
    )
    .on(
        "room-of",
        |ns: Namespace, Data(req): Data<Value>| async move {
            let sid = req["sid"].as_str().unwrap_or_default().to_owned();
            let room = req["room"].as_str().unwrap_or_default().to_owned();
            let op = ns.broadcast().to(sid);
            let done = if req["join"].as_bool().unwrap_or(true) {
                op.join(room).await
            } else {
                op.leave(room).await
            };
            done.is_ok()
        },
    )
    .on(
        "local-rooms",
        |ns: Namespace, Data(sid): Data<String>| async move {
            let rooms: Vec<String> = ns
                .broadcast()
                .to(sid)
                .sockets()
                .first()
                .map(|s| s.rooms().iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            Json(rooms)
        },
    )
    .on(
        "close-room",
        |ns: Namespace, Data(room): Data<String>| async move {
            ns.broadcast().to(room.clone()).leave(room).await.is_ok()
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_socketio_and_sockeye_nodes_form_one_cluster_on_redis() {
    mixed_cluster("redis://127.0.0.1:6379/0").await;
}

#[cfg(feature = "amqp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_socketio_and_sockeye_nodes_form_one_cluster_on_amqp() {
    mixed_cluster("amqp://guest:guest@127.0.0.1:5672/%2f").await;
}

/// One python-socketio node and one sockeye node on the bus at `url`, driven by `drive.py`.
async fn mixed_cluster(url: &str) {
    let python = python();
    let channel = format!("sockeye-mixed-{:08x}", rand::random::<u32>());
    let bus = PyBusFactory::connect(PyBusConfig::new(url).channel(channel.clone()))
        .await
        .unwrap_or_else(|e| panic!("the broker at {url} is needed: {e}"));
    let io = SocketIo::builder().adapter(bus.clone()).build();
    register(&io);
    let (rs_addr, server) = sockeye_testkit::contract::serve(&io).await;

    let py_port = free_port();
    let mut node = tokio::process::Command::new(&python)
        .arg(root().join("tests/pybus/node.py"))
        .arg(py_port.to_string())
        .arg(&channel)
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("python node did not start");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", py_port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the python-socketio node never listened"
        );
        assert!(
            node.try_wait().unwrap().is_none(),
            "the python-socketio node exited"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut driver = tokio::process::Command::new(&python);
    driver
        .arg(root().join("tests/pybus/drive.py"))
        .arg(format!("http://127.0.0.1:{py_port}"))
        .arg(format!("http://{rs_addr}"))
        .arg(&channel)
        .arg(url)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), driver.output())
        .await
        .expect("the driver did not finish within 60 s")
        .expect("the driver did not run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mixed cluster failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("every check passed"), "{stdout}\n{stderr}");
    let stats = bus.stats();
    assert_eq!(stats.malformed + stats.oversized, 0, "{stats:?}");
    assert!(stats.received > 0 && stats.published > 0, "{stats:?}");
    node.kill().await.ok();
    server.abort();
}
