//! A long-polling payload: splitting and decoding never panics, and a fully valid payload
//! re-encodes to a payload with the same packets.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sockeye_protocol::engine::{decode_payload, encode_payload};

fuzz_target!(|data: &[u8]| {
    let packets: Result<Vec<_>, _> = decode_payload(Bytes::copy_from_slice(data)).collect();
    if let Ok(packets) = packets {
        let again: Vec<_> = decode_payload(encode_payload(&packets))
            .collect::<Result<_, _>>()
            .expect("re-encoded payload must decode");
        assert_eq!(again, packets);
    }
});
