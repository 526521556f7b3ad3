//! Socket ids: one fresh random id per namespace connection.

use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

/// The id of one socket: one client connected to one namespace.
///
/// It is drawn from the operating system's CSPRNG-seeded generator (128 bits, shown as 22
/// URL-safe base64 characters) and is distinct from the Engine.IO session id, which authorises
/// polling requests and is never shown to other clients. The same client gets a different id on
/// every namespace it joins. Cloning is cheap (a reference count).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(Arc<str>);

impl SocketId {
    /// A new random id.
    pub fn random() -> SocketId {
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        SocketId(Arc::from(URL_SAFE_NO_PAD.encode(raw)))
    }

    /// The id as text, as it appears in the CONNECT reply and in the socket's own room.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SocketId {
    /// Wraps an id received from elsewhere (another node of a cluster, a stored session).
    fn from(id: &str) -> SocketId {
        SocketId(Arc::from(id))
    }
}

impl From<String> for SocketId {
    fn from(id: String) -> SocketId {
        SocketId(Arc::from(id))
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SocketId({})", self.0)
    }
}

impl AsRef<str> for SocketId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Lets maps keyed by `SocketId` be searched with a `&str` (a room name that may be a socket's
/// own room) without allocating an id: equality, ordering and hashing are those of the text.
impl std::borrow::Borrow<str> for SocketId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for SocketId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A map keyed by the ids of this server's own sockets, hashed with [`IdHasher`].
pub(crate) type IdMap<V> = std::collections::HashMap<SocketId, V, BuildHasherDefault<IdHasher>>;

/// The hasher of [`IdMap`]: a multiply-rotate mix of the key's bytes, eight at a time.
///
/// The keys of such a map are ids this server drew at random, so no peer can pick keys that
/// collide; the keyed SipHash of `HashMap` buys nothing there and was a tenth of the
/// user-space work per delivery of a broadcast (one lookup per recipient). Lookups with any
/// string (an own-id room name from a handler) are fine: they cannot slow the map down.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(23) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits: fold the better-mixed high half in.
        self.0 ^ (self.0 >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn id_map_finds_ids_by_their_text() {
        let ids: Vec<SocketId> = (0..100).map(|_| SocketId::random()).collect();
        let map: IdMap<usize> = ids.iter().cloned().zip(0..).collect();
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(map.get(id.as_str()), Some(&n));
        }
        assert_eq!(map.get("not-an-id"), None);
    }

    #[test]
    fn id_hashes_spread_over_the_low_bits() {
        // 10 000 random ids over 2^16 buckets: about 9 300 distinct buckets if the low bits
        // are uniform; a hash that ignored most of the id would land far below.
        let hasher = BuildHasherDefault::<IdHasher>::default();
        let buckets: HashSet<u64> = (0..10_000)
            .map(|_| hasher.hash_one(SocketId::random().as_str()) & 0xffff)
            .collect();
        assert!(buckets.len() > 9_000, "{} distinct buckets", buckets.len());
        let prefixed: HashSet<u64> = (0..10_000)
            .map(|n| hasher.hash_one(format!("same-prefix-{n}").as_str()) & 0xffff)
            .collect();
        assert!(
            prefixed.len() > 9_000,
            "{} distinct buckets",
            prefixed.len()
        );
    }

    #[test]
    fn ids_are_long_and_distinct() {
        let ids: HashSet<SocketId> = (0..1000).map(|_| SocketId::random()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            // 16 random bytes in unpadded base64: 22 characters, 128 bits
            assert_eq!(id.as_str().len(), 22);
            assert!(
                id.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
    }
}
