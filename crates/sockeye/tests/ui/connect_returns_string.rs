// A connect handler returns `()` or `Result<_, E: Into<ConnectionRefusedError>>`.
use sockeye::prelude::*;

async fn on_connect(_socket: SocketRef) -> String {
    String::new()
}

fn main() {
    let io = SocketIo::builder().build();
    io.ns("/", on_connect);
}
