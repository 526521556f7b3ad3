//! Extractors as strict as axum 0.8's (issue 14, item 4): `Option<T>` means absent, not any
//! failure; `Result<T, Rejection>` sees every failure; a handler that needs a state nobody
//! registered is refused when it is registered. And a plain closure is a handler like any
//! other. Raw frames over WebSocket.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sockeye::prelude::*;
use sockeye::{RegisterError, SocketIo};

use crate::common::{Ws, builder, serve};

/// How long a client that must get nothing is watched.
const QUIET: Duration = Duration::from_millis(200);

#[derive(Debug, Deserialize)]
struct Token {
    token: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct User {
    name: String,
}

#[derive(Clone, Debug)]
struct NotRegistered;

/// Opens a session and sends CONNECT for `/` with `auth` (`""` for none); returns the reply.
async fn connect(addr: std::net::SocketAddr, auth: &str) -> (Ws, String) {
    let mut ws = Ws::open(addr).await;
    ws.send(&format!("40{auth}")).await;
    let reply = ws.recv_text().await;
    (ws, reply)
}

/// The ack of `42<id>[..]` on `/`: its arguments.
async fn ack(ws: &mut Ws, id: u32) -> Value {
    let text = ws.recv_text().await;
    let body = text
        .strip_prefix(&format!("43{id}"))
        .unwrap_or_else(|| panic!("not ack {id}: {text}"));
    serde_json::from_str(body).unwrap()
}

/// `Option<Auth<T>>`: `None` without an auth payload, the value with a valid one, and a
/// rejection (not `None`) with one of the wrong shape: a refused connection in a connect
/// handler, an error ack in an event handler. `Option<Session<T>>`: `None` until a session of
/// that type is saved.
#[tokio::test]
async fn option_means_absent_and_an_invalid_present_value_is_still_a_rejection() {
    let io = builder().build();
    io.ns(
        "/strict",
        |socket: SocketRef, auth: Option<Auth<Token>>| async move {
            socket.emit("auth", &auth.map(|Auth(t)| t.token)).unwrap();
        },
    );
    io.ns("/", || ())
        .on("whoami", |auth: Option<Auth<Token>>| {
            Json(auth.map(|Auth(t)| t.token))
        })
        .on("login", |socket: SocketRef, Data(name): Data<String>| {
            socket.save_session(User { name });
        })
        .on("me", |user: Option<Session<User>>| {
            Json(user.map(|u| u.name.clone()))
        });
    let addr = serve(&io).await;

    // Connect handler: absent, valid, wrong shape.
    let mut ws = Ws::open(addr).await;
    ws.send("40/strict,").await;
    ws.expect_connect("/strict").await;
    ws.expect(r#"42/strict,["auth",null]"#).await;
    let mut ws = Ws::open(addr).await;
    ws.send(r#"40/strict,{"token":"t"}"#).await;
    ws.expect_connect("/strict").await;
    ws.expect(r#"42/strict,["auth","t"]"#).await;
    let mut ws = Ws::open(addr).await;
    ws.send(r#"40/strict,{"token":7}"#).await;
    let refusal = ws.recv_text().await;
    let refusal: Value = serde_json::from_str(
        refusal
            .strip_prefix("44/strict,")
            .unwrap_or_else(|| panic!("expected CONNECT_ERROR, got {refusal}")),
    )
    .unwrap();
    assert_eq!(
        refusal["data"],
        json!({"code": "invalid_auth"}),
        "{refusal}"
    );
    let message = refusal["message"].as_str().unwrap();
    assert!(
        message.starts_with("the auth payload is not a valid `") && message.contains("Token"),
        "{message}"
    );
    ws.expect_silence(QUIET).await;

    // Event handler: absent and valid read as such; the wrong shape is an error ack.
    let (mut none, reply) = connect(addr, "").await;
    assert!(reply.starts_with("40{"), "{reply}");
    none.send(r#"421["whoami"]"#).await;
    assert_eq!(ack(&mut none, 1).await, json!([null]));
    let (mut good, _) = connect(addr, r#"{"token":"t"}"#).await;
    good.send(r#"421["whoami"]"#).await;
    assert_eq!(ack(&mut good, 1).await, json!(["t"]));
    let (mut bad, reply) = connect(addr, r#"{"token":7}"#).await;
    assert!(reply.starts_with("40{"), "{reply}");
    bad.send(r#"421["whoami"]"#).await;
    let error = ack(&mut bad, 1).await;
    assert_eq!(error[0]["error"]["code"], "invalid_auth", "{error}");

    // Option<Session<T>>: None before the session is saved, Some after.
    none.send(r#"422["me"]"#).await;
    assert_eq!(ack(&mut none, 2).await, json!([null]));
    none.send(r#"423["login","ann"]"#).await;
    assert_eq!(ack(&mut none, 3).await, json!([]));
    none.send(r#"424["me"]"#).await;
    assert_eq!(ack(&mut none, 4).await, json!(["ann"]));
}

/// `Option<AckSender>`: `None` when the client asked for no ack (the handler still runs),
/// the handle when it did; `Option<Data<T>>`: `None` for an event without arguments, a
/// rejection for arguments of the wrong shape.
#[tokio::test]
async fn option_ack_sender_is_none_without_an_ack_and_option_data_none_without_arguments() {
    let io = builder().build();
    io.ns("/", || ())
        .on(
            "maybe",
            |socket: SocketRef, ack: Option<AckSender>| match ack {
                Some(ack) => ack.send("acked").unwrap(),
                None => socket.emit("no-ack", &true).unwrap(),
            },
        )
        .on("count", |data: Option<Data<Vec<u32>>>| {
            Json(data.map(|Data(v)| v.len()))
        });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send(r#"42["maybe"]"#).await;
    ws.expect(r#"42["no-ack",true]"#).await;
    ws.send(r#"425["maybe"]"#).await;
    ws.expect(r#"435["acked"]"#).await;
    ws.expect_silence(QUIET).await;

    ws.send(r#"426["count"]"#).await;
    ws.expect("436[null]").await;
    ws.send(r#"427["count",[1,2,3]]"#).await;
    ws.expect("437[3]").await;
    ws.send(r#"428["count","three"]"#).await;
    assert_eq!(
        ack(&mut ws, 8).await[0]["error"]["code"],
        "invalid_data",
        "a present but invalid argument is a rejection, not None"
    );
}

/// `Result<T, Rejection>` sees every failure, client-caused and server-side, with its code,
/// and the handler runs anyway.
#[tokio::test]
async fn result_of_rejection_sees_every_failure() {
    let io = builder().build();
    io.ns("/", || ())
        .on("login", |socket: SocketRef| {
            socket.save_session(User { name: "ann".into() });
        })
        .on(
            "codes",
            |socket: SocketRef,
             data: Result<Data<u32>, Rejection>,
             auth: Result<Auth<Token>, Rejection>,
             ext: Result<Extension<NotRegistered>, Rejection>,
             user: Result<Session<User>, Rejection>,
             ack: Result<AckSender, Rejection>| {
                let code =
                    |r: &Rejection| json!({"code": r.code(), "client": r.is_client_facing()});
                let report = json!({
                    "data": data.as_ref().map_or_else(code, |Data(n)| json!(n)),
                    "auth": auth.as_ref().map_or_else(code, |Auth(t)| json!(t.token)),
                    "ext": ext.as_ref().map_or_else(code, |_| json!("present")),
                    "session": user.as_ref().map_or_else(code, |u| json!(u.name)),
                    "ack": ack.as_ref().map_or_else(code, |_| json!("present")),
                });
                match ack {
                    Ok(ack) => ack.send(Json(report)).unwrap(),
                    Err(_) => socket.emit("codes", &report).unwrap(),
                }
            },
        );
    let addr = serve(&io).await;

    let (mut ws, _) = connect(addr, "").await;
    ws.send(r#"42["codes","x"]"#).await;
    let report = ws.recv_text().await;
    let report: Value = serde_json::from_str(
        report
            .strip_prefix(r#"42["codes","#)
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or_else(|| panic!("not the report: {report}")),
    )
    .unwrap();
    let client = |code: &str| json!({"code": code, "client": true});
    assert_eq!(
        report,
        json!({
            "data": client("invalid_data"),
            "auth": client("missing_auth"),
            "ext": {"code": "missing_extension", "client": false},
            "session": client("no_session"),
            "ack": client("no_ack"),
        })
    );

    let (mut ws, _) = connect(addr, r#"{"token":7}"#).await;
    ws.send(r#"42["codes"]"#).await;
    let report = ws.recv_text().await;
    let report: Value = serde_json::from_str(
        report
            .strip_prefix(r#"42["codes","#)
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or_else(|| panic!("not the report: {report}")),
    )
    .unwrap();
    assert_eq!(report["auth"], client("invalid_auth"), "{report}");

    // Everything present: the same handler sees the values, and acknowledges.
    let (mut ws, _) = connect(addr, r#"{"token":"t"}"#).await;
    ws.send(r#"421["login"]"#).await;
    assert_eq!(ack(&mut ws, 1).await, json!([]));
    ws.send(r#"422["codes",5]"#).await;
    assert_eq!(
        ack(&mut ws, 2).await,
        json!([{
            "data": 5,
            "auth": "t",
            "ext": {"code": "missing_extension", "client": false},
            "session": "ann",
            "ack": "present",
        }])
    );
}

/// A handler taking `State<T>` for a `T` no state was registered for can never run: `.on(..)`
/// panics at registration with the `MissingState` message, `.try_on(..)` returns the error,
/// and nothing is registered. With the state registered, the same handler is accepted.
#[tokio::test]
async fn missing_state_panics_at_registration_and_try_on_returns_it() {
    fn needs_state(State(_s): State<NotRegistered>) -> &'static str {
        "ran"
    }

    let io = builder().build();
    let err = io
        .ns("/", || ())
        .try_on("needs-state", needs_state)
        .unwrap_err();
    let RegisterError::MissingState(name) = &err else {
        panic!("expected MissingState, got {err:?}");
    };
    assert!(name.ends_with("NotRegistered"), "{name}");
    let message = err.to_string();
    assert!(
        message.starts_with("a handler takes State<") && message.contains("with_state"),
        "{message}"
    );
    // Wrapping the argument does not get around the check.
    assert!(matches!(
        io.ns("/", || ())
            .try_on("wrapped", |_s: Result<State<NotRegistered>, Rejection>| ()),
        Err(RegisterError::MissingState(_))
    ));

    let panicked = expected_panic(std::panic::AssertUnwindSafe(|| {
        io.ns("/", || ()).on("needs-state", needs_state)
    }))
    .expect_err("on(..) must panic for a handler that can never run");
    let text = panicked
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panicked.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap();
    assert_eq!(text, message, "the panic is the MissingState message");
    // Connect and disconnect handlers are checked the same way.
    assert!(
        expected_panic(std::panic::AssertUnwindSafe(|| {
            io.ns("/c", |State(_s): State<NotRegistered>| ())
        }))
        .is_err()
    );
    assert_eq!(io.namespaces(), ["/"], "a refused namespace is not created");
    assert!(
        expected_panic(std::panic::AssertUnwindSafe(|| {
            io.ns("/", || ())
                .on_disconnect(|State(_s): State<NotRegistered>| ())
        }))
        .is_err()
    );
    assert!(matches!(
        io.dyn_ns("/d-{x}", |State(_s): State<NotRegistered>| ()),
        Err(RegisterError::MissingState(_))
    ));

    // Nothing was registered: the events have no handler, so no ack; the refused dynamic
    // namespace does not exist.
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send(r#"421["needs-state"]"#).await;
    ws.send(r#"422["wrapped"]"#).await;
    ws.expect_silence(QUIET).await;
    ws.send("40/d-1,").await;
    ws.expect(r#"44/d-1,{"message":"Invalid namespace"}"#).await;

    // Registered, the same handler is accepted and runs.
    let io = SocketIo::builder().with_state(NotRegistered).build();
    io.ns("/", || ())
        .try_on("needs-state", needs_state)
        .unwrap();
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send(r#"421["needs-state"]"#).await;
    ws.expect(r#"431["ran"]"#).await;
}

/// A plain closure is a handler: async or not, capturing or not, with extractor arguments.
#[tokio::test]
async fn a_plain_closure_is_a_handler() {
    let io = builder().build();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    io.ns("/", |socket: SocketRef| async move {
        socket.emit("hello", "closure").unwrap();
    })
    .on(
        "shout",
        |socket: SocketRef, Data(x): Data<String>| async move {
            socket.emit("shouted", &x.to_uppercase()).unwrap();
        },
    )
    .on("len", |Data(x): Data<String>| Json(x.len()))
    .on("count", move |_socket: SocketRef| {
        let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Json(n) }
    });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.expect(r#"42["hello","closure"]"#).await;
    ws.send(r#"42["shout","hi"]"#).await;
    ws.expect(r#"42["shouted","HI"]"#).await;
    ws.send(r#"421["shout","ho"]"#).await;
    ws.expect(r#"42["shouted","HO"]"#).await;
    ws.expect("431[]").await;
    ws.send(r#"422["len","four"]"#).await;
    ws.expect("432[4]").await;
    ws.send(r#"423["count"]"#).await;
    ws.expect("433[1]").await;
    ws.send(r#"424["count"]"#).await;
    ws.expect("434[2]").await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// `catch_unwind` of a registration the test expects to panic (in sockeye's `src/`, on
/// purpose): not counted by the hostile-input tests' panic watch.
fn expected_panic<R>(
    f: std::panic::AssertUnwindSafe<impl FnOnce() -> R>,
) -> std::thread::Result<R> {
    sockeye_testkit::panics::expected(|| std::panic::catch_unwind(f))
}
