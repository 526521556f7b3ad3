// `Option<State<T>>` is not an extractor: a state is never "absent" at run time (a missing
// one is refused at registration), so there is nothing for `None` to mean.
use sockeye::prelude::*;

#[derive(Clone)]
struct Db;

async fn on_chat(_socket: SocketRef, _db: Option<State<Db>>) {}

fn main() {
    let io = SocketIo::builder().with_state(Db).build();
    io.ns("/", || ()).on("chat", on_chat);
}
