//! The extractor-based handlers end to end (formerly sockeye-axum's suite): an axum app on
//! loopback, a raw Socket.IO client comparing exact frames.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::axum::{Client, Frame, WAIT, http_request, post_json, serve};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sockeye::prelude::*;
use sockeye::{Bytes, Event, NamespaceHandler, Reply};

#[derive(Clone, Default)]
struct Db {
    chats: Arc<AtomicUsize>,
}

#[derive(Deserialize)]
struct Token {
    token: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct User {
    name: String,
}

#[derive(Deserialize)]
struct ChatMsg {
    text: String,
}

#[derive(Serialize)]
struct Receipt {
    from: String,
    echoed: String,
    count: usize,
}

#[derive(Clone)]
struct NotRegistered;

async fn on_connect(
    socket: SocketRef,
    Auth(auth): Auth<Token>,
    State(_db): State<Db>,
) -> Result<(), ConnectionRefusedError> {
    if auth.token != "good" {
        return Err(ConnectionRefusedError::with_data(
            "bad token",
            json!({"hint": "use good"}),
        ));
    }
    socket.save_session(User { name: "ann".into() });
    socket.join("lobby");
    Ok(())
}

async fn on_chat(
    Data(msg): Data<ChatMsg>,
    user: Session<User>,
    State(db): State<Db>,
) -> Json<Receipt> {
    let count = db.chats.fetch_add(1, Ordering::SeqCst) + 1;
    Json(Receipt {
        from: user.name.clone(),
        echoed: msg.text,
        count,
    })
}

fn on_rename(Data(name): Data<String>, mut user: Session<User>) -> (String, String) {
    let old = std::mem::replace(&mut user.name, name.clone());
    user.save();
    (old, name)
}

async fn on_later(ack: AckSender, Data(n): Data<u32>) -> &'static str {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        ack.send(Json(n * 2)).unwrap();
    });
    "this return value is not the ack"
}

fn on_needs_extension(Extension(_e): Extension<NotRegistered>) -> &'static str {
    "unreachable"
}

async fn on_try(TryData(data): TryData<u32>) -> Json<serde_json::Value> {
    Json(match data {
        Ok(n) => json!({"ok": n}),
        Err(e) => json!({"rejected": e.code()}),
    })
}

fn on_bin(Bin(parts): Bin, Data((label, _)): Data<(String, Bytes)>) -> (String, Bytes) {
    let mut joined = Vec::new();
    for p in parts {
        joined.extend_from_slice(&p);
    }
    joined.reverse();
    (label, Bytes::from(joined))
}

fn on_any(EventName(name): EventName, ArgCount(n): ArgCount) -> (String, usize) {
    (name, n)
}

/// A custom extractor (the arguments count), to check the public extractor trait.
struct ArgCount(usize);
impl sockeye::extract::FromEventParts for ArgCount {
    type Rejection = std::convert::Infallible;
    fn from_event_parts(cx: &mut sockeye::extract::EventContext) -> Result<Self, Self::Rejection> {
        Ok(ArgCount(cx.args().len()))
    }
}

fn on_boom() -> &'static str {
    panic!("handler bug")
}

fn on_http(
    headers: http::HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
    cookies: Cookies,
    HttpExtension(axum::extract::ConnectInfo(addr)): HttpExtension<
        axum::extract::ConnectInfo<SocketAddr>,
    >,
    engine_addr: Option<RemoteAddr>,
    transport: Transport,
) -> Json<serde_json::Value> {
    Json(json!({
        "ua": headers.get("host").is_some(),
        "room": q.get("room"),
        "session_cookie": cookies.get("session"),
        "loopback": addr.ip().is_loopback(),
        // axum::serve records the peer as ConnectInfo; the engine reads it (feature `axum`).
        "engine_addr": engine_addr.map(|a| a.0.to_string()),
        "engine_addr_is_connect_info": engine_addr.map(|a| a.0) == Some(addr),
        "transport": transport.as_str(),
    }))
}

