//! The decoders, for the cargo-fuzz target `postgres_wire` (crates/sockeye-fuzz); not an API.
// A fuzz body reports a defect by panicking.
#![allow(clippy::panic)]

use crate::wire::{self, Encoded, Limits, Opts, field};

const LIMITS: Limits = Limits {
    max_size: 1 << 20,
    max_depth: 64,
};

/// Whether the decoders accept this input (same framing as [`message`]).
pub fn accepts(data: &[u8]) -> bool {
    match data.split_first() {
        Some((&kind, payload)) if kind % 2 == 0 => std::str::from_utf8(payload)
            .is_ok_and(|text| wire::decode_notification(text, LIMITS).is_ok()),
        Some((_, payload)) => wire::decode_attachment(payload, LIMITS).is_ok(),
        None => false,
    }
}

/// One input: the first byte picks a notification (even: the rest as UTF-8 text) or an
/// attachment row (odd: the rest as its bytes). Nothing may panic; every part of an accepted
/// message goes through the checks the adapter runs on it; a message accepted from a
/// notification encodes again and reads back the same.
pub fn message(data: &[u8]) {
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    let decoded = if kind % 2 == 0 {
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        wire::decode_notification(text, LIMITS)
    } else {
        wire::decode_attachment(payload, LIMITS)
    };
    let Ok(m) = decoded else { return };
    let d = &m.data;
    if let Some(p) = field(d, "packet") {
        let _ = wire::parse_packet(p);
        let _ = wire::event_data(Some(p));
        let _ = wire::answer(d);
    }
    let _ = Opts::parse(field(d, "opts")).map(|o| o.to_value());
    let _ = wire::rooms(field(d, "rooms"));
    let _ = wire::fetched_sockets(d);
    let _ = wire::request_id(d);
    if kind % 2 != 0 || m.attachment_id.is_some() {
        return;
    }
    let nsp = m.nsp.clone().unwrap_or_else(|| "/".to_owned());
    let again = match wire::encode(&m.uid, &nsp, m.kind, m.data.clone(), usize::MAX)
        .unwrap_or_else(|e| panic!("an accepted message must encode again: {e}"))
    {
        Encoded::Notify(text) => wire::decode_notification(&text, LIMITS),
        Encoded::Attachment { bytes, .. } => wire::decode_attachment(&bytes, LIMITS),
    }
    .unwrap_or_else(|e| panic!("a re-encoded message must decode: {e}"));
    assert_eq!(
        (again.uid.as_str(), again.kind, &again.data),
        (m.uid.as_str(), m.kind, &m.data),
        "round trip"
    );
}
