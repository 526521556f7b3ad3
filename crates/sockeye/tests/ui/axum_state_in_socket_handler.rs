// axum's `State` reads the router's state; socket handlers read the server's states with
// sockeye's `State` (the prelude's).
use sockeye::prelude::*;

#[derive(Clone)]
struct Db;

async fn on_chat(_socket: SocketRef, _db: axum::extract::State<Db>) {}

fn main() {
    let io = SocketIo::builder().with_state(Db).build();
    io.ns("/", || ()).on("chat", on_chat);
}
