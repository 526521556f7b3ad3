//! Event data, binary attachments, the event name, the ack handle and the auth payload.

use std::any::type_name;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    ConnectContext, DisconnectContext, EventContext, FromConnectParts, FromDisconnectParts,
    FromEventParts, OptionalFromConnectParts, OptionalFromDisconnectParts, OptionalFromEventParts,
    Rejection,
};
use crate::event::{AckSender, Event};
use crate::packet::Args;

/// The event's data, deserialised as `T`.
///
/// With one argument (`socket.emit("chat", {text: "hi"})`) `T` is that argument; with zero or
/// several arguments `T` is the whole argument list (a tuple: `Data<(String, u32)>` for
/// `emit("move", "x", 3)`). Binary parts fill `bytes::Bytes` fields. When the data does not
/// match `T`, the handler is not called and a requested ack carries
/// `{"error":{"code":"invalid_data",...}}`; use [`TryData`] to handle it yourself.
/// `Option<Data<T>>` is `None` when the event has no argument at all.
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
/// A client that sent none is rejected with code `missing_auth`; take `Option<Auth<T>>` when
/// auth is optional (`None` when the client sent none, still a rejection when it sent one that
/// is not a valid `T`). Also readable in event and disconnect handlers.
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

impl<T: DeserializeOwned> OptionalFromEventParts for Data<T> {
    type Rejection = Rejection;
    fn from_event_parts(cx: &mut EventContext) -> Result<Option<Self>, Rejection> {
        if cx.args().is_empty() {
            return Ok(None);
        }
        decode_args(cx.args()).map(|v| Some(Data(v)))
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

/// The whole event: name and arguments (for catch-all handlers).
impl FromEventParts for Event {
    type Rejection = std::convert::Infallible;
    fn from_event_parts(cx: &mut EventContext) -> Result<Self, Self::Rejection> {
        Ok(cx.event())
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
/// the client asked for no ack: take `Option<AckSender>` when acks are optional (`None` then).
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

impl OptionalFromEventParts for AckSender {
    type Rejection = std::convert::Infallible;
    fn from_event_parts(cx: &mut EventContext) -> Result<Option<Self>, Self::Rejection> {
        Ok(cx.take_ack())
    }
}

/// The auth payload, `None` when the client sent none (or `null`).
fn optional_auth<T: DeserializeOwned>(auth: Option<&Value>) -> Result<Option<Auth<T>>, Rejection> {
    let Some(value) = auth.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    T::deserialize(value).map(|v| Some(Auth(v))).map_err(|e| {
        Rejection::client(
            "invalid_auth",
            format!(
                "the auth payload is not a valid `{}`: {e}",
                type_name::<T>()
            ),
        )
    })
}

fn decode_auth<T: DeserializeOwned>(auth: Option<&Value>) -> Result<Auth<T>, Rejection> {
    optional_auth(auth)?.ok_or_else(|| {
        Rejection::client(
            "missing_auth",
            "this namespace needs an auth payload: connect with io(url, { auth: {...} })",
        )
    })
}

impl<T: DeserializeOwned> OptionalFromConnectParts for Auth<T> {
    type Rejection = Rejection;
    fn from_connect_parts(cx: &ConnectContext) -> Result<Option<Self>, Rejection> {
        optional_auth(cx.auth())
    }
}

impl<T: DeserializeOwned> OptionalFromEventParts for Auth<T> {
    type Rejection = Rejection;
    fn from_event_parts(cx: &mut EventContext) -> Result<Option<Self>, Rejection> {
        optional_auth(cx.socket().auth())
    }
}

impl<T: DeserializeOwned> OptionalFromDisconnectParts for Auth<T> {
    type Rejection = Rejection;
    fn from_disconnect_parts(cx: &DisconnectContext) -> Result<Option<Self>, Rejection> {
        optional_auth(cx.socket().auth())
    }
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
