//! Sockets and times in the shapes the Admin UI reads.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::adapter::SocketInfo;
use crate::socket::SocketRef;

/// The UI shows the first 12 characters of the Engine.IO id, as the official server sends:
/// the whole id would let an admin page's viewer hijack a polling session.
const CLIENT_ID_CHARS: usize = 12;

/// A local socket as the UI's `SerializedSocket`.
pub(crate) fn local_socket(socket: &SocketRef) -> Value {
    let handshake = crate::handshake::describe(socket);
    let client_id: String = socket.client_id().chars().take(CLIENT_ID_CHARS).collect();
    json!({
        "id": socket.id().as_str(),
        "clientId": client_id,
        "transport": socket.transport().as_str(),
        "nsp": socket.ns(),
        "data": socket.session_json().unwrap_or_else(|| Value::Object(Map::new())),
        "handshake": ui_handshake(handshake),
        "rooms": socket.rooms(),
    })
}

/// A socket another node reported (through the adapter's fetch): its transport and client
/// id are not part of the cluster answer.
pub(crate) fn remote_socket(info: &SocketInfo) -> Value {
    let data = info
        .data
        .clone()
        .unwrap_or_else(|| Value::Object(Map::new()));
    // A Node.js node with the official instrumentation keeps them under `data._admin`.
    let admin = data.get("_admin");
    let transport = admin
        .and_then(|a| a.get("transport"))
        .and_then(Value::as_str)
        .unwrap_or("websocket")
        .to_owned();
    // A sockeye node does not send its client's id: each remote socket is then a client of
    // its own in the UI's client list.
    let client_id = admin
        .and_then(|a| a.get("clientId"))
        .and_then(Value::as_str)
        .unwrap_or(info.id.as_str())
        .to_owned();
    let data = match data {
        Value::Object(mut map) => {
            map.remove("_admin");
            Value::Object(map)
        }
        other => other,
    };
    json!({
        "id": info.id.as_str(),
        "clientId": client_id,
        "transport": transport,
        "nsp": info.ns,
        "data": data,
        "handshake": ui_handshake(info.handshake.clone().unwrap_or_else(|| Value::Object(Map::new()))),
        "rooms": info.rooms,
    })
}

/// The handshake without `auth` (it may hold secrets), with the address a proxy reports
/// first, as the official server does.
fn ui_handshake(handshake: Value) -> Value {
    let Value::Object(mut map) = handshake else {
        return Value::Object(Map::new());
    };
    map.remove("auth");
    let forwarded = map.get("headers").and_then(|headers| {
        ["cf-connecting-ip", "x-forwarded-for"]
            .iter()
            .find_map(|name| headers.get(*name).and_then(Value::as_str))
            .map(str::to_owned)
    });
    if let Some(address) = forwarded {
        map.insert("address".into(), Value::String(address));
    }
    Value::Object(map)
}

/// Now as milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `ms` since the epoch as JavaScript's `Date.toISOString()` (`2026-12-06T22:33:55.123Z`),
/// which is how a `Date` argument reaches the UI.
pub(crate) fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates_match_javascript() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        // new Date(1796596435123).toISOString()
        assert_eq!(iso8601(1_796_596_435_123), "2026-12-06T22:33:55.123Z");
        // A leap day: new Date(Date.UTC(2024, 1, 29, 12)).toISOString()
        assert_eq!(iso8601(1_709_208_000_000), "2024-02-29T12:00:00.000Z");
    }

    #[test]
    fn handshake_drops_auth_and_prefers_the_proxy_address() {
        let out = ui_handshake(json!({
            "auth": {"token": "secret"},
            "address": "127.0.0.1",
            "headers": {"x-forwarded-for": "203.0.113.9"}
        }));
        assert!(out.get("auth").is_none());
        assert_eq!(out["address"], "203.0.113.9");
    }
}
