//! One rule for what an event handler's return value becomes (issue 14, item 1), the same for
//! an explicit `AckSender::send`: `Err(e)` is sent as the ack (as axum turns both arms of a
//! `Result` into a response), `None` is an empty ack, `NoAck` sends nothing, and
//! `ack.send(x)` puts exactly the bytes on the wire that returning `x` does.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use sockeye::prelude::*;

use crate::common::{F, Ws, builder, serve};

/// How long a client that must get nothing is watched.
const QUIET: Duration = Duration::from_millis(200);

#[derive(Serialize)]
struct Payload {
    name: &'static str,
    n: u32,
    blob: Bytes,
}

fn payload() -> Payload {
    Payload {
        name: "p",
        n: 1,
        blob: Bytes::from_static(&[7, 8, 9]),
    }
}

async fn server() -> std::net::SocketAddr {
    let io = builder().build();
    io.ns("/", || ())
        .on(
            "check",
            |Data(n): Data<i64>| -> Result<Json<i64>, Json<Value>> {
                if n >= 0 {
                    Ok(Json(n))
                } else {
                    Err(Json(json!({"error": "negative", "got": n})))
                }
            },
        )
        .on(
            "unit-or-text",
            |Data(ok): Data<bool>| -> Result<(), String> {
                if ok {
                    Ok(())
                } else {
                    Err("refused".to_owned())
                }
            },
        )
        .on("find", |Data(key): Data<String>| {
            (key == "a").then_some(Json(1))
        })
        .on("quiet", || NoAck)
        .on("quiet-err", || Err::<Json<u8>, NoAck>(NoAck))
        .on("nothing", || ())
        .on("returned", || Json(payload()))
        .on("explicit", |ack: AckSender| {
            ack.send(Json(payload())).unwrap();
        })
        .on("returned-tuple", || (1, "two", json!({"three": 3})))
        .on("explicit-tuple", |ack: AckSender| {
            ack.send((1, "two", json!({"three": 3}))).unwrap();
        })
        .on("returned-err", || Err::<(), _>(Json("e")))
        .on("explicit-err", |ack: AckSender| {
            ack.send(Err::<(), _>(Json("e"))).unwrap();
        })
        .on("explicit-none", |ack: AckSender| {
            ack.send(None::<Json<u8>>).unwrap();
        })
        .on("explicit-noack", |ack: AckSender| {
            ack.send(NoAck).unwrap();
        });
    serve(&io).await
}

#[tokio::test]
async fn err_is_sent_as_the_ack() {
    let (mut ws, _) = Ws::open_connected(server().await).await;
    ws.send(r#"421["check",5]"#).await;
    ws.expect("431[5]").await;
    ws.send(r#"422["check",-1]"#).await;
    ws.expect(r#"432[{"error":"negative","got":-1}]"#).await;
    ws.send(r#"423["unit-or-text",true]"#).await;
    ws.expect("433[]").await;
    ws.send(r#"424["unit-or-text",false]"#).await;
    ws.expect(r#"434["refused"]"#).await;
    // Without an ack request, neither arm is sent.
    ws.send(r#"42["check",-1]"#).await;
    ws.expect_silence(QUIET).await;
}

#[tokio::test]
async fn none_sends_an_empty_ack_and_noack_sends_nothing() {
    let (mut ws, _) = Ws::open_connected(server().await).await;
    ws.send(r#"421["find","a"]"#).await;
    ws.expect("431[1]").await;
    ws.send(r#"422["find","b"]"#).await;
    ws.expect("432[]").await;
    ws.send(r#"423["nothing"]"#).await;
    ws.expect("433[]").await;
    ws.send(r#"424["quiet"]"#).await;
    ws.send(r#"425["quiet-err"]"#).await;
    ws.send(r#"426["explicit-noack"]"#).await;
    ws.expect_silence(QUIET).await;
    ws.send(r#"427["explicit-none"]"#).await;
    ws.expect("437[]").await;
    ws.expect_silence(QUIET).await;
}

/// The frames of the ack to `42<id>["<event>"]`: its text frame and attachments.
async fn ack_frames(ws: &mut Ws, event: &str, attachments: usize) -> Vec<F> {
    ws.send(&format!(r#"429["{event}"]"#)).await;
    let mut frames = vec![ws.recv().await];
    for _ in 0..attachments {
        frames.push(ws.recv().await);
    }
    frames
}

#[tokio::test]
async fn ack_send_and_the_return_value_produce_the_same_bytes() {
    let (mut ws, _) = Ws::open_connected(server().await).await;
    let returned = ack_frames(&mut ws, "returned", 1).await;
    assert_eq!(
        returned,
        vec![
            F::T(r#"461-9[{"name":"p","n":1,"blob":{"_placeholder":true,"num":0}}]"#.into()),
            F::B(vec![7, 8, 9]),
        ]
    );
    assert_eq!(ack_frames(&mut ws, "explicit", 1).await, returned);

    let returned = ack_frames(&mut ws, "returned-tuple", 0).await;
    assert_eq!(returned, vec![F::T(r#"439[1,"two",{"three":3}]"#.into())]);
    assert_eq!(ack_frames(&mut ws, "explicit-tuple", 0).await, returned);

    let returned = ack_frames(&mut ws, "returned-err", 0).await;
    assert_eq!(returned, vec![F::T(r#"439["e"]"#.into())]);
    assert_eq!(ack_frames(&mut ws, "explicit-err", 0).await, returned);
    ws.expect_silence(QUIET).await;
}
