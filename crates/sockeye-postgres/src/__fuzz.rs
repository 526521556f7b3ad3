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
    let _ = Opts::parse_unversioned(field(d, "opts")).map(|o| o.to_unversioned_value());
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

#[cfg(test)]
mod tests {
    /// A quick stable-toolchain stand-in for a fuzzing session: every committed seed, mutated
    /// many times (bit flips, byte changes, truncations, splices), through the target body.
    #[test]
    fn mutated_seeds_never_panic() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/postgres_wire");
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .expect("fuzz/seeds/postgres_wire exists")
            .map(|e| std::fs::read(e.expect("readable").path()).expect("readable seed"))
            .collect();
        assert!(seeds.len() >= 20);
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut runs = 0;
        for seed in &seeds {
            for _ in 0..3000 {
                let mut data = seed.clone();
                for _ in 0..=(next() % 4) {
                    if data.len() < 2 {
                        break;
                    }
                    let at = 1 + usize::try_from(next() % (data.len() as u64 - 1)).unwrap();
                    match next() % 4 {
                        0 => data[at] ^= 1 << (next() % 8),
                        1 => {
                            data[at] = b"{}[]\",\":0-e.\x00\xc1\xdd\xdf"
                                [usize::try_from(next() % 16).unwrap()];
                        }
                        2 => data.truncate(at),
                        _ => {
                            let other =
                                &seeds[usize::try_from(next() % seeds.len() as u64).unwrap()];
                            let from = usize::try_from(next() % other.len() as u64).unwrap();
                            data.splice(at..at, other[from..].iter().copied().take(64));
                        }
                    }
                }
                super::message(&data);
                runs += 1;
            }
        }
        assert!(runs >= 60_000);
    }
}
