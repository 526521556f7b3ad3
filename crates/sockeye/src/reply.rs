//! [`IntoAck`]: what an event handler returns, or an explicit ack handle sends; the value
//! becomes the ack.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::packet::Args;

/// An acknowledgement as it will be sent.
#[derive(Debug, Clone, Default)]
pub enum Reply {
    /// Acknowledge with these arguments.
    Ack(Args),
    /// Acknowledge with no arguments (`43<id>[]`), python-socketio's reply for a handler that
    /// returns nothing.
    #[default]
    Empty,
    /// Send no ack (the client's callback never runs, or times out).
    None,
}

/// Sends no ack, even when the client asked for one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAck;

/// Converts a value into an ack: what an event handler returns (sent only when the client
/// asked for one) and what [`crate::AckSender::send`] takes, with one rule for both.
///
/// | returned | ack arguments |
/// |---|---|
/// | `()` | none (`[]`), python-socketio's reply for a handler returning nothing |
/// | [`Json<T>`], `String`, `&'static str`, numbers, `bool`, [`Value`], `Vec<T>` | one argument |
/// | [`Bytes`] | one binary argument (an attachment) |
/// | tuples `(A, B, ...)` of serialisable values (up to 8) | one argument per element |
/// | `Option<T>` | `None`: none; `Some(t)`: as `t` |
/// | `Result<T, E>` | as `T` or as `E` (both must be `IntoAck`), as axum turns both arms of a `Result` into a response |
/// | [`Args`], [`Reply`], [`NoAck`] | exactly that (`NoAck`: no ack at all) |
///
/// Binary data inside serialised values (`bytes::Bytes` fields) becomes attachments too.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an event handler's ack",
    note = "return `()`, `Json<T>` (T: Serialize), a tuple of serialisable values, `Bytes`, `Option`/`Result` of those, or `NoAck`"
)]
pub trait IntoAck {
    /// The ack.
    fn into_ack(self) -> Reply;
}

/// One serialisable ack argument (the return type an axum user expects).
///
/// With the `axum` feature, `axum::Json<T>` is an ack too, so a module that imports axum's
/// `Json` beside `sockeye::prelude::*` works either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

fn one<T: Serialize + ?Sized>(value: &T) -> Reply {
    match Args::from_value(value) {
        Ok(args) => Reply::Ack(args),
        Err(e) => {
            tracing::error!(error = %e, "ack value is not serialisable: no ack sent");
            Reply::None
        }
    }
}

impl<T: Serialize> IntoAck for Json<T> {
    fn into_ack(self) -> Reply {
        one(&self.0)
    }
}

impl IntoAck for () {
    fn into_ack(self) -> Reply {
        Reply::Empty
    }
}

impl IntoAck for Reply {
    fn into_ack(self) -> Reply {
        self
    }
}

impl IntoAck for Args {
    fn into_ack(self) -> Reply {
        Reply::Ack(self)
    }
}

impl IntoAck for NoAck {
    fn into_ack(self) -> Reply {
        Reply::None
    }
}

#[cfg(feature = "axum")]
impl<T: Serialize> IntoAck for axum::Json<T> {
    fn into_ack(self) -> Reply {
        one(&self.0)
    }
}

impl IntoAck for Bytes {
    fn into_ack(self) -> Reply {
        let mut builder = Args::builder();
        builder.push_binary(self);
        Reply::Ack(builder.build())
    }
}

impl<T: IntoAck> IntoAck for Option<T> {
    fn into_ack(self) -> Reply {
        self.map_or(Reply::Empty, IntoAck::into_ack)
    }
}

impl<T: IntoAck, E: IntoAck> IntoAck for Result<T, E> {
    fn into_ack(self) -> Reply {
        match self {
            Ok(v) => v.into_ack(),
            Err(e) => e.into_ack(),
        }
    }
}

impl<T: Serialize> IntoAck for Vec<T> {
    fn into_ack(self) -> Reply {
        one(&self)
    }
}

macro_rules! one_argument {
    ($($ty:ty),*) => {$(
        impl IntoAck for $ty {
            fn into_ack(self) -> Reply {
                one(&self)
            }
        }
    )*};
}

one_argument!(
    Value,
    String,
    &'static str,
    bool,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    f32,
    f64
);

macro_rules! several_arguments {
    ($($name:ident),+) => {
        impl<$($name: Serialize),+> IntoAck for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_ack(self) -> Reply {
                let ($($name,)+) = self;
                let mut builder = Args::builder();
                $(
                    if let Err(e) = builder.push(&$name) {
                        tracing::error!(error = %e, "ack argument is not serialisable: no ack sent");
                        return Reply::None;
                    }
                )+
                Reply::Ack(builder.build())
            }
        }
    };
}

several_arguments!(A);
several_arguments!(A, B);
several_arguments!(A, B, C);
several_arguments!(A, B, C, D);
several_arguments!(A, B, C, D, E);
several_arguments!(A, B, C, D, E, F);
several_arguments!(A, B, C, D, E, F, G);
several_arguments!(A, B, C, D, E, F, G, H);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(reply: Reply) -> Args {
        match reply {
            Reply::Ack(args) => args,
            other => panic!("expected an ack with arguments, got {other:?}"),
        }
    }

    #[test]
    fn tuples_become_several_arguments() {
        let a = args((1, "two", json!({"three": 3})).into_ack());
        assert_eq!(a.len(), 3);
        assert_eq!(a.nth::<String>(1).unwrap(), "two");
    }

    #[test]
    fn json_is_one_argument_and_bytes_an_attachment() {
        let a = args(Json(vec![1, 2]).into_ack());
        assert_eq!(a.len(), 1);
        assert_eq!(a.first::<Vec<u8>>().unwrap(), vec![1, 2]);
        let b = args(Bytes::from_static(b"\x01\x02").into_ack());
        assert_eq!(b.attachments(), &[Bytes::from_static(b"\x01\x02")]);
    }

    #[test]
    fn unit_none_and_noack_differ() {
        assert!(matches!(().into_ack(), Reply::Empty));
        assert!(matches!(None::<Json<u8>>.into_ack(), Reply::Empty));
        assert!(matches!(NoAck.into_ack(), Reply::None));
        let err: Result<Json<u8>, Json<&str>> = Err(Json("nope"));
        assert_eq!(args(err.into_ack()).first::<String>().unwrap(), "nope");
    }
}
