//! A small value tree used only where raw arguments cannot be read directly: arguments with
//! binary attachments, and conversion between the JSON and msgpack parsers.
//!
//! Trees come from payloads whose nesting was already bounded by [`super::Limits::max_depth`]
//! (checked iteratively before parsing), so the recursion of (de)serialising and dropping a tree
//! is bounded too; the placeholder substitution itself is iterative.

use std::fmt;

use bytes::Bytes;
use serde::de::value::{Error as DeError, MapAccessDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::DecodeError;

/// Any JSON or msgpack value, with binary kept as [`Bytes`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Bytes(Bytes),
    Seq(Vec<Value>),
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// Replaces every placeholder object by its attachment, checking that each `num` is in
    /// range and that every attachment is used.
    pub(crate) fn fill_placeholders(&mut self, attachments: &[Bytes]) -> Result<(), DecodeError> {
        let mut used = vec![false; attachments.len()];
        let mut stack: Vec<&mut Value> = vec![self];
        while let Some(value) = stack.pop() {
            if let Some(num) = placeholder_num(value, attachments.len())? {
                if let (Some(data), Some(flag)) = (attachments.get(num), used.get_mut(num)) {
                    *flag = true;
                    *value = Value::Bytes(data.clone());
                }
                continue;
            }
            match value {
                Value::Seq(items) => stack.extend(items.iter_mut()),
                Value::Map(entries) => stack.extend(entries.iter_mut().map(|(_, v)| v)),
                _ => {}
            }
        }
        match used.iter().position(|u| !u) {
            Some(unused) => Err(DecodeError::UnreferencedAttachment(unused)),
            None => Ok(()),
        }
    }

    /// The elements of an array value (empty for anything else).
    #[cfg(feature = "msgpack")]
    pub(crate) fn into_seq(self) -> Vec<Value> {
        match self {
            Value::Seq(items) => items,
            _ => Vec::new(),
        }
    }
}

/// `Some(num)` if `value` is a placeholder object (`_placeholder` is `true`, like the official
/// decoder checks), an error if it is one with a bad `num`.
fn placeholder_num(value: &Value, count: usize) -> Result<Option<usize>, DecodeError> {
    let Value::Map(entries) = value else {
        return Ok(None);
    };
    let field = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if s == name))
            .map(|(_, v)| v)
    };
    if field("_placeholder") != Some(&Value::Bool(true)) {
        return Ok(None);
    }
    let num = match field("num") {
        Some(Value::U64(n)) => usize::try_from(*n).ok(),
        Some(Value::I64(n)) => usize::try_from(*n).ok(),
        _ => None,
    };
    match num {
        Some(n) if n < count => Ok(Some(n)),
        _ => Err(DecodeError::InvalidPlaceholder { count }),
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(if v >= 0 {
            Value::U64(v.unsigned_abs())
        } else {
            Value::I64(v)
        })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::F64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(Bytes::copy_from_slice(v)))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(Bytes::from(v)))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    /// A msgpack extension (rmp-serde hands it over as a newtype of `(type, bytes)`). The one
    /// the official `socket.io-msgpack-parser` (notepack.io) sends on its own is JavaScript
    /// `undefined`, fixext 1 of type 0 holding a 0 byte: the Node server's CONNECT reply
    /// carries `pid: undefined` when recovery is off. It reads as null; others are refused.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match Value::deserialize(d)? {
            Value::Seq(parts)
                if matches!(
                    parts.as_slice(),
                    [Value::U64(0), Value::Bytes(data)] if data.as_ref() == [0]
                ) =>
            {
                Ok(Value::Null)
            }
            _ => Err(de::Error::custom(
                "msgpack extension types are not supported (only notepack's undefined)",
            )),
        }
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // The size hint comes from the peer: cap the preallocation.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Value::Map(entries))
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::I64(n) => serializer.serialize_i64(*n),
            Value::U64(n) => serializer.serialize_u64(*n),
            Value::F64(n) => serializer.serialize_f64(*n),
            Value::Str(s) => serializer.serialize_str(s),
            Value::Bytes(b) => serializer.serialize_bytes(b),
            Value::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> IntoDeserializer<'de, DeError> for Value {
    type Deserializer = Value;
    fn into_deserializer(self) -> Value {
        self
    }
}

impl<'de> Deserializer<'de> for Value {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::I64(n) => visitor.visit_i64(n),
            Value::U64(n) => visitor.visit_u64(n),
            Value::F64(n) => visitor.visit_f64(n),
            Value::Str(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b.into()),
            Value::Seq(items) => SeqDeserializer::new(items.into_iter()).deserialize_any(visitor),
            Value::Map(entries) => {
                MapDeserializer::new(entries.into_iter()).deserialize_any(visitor)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            // `Vec<u8>` and `[u8; N]` ask for a sequence: give them the attachment's bytes.
            Value::Bytes(b) => SeqDeserializer::new(b.iter().copied()).deserialize_any(visitor),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self {
            Value::Str(s) => visitor.visit_enum(s.into_deserializer()),
            Value::Map(entries) if entries.len() == 1 => visitor.visit_enum(
                MapAccessDeserializer::new(MapDeserializer::new(entries.into_iter())),
            ),
            _ => Err(de::Error::custom(
                "expected an enum: a string or an object with one key",
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct tuple_struct map struct identifier ignored_any
    }
}
