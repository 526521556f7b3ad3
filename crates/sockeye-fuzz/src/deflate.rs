//! WebSocket permessage-deflate: the incoming-stream transformer and the inflater.

use sockeye_protocol::deflate::{
    DeflateConfig, Deflater, InflateStream, Inflater, Negotiated, Role,
};

/// The per-message limit of the target: small, so that bombs reach it fast.
const LIMIT: usize = 64 * 1024;

/// The first byte picks the role (bit 0), context takeover (bit 1) and the size of the reads
/// the stream arrives in (the rest); the other bytes are the raw stream of WebSocket frames.
/// The transformer never panics, never produces a frame over the limit (inflated messages are
/// bounded by it, other frames pass unchanged), and a message compressed by our own deflater
/// inflates back to itself.
pub fn ws_inflate(data: &[u8]) {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let role = if control & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let takeover = control & 2 != 0;
    let agreed = Negotiated {
        server_no_context_takeover: !takeover,
        client_no_context_takeover: !takeover,
    };
    let read_size = usize::from(control >> 2).max(1);
    let mut reader = InflateStream::new(role, Inflater::new(role, agreed, LIMIT));
    let mut out = Vec::new();
    let mut fed = 0;
    for part in stream.chunks(read_size) {
        if reader.feed(part, &mut out).is_err() {
            break;
        }
        fed += part.len();
        // Every output byte is a passed-through input byte or part of an inflated message
        // (at most LIMIT plus a 14-byte header per message, and a message needs at least a
        // 2-byte frame).
        assert!(
            out.len() <= fed + (fed / 2 + 1) * (LIMIT + 14),
            "{} bytes out of {fed} in",
            out.len()
        );
    }
    let config = DeflateConfig {
        threshold: 0,
        server_no_context_takeover: !takeover,
        client_no_context_takeover: !takeover,
        level: u32::from(control % 10),
    };
    let mut deflater = Deflater::new(role, agreed, &config);
    let peer = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut inflater = Inflater::new(peer, agreed, LIMIT);
    for message in stream.chunks(4096).take(4) {
        if let Some(packed) = deflater.compress(message) {
            let back = inflater
                .inflate(&packed)
                .expect("our own deflate output inflates");
            assert_eq!(back, message);
        }
    }
}
