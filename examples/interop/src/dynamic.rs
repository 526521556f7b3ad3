//! [`Dynamic`]: any event argument, binary included, kept in its received shape.
//!
//! `serde_json::Value` cannot hold binary, and the interop app must relay payloads (ask-client,
//! room-msg, broadcast-msg) with their binary parts at the same place. This tree deserialises
//! binary as [`Dynamic::Binary`] and serialises it back with `serialize_bytes`, which sockeye
//! turns into an attachment; map entries keep their order.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// Upper bound on preallocation from a peer-supplied size hint.
const MAX_PREALLOC: usize = 64;

/// Any value an event argument can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Dynamic {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    Uint(u64),
    /// A number with a fraction or exponent.
    Float(f64),
    /// A string.
    Str(String),
    /// Binary data (a Node `Buffer`, Python `bytes`).
    Binary(Vec<u8>),
    /// An array.
    Seq(Vec<Dynamic>),
    /// An object, in received key order.
    Map(Vec<(String, Dynamic)>),
}

impl Dynamic {
    /// The value of `key` when `self` is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Dynamic> {
        match self {
            Dynamic::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The integer value, when `self` is a non-negative integer (or a float that is one).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Dynamic::Uint(n) => Some(*n),
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Dynamic::Float(f) if f.fract() == 0.0 && *f >= 0.0 && *f <= 9.0e15 => Some(*f as u64),
            _ => None,
        }
    }
}

impl Serialize for Dynamic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Dynamic::Null => serializer.serialize_unit(),
            Dynamic::Bool(b) => serializer.serialize_bool(*b),
            Dynamic::Int(n) => serializer.serialize_i64(*n),
            Dynamic::Uint(n) => serializer.serialize_u64(*n),
            Dynamic::Float(f) => serializer.serialize_f64(*f),
            Dynamic::Str(s) => serializer.serialize_str(s),
            Dynamic::Binary(b) => serializer.serialize_bytes(b),
            Dynamic::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Dynamic::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Dynamic {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dynamic, D::Error> {
        deserializer.deserialize_any(DynamicVisitor)
    }
}

struct DynamicVisitor;

impl<'de> Visitor<'de> for DynamicVisitor {
    type Value = Dynamic;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any Socket.IO argument")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Dynamic, E> {
        Ok(Dynamic::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Dynamic, E> {
        Ok(u64::try_from(v).map_or(Dynamic::Int(v), Dynamic::Uint))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Dynamic, E> {
        Ok(Dynamic::Uint(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Dynamic, E> {
        Ok(Dynamic::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Dynamic, E> {
        Ok(Dynamic::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Dynamic, E> {
        Ok(Dynamic::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Dynamic, E> {
        Ok(Dynamic::Binary(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Dynamic, E> {
        Ok(Dynamic::Binary(v))
    }
    fn visit_none<E>(self) -> Result<Dynamic, E> {
        Ok(Dynamic::Null)
    }
    fn visit_unit<E>(self) -> Result<Dynamic, E> {
        Ok(Dynamic::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Dynamic, D::Error> {
        Dynamic::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dynamic, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOC));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Dynamic::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dynamic, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(MAX_PREALLOC));
        while let Some((k, v)) = map.next_entry::<String, Dynamic>()? {
            entries.push((k, v));
        }
        Ok(Dynamic::Map(entries))
    }
}

/// Builds an object from `(key, value)` pairs, in that order.
pub fn object<const N: usize>(entries: [(&str, Dynamic); N]) -> Dynamic {
    Dynamic::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_key_order_and_numbers() {
        let text = r#"{"z":1,"a":[-2,1.5,"s",null,true],"m":{}}"#;
        let value: Dynamic = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), text);
        assert_eq!(value.get("z").and_then(Dynamic::as_u64), Some(1));
        assert_eq!(value.get("missing"), None);
    }
}
