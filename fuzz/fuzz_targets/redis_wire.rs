//! One broker message for the Redis adapter's decoders (`sockeye-redis`, feature `fuzzing`):
//! the first byte picks the channel it arrived on (broadcast, room broadcast, request,
//! response), the rest is the payload. Decoding and schema checks never panic; an accepted
//! broadcast re-encodes to bytes that read back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockeye_redis::__fuzz;

fuzz_target!(|data: &[u8]| {
    let Some((&channel, payload)) = data.split_first() else {
        return;
    };
    match channel % 5 {
        0 => {
            __fuzz::broadcast(payload, None);
        }
        1 => {
            __fuzz::broadcast(payload, Some("room"));
        }
        2 => {
            __fuzz::request(payload);
        }
        3 => {
            __fuzz::response(payload);
        }
        _ => __fuzz::to_json(payload),
    }
});
