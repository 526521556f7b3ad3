//! Server behaviour through raw frames: connect step, ordering, acks, rooms, broadcasts,
//! dynamic namespaces, sessions, disconnects.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{F, WAIT, Ws, ack_id, builder, eventually, serve};
use serde_json::{Value, json};
use sockeye::extract::{Auth, Data};
use sockeye::{
    AckError, AckSender, Args, ConnectionRefusedError, DisconnectReason, EmitError, Event,
    EventRejected, NoAck, SocketIo, SocketRef,
};
use tokio::sync::mpsc;

/// Registers `/` reporting each disconnect reason on the returned channel.
fn report_disconnects(io: &SocketIo) -> mpsc::Receiver<DisconnectReason> {
    let (tx, rx) = mpsc::channel(4);
    io.ns("/", no_auth())
        .on_disconnect(move |_s: SocketRef, reason: DisconnectReason| {
            let tx = tx.clone();
            async move {
                tx.send(reason).await.unwrap();
            }
        });
    rx
}

fn no_auth() -> impl Fn(SocketRef) -> std::future::Ready<()> + Send + Sync + 'static {
    |_s| std::future::ready(())
}

#[tokio::test]
async fn refusal_carries_message_and_data() {
    let io = builder().build();
    io.ns("/", |_s: SocketRef, auth: Option<Auth<Value>>| async move {
        if auth.as_ref().and_then(|Auth(a)| a.get("reject")) == Some(&json!(true)) {
            return Err(ConnectionRefusedError::with_data(
                "rejected by server",
                json!({"code": 4001, "reason": "auth.reject was set"}),
            ));
        }
        Ok(())
    });
    let addr = serve(&io).await;
    let mut ws = Ws::open(addr).await;
    ws.send(r#"40{"reject":true}"#).await;
    ws.expect(
        r#"44{"message":"rejected by server","data":{"code":4001,"reason":"auth.reject was set"}}"#,
    )
    .await;
    // The session stays usable: a later CONNECT without the flag succeeds.
    ws.send("40").await;
    ws.expect_connect("/").await;
}

#[tokio::test]
async fn connect_middlewares_run_in_order_and_can_refuse() {
    let io = builder().build();
    let order = Arc::new(Mutex::new(Vec::new()));
    let (o1, o2) = (order.clone(), order.clone());
    io.ns("/", no_auth())
        .use_connect(move |_s: SocketRef| {
            o1.lock().unwrap().push("first");
            async { Ok::<(), ConnectionRefusedError>(()) }
        })
        .use_connect(move |s: SocketRef| {
            o2.lock().unwrap().push("second");
            let refuse = s.auth().is_some_and(|a| a.get("bad").is_some());
            async move {
                if refuse {
                    Err(ConnectionRefusedError::new("bad auth"))
                } else {
                    Ok(())
                }
            }
        });
    let addr = serve(&io).await;
    let mut ws = Ws::open(addr).await;
    ws.send(r#"40{"bad":1}"#).await;
    ws.expect(r#"44{"message":"bad auth"}"#).await;
    assert_eq!(*order.lock().unwrap(), ["first", "second"]);
    assert!(
        io.of("/").unwrap().sockets().is_empty(),
        "a refused socket is not kept"
    );
}

#[tokio::test]
async fn event_sent_right_after_connect_sees_the_connect_handler_finished() {
    let io = builder().build();
    io.ns("/", |socket: SocketRef| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        socket.extensions().insert(String::from("ready"));
    })
    .on("check", |socket: SocketRef, _e: Event| async move {
        Args::from_value(&socket.extensions().get::<String>()).unwrap()
    });
    let addr = serve(&io).await;
    let mut ws = Ws::open(addr).await;
    // No wait between CONNECT and the event.
    ws.send("40").await;
    ws.send(r#"421["check"]"#).await;
    ws.expect_connect("/").await;
    ws.expect(r#"431["ready"]"#).await;
}

#[tokio::test]
async fn events_of_one_socket_run_in_arrival_order() {
    let io = builder().build();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    io.ns("/", no_auth())
        .on("seq", move |_s: SocketRef, e: Event| {
            let seen = s2.clone();
            async move {
                let n: u64 = e.args.first().unwrap();
                // Earlier events sleep longer: only sequential handling keeps the order.
                tokio::time::sleep(Duration::from_millis(20u64.saturating_sub(n))).await;
                seen.lock().unwrap().push(n);
            }
        });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    for n in 0..20 {
        ws.send(&format!(r#"42["seq",{n}]"#)).await;
    }
    eventually("20 events handled", || seen.lock().unwrap().len() == 20).await;
    assert_eq!(*seen.lock().unwrap(), (0..20).collect::<Vec<u64>>());
}

#[tokio::test]
async fn concurrent_route_does_not_wait_for_a_slow_event() {
    let io = builder().build();
    io.ns("/", no_auth())
        .on_concurrent("slow", |_s: SocketRef, _e: Event| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            NoAck
        })
        .on("fast", |_s: SocketRef, _e: Event| async {});
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send(r#"421["slow"]"#).await;
    ws.send(r#"422["fast"]"#).await;
    assert_eq!(
        ws.recv_within(Duration::from_secs(3)).await,
        Some(F::T("432[]".into()))
    );
}

#[tokio::test]
async fn ack_rules_empty_none_unhandled_and_explicit() {
    let io = builder().build();
    io.ns("/", no_auth())
        .on("nothing", |_s: SocketRef, _e: Event| async {})
        .on("noack", |_s: SocketRef, _e: Event| async { NoAck })
        .on("later", |ack: AckSender| async move {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                ack.send(Args::from_value(&"late").unwrap()).unwrap();
            });
            // Ignored: the handle was taken.
            Args::from_value(&"ignored").unwrap()
        });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send(r#"421["nothing"]"#).await;
    ws.expect("431[]").await;
    ws.send(r#"422["noack"]"#).await;
    ws.send(r#"423["unhandled"]"#).await;
    ws.send(r#"424["later"]"#).await;
    ws.expect(r#"434["late"]"#).await;
    ws.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn escaped_event_name_is_decoded_before_lookup() {
    let io = builder().build();
    io.ns("/", no_auth())
        .on("ünïcødé-✓-🚀", |_s: SocketRef, e: Event| async move {
            e.args
        });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send(r#"427["\u00fcn\u00efc\u00f8d\u00e9-\u2713-\ud83d\ude80",1]"#)
        .await;
    ws.expect("437[1]").await;
}

#[tokio::test]
async fn catch_all_and_event_middleware() {
    let io = builder().build();
    io.ns("/", no_auth())
        .use_event(|_s: SocketRef, e: Event| async move {
            if e.name.as_str() == "forbidden" {
                Err(EventRejected("not allowed".into()))
            } else {
                Ok(e)
            }
        })
        .on_any(
            |_s: SocketRef, e: Event| async move { Args::from_value(&e.name.as_str()).unwrap() },
        );
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send(r#"421["forbidden"]"#).await;
    ws.send(r#"422["whatever"]"#).await;
    ws.expect(r#"432["whatever"]"#).await;
}

#[tokio::test]
async fn call_yields_the_ack_or_a_timeout_without_leaking() {
    let io = builder().build();
    let (tx, mut rx) = mpsc::channel(4);
    io.ns("/", move |socket: SocketRef| {
        let tx = tx.clone();
        async move {
            tokio::spawn(async move {
                let answered: Result<String, AckError> =
                    socket.call("ask", &1, Duration::from_secs(5)).await;
                let timed_out: Result<Value, AckError> =
                    socket.call("ask", &2, Duration::from_millis(200)).await;
                tx.send((answered.unwrap(), timed_out, socket.pending_acks()))
                    .await
                    .unwrap();
            });
        }
    });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    let first = ws.recv_text().await;
    let id: String = ack_id(&first);
    assert_eq!(first, format!(r#"42{id}["ask",1]"#));
    ws.send(&format!(r#"43{id}["yes"]"#)).await;
    let second = ws.recv_text().await;
    let (answered, timed_out, pending) = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answered, "yes");
    assert!(matches!(timed_out, Err(AckError::Timeout(_))));
    assert_eq!(pending, 0, "the timed-out ack was removed");
    // A late ack for the timed-out request is ignored; the socket keeps working.
    let id2: String = ack_id(&second);
    ws.send(&format!(r#"43{id2}["late"]"#)).await;
    assert_eq!(io.of("/").unwrap().sockets().len(), 1);
}

#[tokio::test]
async fn handler_awaiting_a_call_to_its_own_client_does_not_deadlock() {
    let io = builder().build();
    io.ns("/", no_auth())
        .on("relay", |socket: SocketRef, _e: Event| async move {
            let reply: Result<String, _> = socket.call("ping", &(), Duration::from_secs(5)).await;
            Args::from_value(&reply.unwrap_or_else(|e| e.to_string())).unwrap()
        });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send(r#"429["relay"]"#).await;
    let ask = ws.recv_text().await;
    let id: String = ack_id(&ask);
    ws.send(&format!(r#"43{id}["pong"]"#)).await;
    ws.expect(r#"439["pong"]"#).await;
}

#[tokio::test]
async fn rooms_broadcast_once_except_and_sender_exclusion() {
    let io = builder().build();
    io.ns("/", no_auth())
        .on("join", |socket: SocketRef, e: Event| async move {
            let rooms: Vec<String> = e.args.deserialize().unwrap();
            for r in rooms {
                socket.join(r);
            }
            let mut rooms = socket.rooms();
            rooms.retain(|r| r != socket.id().as_str());
            Args::from_value(&rooms).unwrap()
        })
        .on("to-ab", |socket: SocketRef, _e: Event| async move {
            socket.to(["a", "b"]).emit("msg", "ab").await.unwrap();
        })
        .on("all-but-b", |socket: SocketRef, _e: Event| async move {
            socket
                .broadcast()
                .except("b")
                .emit("msg", "not-b")
                .await
                .unwrap();
        });
    let addr = serve(&io).await;
    let (mut s1, _) = Ws::open_connected(addr).await;
    let (mut s2, _) = Ws::open_connected(addr).await;
    let (mut s3, _) = Ws::open_connected(addr).await;
    s1.send(r#"421["join","a","b"]"#).await;
    s1.expect(r#"431[["a","b"]]"#).await;
    s2.send(r#"421["join","a","b"]"#).await;
    s2.expect(r#"431[["a","b"]]"#).await;
    s3.send(r#"421["join","b"]"#).await;
    s3.expect(r#"431[["b"]]"#).await;

    // s2 is in both rooms: it gets the message once; the sender gets nothing.
    s1.send(r#"42["to-ab"]"#).await;
    s2.expect(r#"42["msg","ab"]"#).await;
    s3.expect(r#"42["msg","ab"]"#).await;
    s2.expect_silence(Duration::from_millis(150)).await;
    s1.expect_silence(Duration::from_millis(50)).await;

    // Whole namespace from the server handle, then room exclusion.
    io.emit("hello", "everyone").await.unwrap();
    for s in [&mut s1, &mut s2, &mut s3] {
        s.expect(r#"42["hello","everyone"]"#).await;
    }
    let (mut s4, _) = Ws::open_connected(addr).await;
    s4.send(r#"42["all-but-b"]"#).await;
    s1.expect_silence(Duration::from_millis(100)).await;
    s4.expect_silence(Duration::from_millis(50)).await;

    // Leave all and close a room through operators.
    io.of("/").unwrap().to("a").leave("a").await.unwrap();
    assert!(io.of("/").unwrap().to("a").sockets().is_empty());
    assert_eq!(io.of("/").unwrap().to("b").sockets().len(), 3);
}

#[tokio::test]
async fn broadcast_with_ack_yields_each_result() {
    let io = builder().build();
    io.ns("/", no_auth());
    let addr = serve(&io).await;
    let (mut s1, id1) = Ws::open_connected(addr).await;
    let (mut s2, _id2) = Ws::open_connected(addr).await;
    let io2 = io.clone();
    let task = tokio::spawn(async move {
        io2.of("/")
            .unwrap()
            .timeout(Duration::from_millis(500))
            .emit_with_ack("q", &1)
            .await
            .unwrap()
            .collect_all()
            .await
    });
    let f1 = s1.recv_text().await;
    let f2 = s2.recv_text().await;
    assert_eq!(f1, f2, "one packet, one ack id, same bytes for both");
    let id: String = ack_id(&f1);
    s1.send(&format!(r#"43{id}["a"]"#)).await;
    // s2 never answers: it times out.
    let results = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    assert_eq!(results.len(), 2);
    for (sid, r) in results {
        if sid.as_str() == id1 {
            assert_eq!(r.unwrap().first::<String>().unwrap(), "a");
        } else {
            assert!(matches!(r, Err(AckError::Timeout(_))));
        }
    }
    for s in io.of("/").unwrap().sockets() {
        assert_eq!(s.pending_acks(), 0);
    }
}

#[tokio::test]
async fn dynamic_namespaces_by_pattern_predicate_and_catch_all() {
    let io = builder().build();
    io.dyn_ns("/room-{id}", |socket: SocketRef| async move {
        let id = socket.ns_params().get("id").unwrap_or("").to_owned();
        socket.emit("id", &id).unwrap();
    })
    .unwrap();
    io.dyn_ns_fn(
        |name| name.starts_with("/pred-"),
        |socket: SocketRef| async move {
            socket.emit("pred", socket.ns()).unwrap();
        },
    );
    let addr = serve(&io).await;
    let mut ws = Ws::open(addr).await;
    ws.send("40/room-42,").await;
    let sid = ws.expect_connect("/room-42").await;
    ws.expect(r#"42/room-42,["id","42"]"#).await;
    ws.send("40/pred-x,").await;
    ws.expect_connect("/pred-x").await;
    ws.expect(r#"42/pred-x,["pred","/pred-x"]"#).await;
    ws.send("40/other,").await;
    ws.expect(r#"44/other,{"message":"Invalid namespace"}"#)
        .await;
    assert!(io.namespaces().contains(&"/room-42".to_owned()));
    assert!(io.get_socket("/room-42", &sid.as_str().into()).is_some());
    // The child namespace goes away with its last socket.
    ws.send("41/room-42,").await;
    eventually("empty dynamic namespace removed", || {
        !io.namespaces().contains(&"/room-42".to_owned())
    })
    .await;
    assert!(io.of("/room-42").is_err());

    io.ns_any(|_s: SocketRef| async {});
    ws.send("40/anything,").await;
    ws.expect_connect("/anything").await;
}

#[tokio::test]
async fn unregistered_namespace_is_an_error() {
    let io = builder().build();
    assert!(io.of("/nope").is_err());
    assert!(io.of("/").is_ok(), "the main namespace always exists");
    io.emit("x", &1).await.unwrap();
    assert!(matches!(
        io.server_side_emit("/nope", "x", &1).await,
        Err(EmitError::BadNamespace(_))
    ));
    io.server_side_emit("/", "x", &1).await.unwrap();
    let answers = io
        .server_side_emit_with_ack("/", "x", &1, Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(answers.expected(), 0, "a single node has nobody to ask");
}

#[tokio::test]
async fn disconnect_handler_sees_rooms_and_session_then_they_are_dropped() {
    let io = builder().build();
    let (tx, mut rx) = mpsc::channel(4);
    let kept: Arc<Mutex<Option<SocketRef>>> = Arc::default();
    let kept2 = kept.clone();
    io.ns("/", move |socket: SocketRef| {
        let kept = kept2.clone();
        async move {
            socket.join("r1");
            socket.save_session(7u32);
            socket.extensions().insert("ext");
            *kept.lock().unwrap() = Some(socket);
        }
    })
    .on_disconnect(move |socket: SocketRef, reason: DisconnectReason| {
        let tx = tx.clone();
        async move {
            let rooms = socket.rooms();
            let session = socket.get_session::<u32>();
            tx.send((reason, rooms.len(), session)).await.unwrap();
        }
    });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send("41").await;
    let (reason, rooms, session) = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reason, DisconnectReason::ClientDisconnect);
    assert_eq!(rooms, 2, "own id room and r1");
    assert_eq!(session, Some(7));
    let socket = kept.lock().unwrap().clone().unwrap();
    eventually("state dropped", || socket.get_session::<u32>().is_none()).await;
    assert!(!socket.extensions().contains::<&str>());
    assert!(socket.rooms().is_empty());
    assert!(matches!(socket.emit("x", &1), Err(EmitError::Disconnected)));
}

#[tokio::test]
async fn transport_close_reaches_the_disconnect_handler() {
    let io = builder().build();
    let mut rx = report_disconnects(&io);
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.ws.close(None).await.unwrap();
    let reason = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reason, DisconnectReason::TransportClose);
}

#[tokio::test]
async fn server_disconnect_sends_disconnect_and_keeps_other_namespaces() {
    let io = builder().build();
    io.ns("/", no_auth())
        .on("bye", |socket: SocketRef, _e: Event| async move {
            socket.disconnect();
        });
    io.ns("/custom", no_auth())
        .on("ping", |_s: SocketRef, _e: Event| async {});
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send("40/custom,").await;
    ws.expect_connect("/custom").await;
    ws.send(r#"42["bye"]"#).await;
    ws.expect("41").await;
    ws.send(r#"42/custom,1["ping"]"#).await;
    ws.expect("43/custom,1[]").await;
}

#[tokio::test]
async fn disconnect_all_disconnects_every_socket() {
    let io = builder().build();
    io.ns("/", no_auth());
    let addr = serve(&io).await;
    let (mut s1, _) = Ws::open_connected(addr).await;
    let (mut s2, _) = Ws::open_connected(addr).await;
    io.disconnect_all();
    s1.expect("41").await;
    s2.expect("41").await;
    assert!(io.of("/").unwrap().sockets().is_empty());
}

#[tokio::test]
async fn full_inbox_closes_the_client_after_the_timeout() {
    let io = SocketIo::builder()
        .inbox_capacity(1)
        .inbox_timeout(Duration::from_millis(200))
        .build();
    io.ns("/", no_auth())
        .on("stuck", |_s: SocketRef, _e: Event| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    for _ in 0..3 {
        ws.send(r#"42["stuck"]"#).await;
    }
    ws.expect_closed().await;
}

#[tokio::test]
async fn reserved_event_names_are_refused() {
    let io = builder().build();
    io.ns("/", |socket: SocketRef| async move {
        assert!(matches!(
            socket.emit("connect", &1),
            Err(EmitError::ReservedEvent(_))
        ));
        socket.emit("ok", &1).unwrap();
    });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.expect(r#"42["ok",1]"#).await;
}

#[tokio::test]
async fn handshake_parts_are_visible_to_the_connect_step() {
    let io = builder().build();
    let (tx, mut rx) = mpsc::channel(1);
    io.ns("/", move |socket: SocketRef| {
        let tx = tx.clone();
        async move {
            let query = socket.request().uri.query().unwrap_or("").to_owned();
            tx.send((query, socket.remote_addr().is_some()))
                .await
                .unwrap();
        }
    });
    let addr = serve(&io).await;
    let _ws = Ws::open_connected(addr).await;
    let (query, has_addr) = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(query.contains("EIO=4"), "{query}");
    assert!(has_addr);
}

#[tokio::test]
async fn close_shuts_every_session_with_server_shutdown() {
    let io = builder().build();
    let mut rx = report_disconnects(&io);
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    tokio::time::timeout(WAIT, io.close()).await.unwrap();
    let reason = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reason, DisconnectReason::ServerShutdown);
    ws.expect_closed().await;
}

#[tokio::test]
async fn no_event_lost_right_after_connect_over_many_connections() {
    // Pitfall 6 of the conformance notes: handlers must be in place before CONNECT goes out.
    let io = builder().build();
    io.ns("/", |socket: SocketRef| async move {
        tokio::task::yield_now().await;
        socket.emit("auth", &json!({})).unwrap();
    })
    .on("hi", |_s: SocketRef, e: Event| async move { e.args });
    let addr = serve(&io).await;
    for i in 0..100 {
        let mut ws = Ws::open(addr).await;
        ws.send("40").await;
        ws.send(&format!(r#"42{i}["hi",{i}]"#)).await;
        ws.expect_connect("/").await;
        ws.expect(r#"42["auth",{}]"#).await;
        ws.expect(&format!("43{i}[{i}]")).await;
    }
}

#[tokio::test]
async fn call_accepts_an_ack_without_arguments() {
    let io = builder().build();
    let (tx, mut rx) = mpsc::channel(1);
    io.ns("/", move |socket: SocketRef| {
        let tx = tx.clone();
        async move {
            tokio::spawn(async move {
                let r: Result<Option<u32>, AckError> =
                    socket.call("q", &1, Duration::from_secs(5)).await;
                tx.send(r.unwrap()).await.unwrap();
            });
        }
    });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    let ask = ws.recv_text().await;
    let id: String = ack_id(&ask);
    ws.send(&format!("43{id}[]")).await;
    assert_eq!(
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn polling_carries_binary_events_both_ways() {
    let io = builder().build();
    io.ns("/", no_auth())
        .on("bin", |_s: SocketRef, e: Event| async move { e.args });
    let addr = serve(&io).await;
    let p = common::Polling::open(addr).await;
    assert_eq!(p.post("40").await, 200);
    let (_, body) = p.get().await;
    assert!(body.starts_with("40{"), "{body}");
    // 451-5["bin",<placeholder>] + attachment 01 02 03 (b + base64)
    let post = "451-5[\"bin\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID";
    assert_eq!(p.post(post).await, 200);
    let (_, body) = p.get().await;
    assert_eq!(
        body, "461-5[{\"_placeholder\":true,\"num\":0}]\x1ebAQID",
        "binary ack over polling"
    );
}

#[tokio::test]
async fn nested_binary_both_ways() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Chunk {
        name: String,
        parts: Vec<bytes::Bytes>,
    }
    let io = builder().build();
    io.ns("/", |socket: SocketRef| async move {
        let file = json!({ "deep": [ { "x": 1 } ] });
        let chunk = Chunk {
            name: "f".into(),
            parts: vec![bytes::Bytes::from_static(&[9, 8])],
        };
        socket.emit("meta", &file).unwrap();
        socket.emit("file", &chunk).unwrap();
    })
    .on("upload", |_s: SocketRef, e: Event| async move {
        let chunk: Chunk = e.args.first().unwrap();
        let sizes: Vec<usize> = chunk.parts.iter().map(bytes::Bytes::len).collect();
        sockeye::Json(json!({ "name": chunk.name, "sizes": sizes }))
    });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.expect(r#"42["meta",{"deep":[{"x":1}]}]"#).await;
    ws.expect(r#"451-["file",{"name":"f","parts":[{"_placeholder":true,"num":0}]}]"#)
        .await;
    assert_eq!(ws.recv().await, F::B(vec![9, 8]));
    ws.send(r#"452-3["upload",{"name":"u","parts":[{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]}]"#)
        .await;
    ws.send_bin(&[1]).await;
    ws.send_bin(&[2, 2, 2]).await;
    ws.expect(r#"433[{"name":"u","sizes":[3,1]}]"#).await;
}

#[tokio::test]
async fn disconnect_during_the_connect_step_refuses_the_client() {
    let io = builder().build();
    let (tx, mut rx) = mpsc::channel(1);
    io.ns("/", move |_s: SocketRef| {
        let tx = tx.clone();
        async move {
            tx.send(()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let addr = serve(&io).await;
    let mut ws = Ws::open(addr).await;
    ws.send("40").await;
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    io.disconnect_all();
    ws.expect(r#"44{"message":"disconnected during the connect step"}"#)
        .await;
    assert!(io.of("/").unwrap().sockets().is_empty());
}

#[tokio::test]
async fn a_panicking_handler_disconnects_its_socket_with_a_reason() {
    let io = builder().build();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    io.ns("/", no_auth())
        .on("boom", |_s: SocketRef, e: Event| async move {
            assert!(e.args.is_empty(), "handler bug");
        })
        .on("ok", |_s: SocketRef, e: Event| async move { e.args })
        .on_disconnect(move |_s: SocketRef, reason: DisconnectReason| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(reason);
            }
        });
    let addr = serve(&io).await;
    let (mut bystander, _) = Ws::open_connected(addr).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send(r#"421["boom","unexpected"]"#).await;
    ws.expect("41").await;
    eventually("the disconnect handler sees the panic", || {
        reasons.lock().unwrap().as_slice() == [DisconnectReason::HandlerPanic]
    })
    .await;
    // Only that socket went: its Engine.IO session stays and may connect again.
    ws.send("40").await;
    ws.expect_connect("/").await;
    ws.send(r#"422["ok",1]"#).await;
    ws.expect("432[1]").await;
    bystander.send(r#"423["ok",2]"#).await;
    bystander.expect("433[2]").await;
}

/// What runs in a handler's `call` itself rather than in the future it returns (a plain-fn
/// event handler, an event middleware's code before its future, a plain-fn disconnect handler)
/// is guarded like an async body: a panic there costs the socket (DISCONNECT, reason
/// `HandlerPanic`), never the client's connection, and the socket's rooms are still freed.
#[tokio::test]
async fn panics_in_plain_fn_handlers_and_middlewares_cost_only_the_socket() {
    let io = builder().build();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let (tx, mut sockets) = mpsc::unbounded_channel();
    io.ns("/", move |socket: SocketRef| {
        socket.join("r");
        tx.send(socket).unwrap();
    })
    .use_event(|_s: SocketRef, e: Event| {
        assert_ne!(e.name.as_str(), "mw-boom", "middleware bug");
        std::future::ready(Ok(e))
    })
    .on("boom", |Data(n): Data<u32>| -> u32 {
        assert_eq!(n, 0, "plain fn handler bug");
        n
    })
    .on("ok", |e: Event| e.args)
    .on_disconnect(move |reason: DisconnectReason| {
        seen.lock().unwrap().push(reason);
        assert_ne!(
            reason,
            DisconnectReason::HandlerPanic,
            "disconnect handler bug"
        );
    });
    let addr = serve(&io).await;
    let (mut bystander, _) = Ws::open_connected(addr).await;
    let first = tokio::time::timeout(WAIT, sockets.recv())
        .await
        .unwrap()
        .unwrap();
    let (mut ws, _) = Ws::open_connected(addr).await;
    for (i, boom) in [r#"["mw-boom"]"#, r#"["boom",1]"#].into_iter().enumerate() {
        let socket = tokio::time::timeout(WAIT, sockets.recv())
            .await
            .unwrap()
            .unwrap();
        ws.send(&format!("42{i}{boom}")).await;
        ws.expect("41").await;
        eventually("the panicked socket's rooms are freed", || {
            socket.rooms().is_empty() && !socket.connected()
        })
        .await;
        // Only that socket went: its Engine.IO session may connect again.
        ws.send("40").await;
        ws.expect_connect("/").await;
    }
    assert_eq!(
        *reasons.lock().unwrap(),
        [
            DisconnectReason::HandlerPanic,
            DisconnectReason::HandlerPanic
        ]
    );
    ws.send(r#"427["ok",7]"#).await;
    ws.expect("437[7]").await;
    bystander.send(r#"428["ok",8]"#).await;
    bystander.expect("438[8]").await;
    assert_eq!(io.of("/").unwrap().to("r").sockets().len(), 2);
    assert!(first.connected());
}

#[tokio::test]
async fn disconnect_handler_runs_after_the_queued_events() {
    let io = builder().build();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (l1, l2) = (log.clone(), log.clone());
    io.ns("/", no_auth())
        .on("work", move |_s: SocketRef, e: Event| {
            let log = l1.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                log.lock()
                    .unwrap()
                    .push(e.args.first::<u32>().unwrap().to_string());
            }
        })
        .on_disconnect(move |_s: SocketRef, _r: DisconnectReason| {
            let log = l2.clone();
            async move {
                log.lock().unwrap().push("disconnect".into());
            }
        });
    let addr = serve(&io).await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    for i in 0..3 {
        ws.send(&format!(r#"42["work",{i}]"#)).await;
    }
    ws.send("41").await;
    eventually("all handled", || log.lock().unwrap().len() == 4).await;
    assert_eq!(*log.lock().unwrap(), ["0", "1", "2", "disconnect"]);
}
