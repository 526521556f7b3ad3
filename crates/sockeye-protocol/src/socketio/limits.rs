//! Bounds on what a decoder accepts from a peer.

/// Limits applied while decoding; every default is safe against a hostile peer.
///
/// Sizes are in bytes. Depth counts every array and object, the outer argument array included
/// (`["ev",{"a":[1]}]` has depth 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most binary attachments one packet may announce (default 10).
    pub max_attachments: usize,
    /// Deepest nesting of arrays/objects in a payload (default 32).
    pub max_depth: usize,
    /// Largest ack id accepted (default `u64::MAX`; JavaScript peers stay below 2^53).
    pub max_ack_id: u64,
    /// Longest namespace, in bytes (default 256).
    pub max_namespace_len: usize,
    /// Largest packet: the text or msgpack message plus all its attachments (default 1 MB,
    /// Engine.IO's default `maxPayload`).
    pub max_packet_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_attachments: 10,
            max_depth: 32,
            max_ack_id: u64::MAX,
            max_namespace_len: 256,
            max_packet_size: 1_000_000,
        }
    }
}