async fn rest_send(
    io: SocketIo,
    State(counter): State<Arc<AtomicUsize>>,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> String {
    counter.fetch_add(1, Ordering::SeqCst);
    let room = body["room"].as_str().unwrap_or("lobby").to_owned();
    format!(
        "{:?}",
        io.to(room).emit("news", &body["text"]).await.is_ok()
    )
}

struct App {
    addr: SocketAddr,
    db: Db,
    left: Arc<tokio::sync::Mutex<Vec<String>>>,
    rest_calls: Arc<AtomicUsize>,
}

async fn app() -> App {
    let db = Db::default();
    let rest_calls = Arc::new(AtomicUsize::new(0));
    // One registration serves socket handlers and (through the layer) HTTP handlers alike.
    let (layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .with_state(db.clone())
        .with_state(rest_calls.clone())
        .build_layer();
    let left = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let left2 = left.clone();
    let _ = io
        .ns("/", on_connect)
        .on("chat", on_chat)
        .on("rename", on_rename)
        .on("later", on_later)
        .on("needs-extension", on_needs_extension)
        .on("try", on_try)
        .on("bin", on_bin)
        .on("boom", on_boom)
        .on("http", on_http)
        .on_any(on_any)
        .on_disconnect(move |user: Session<User>, reason: DisconnectReason| {
            let left = left2.clone();
            async move {
                left.lock().await.push(format!("{} {reason}", user.name));
            }
        });
    let _ = io.ns("/open", || ());
    let app = axum::Router::new()
        .route("/send", post(rest_send))
        .layer(layer);
    App {
        addr: serve(app).await,
        db,
        left,
        rest_calls,
    }
}

async fn connected(addr: SocketAddr) -> Client {
    let (client, reply) = Client::connect(addr, r#"{"token":"good"}"#).await;
    assert!(reply.starts_with(r#"40{"sid":"#), "{reply}");
    client
}

#[tokio::test]
async fn connect_handler_refuses_with_message_and_data() {
    let app = app().await;
    let (_c, reply) = Client::connect(app.addr, r#"{"token":"bad"}"#).await;
    assert_eq!(
        reply,
        r#"44{"message":"bad token","data":{"hint":"use good"}}"#
    );
}

#[tokio::test]
async fn failed_connect_extraction_refuses_with_a_readable_code() {
    let app = app().await;
    let (_c, reply) = Client::connect(app.addr, "").await;
    assert_eq!(
        reply,
        r#"44{"message":"this namespace needs an auth payload: connect with io(url, { auth: {...} })","data":{"code":"missing_auth"}}"#
    );
    let (_c, reply) = Client::connect(app.addr, r#"{"token":7}"#).await;
    assert!(
        reply.contains(r#""data":{"code":"invalid_auth"}"#),
        "{reply}"
    );
}

#[tokio::test]
async fn return_value_is_the_ack_with_session_and_state() {
    let app = app().await;
    let mut c = connected(app.addr).await;
    c.send(r#"421["chat",{"text":"hi"}]"#).await;
    assert_eq!(
        c.recv_json("431").await,
        json!([{"from": "ann", "echoed": "hi", "count": 1}])
    );
    assert_eq!(app.db.chats.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bad_data_gets_an_error_ack_and_the_handler_is_not_called() {
    let app = app().await;
    let mut c = connected(app.addr).await;
    c.send(r#"425["chat",{"txt":"typo"}]"#).await;
    let ack = c.recv_json("435").await;
    assert_eq!(ack[0]["error"]["code"], "invalid_data");
    let message = ack[0]["error"]["message"].as_str().unwrap();
    assert!(message.contains("missing field `text`"), "{message}");
    assert_eq!(
        app.db.chats.load(Ordering::SeqCst),
        0,
        "handler must not run"
    );
    // Without an ack request, nothing is sent back and the socket keeps working.
    c.send(r#"42["chat",{"txt":"typo"}]"#).await;
    c.send(r#"426["chat",{"text":"ok"}]"#).await;
    assert_eq!(c.recv_json("436").await[0]["count"], 1);
}

#[tokio::test]
async fn plain_fn_handler_saves_the_session_and_acks_several_arguments() {
    let app = app().await;
    let mut c = connected(app.addr).await;
    c.send(r#"421["rename","bob"]"#).await;
    assert_eq!(c.recv_json("431").await, json!(["ann", "bob"]));
    c.send(r#"422["chat",{"text":"x"}]"#).await;
    assert_eq!(c.recv_json("432").await[0]["from"], "bob");
}

#[tokio::test]
async fn ack_handle_acknowledges_later_instead_of_the_return_value() {
    let app = app().await;
    let mut c = connected(app.addr).await;
    c.send(r#"427["later",21]"#).await;
    assert_eq!(c.recv_text().await, "437[42]");
    // Without an ack request, the AckSender extractor rejects: no handler, nothing sent.
    c.send(r#"42["later",1]"#).await;
    c.expect_silence(Duration::from_millis(200)).await;
}

/// A server-side rejection (a missing extension: the server's fault, not the client's) reaches
/// the client as a generic error ack, its details only in the log. (A missing `State<T>`, which
/// this test used before, is now refused when the handler is registered: see
/// `extractors::missing_state_panics_at_registration_and_try_on_returns_it`.)
#[tokio::test]
async fn missing_extension_is_a_server_error_the_client_can_read() {
    let app = app().await;
    let mut c = connected(app.addr).await;
    c.send(r#"421["needs-extension"]"#).await;
    assert_eq!(
        c.recv_json("431").await,
        json!([{"error": {"code": "internal", "message": "internal server error"}}])
    );
}

#[tokio::test]
async fn try_data_lets_the_handler_see_the_failure() {
    let app = app().await;
    let mut c = connected(app.addr).await;
    c.send(r#"421["try",5]"#).await;
    assert_eq!(c.recv_json("431").await, json!([{"ok": 5}]));
    c.send(r#"422["try","five"]"#).await;
    assert_eq!(
        c.recv_json("432").await,
        json!([{"rejected": "invalid_data"}])
    );
}

#[tokio::test]
async fn binary_attachments_in_and_out() {
    let app = app().await;
    let mut c = connected(app.addr).await;
    c.send(r#"451-3["bin","label",{"_placeholder":true,"num":0}]"#)
        .await;
    c.send_binary(&[1, 2, 3]).await;
    assert_eq!(
        c.recv_text().await,
        r#"461-3["label",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(c.recv().await, Frame::Binary(vec![3, 2, 1]));
}

#[tokio::test]
async fn catch_all_sees_the_event_name_and_custom_extractors_work() {
    let app = app().await;
    let mut c = connected(app.addr).await;
    c.send(r#"424["whatever",1,2,3]"#).await;
    assert_eq!(c.recv_json("434").await, json!(["whatever", 3]));
}

#[tokio::test]
async fn a_panicking_handler_costs_its_socket_not_the_connection() {
    let app = app().await;
    let mut c = connected(app.addr).await;
    c.send(r#"421["boom"]"#).await;
    assert_eq!(c.recv_text().await, "41", "the socket is disconnected");
    c.send(r#"40{"token":"good"}"#).await;
    assert!(
        c.recv_text().await.starts_with("40{"),
        "and may connect again"
    );
    c.send(r#"422["chat",{"text":"still here"}]"#).await;
    assert_eq!(c.recv_json("432").await[0]["echoed"], "still here");
}

#[tokio::test]
async fn http_parts_of_the_handshake_are_extractable() {
    let app = app().await;
    let mut c = Client::open_with(app.addr, "&room=blue").await;
    c.send(r#"40{"token":"good"}"#).await;
    assert!(c.recv_text().await.starts_with("40{"));
    c.send(r#"421["http"]"#).await;
    assert_eq!(
        c.recv_json("431").await,
        json!([{
            "ua": true, "room": "blue", "session_cookie": "abc",
            "loopback": true, "engine_addr": c.local_addr().to_string(),
            "engine_addr_is_connect_info": true, "transport": "websocket",
        }])
    );
}

/// Under `axum::serve(.., into_make_service_with_connect_info::<SocketAddr>())` a polling
/// session's address is the one of its handshake request, read from axum's `ConnectInfo`.
#[tokio::test]
async fn remote_addr_of_a_polling_session_is_the_handshake_peer() {
    let app = app().await;
    let base = "/socket.io/?EIO=4&transport=polling";
    let (handshake_peer, status, open) = http_request(app.addr, "GET", base, "").await;
    assert_eq!(status, 200, "{open}");
    let open: serde_json::Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let sid = open["sid"].as_str().unwrap();
    let path = format!("{base}&sid={sid}");
    let post = |body: &'static str| {
        let path = path.clone();
        async move {
            let (_, status, reply) = http_request(app.addr, "POST", &path, body).await;
            assert_eq!(status, 200, "{reply}");
        }
    };
    post(r#"40{"token":"good"}"#).await;
    let (_, _, connected) = http_request(app.addr, "GET", &path, "").await;
    assert!(connected.starts_with("40{"), "{connected}");
    post(r#"421["http"]"#).await;
    let mut received = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !received.contains("431") {
        assert!(tokio::time::Instant::now() < deadline, "no ack: {received}");
        let (peer, _, body) = http_request(app.addr, "GET", &path, "").await;
        assert_ne!(peer, handshake_peer, "each request has its own connection");
        received.push_str(&body);
    }
    let ack = received
        .split('\u{1e}')
        .find_map(|p| p.strip_prefix("431"))
        .unwrap();
    let ack: serde_json::Value = serde_json::from_str(ack).unwrap();
    assert_eq!(ack[0]["engine_addr"], json!(handshake_peer.to_string()));
    assert_eq!(ack[0]["transport"], json!("polling"));
}

#[tokio::test]
async fn disconnect_handler_gets_the_reason_and_the_session() {
    let app = app().await;
    let mut c = connected(app.addr).await;
    c.send("41").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(entry) = app.left.lock().await.first() {
            assert_eq!(entry, "ann client namespace disconnect");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "disconnect handler never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn http_handler_emits_into_a_room() {
    let app = app().await;
    let mut inside = connected(app.addr).await;
    let mut outside = Client::open(app.addr).await;
    outside.send("40/open,").await;
    assert!(outside.recv_text().await.starts_with("40/open,{"));
    let (status, body) = post_json(app.addr, "/send", r#"{"room":"lobby","text":"hello"}"#).await;
    assert_eq!((status, body.as_str()), (200, "true"));
    assert_eq!(inside.recv_text().await, r#"42["news","hello"]"#);
    assert_eq!(app.rest_calls.load(Ordering::SeqCst), 1);
    outside.expect_silence(Duration::from_millis(200)).await;
}

#[derive(Default)]
struct Counter {
    hits: AtomicUsize,
}

impl NamespaceHandler for Counter {
    async fn on_connect(
        &self,
        _socket: SocketRef,
        auth: Option<serde_json::Value>,
    ) -> Result<(), ConnectionRefusedError> {
        match auth {
            Some(_) => Ok(()),
            None => Err(ConnectionRefusedError::new("auth required")),
        }
    }

    async fn on_event(&self, _socket: SocketRef, event: Event) -> Reply {
        match event.name.as_str() {
            "hit" => Json(self.hits.fetch_add(1, Ordering::SeqCst) + 1).into_ack(),
            _ => Reply::None,
        }
    }
}

#[tokio::test]
async fn class_style_namespace_dispatches_by_event_name() {
    let (layer, io) = SocketIo::builder().build_layer();
    let _ = io.ns_class("/counter", Counter::default());
    let addr = serve(axum::Router::new().layer(layer)).await;
    let mut c = Client::open(addr).await;
    c.send("40/counter,").await;
    assert_eq!(
        c.recv_text().await,
        r#"44/counter,{"message":"auth required"}"#
    );
    c.send("40/counter,{}").await;
    assert!(c.recv_text().await.starts_with("40/counter,{"));
    c.send(r#"42/counter,1["hit"]"#).await;
    assert_eq!(c.recv_text().await, "43/counter,1[1]");
    c.send(r#"42/counter,2["hit"]"#).await;
    assert_eq!(c.recv_text().await, "43/counter,2[2]");
}
