//! The Socket.IO protocol test suite's expectations (conformance-notes.md §2) as raw frames
//! from Node's `ws`, against the conformance example.

#[path = "../../../tests/interop/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{Server, assert_script, require_node};

#[test]
fn socket_io_protocol_suite() {
    let node = require_node();
    let server = Server::start(env!("CARGO_BIN_EXE_conformance"));
    assert_script(
        &node,
        "conformance.js",
        &server,
        &[],
        Duration::from_secs(120),
    );
}
