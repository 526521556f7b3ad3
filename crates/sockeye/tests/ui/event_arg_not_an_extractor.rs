// An event handler whose argument is not an extractor: `String` is not one (the data is
// `Data<String>`).
use sockeye::prelude::*;

async fn on_chat(_socket: SocketRef, _text: String) {}

fn main() {
    let io = SocketIo::builder().build();
    io.ns("/", || ()).on("chat", on_chat);
}
