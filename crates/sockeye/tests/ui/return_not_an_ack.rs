// An event handler's return value is its ack: it must implement `IntoAck`.
use sockeye::prelude::*;

struct Receipt;

async fn on_chat(_socket: SocketRef) -> Receipt {
    Receipt
}

fn main() {
    let io = SocketIo::builder().build();
    io.ns("/", || ()).on("chat", on_chat);
}
