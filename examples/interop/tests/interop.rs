//! The interop app against the official clients: `socket.io-client` (Node) and
//! `python-socketio`, each driven by its script in `tests/interop/`.

#[path = "../../../tests/interop/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{Server, assert_script, require_node, require_python};

/// A whole script run, 200-client case included, on a loaded 2-core machine.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(150);

/// Cases that fail because of a known sockeye bug, reported to its owner: run and reported,
/// not asserted (see `harness::assert_script`). Remove a name once its bug is fixed.
///
/// - `max-payload-polling`: on a polling POST over maxPayload the engine answers 413 *and*
///   answers the pending GET with `1` (CLOSE) at the same moment; socket.io-client reads the
///   CLOSE first and reports `transport close`. The Node server answers 413 and keeps the
///   pending GET open, so the client reports `transport error` (conformance-notes, "What
///   official clients report"). It is a race: now and then the 413 wins and the case passes.
const NODE_KNOWN_FAILURES: &[&str] = &["max-payload-polling"];

#[test]
fn official_node_client() {
    let node = require_node();
    let server = Server::start(env!("CARGO_BIN_EXE_interop"));
    assert_script(
        &node,
        "node-client.js",
        &server,
        NODE_KNOWN_FAILURES,
        SCRIPT_TIMEOUT,
    );
}

#[test]
fn official_python_client() {
    let python = require_python();
    let server = Server::start(env!("CARGO_BIN_EXE_interop"));
    assert_script(&python, "python_client.py", &server, &[], SCRIPT_TIMEOUT);
}
