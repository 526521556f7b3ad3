//! The handshake request head every session keeps, packed until someone asks for it.
//!
//! A session must hand out its handshake request as `http::request::Parts`
//! ([`crate::Session::request`]), but most never get asked. As a `HeaderMap` the head of a
//! WebSocket handshake took about 700 bytes in three allocations for every idle client
//! (the map's index, its entries, a copy of each value); packed, the header names and values
//! share one allocation of their own size, and the `Parts` are built on first use.

use std::sync::OnceLock;

/// A request head: the method, version, URI and extensions as they were, the headers packed
/// (see the module docs).
pub(crate) struct RequestHead {
    method: http::Method,
    version: http::Version,
    /// The URI as received (origin form or absolute).
    uri: Box<str>,
    /// Per header, in order: flags (bit 0: sensitive value), name length and value length
    /// (u32, little endian), the name, the value.
    headers: Box<[u8]>,
    extensions: http::Extensions,
    /// The head as `Parts`, built on first use.
    parts: OnceLock<Box<http::request::Parts>>,
}

const SENSITIVE: u8 = 1;

impl RequestHead {
    /// Packs `parts`. Nothing of hyper's read buffer stays referenced: header values and the
    /// URI are copied out of it (kept, they would keep the whole buffer alive).
    pub(crate) fn new(parts: http::request::Parts) -> RequestHead {
        let size: usize = parts
            .headers
            .iter()
            .map(|(name, value)| 9 + name.as_str().len() + value.len())
            .sum();
        let mut headers = Vec::with_capacity(size);
        for (name, value) in &parts.headers {
            let name = name.as_str().as_bytes();
            let value_bytes = value.as_bytes();
            // A header name or value of 4 GiB cannot come through hyper; skipped rather than
            // truncated all the same.
            let (Ok(name_len), Ok(value_len)) =
                (u32::try_from(name.len()), u32::try_from(value_bytes.len()))
            else {
                continue;
            };
            headers.push(if value.is_sensitive() { SENSITIVE } else { 0 });
            headers.extend_from_slice(&name_len.to_le_bytes());
            headers.extend_from_slice(&value_len.to_le_bytes());
            headers.extend_from_slice(name);
            headers.extend_from_slice(value_bytes);
        }
        let mut extensions = parts.extensions;
        // hyper put the upgrade handle in the extensions and `hyper::upgrade::on` took it out:
        // the empty map still holds its hash table (about 150 bytes) unless replaced.
        if extensions.is_empty() {
            extensions = http::Extensions::new();
        }
        RequestHead {
            method: parts.method,
            version: parts.version,
            uri: parts.uri.to_string().into_boxed_str(),
            headers: headers.into_boxed_slice(),
            extensions,
            parts: OnceLock::new(),
        }
    }

    /// The head as `Parts` (built on the first call).
    pub(crate) fn parts(&self) -> &http::request::Parts {
        self.parts.get_or_init(|| Box::new(self.unpack()))
    }

    fn unpack(&self) -> http::request::Parts {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.method = self.method.clone();
        parts.version = self.version;
        // It parsed before it was packed; the fallback is not reachable.
        parts.uri = http::Uri::try_from(&*self.uri).unwrap_or_default();
        let mut headers = http::HeaderMap::new();
        let mut rest: &[u8] = &self.headers;
        while let Some((header, tail)) = next_header(rest) {
            rest = tail;
            // Both came from a valid `HeaderMap`: neither check fails.
            let (Ok(name), Ok(mut value)) = (
                http::HeaderName::from_bytes(header.name),
                http::HeaderValue::from_bytes(header.value),
            ) else {
                continue;
            };
            value.set_sensitive(header.sensitive);
            headers.append(name, value);
        }
        parts.headers = headers;
        parts.extensions = self.extensions.clone();
        parts
    }
}

/// One packed header.
struct Packed<'a> {
    name: &'a [u8],
    value: &'a [u8],
    sensitive: bool,
}

/// The first packed header of `bytes`, and what follows it.
fn next_header(bytes: &[u8]) -> Option<(Packed<'_>, &[u8])> {
    let (&flags, rest) = bytes.split_first()?;
    let (name_len, rest) = rest.split_first_chunk::<4>()?;
    let (value_len, rest) = rest.split_first_chunk::<4>()?;
    let name_len = usize::try_from(u32::from_le_bytes(*name_len)).ok()?;
    let value_len = usize::try_from(u32::from_le_bytes(*value_len)).ok()?;
    let (name, rest) = rest.split_at_checked(name_len)?;
    let (value, rest) = rest.split_at_checked(value_len)?;
    let sensitive = flags & SENSITIVE != 0;
    Some((
        Packed {
            name,
            value,
            sensitive,
        },
        rest,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unpacks_what_was_packed() {
        let mut secret = http::HeaderValue::from_static("token");
        secret.set_sensitive(true);
        let (mut parts, ()) = http::Request::builder()
            .method(http::Method::GET)
            .uri("/socket.io/?EIO=4&transport=websocket&x=%20y")
            .version(http::Version::HTTP_11)
            .header("host", "127.0.0.1:4000")
            .header("x-multi", "one")
            .header("x-multi", "two")
            .header("authorization", secret)
            .header("x-empty", "")
            .header("x-bytes", &b"caf\xc3\xa9"[..])
            .body(())
            .unwrap()
            .into_parts();
        parts.extensions.insert(42u32);
        let expected_headers = parts.headers.clone();
        let head = RequestHead::new(parts);
        let parts = head.parts();
        assert_eq!(parts.method, http::Method::GET);
        assert_eq!(parts.version, http::Version::HTTP_11);
        assert_eq!(
            parts.uri.to_string(),
            "/socket.io/?EIO=4&transport=websocket&x=%20y"
        );
        assert_eq!(parts.uri.query(), Some("EIO=4&transport=websocket&x=%20y"));
        assert_eq!(parts.headers, expected_headers);
        let multi: Vec<_> = parts.headers.get_all("x-multi").iter().collect();
        assert_eq!(multi, ["one", "two"]);
        assert!(parts.headers["authorization"].is_sensitive());
        assert!(!parts.headers["host"].is_sensitive());
        assert_eq!(parts.extensions.get::<u32>(), Some(&42));
        // Built once: the same `Parts` every time.
        assert!(std::ptr::eq(parts, head.parts()));
    }

    #[test]
    fn absolute_uri_and_no_headers() {
        let (parts, ()) = http::Request::builder()
            .method(http::Method::POST)
            .uri("http://example.com:8080/engine.io/?sid=abc")
            .body(())
            .unwrap()
            .into_parts();
        let head = RequestHead::new(parts);
        let parts = head.parts();
        assert_eq!(parts.method, http::Method::POST);
        assert_eq!(
            parts.uri.to_string(),
            "http://example.com:8080/engine.io/?sid=abc"
        );
        assert!(parts.headers.is_empty());
        assert!(parts.extensions.is_empty());
    }
}
