//! The Admin UI protocol (`@socket.io/admin-ui` 0.5) on one node: login, every event, every
//! command with its validation, both modes and read-only. Two nodes: sockeye-redis's tests.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use sockeye::SocketIo;
use sockeye::admin::{AdminAuth, AdminMode, AdminOptions};
use sockeye::prelude::*;
use sockeye_testkit::sio::{Received, SioClient};

use crate::common::{self, F, WAIT, Ws};

const ALL_FEATURES: [&str; 9] = [
    "EMIT",
    "JOIN",
    "LEAVE",
    "DISCONNECT",
    "MJOIN",
    "MLEAVE",
    "MDISCONNECT",
    "AGGREGATED_EVENTS",
    "ALL_EVENTS",
];

fn basic() -> AdminAuth {
    // Cost 4, the lowest: the test checks the protocol, not bcrypt's strength.
    AdminAuth::basic("admin", bcrypt::hash("s3cret", 4).unwrap()).unwrap()
}

fn login() -> Value {
    json!({ "username": "admin", "password": "s3cret" })
}

/// A server with the admin on, and `/` where a `hello` is answered with `hi` and saves a
/// session value.
async fn server(options: AdminOptions) -> (SocketIo, SocketAddr) {
    let io = common::builder()
        .instrument(
            options
                .stats_interval(Duration::from_millis(200))
                .max_emit_bytes(1024),
        )
        .build();
    io.ns("/", async |_: SocketRef| {}).on(
        "hello",
        async |socket: SocketRef, Data(data): Data<Value>| {
            socket.save_session(json!({ "user": "alice" }));
            let _ = socket.emit_args("hi", Args::from_values([json!(1), json!(2)]).unwrap());
            let _ = data;
        },
    );
    let addr = common::serve(&io).await;
    (io, addr)
}

/// The next event named `name` (the admin's stream is busy: stats arrive all the time).
async fn event(client: &mut SioClient, name: &str) -> Vec<Value> {
    client
        .event(name, WAIT)
        .await
        .unwrap_or_else(|| panic!("no {name} event"))
}

/// Sends a command with an ack and returns the ack's first argument.
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

/// Waits for an admin event matching `pick`, skipping others.
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

fn is_iso_date(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T')
}

