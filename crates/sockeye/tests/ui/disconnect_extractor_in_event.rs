// `DisconnectReason` exists only in a disconnect handler.
use sockeye::prelude::*;

async fn on_chat(_socket: SocketRef, _why: DisconnectReason) {}

fn main() {
    let io = SocketIo::builder().build();
    io.ns("/", || ()).on("chat", on_chat);
}
