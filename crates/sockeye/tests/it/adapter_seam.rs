//! The adapter seam (issue 14, item 3) seen from the application: on an adapter whose futures
//! are pending on first poll and take varying time (as a cluster backend's do), emits awaited
//! one after the other arrive in that order, and the adapter's failures reach the caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sockeye::adapter::{
    AckStream, Adapter, BoxFuture, BroadcastOptions, BroadcastPacket, LocalNamespace, Room,
    SocketInfo,
};
use sockeye::prelude::*;
use sockeye::{AdapterError, EmitError};

use crate::common::{Ws, builder, serve};

/// A single-node adapter that waits before each operation: it yields first (so every future is
/// pending on its first poll), then sleeps less for each call than for the one before (in
/// cycles of 8), so an operation started before the previous one finished would overtake it.
/// Broadcasts of the event `fail` and every `fetch_sockets` fail, as a backend that refuses.
struct Slow {
    local: LocalNamespace,
    calls: AtomicU64,
}

impl Slow {
    async fn wait(&self) {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(7 - n % 8)).await;
    }
}

impl Adapter for Slow {
    fn broadcast(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            self.wait().await;
            if packet.event.as_str() == "fail" {
                return Err(AdapterError::new("the backend refused the broadcast"));
            }
            self.local.deliver(&packet, &opts);
            Ok(())
        })
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        Box::pin(async move {
            self.wait().await;
            Ok(self.local.deliver_with_ack(&packet, &opts, timeout))
        })
    }

    fn fetch_sockets(
        &self,
        _opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        Box::pin(async move {
            self.wait().await;
            Err(AdapterError::new("the backend is down"))
        })
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            self.wait().await;
            self.local.add_rooms(&opts, &rooms);
            Ok(())
        })
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            self.wait().await;
            self.local.del_rooms(&opts, &rooms);
            Ok(())
        })
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            self.wait().await;
            self.local.disconnect(&opts, close);
            Ok(())
        })
    }

    fn server_side_emit(
        &self,
        _packet: BroadcastPacket,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn server_side_emit_with_ack(
        &self,
        _packet: BroadcastPacket,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<AckStream, AdapterError>> {
        Box::pin(std::future::ready(Ok(AckStream::empty())))
    }
}

fn slow_server() -> SocketIo {
    builder()
        .adapter(|local: LocalNamespace| {
            Arc::new(Slow {
                local,
                calls: AtomicU64::new(0),
            }) as Arc<dyn Adapter>
        })
        .build()
}

/// Emits awaited one after the other, from the server handle and from a handler, reach every
/// recipient in that order; a join awaited before an emit to the room is in effect for it.
#[tokio::test]
async fn emits_awaited_in_sequence_keep_their_order_on_an_adapter_that_waits() {
    let io = slow_server();
    io.ns("/", || ()).on(
        "burst",
        |socket: SocketRef, Data(n): Data<u32>| async move {
            for i in 0..n {
                socket.broadcast().emit("b", &i).await.unwrap();
            }
        },
    );
    let addr = serve(&io).await;
    let (mut a, _) = Ws::open_connected(addr).await;
    let (mut b, _) = Ws::open_connected(addr).await;

    for n in 0..24 {
        io.emit("n", &n).await.unwrap();
    }
    for ws in [&mut a, &mut b] {
        for n in 0..24 {
            ws.expect(&format!(r#"42["n",{n}]"#)).await;
        }
    }

    a.send(r#"421["burst",16]"#).await;
    for i in 0..16 {
        b.expect(&format!(r#"42["b",{i}]"#)).await;
    }
    a.expect("431[]").await;

    io.of("/").unwrap().join("r").await.unwrap();
    io.to("r").emit("in-r", &1).await.unwrap();
    io.of("/").unwrap().leave("r").await.unwrap();
    io.to("r").emit("in-r", &2).await.unwrap();
    io.emit("end", &3).await.unwrap();
    for ws in [&mut a, &mut b] {
        ws.expect(r#"42["in-r",1]"#).await;
        ws.expect(r#"42["end",3]"#).await;
    }
}

/// The adapter's failure is the emit's (or the bulk operation's) error, from the server
/// handle and in a handler, which can tell the client; nothing is delivered for it.
#[tokio::test]
async fn an_adapter_failure_reaches_the_caller() {
    let io = slow_server();
    io.ns("/", || ())
        .on("relay", |socket: SocketRef| async move {
            match socket.broadcast().emit("fail", &1).await {
                Ok(()) => Json("sent".to_owned()),
                Err(e) => Json(e.to_string()),
            }
        });
    let addr = serve(&io).await;
    let (mut a, _) = Ws::open_connected(addr).await;
    let (mut b, _) = Ws::open_connected(addr).await;

    let err = io.emit("fail", &1).await.unwrap_err();
    let EmitError::Adapter(adapter) = &err else {
        panic!("expected EmitError::Adapter, got {err:?}");
    };
    assert_eq!(adapter.message, "the backend refused the broadcast");

    a.send(r#"421["relay"]"#).await;
    a.expect(r#"431["adapter error: the backend refused the broadcast"]"#)
        .await;

    let err = io.of("/").unwrap().fetch_sockets().await.unwrap_err();
    assert_eq!(err.message, "the backend is down");

    // Nothing of the failed broadcasts reached anyone.
    io.emit("end", &0).await.unwrap();
    a.expect(r#"42["end",0]"#).await;
    b.expect(r#"42["end",0]"#).await;
}
