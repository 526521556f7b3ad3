//! One Engine.IO packet, as a WebSocket text frame and as a polling chunk: decoding never
//! panics, and what decodes re-encodes to something that decodes to the same packet.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sockeye_protocol::engine::Packet;

fuzz_target!(|data: &[u8]| {
    let data = Bytes::copy_from_slice(data);
    for packet in [
        Packet::decode_text(data.clone()),
        Packet::decode_polling(data),
    ]
    .into_iter()
    .flatten()
    {
        let again = if packet.is_binary() {
            Packet::Binary(packet.encode())
        } else {
            Packet::decode_text(packet.encode()).expect("re-encoded packet must decode")
        };
        assert_eq!(again, packet);
    }
});
