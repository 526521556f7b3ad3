//! Event names the Socket.IO clients reserve for themselves.

use crate::error::EmitError;

/// Names a server must not emit: clients treat them as their own lifecycle events.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

pub(crate) fn check(event: &str) -> Result<(), EmitError> {
    if RESERVED_EVENTS.contains(&event) {
        Err(EmitError::ReservedEvent(event.to_owned()))
    } else {
        Ok(())
    }
}
