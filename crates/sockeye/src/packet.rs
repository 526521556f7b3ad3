//! Glue to `sockeye_protocol::socketio`: the packets this server sends, each encoded once.

pub use sockeye_protocol::socketio::Args;
pub(crate) use sockeye_protocol::socketio::Encoded;
use sockeye_protocol::socketio::{Packet, ParserKind, Str};

use crate::error::{ConnectionRefusedError, EmitError};

/// An event to broadcast: what an adapter forwards to other nodes and encodes for local
/// sockets.
#[derive(Debug, Clone)]
pub struct BroadcastPacket {
    /// The namespace name.
    pub ns: Str,
    /// The event name.
    pub event: Str,
    /// The event's arguments (binary attachments included).
    pub args: Args,
    /// The connection-state recovery offset the adapter stamped this packet with, sent to each
    /// recipient as one more, last argument (what the official server does); `None` when
    /// recovery is off or the packet is not recoverable (volatile, or with an ack).
    pub offset: Option<Str>,
}

impl BroadcastPacket {
    /// A packet without offset.
    pub fn new(ns: Str, event: Str, args: Args) -> BroadcastPacket {
        BroadcastPacket {
            ns,
            event,
            args,
            offset: None,
        }
    }

    /// The Socket.IO packet without its offset, as a cluster adapter serialises it for other
    /// nodes (each node stamps its own deliveries).
    pub fn to_packet(&self, ack: Option<u64>) -> Packet {
        match ack {
            Some(id) => {
                Packet::event_with_ack(self.ns.clone(), self.event.clone(), self.args.clone(), id)
            }
            None => Packet::event(self.ns.clone(), self.event.clone(), self.args.clone()),
        }
    }

    /// Encodes the packet as recipients get it: with its offset as the last argument.
    pub(crate) fn encode(
        &self,
        parser: ParserKind,
        ack: Option<u64>,
    ) -> Result<Encoded, EmitError> {
        match &self.offset {
            None => event(parser, &self.ns, &self.event, &self.args, ack),
            Some(offset) => {
                let args = self
                    .args
                    .appended(offset.as_str())
                    .map_err(|e| EmitError::Serialize(e.to_string()))?;
                event(parser, &self.ns, &self.event, &args, ack)
            }
        }
    }
}

fn encode(packet: &Packet, parser: ParserKind) -> Result<Encoded, EmitError> {
    packet
        .encode(parser)
        .map_err(|e| EmitError::Serialize(e.to_string()))
}

pub(crate) fn event(
    parser: ParserKind,
    ns: &Str,
    name: &Str,
    args: &Args,
    ack: Option<u64>,
) -> Result<Encoded, EmitError> {
    let packet = match ack {
        Some(id) => Packet::event_with_ack(ns.clone(), name.clone(), args.clone(), id),
        None => Packet::event(ns.clone(), name.clone(), args.clone()),
    };
    encode(&packet, parser)
}

pub(crate) fn ack(parser: ParserKind, ns: &Str, id: u64, args: Args) -> Result<Encoded, EmitError> {
    encode(&Packet::ack(ns.clone(), id, args), parser)
}

/// The CONNECT reply: `{"sid":..}`, or `{"sid":..,"pid":..}` for a socket that can recover
/// (the key order of the official server).
pub(crate) fn connect(
    parser: ParserKind,
    ns: &Str,
    sid: &str,
    pid: Option<&str>,
) -> Result<Encoded, EmitError> {
    let Some(pid) = pid else {
        return encode(&Packet::connect_ok(ns.clone(), sid), parser);
    };
    #[derive(serde::Serialize)]
    struct Reply<'a> {
        sid: &'a str,
        pid: &'a str,
    }
    let json =
        serde_json::to_vec(&Reply { sid, pid }).map_err(|e| EmitError::Serialize(e.to_string()))?;
    encode(
        &Packet::connect(ns.clone(), Some(bytes::Bytes::from(json))),
        parser,
    )
}

/// The CONNECT reply of Socket.IO v4 (clients 2.x): no payload.
pub(crate) fn connect_legacy(parser: ParserKind, ns: &Str) -> Result<Encoded, EmitError> {
    encode(&Packet::connect(ns.clone(), None), parser)
}

/// The CONNECT_ERROR of Socket.IO v4 (clients 2.x): the error's data when it has some, its
/// message as a JSON string otherwise (the reference's `err.data || err.message`).
pub(crate) fn connect_error_legacy(
    parser: ParserKind,
    ns: &Str,
    err: &ConnectionRefusedError,
) -> Result<Encoded, EmitError> {
    let payload = match &err.data {
        Some(data) if !data.is_null() => serde_json::to_vec(data),
        _ => serde_json::to_vec(&err.message),
    }
    .map_err(|e| EmitError::Serialize(e.to_string()))?;
    encode(
        &Packet {
            ns: ns.clone(),
            data: sockeye_protocol::socketio::PacketData::ConnectError(bytes::Bytes::from(payload)),
        },
        parser,
    )
}

pub(crate) fn connect_error(
    parser: ParserKind,
    ns: &Str,
    err: &ConnectionRefusedError,
) -> Result<Encoded, EmitError> {
    encode(
        &Packet::connect_error(ns.clone(), &err.message, err.data.as_ref()),
        parser,
    )
}

pub(crate) fn disconnect(parser: ParserKind, ns: &Str) -> Result<Encoded, EmitError> {
    encode(&Packet::disconnect(ns.clone()), parser)
}
