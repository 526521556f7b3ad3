//! Connection-state recovery against the official `socket.io-client`:
//! `tests/interop/recovery-client.js` drives the `recovery` binary (recovery on at
//! `/socket.io/`, off at `/plain/`). The same script passes against the official Node server
//! (`tests/interop/reference-recovery-server.js`, run by `tests/interop/run-reference.sh`).

use std::time::Duration;

use crate::harness::{Server, assert_script, require_node};

/// The script's five cases, one of them waiting out the 3 s window, on a loaded machine.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn official_node_client_recovers() {
    let node = require_node();
    let server = Server::start(env!("CARGO_BIN_EXE_recovery"));
    assert_script(&node, "recovery-client.js", &server, &[], SCRIPT_TIMEOUT);
}