#[tokio::test]
async fn development_mode_sends_every_event_and_runs_every_command() {
    let (io, addr) = server(AdminOptions::new(basic()).server_id("node-a")).await;

    let mut admin = SioClient::connected(addr, "/admin", Some(login()), WAIT)
        .await
        .unwrap();
    let session = event(&mut admin, "session").await;
    let session_id = session[0].as_str().unwrap().to_owned();
    assert_eq!(session_id.len(), 16);
    assert!(session_id.bytes().all(|b| b.is_ascii_hexdigit()));
    let config = event(&mut admin, "config").await;
    assert_eq!(config[0], json!({ "supportedFeatures": ALL_FEATURES }));
    let all = event(&mut admin, "all_sockets").await;
    let listed: Vec<&str> = all[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&admin.sid.as_str()),
        "the admin lists itself: {all:?}"
    );

    let stats = event(&mut admin, "server_stats").await;
    let stats = &stats[0];
    assert_eq!(stats["serverId"], "node-a");
    assert_eq!(stats["pid"], std::process::id());
    assert!(stats["hostname"].is_string() && stats["uptime"].is_f64());
    assert!(stats["clientsCount"].as_u64().unwrap() >= 1);
    assert_eq!(stats["pollingClientsCount"], 0);
    let namespaces = stats["namespaces"].as_array().unwrap();
    assert!(
        namespaces.contains(&json!({ "name": "/admin", "socketsCount": 1 })),
        "{stats}"
    );

    // A client connects, talks, changes its session value.
    let mut client = SioClient::connected(addr, "/", None, WAIT).await.unwrap();
    let connected = event_where(&mut admin, "socket_connected", |a| a[0]["nsp"] == "/").await;
    let socket = &connected[0];
    assert_eq!(socket["id"], client.sid.as_str());
    assert_eq!(socket["transport"], "websocket");
    assert_eq!(socket["clientId"].as_str().unwrap().len(), 12);
    assert_eq!(socket["rooms"], json!([client.sid]));
    assert_eq!(socket["handshake"]["address"], "127.0.0.1");
    assert!(
        socket["handshake"].get("auth").is_none(),
        "auth is never shown"
    );
    assert!(is_iso_date(&connected[1]));

    client.emit("hello", &[json!({ "a": 1 })]).await.unwrap();
    let received = event(&mut admin, "event_received").await;
    assert_eq!(
        received[..3],
        [json!("/"), json!(client.sid), json!(["hello", { "a": 1 }])]
    );
    assert!(is_iso_date(&received[3]));
    let updated = event(&mut admin, "socket_updated").await;
    assert_eq!(
        updated[0],
        json!({ "id": client.sid, "nsp": "/", "data": { "user": "alice" } })
    );
    let sent = event(&mut admin, "event_sent").await;
    assert_eq!(
        sent[..3],
        [json!("/"), json!(client.sid), json!(["hi", 1, 2])]
    );
    assert_eq!(
        client.event("hi", WAIT).await.unwrap(),
        [json!(1), json!(2)]
    );

    // Aggregated events: the client's traffic shows up, per second.
    let stats = event_where(&mut admin, "server_stats", |a| {
        a[0]["aggregatedEvents"]
            .as_array()
            .is_some_and(|events| events.iter().any(|e| e["type"] == "packetsIn"))
    })
    .await;
    for event in stats[0]["aggregatedEvents"].as_array().unwrap() {
        assert_eq!(event["timestamp"].as_u64().unwrap() % 1000, 0, "{event}");
        assert!(event["count"].as_u64().unwrap() >= 1);
    }

    // join, emit to the room, leave: with the socket id as filter, as the UI sends them.
    let sid = json!(client.sid);
    assert_eq!(
        command(
            &mut admin,
            "join",
            &[json!("/"), json!("room-x"), sid.clone()]
        )
        .await,
        json!({ "ok": true })
    );
    let joined = event(&mut admin, "room_joined").await;
    assert_eq!(joined[..3], [json!("/"), json!("room-x"), sid.clone()]);
    assert!(
        io.get_socket("/", &client.sid.as_str().into())
            .unwrap()
            .rooms()
            .contains(&"room-x".to_owned())
    );
    assert_eq!(
        command(
            &mut admin,
            "emit",
            &[
                json!("/"),
                json!("room-x"),
                json!("notice"),
                json!(1),
                json!("two")
            ]
        )
        .await,
        json!({ "ok": true })
    );
    assert_eq!(
        client.event("notice", WAIT).await.unwrap(),
        [json!(1), json!("two")]
    );
    // No filter: the whole namespace.
    assert_eq!(
        command(&mut admin, "emit", &[json!("/"), Value::Null, json!("all")]).await,
        json!({ "ok": true })
    );
    assert_eq!(
        client.event("all", WAIT).await.unwrap(),
        Vec::<Value>::new()
    );
    assert_eq!(
        command(
            &mut admin,
            "leave",
            &[json!("/"), json!("room-x"), sid.clone()]
        )
        .await,
        json!({ "ok": true })
    );
    let left = event(&mut admin, "room_left").await;
    assert_eq!(left[..3], [json!("/"), json!("room-x"), sid.clone()]);

    // Bad commands get an error and change nothing.
    for (name, args, says) in [
        (
            "join",
            vec![json!("/"), json!("r"), json!(5)],
            "unknown filter",
        ),
        (
            "join",
            vec![json!("/nope"), json!("r")],
            "unknown namespace",
        ),
        ("join", vec![], "missing namespace"),
        ("join", vec![json!("/")], "missing room"),
        ("emit", vec![json!("/"), Value::Null], "missing event name"),
        (
            "emit",
            vec![json!("/"), Value::Null, json!("x"), json!("y".repeat(2000))],
            "over the admin limit",
        ),
        (
            "emit",
            vec![json!("/"), Value::Null, json!("connect")],
            "reserved",
        ),
        ("_disconnect", vec![json!("/"), json!("yes")], "boolean"),
    ] {
        let answer = command(&mut admin, name, &args).await;
        let error = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} {args:?} accepted: {answer}"));
        assert!(error.contains(says), "{name} {args:?}: {error}");
    }
    assert_eq!(
        io.get_socket("/", &client.sid.as_str().into())
            .unwrap()
            .rooms(),
        vec![client.sid.clone()]
    );

    // The UI's session id lets it back in without the password, and without a new session.
    let mut again = SioClient::connected(
        addr,
        "/admin",
        Some(json!({ "sessionId": session_id })),
        WAIT,
    )
    .await
    .unwrap();
    let mut before_config = Vec::new();
    loop {
        match again.next(WAIT).await.unwrap() {
            Received::Event { name, .. } if name == "config" => break,
            Received::Event { name, .. } => before_config.push(name),
            _ => continue,
        }
    }
    assert!(
        !before_config.iter().any(|n| n == "session"),
        "no new session for a known id"
    );

    // _disconnect without closing: the client leaves the namespace.
    assert_eq!(
        command(
            &mut admin,
            "_disconnect",
            &[json!("/"), json!(false), sid.clone()]
        )
        .await,
        json!({ "ok": true })
    );
    assert_eq!(client.next(WAIT).await, Some(Received::Disconnect));
    let gone = event_where(&mut admin, "socket_disconnected", |a| a[1] == sid).await;
    assert_eq!(
        gone[..3],
        [
            json!("/"),
            sid.clone(),
            json!("server namespace disconnect")
        ]
    );
    assert!(is_iso_date(&gone[3]));

    // _disconnect with close: the whole connection goes.
    let mut other = SioClient::connected(addr, "/", None, WAIT).await.unwrap();
    let other_sid = json!(other.sid);
    event_where(&mut admin, "socket_connected", |a| a[0]["id"] == other_sid).await;
    assert_eq!(
        command(
            &mut admin,
            "_disconnect",
            &[json!("/"), json!(true), other_sid.clone()]
        )
        .await,
        json!({ "ok": true })
    );
    loop {
        match other.next(WAIT).await {
            Some(Received::Closed) | None => break,
            Some(_) => continue,
        }
    }
    io.close().await;
}

