//! Entry point for the cargo-fuzz target `pybus_wire` (feature `fuzzing`): the decoder a node
//! runs on every message of the channel, with the default limits. Not an API.

// A broken invariant must crash the fuzzer: that is a finding, not a bug of this module.
#![allow(clippy::panic)]

use crate::wire::{self, Message};

/// `PyBusConfig`'s default `max_message_size`.
const MAX_SIZE: usize = 1_000_000;
/// `PyBusConfig`'s default `max_depth`.
const MAX_DEPTH: usize = 64;

/// Decodes one bus message; an accepted emit or answer is encoded again and must read back
/// the same (what a node forwards is what it understood). True when it was accepted.
pub fn message(payload: &[u8]) -> bool {
    let Ok(msg) = wire::decode(payload, MAX_SIZE, MAX_DEPTH) else {
        return false;
    };
    if let Message::Emit {
        host_id,
        ns,
        event,
        args,
        rooms,
        skip,
        callback,
        ..
    } = &msg
    {
        let bytes = wire::encode_emit(host_id, ns, event, args, rooms, skip, None)
            .unwrap_or_else(|e| panic!("accepted emit cannot be encoded again: {e}"));
        match wire::decode(&bytes, usize::MAX, MAX_DEPTH + 2) {
            Ok(Message::Emit {
                args: again,
                rooms: r2,
                skip: s2,
                event: e2,
                ..
            }) => {
                assert_eq!(&again, args);
                assert_eq!(&r2, rooms);
                assert_eq!(&s2, skip);
                assert_eq!(&e2, event);
            }
            other => panic!("re-encoded emit read back as {other:?}"),
        }
        if let Some(cb) = callback {
            let out = wire::encode_callback("h", cb, args, "me", "s")
                .unwrap_or_else(|e| panic!("answer cannot be encoded: {e}"));
            assert!(
                wire::decode(&out, usize::MAX, MAX_DEPTH + 2).is_ok(),
                "own answer refused"
            );
        }
    }
    true
}
