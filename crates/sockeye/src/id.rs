//! Socket ids: one fresh random id per namespace connection.

use std::fmt;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

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