/// The CONNECT_ERROR and nothing else: no stats, no socket list.
async fn refused(addr: SocketAddr, auth: Value) {
    let mut ws = Ws::open(addr).await;
    ws.send(&format!("40/admin,{auth}")).await;
    assert_eq!(
        ws.recv().await,
        F::T(r#"44/admin,{"message":"invalid credentials"}"#.into())
    );
    // Two stats intervals and more: nothing follows.
    ws.expect_silence(Duration::from_millis(700)).await;
}

#[tokio::test]
async fn bad_credentials_get_connect_error_and_nothing_else() {
    let (io, addr) = server(AdminOptions::new(basic())).await;
    refused(addr, json!({ "username": "admin", "password": "wrong" })).await;
    refused(addr, json!({ "username": "root", "password": "s3cret" })).await;
    refused(addr, json!({ "sessionId": "0123456789abcdef" })).await;
    refused(addr, json!({})).await;

    let (io2, addr2) = server(AdminOptions::new(AdminAuth::callback(|auth| {
        auth["token"] == "t0k"
    })))
    .await;
    refused(addr2, json!({ "token": "nope" })).await;
    let mut ok = SioClient::connected(addr2, "/admin", Some(json!({ "token": "t0k" })), WAIT)
        .await
        .unwrap();
    // No basic auth: no session id, straight to config.
    let mut before_config = Vec::new();
    loop {
        match ok.next(WAIT).await.unwrap() {
            Received::Event { name, .. } if name == "config" => break,
            Received::Event { name, .. } => before_config.push(name),
            _ => continue,
        }
    }
    assert!(
        !before_config.iter().any(|n| n == "session"),
        "a session id only with basic auth"
    );
    io.close().await;
    io2.close().await;
}

#[tokio::test]
async fn production_mode_sends_config_and_stats_only() {
    let (io, addr) = server(AdminOptions::new(AdminAuth::none()).mode(AdminMode::Production)).await;
    let mut admin = SioClient::connected(addr, "/admin", None, WAIT)
        .await
        .unwrap();
    let config = event(&mut admin, "config").await;
    assert_eq!(
        config[0],
        json!({ "supportedFeatures": &ALL_FEATURES[..8] })
    );

    let mut client = SioClient::connected(addr, "/", None, WAIT).await.unwrap();
    client.emit("hello", &[json!(1)]).await.unwrap();
    assert!(client.event("hi", WAIT).await.is_some());
    // Commands are accepted in production mode too, as by the official server.
    assert_eq!(
        command(
            &mut admin,
            "join",
            &[json!("/"), json!("room-p"), json!(client.sid)]
        )
        .await,
        json!({ "ok": true })
    );
    // Stats carry the traffic; nothing but stats arrives.
    let mut seen_packets = false;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Some(received) = admin
        .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        match received {
            Received::Event { name, args, .. } => {
                assert_eq!(
                    name, "server_stats",
                    "production mode sent {name}: {args:?}"
                );
                seen_packets |= args[0]["aggregatedEvents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["type"] == "packetsIn");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(seen_packets, "aggregated events count the client's packets");
    assert!(
        io.get_socket("/", &client.sid.as_str().into())
            .unwrap()
            .rooms()
            .contains(&"room-p".to_owned())
    );
    io.close().await;
}

#[tokio::test]
async fn readonly_advertises_no_write_feature_and_ignores_commands() {
    let (io, addr) = server(AdminOptions::new(AdminAuth::none()).readonly(true)).await;
    let mut admin = SioClient::connected(addr, "/admin", None, WAIT)
        .await
        .unwrap();
    let config = event(&mut admin, "config").await;
    assert_eq!(
        config[0],
        json!({ "supportedFeatures": ["AGGREGATED_EVENTS", "ALL_EVENTS"] })
    );
    let mut client = SioClient::connected(addr, "/", None, WAIT).await.unwrap();
    let sid = json!(client.sid);
    for (name, args) in [
        ("join", vec![json!("/"), json!("r"), sid.clone()]),
        ("emit", vec![json!("/"), Value::Null, json!("x")]),
        ("_disconnect", vec![json!("/"), json!(true)]),
    ] {
        let answer = command(&mut admin, name, &args).await;
        assert!(
            answer["error"].as_str().unwrap().contains("read-only"),
            "{answer}"
        );
    }
    // Without an ack, as the UI sends them: ignored as well.
    admin
        .emit("_disconnect", &[json!("/"), json!(false)])
        .await
        .unwrap();
    assert_eq!(
        client.next(Duration::from_millis(500)).await,
        None,
        "read-only changed nothing"
    );
    let socket = io.get_socket("/", &client.sid.as_str().into()).unwrap();
    assert_eq!(socket.rooms(), vec![client.sid.clone()]);
    io.close().await;
}
