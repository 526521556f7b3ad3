//! The implicit own-id room: every socket is in the room named after its id without the
//! adapter storing it. Routing, `rooms()`, leaving and `fetch_sockets` behave as if the room
//! were stored, as with the JavaScript server.

use crate::common;

use std::time::Duration;

use common::{WAIT, Ws, builder, serve};
use sockeye::{Args, DisconnectReason, Event, SocketRef};
use tokio::sync::mpsc;

/// How long a socket that must get nothing is watched.
const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn own_id_room_routes_lists_and_survives_leave() {
    let (gone_tx, mut gone_rx) = mpsc::channel::<Vec<String>>(4);
    let io = builder().build();
    io.ns("/", |_s: SocketRef| async move {})
        .on("rooms", |socket: SocketRef, _e: Event| async move {
            Args::from_value(&socket.rooms()).unwrap()
        })
        .on("join", |socket: SocketRef, e: Event| async move {
            socket.join(e.args.first::<String>().unwrap());
            Args::from_value(&socket.rooms()).unwrap()
        })
        .on("leave", |socket: SocketRef, e: Event| async move {
            socket.leave(&e.args.first::<String>().unwrap());
            Args::from_value(&socket.rooms()).unwrap()
        })
        .on("leave-all", |socket: SocketRef, _e: Event| async move {
            socket.leave_all();
            Args::from_value(&socket.rooms()).unwrap()
        })
        .on("dm", |socket: SocketRef, e: Event| async move {
            let (to, text): (String, String) = e.args.deserialize().unwrap();
            socket.to(to).emit("dm", &text).await.unwrap();
        })
        .on_disconnect(move |socket: SocketRef, _r: DisconnectReason| {
            let tx = gone_tx.clone();
            async move {
                tx.send(socket.rooms()).await.unwrap();
            }
        });
    let addr = serve(&io).await;
    let (mut a, id_a) = Ws::open_connected(addr).await;
    let (mut b, id_b) = Ws::open_connected(addr).await;
    let (mut c, id_c) = Ws::open_connected(addr).await;

    // rooms() lists the own room; leaving it, by name or with leave_all, keeps it.
    a.send(r#"421["rooms"]"#).await;
    a.expect(&format!(r#"431[["{id_a}"]]"#)).await;
    a.send(&format!(r#"422["leave","{id_a}"]"#)).await;
    a.expect(&format!(r#"432[["{id_a}"]]"#)).await;
    a.send(r#"423["join","~room"]"#).await;
    a.expect(&format!(r#"433[["{id_a}","~room"]]"#)).await;
    a.send(r#"424["leave-all"]"#).await;
    a.expect(&format!(r#"434[["{id_a}"]]"#)).await;

    // A private message to a's id reaches a only.
    b.send(&format!(r#"42["dm","{id_a}","hi"]"#)).await;
    a.expect(r#"42["dm","hi"]"#).await;
    c.expect_silence(QUIET).await;

    // c joins the room named after a's id: that room now holds both.
    c.send(&format!(r#"421["join","{id_a}"]"#)).await;
    let mut want = [id_a.clone(), id_c.clone()];
    want.sort();
    c.expect(&format!(r#"431[["{}","{}"]]"#, want[0], want[1]))
        .await;
    b.send(&format!(r#"42["dm","{id_a}","both"]"#)).await;
    a.expect(r#"42["dm","both"]"#).await;
    c.expect(r#"42["dm","both"]"#).await;

    // Several target rooms: each socket once (c is in a's room and in its own).
    let ns = io.of("/").unwrap();
    ns.clone()
        .to([id_a.as_str(), id_c.as_str(), id_b.as_str()])
        .emit("many", &1)
        .await
        .unwrap();
    for ws in [&mut a, &mut b, &mut c] {
        ws.expect(r#"42["many",1]"#).await;
        ws.expect_silence(QUIET).await;
    }

    // Excluding a's id excludes a and its explicit member c.
    ns.clone()
        .except(id_a.as_str())
        .emit("not-a", &2)
        .await
        .unwrap();
    b.expect(r#"42["not-a",2]"#).await;
    a.expect_silence(QUIET).await;
    c.expect_silence(QUIET).await;

    // fetch_sockets lists the own room among each socket's rooms.
    let mut infos = ns.clone().to(id_a.as_str()).fetch_sockets().await.unwrap();
    infos.sort_by(|x, y| x.id.cmp(&y.id));
    let got: Vec<(String, Vec<String>)> = infos
        .into_iter()
        .map(|i| (i.id.to_string(), i.rooms))
        .collect();
    let mut want = vec![
        (id_a.clone(), vec![id_a.clone()]),
        (id_c.clone(), {
            let mut r = vec![id_a.clone(), id_c.clone()];
            r.sort();
            r
        }),
    ];
    want.sort();
    assert_eq!(got, want);

    // A server-side leave of the own room is ignored, like socket.leave.
    ns.clone()
        .to(id_b.as_str())
        .leave(id_b.as_str())
        .await
        .unwrap();
    b.send(r#"421["rooms"]"#).await;
    b.expect(&format!(r#"431[["{id_b}"]]"#)).await;

    // Disconnect: the handler still sees the own room; afterwards it routes nowhere.
    a.send("41").await;
    let rooms = tokio::time::timeout(WAIT, gone_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rooms, vec![id_a.clone()]);
    let left: Vec<String> = ns
        .clone()
        .to(id_a.as_str())
        .fetch_sockets()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id.to_string())
        .collect();
    assert_eq!(
        left,
        vec![id_c.clone()],
        "only c's explicit membership is left"
    );
    let socket_a = io.get_socket("/", &sockeye::SocketId::from(id_a.as_str()));
    assert!(socket_a.is_none());
}

#[tokio::test]
async fn rooms_are_empty_once_the_disconnect_handler_ran() {
    let (tx, mut rx) = mpsc::channel::<SocketRef>(1);
    let io = builder().build();
    io.ns("/", move |socket: SocketRef| {
        let tx = tx.clone();
        async move {
            tx.send(socket).await.unwrap();
        }
    });
    let addr = serve(&io).await;
    let (mut ws, id) = Ws::open_connected(addr).await;
    let socket = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(socket.rooms(), vec![id]);
    ws.send("41").await;
    common::eventually("rooms dropped", || socket.rooms().is_empty()).await;
    assert!(!socket.connected());
}
