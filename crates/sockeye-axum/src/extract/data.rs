//! Event data, binary attachments, the event name, the ack handle and the auth payload.

use std::any::type_name;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sockeye::{AckSender, Args};

use super::{
    ConnectContext, DisconnectContext, EventContext, FromConnectParts, FromDisconnectParts,
    FromEventParts,
};
use crate::rejection::Rejection;

/// The event's data, deserialised as `T`.
///
/// With one argument (`socket.emit("chat", {text: "hi"})`) `T` is that argument; with zero or
/// several arguments `T` is the whole argument list (a tuple: `Data<(String, u32)>` for
/// `emit("move", "x", 3)`). Binary parts fill `bytes::Bytes` fields. When the data does not
/// match `T`, the handler is not called and a requested ack carries
/// `{"error":{"code":"invalid_data",...}}`; use [`TryData`] to handle it yourself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data<T>(pub T);

/// The event's data as `Result<T, Rejection>`: the handler runs even when it does not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryData<T>(pub Result<T, Rejection>);

/// The event's binary attachments, in order (empty when there are none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bin(pub Vec<Bytes>);

/// The event name, for catch-all handlers (`on_any`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventName(pub String);

/// The auth payload of the CONNECT packet (the client's `auth` option), deserialised as `T`.
///
/// A client that sent none is deserialised from `null`: `Auth<Option<T>>` accepts it, other
/// types reject it with code `missing_auth`. Also readable in event and disconnect handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth<T>(pub T);

pub(crate) fn decode_args<T: DeserializeOwned>(args: &Args) -> Result<T, Rejection> {
    let decoded = if args.len() == 1 {
        args.first::<T>()
    } else {
        args.deserialize::<T>()
    };
    decoded.map_err(|e| {
        Rejection::client(
            "invalid_data",
            format!("the event data is not a valid `{}`: {e}", type_name::<T>()),
        )
    })
}

impl<T: DeserializeOwned> FromEventParts for Data<T> {
    type Rejection = Rejection;
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Rejection> {
        decode_args(cx.args()).map(Data)
    }
}

impl<T: DeserializeOwned> FromEventParts for TryData<T> {
    type Rejection = std::convert::Infallible;
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Self::Rejection> {
        Ok(TryData(decode_args(cx.args())))
    }
}

impl FromEventParts for Bin {
    type Rejection = std::convert::Infallible;
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Self::Rejection> {
        Ok(Bin(cx.args().attachments().to_vec()))
    }
}

impl FromEventParts for Args {
    type Rejection = std::convert::Infallible;
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Self::Rejection> {
        Ok(cx.args().clone())
    }
}

impl FromEventParts for EventName {
    type Rejection = std::convert::Infallible;
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Self::Rejection> {
        Ok(EventName(cx.event_name().to_owned()))
    }
}

/// The explicit ack handle: the handler acknowledges when it wants (from another task, after
/// other work), and its return value no longer becomes the ack. Rejected (code `no_ack`) when
/// the client asked for no ack: take `Option<AckSender>` when acks are optional.
impl FromEventParts for AckSender {
    type Rejection = Rejection;
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Rejection> {
        cx.take_ack().ok_or_else(|| {
            Rejection::client(
                "no_ack",
                format!(
                    "event {:?} must be sent with an ack callback",
                    cx.event_name()
                ),
            )
        })
    }
}

fn decode_auth<T: DeserializeOwned>(auth: Option<&Value>) -> Result<Auth<T>, Rejection> {
    let value = auth.cloned().unwrap_or(Value::Null);
    let missing = value.is_null();
    serde_json::from_value(value).map(Auth).map_err(|e| {
        if missing {
            Rejection::client(
                "missing_auth",
                "this namespace needs an auth payload: connect with io(url, { auth: {...} })",
            )
        } else {
            Rejection::client(
                "invalid_auth",
                format!(
                    "the auth payload is not a valid `{}`: {e}",
                    type_name::<T>()
                ),
            )
        }
    })
}

impl<T: DeserializeOwned> FromConnectParts for Auth<T> {
    type Rejection = Rejection;
    fn from_connect_parts(cx: &ConnectContext) -> Result<Self, Rejection> {
        decode_auth(cx.auth())
    }
}

impl<T: DeserializeOwned> FromEventParts for Auth<T> {
    type Rejection = Rejection;
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Rejection> {
        decode_auth(cx.socket().auth())
    }
}

impl<T: DeserializeOwned> FromDisconnectParts for Auth<T> {
    type Rejection = Rejection;
    fn from_disconnect_parts(cx: &DisconnectContext) -> Result<Self, Rejection> {
        decode_auth(cx.socket().auth())
    }
}
