//! [`Str`]: a cheap, immutable string for namespaces and event names.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use smol_str::SmolStr;

/// An immutable UTF-8 string that is cheap to create and to clone.
///
/// Static strings (the default namespace `"/"`) and short strings (most event names, up to
/// 23 bytes) cost no allocation; longer strings share one reference-counted buffer between
/// clones. Reading it costs nothing: the bytes were checked once, when it was made (the
/// storage is `smol_str`'s, which can vouch for that without checking again).
#[derive(Clone)]
pub struct Str(SmolStr);

impl Str {
    /// The default namespace, `"/"`.
    pub const ROOT: Str = Str(SmolStr::new_static("/"));

    /// A string borrowed for the whole program, stored without copying.
    pub const fn from_static(s: &'static str) -> Str {
        Str(SmolStr::new_static(s))
    }

    /// The string itself.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Default for Str {
    fn default() -> Self {
        Str::ROOT
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Str(SmolStr::new(s))
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        Str(SmolStr::from(s))
    }
}

impl From<&String> for Str {
    fn from(s: &String) -> Self {
        Str::from(s.as_str())
    }
}

impl Deref for Str {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Str {}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for Str {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Str {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Str {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Str {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Str;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Str, E> {
                Ok(Str::from(v))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Str, E> {
                Ok(Str::from(v))
            }
        }
        deserializer.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_static_and_shared_compare_by_content() {
        let long = "a".repeat(100);
        assert_eq!(Str::from("/"), Str::ROOT);
        assert_eq!(Str::from(long.as_str()).as_str(), long);
        assert_eq!(Str::from("ünïcode"), "ünïcode");
        assert_eq!(Str::from(String::from("x")).len(), 1);
        assert_eq!(Str::from(""), "");
    }
}
