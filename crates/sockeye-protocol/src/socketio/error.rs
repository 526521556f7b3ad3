//! Typed errors of Socket.IO encoding and decoding.

/// Why an inbound Socket.IO message could not be turned into a packet, or its arguments into
/// the requested type.
///
/// Every variant names what was wrong; none carries the offending input, so logging an error
/// never echoes attacker-controlled bytes at length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message had no bytes at all.
    #[error("empty socket.io packet: a packet starts with its type digit 0-6")]
    Empty,
    /// The first character is not a Socket.IO packet type.
    #[error("unknown socket.io packet type {0:?}: expected a digit 0-6")]
    UnknownType(char),
    /// A binary packet header does not have the form `5<count>-` / `6<count>-`.
    #[error("invalid attachment count in a binary packet header: expected digits followed by '-'")]
    InvalidAttachmentCount,
    /// A binary packet announces more attachments than the limit allows.
    #[error("binary packet announces {count} attachments, more than the limit of {max}")]
    TooManyAttachments {
        /// The announced count (saturated at `usize::MAX`).
        count: usize,
        /// The configured limit ([`super::Limits::max_attachments`]).
        max: usize,
    },
    /// The namespace is longer than the limit allows.
    #[error("namespace longer than the limit of {max} bytes")]
    NamespaceTooLong {
        /// The configured limit ([`super::Limits::max_namespace_len`]).
        max: usize,
    },
    /// The namespace or event name is not valid UTF-8.
    #[error("socket.io packet text is not valid UTF-8")]
    InvalidUtf8,
    /// The ack id does not fit in a `u64` or exceeds the configured maximum.
    #[error("ack id larger than the limit of {max}")]
    AckIdTooLarge {
        /// The configured limit ([`super::Limits::max_ack_id`]).
        max: u64,
    },
    /// An ack id came on a packet type that has none (CONNECT, DISCONNECT, CONNECT_ERROR).
    #[error("socket.io packet type {0} does not carry an ack id")]
    UnexpectedAckId(u8),
    /// An ACK packet came without the id of the event it answers.
    #[error("ack packet without an ack id")]
    MissingAckId,
    /// The payload is not valid JSON (or valid MessagePack for the msgpack parser).
    #[error("invalid payload encoding: {0}")]
    InvalidPayload(String),
    /// The payload nests arrays/objects deeper than the limit.
    #[error("payload nested deeper than the limit of {max} levels")]
    TooDeep {
        /// The configured limit ([`super::Limits::max_depth`]).
        max: usize,
    },
    /// An EVENT or ACK payload is not an array.
    #[error("event and ack payloads must be an array")]
    PayloadNotArray,
    /// An EVENT payload has no first element, or the first element is not a string.
    #[error("event payload must start with the event name as a string")]
    InvalidEventName,
    /// A CONNECT payload is not an object.
    #[error("connect payload must be an object")]
    ConnectPayloadNotObject,
    /// A CONNECT_ERROR payload is not an object or a string.
    #[error("connect_error payload must be an object or a string")]
    InvalidConnectError,
    /// A packet type that carries no payload came with one (DISCONNECT).
    #[error("socket.io packet type {0} carries no payload")]
    UnexpectedPayload(u8),
    /// A packet type that needs a payload came without one.
    #[error("socket.io packet type {0} needs a payload")]
    MissingPayload(u8),
    /// The packet (text plus attachments) is larger than the limit.
    #[error("socket.io packet larger than the limit of {max} bytes")]
    PacketTooLarge {
        /// The configured limit ([`super::Limits::max_packet_size`]).
        max: usize,
    },
    /// A binary message arrived while no binary packet was waiting for attachments.
    #[error("unexpected binary message: no binary packet is waiting for attachments")]
    UnexpectedBinary,
    /// A text message arrived while a binary packet was still waiting for attachments.
    #[error("expected {remaining} more binary attachments, got a text message")]
    ExpectedAttachment {
        /// How many attachments were still missing.
        remaining: usize,
    },
    /// A placeholder's `num` is missing, not an integer, or not below the attachment count.
    #[error("invalid attachment placeholder: num must be an integer below {count}")]
    InvalidPlaceholder {
        /// The number of attachments of the packet.
        count: usize,
    },
    /// An attachment is not referenced by any placeholder.
    #[error("attachment {0} is not referenced by any placeholder")]
    UnreferencedAttachment(usize),
    /// A MessagePack packet is structurally wrong (missing type, bad namespace...).
    #[error("invalid msgpack packet: {0}")]
    InvalidMsgPack(&'static str),
    /// The decoder was built for the other parser (a text message for msgpack, or the reverse).
    #[error("message kind does not match the parser: {0}")]
    WrongParser(&'static str),
    /// The arguments could not be deserialised into the requested type.
    #[error("arguments do not match the requested type: {0}")]
    Args(String),
}

/// Why a value could not be encoded as Socket.IO arguments or a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The value's `Serialize` implementation failed (e.g. a map with non-string keys in JSON).
    #[error("cannot serialise the value: {0}")]
    Serialize(String),
    /// Raw JSON given as a packet payload is not valid, so it cannot be converted to msgpack.
    #[error("cannot convert the payload between parsers: {0}")]
    Transcode(String),
}
