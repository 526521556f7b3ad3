//! A socket's handshake as the JavaScript server shapes it, for cluster fetch responses.

use serde_json::{Map, Value};

use crate::socket::SocketRef;

/// `{headers, address, xdomain, secure, url, query, auth}` of `socket`. Header values that are
/// not UTF-8 are left out; a repeated query key keeps its last value (Node would make an array).
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
    // An unparsable query string gives an empty object rather than failing the whole answer.
    let query: Map<String, Value> = serde_urlencoded::from_str::<Vec<(String, String)>>(
        request.uri.query().unwrap_or_default(),
    )
    .unwrap_or_default()
    .into_iter()
    .map(|(key, value)| (key, Value::String(value)))
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
