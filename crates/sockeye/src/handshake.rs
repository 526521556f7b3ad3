//! A socket's handshake as the JavaScript server shapes it, for cluster fetch responses.

use serde_json::{Map, Value};

use crate::socket::SocketRef;

/// `{headers, address, xdomain, secure, url, query, auth}` of `socket`. Header values that are
/// not UTF-8 are left out; repeated query keys keep the last value, as Node's parser does for
/// a plain object.
pub(crate) fn describe(socket: &SocketRef) -> Value {
    let request = socket.request();
    let headers: Map<String, Value> = request
        .headers
        .iter()
        .filter_map(|(name, value)| {
            let value = value.to_str().ok()?;
            Some((name.as_str().to_owned(), Value::String(value.to_owned())))
        })
        .collect();
    let query: Map<String, Value> = request
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), Value::String(decode(value)))
        })
        .collect();
    let mut out = Map::new();
    out.insert("headers".into(), Value::Object(headers));
    out.insert(
        "address".into(),
        socket
            .remote_addr()
            .map_or(Value::Null, |addr| Value::String(addr.ip().to_string())),
    );
    out.insert(
        "xdomain".into(),
        Value::Bool(request.headers.contains_key(http::header::ORIGIN)),
    );
    out.insert(
        "secure".into(),
        Value::Bool(request.uri.scheme_str() == Some("https")),
    );
    out.insert("url".into(), Value::String(request.uri.to_string()));
    out.insert("query".into(), Value::Object(query));
    out.insert(
        "auth".into(),
        socket
            .auth()
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    );
    Value::Object(out)
}

/// Percent-decodes a query component (`+` is a space); invalid escapes stay as they are.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|c| (*c as char).to_digit(16));
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                    out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                    i += 3;
                    continue;
                }
                out.push(b);
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn query_components_are_percent_decoded() {
        assert_eq!(decode("a%20b+c"), "a b c");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%C3%A9"), "é");
    }
}
