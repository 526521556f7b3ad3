//! Room events of the adapter seam (`Adapter::wants_room_events`): an adapter that asks is told
//! when a room gets its first local member and loses its last, and when a socket's own-id room
//! comes and goes; an adapter that does not ask is told nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockeye::adapter::{
    AckStream, Adapter, BoxFuture, BroadcastOptions, BroadcastPacket, LocalNamespace,
    MemoryAdapter, Room, SocketInfo,
};
use sockeye::prelude::*;
use sockeye::{AdapterError, SocketId};

use crate::common::{Ws, builder, eventually, serve};

/// The in-memory adapter, recording the room events it is given.
struct Recording {
    inner: MemoryAdapter,
    wants: bool,
    log: Arc<Mutex<Vec<String>>>,
}

impl Adapter for Recording {
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.broadcast(packet, opts)
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        self.inner.broadcast_with_ack(packet, opts, timeout)
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        self.inner.fetch_sockets(opts)
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.add_sockets(opts, rooms)
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.del_sockets(opts, rooms)
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.disconnect_sockets(opts, close)
    }

    fn server_side_emit(&self, packet: BroadcastPacket) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.inner.server_side_emit(packet)
    }

    fn server_side_emit_with_ack(
        &self,
        packet: BroadcastPacket,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        self.inner.server_side_emit_with_ack(packet, timeout)
    }

    fn wants_room_events(&self) -> bool {
        self.wants
    }

    fn room_created(&self, room: &str, own_id: bool) {
        let what = if own_id { "+own" } else { "+" };
        self.log.lock().unwrap().push(format!("{what} {room}"));
    }

    fn room_deleted(&self, room: &str, own_id: bool) {
        let what = if own_id { "-own" } else { "-" };
        self.log.lock().unwrap().push(format!("{what} {room}"));
    }
}

fn server(wants: bool) -> (SocketIo, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let shared = log.clone();
    let io = builder()
        .adapter(move |local: LocalNamespace| {
            Arc::new(Recording {
                inner: MemoryAdapter::new(local),
                wants,
                log: shared.clone(),
            }) as Arc<dyn Adapter>
        })
        .build();
    io.ns("/", || ())
        .on(
            "join",
            |socket: SocketRef, Data(room): Data<String>| async move {
                socket.join(room);
                Json(true)
            },
        )
        .on(
            "leave",
            |socket: SocketRef, Data(room): Data<String>| async move {
                socket.leave(room.as_str());
                Json(true)
            },
        );
    (io, log)
}

fn taken(log: &Mutex<Vec<String>>) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[tokio::test]
async fn first_and_last_members_are_reported_once() {
    let (io, log) = server(true);
    let addr = serve(&io).await;
    let (mut a, a_id) = Ws::open_connected(addr).await;
    let (mut b, b_id) = Ws::open_connected(addr).await;
    eventually("both own rooms reported", || log.lock().unwrap().len() == 2).await;
    let mut own = taken(&log);
    own.sort();
    let mut want = vec![format!("+own {a_id}"), format!("+own {b_id}")];
    want.sort();
    assert_eq!(own, want);

    // The first member creates the room, the second does not; joining twice changes nothing.
    a.send(r#"420["join","red"]"#).await;
    a.expect("430[true]").await;
    b.send(r#"421["join","red"]"#).await;
    b.expect("431[true]").await;
    a.send(r#"422["join","red"]"#).await;
    a.expect("432[true]").await;
    assert_eq!(taken(&log), ["+ red"]);
    // The last to leave deletes it; leaving a room one is not in changes nothing.
    a.send(r#"423["leave","red"]"#).await;
    a.expect("433[true]").await;
    a.send(r#"424["leave","blue"]"#).await;
    a.expect("434[true]").await;
    assert_eq!(taken(&log), Vec::<String>::new());
    b.send(r#"425["leave","red"]"#).await;
    b.expect("435[true]").await;
    assert_eq!(taken(&log), ["- red"]);

    // Rooms joined through the adapter (a bulk join) and left by disconnecting.
    b.send(r#"426["join","green"]"#).await;
    b.expect("436[true]").await;
    io.to(SocketId::from(a_id.as_str()))
        .join("green")
        .await
        .unwrap();
    assert_eq!(taken(&log), ["+ green"]);
    a.send("41").await;
    eventually("a's own room gone", || log.lock().unwrap().len() == 1).await;
    assert_eq!(taken(&log), [format!("-own {a_id}")]);
    drop(b);
    eventually("b gone with its rooms", || log.lock().unwrap().len() == 2).await;
    let mut gone = taken(&log);
    gone.sort();
    let mut want = vec![format!("-own {b_id}"), "- green".to_owned()];
    want.sort();
    assert_eq!(gone, want);
}

#[tokio::test]
async fn an_adapter_that_does_not_ask_is_told_nothing() {
    let (io, log) = server(false);
    let addr = serve(&io).await;
    let (mut a, _) = Ws::open_connected(addr).await;
    a.send(r#"420["join","red"]"#).await;
    a.expect("430[true]").await;
    a.send(r#"421["leave","red"]"#).await;
    a.expect("431[true]").await;
    a.send("41").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(taken(&log), Vec::<String>::new());
}
