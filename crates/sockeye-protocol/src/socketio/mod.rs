//! Socket.IO v5 packets (socketio/socket.io-protocol) and their binary attachments.
//!
//! A [`Packet`] is encoded once into an [`Encoded`] (engine frames sharing reference-counted
//! bytes, ready to send to any number of sockets) and decoded by a stateful [`Decoder`] that
//! assembles binary packets from their header and attachments. Two parsers exist, chosen with
//! [`ParserKind`]: the default JSON text format and, with the `msgpack` feature, the format of
//! the official `socket.io-msgpack-parser`.
//!
//! ```
//! use sockeye_protocol::engine::{Frame, Message};
//! use sockeye_protocol::socketio::{Args, Decoder, Packet, ParserKind};
//!
//! let packet = Packet::event("/", "hello", Args::from_value(&"world")?);
//! let encoded = packet.encode(ParserKind::Json)?;
//! assert_eq!(encoded.frames(), &[Frame::Text(r#"42["hello","world"]"#.into())]);
//!
//! let mut decoder = Decoder::default();
//! let got = decoder.decode(Message::Text(r#"2["hello","world"]"#.into()))?.unwrap();
//! assert_eq!(got, packet);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod args;
mod binser;
mod error;
mod json;
mod limits;
#[cfg(feature = "msgpack")]
mod msgpack;
mod scan;
mod str;
mod value;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::engine::{Frame, Message};

pub use args::{Args, ArgsBuilder};
pub use error::{DecodeError, EncodeError};
pub use limits::Limits;
pub use str::Str;

/// A Socket.IO packet: a namespace and what happens in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The namespace, `"/"` by default.
    pub ns: Str,
    /// The packet's type and content.
    pub data: PacketData,
}

/// The type and content of a [`Packet`].
#[derive(Debug, Clone, PartialEq)]
pub enum PacketData {
    /// CONNECT: a client joins a namespace (optional auth object) or the server accepts it
    /// (`{"sid":"..."}`). The payload is raw JSON text of an object, for both parsers.
    Connect(Option<Bytes>),
    /// DISCONNECT: either side leaves the namespace.
    Disconnect,
    /// EVENT (or BINARY_EVENT when `args` has attachments): a named event, with an ack id when the
    /// sender waits for an answer.
    Event {
        /// The event name, already unescaped.
        name: Str,
        /// The arguments after the name.
        args: Args,
        /// The id the answering ACK must carry.
        ack: Option<u64>,
    },
    /// ACK (or BINARY_ACK): the answer to the event with ack id `id`.
    Ack {
        /// The ack id of the event being answered.
        id: u64,
        /// The answer's arguments.
        args: Args,
    },
    /// CONNECT_ERROR: the server refused the namespace connection. Raw JSON text, normally
    /// `{"message":"...","data":...}`, for both parsers.
    ConnectError(Bytes),
}

impl Packet {
    /// CONNECT to `ns`, with an optional auth / handshake object as raw JSON text.
    pub fn connect(ns: impl Into<Str>, payload: Option<Bytes>) -> Packet {
        Packet {
            ns: ns.into(),
            data: PacketData::Connect(payload),
        }
    }

    /// The server's answer to a CONNECT: `{"sid":"<sid>"}`.
    pub fn connect_ok(ns: impl Into<Str>, sid: &str) -> Packet {
        let json = serde_json::json!({ "sid": sid }).to_string();
        Packet::connect(ns, Some(Bytes::from(json)))
    }

    /// DISCONNECT from `ns`.
    pub fn disconnect(ns: impl Into<Str>) -> Packet {
        Packet {
            ns: ns.into(),
            data: PacketData::Disconnect,
        }
    }

    /// An EVENT without ack id.
    pub fn event(ns: impl Into<Str>, name: impl Into<Str>, args: Args) -> Packet {
        Packet {
            ns: ns.into(),
            data: PacketData::Event {
                name: name.into(),
                args,
                ack: None,
            },
        }
    }

    /// An EVENT whose receiver must answer with an ACK carrying `ack`.
    pub fn event_with_ack(
        ns: impl Into<Str>,
        name: impl Into<Str>,
        args: Args,
        ack: u64,
    ) -> Packet {
        Packet {
            ns: ns.into(),
            data: PacketData::Event {
                name: name.into(),
                args,
                ack: Some(ack),
            },
        }
    }

    /// An ACK answering event `id`.
    pub fn ack(ns: impl Into<Str>, id: u64, args: Args) -> Packet {
        Packet {
            ns: ns.into(),
            data: PacketData::Ack { id, args },
        }
    }

    /// A CONNECT_ERROR `{"message":"<message>"}`, plus `"data"` when given.
    pub fn connect_error(
        ns: impl Into<Str>,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> Packet {
        // A struct, not `json!`: the official server writes `message` before `data`.
        #[derive(serde::Serialize)]
        struct ConnectError<'a> {
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            data: Option<&'a serde_json::Value>,
        }
        // Serialising strings and a JSON value into memory cannot fail.
        let json = serde_json::to_vec(&ConnectError { message, data }).unwrap_or_default();
        Packet {
            ns: ns.into(),
            data: PacketData::ConnectError(Bytes::from(json)),
        }
    }

    /// Encodes the packet once; the frames can then be cloned to any number of sockets without
    /// copying. Fails only if a raw payload is invalid and has to be converted between parsers,
    /// or an event name cannot be written.
    pub fn encode(&self, parser: ParserKind) -> Result<Encoded, EncodeError> {
        match parser {
            ParserKind::Json => json::encode(self),
            #[cfg(feature = "msgpack")]
            ParserKind::MsgPack => msgpack::encode(self),
        }
    }
}

/// Which wire format Socket.IO packets use; the server and its clients must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParserKind {
    /// The default text format (`socket.io-parser`), binary as separate attachments.
    #[default]
    Json,
    /// The `socket.io-msgpack-parser` format: one binary message per packet.
    #[cfg(feature = "msgpack")]
    MsgPack,
}

/// An encoded packet: the engine frames to send, in order.
///
/// With the JSON parser: one [`Frame::Text`] that already includes the engine `4` prefix
/// (`42["ev",1]`), then one [`Frame::Binary`] per attachment. With msgpack: one
/// [`Frame::Binary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub(crate) frames: SmallVec<[Frame; 1]>,
}

impl Encoded {
    /// The frames, in sending order.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// The frames as a vector, in sending order.
    pub fn into_vec(self) -> Vec<Frame> {
        self.frames.into_vec()
    }
}

impl IntoIterator for Encoded {
    type Item = Frame;
    type IntoIter = smallvec::IntoIter<[Frame; 1]>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.into_iter()
    }
}

impl<'a> IntoIterator for &'a Encoded {
    type Item = &'a Frame;
    type IntoIter = std::slice::Iter<'a, Frame>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.iter()
    }
}

/// Turns inbound engine messages into packets, assembling binary packets.
///
/// One decoder per connection: it remembers a binary packet's header until all its attachments
/// arrived. After an error the pending packet is dropped; the connection should be closed.
#[derive(Debug)]
pub struct Decoder {
    parser: ParserKind,
    limits: Limits,
    /// Boxed: a binary packet waiting for attachments is rare, and inline its state made
    /// every connection's decoder (kept for the whole session) larger.
    pending: Option<Box<json::Pending>>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(ParserKind::Json, Limits::default())
    }
}

impl Decoder {
    /// A decoder for `parser` enforcing `limits`.
    pub fn new(parser: ParserKind, limits: Limits) -> Decoder {
        Decoder {
            parser,
            limits,
            pending: None,
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// True while a binary packet waits for attachments.
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }

    /// Decodes one engine message. `Ok(None)` means a binary packet is waiting for more
    /// attachments; a text message arriving then is an error.
    pub fn decode(&mut self, message: Message) -> Result<Option<Packet>, DecodeError> {
        let result = self.decode_inner(message);
        if result.is_err() {
            self.pending = None;
        }
        result
    }

    fn decode_inner(&mut self, message: Message) -> Result<Option<Packet>, DecodeError> {
        match self.parser {
            ParserKind::Json => {}
            #[cfg(feature = "msgpack")]
            ParserKind::MsgPack => {
                return match message {
                    Message::Binary(data) => msgpack::decode(&data, &self.limits).map(Some),
                    Message::Text(_) => Err(DecodeError::WrongParser(
                        "the msgpack parser expects binary messages, got text",
                    )),
                };
            }
        }
        match message {
            Message::Text(text) => {
                if let Some(pending) = &self.pending {
                    return Err(DecodeError::ExpectedAttachment {
                        remaining: pending.expected - pending.received.len(),
                    });
                }
                match json::decode(text, &self.limits)? {
                    json::Decoded::Packet(packet) => Ok(Some(packet)),
                    json::Decoded::Pending(pending) if pending.expected == 0 => {
                        Ok(Some(pending.packet))
                    }
                    json::Decoded::Pending(pending) => {
                        self.pending = Some(Box::new(pending));
                        Ok(None)
                    }
                }
            }
            Message::Binary(data) => {
                let pending = self.pending.as_mut().ok_or(DecodeError::UnexpectedBinary)?;
                pending.size = pending.size.saturating_add(data.len());
                if pending.size > self.limits.max_packet_size {
                    return Err(DecodeError::PacketTooLarge {
                        max: self.limits.max_packet_size,
                    });
                }
                pending.received.push(data);
                if pending.received.len() < pending.expected {
                    return Ok(None);
                }
                let Some(mut done) = self.pending.take() else {
                    return Err(DecodeError::UnexpectedBinary);
                };
                if let PacketData::Event { args, .. } | PacketData::Ack { args, .. } =
                    &mut done.packet.data
                {
                    args.attachments = done.received;
                    json::validate_placeholders(args)?;
                }
                Ok(Some(done.packet))
            }
        }
    }
}
