//! Connect options and the reconnection back-off.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use sockeye_protocol::socketio::ParserKind;

use crate::engine::url::Endpoint;
use crate::engine::{EngineOptions, Transport};
use crate::error::ConnectionError;
use crate::event::{
    BoxFuture, ConnectErrorHandler, ConnectHandler, DisconnectHandler, EventHandler,
};
use crate::proxy::ProxySetting;
use crate::tls::TlsOptions;
use sockeye_protocol::deflate::DeflateConfig;

/// The auth payload sent in each namespace's CONNECT packet.
#[derive(Clone, Default)]
pub(crate) enum Auth {
    /// No payload (`40`).
    #[default]
    None,
    /// The same value on every connect.
    Value(Value),
    /// Evaluated again before every CONNECT, so a reconnect sends fresh credentials.
    Callback(Arc<dyn Fn() -> BoxFuture<Value> + Send + Sync>),
}

impl Auth {
    /// The payload for one CONNECT packet, as JSON text.
    pub(crate) async fn payload(&self) -> Option<bytes::Bytes> {
        let value = match self {
            Auth::None => return None,
            Auth::Value(value) => value.clone(),
            Auth::Callback(callback) => callback().await,
        };
        if !value.is_object() {
            tracing::warn!("the auth payload must be a JSON object; sending none");
            return None;
        }
        serde_json::to_vec(&value).ok().map(bytes::Bytes::from)
    }
}

/// Reconnection settings (the JavaScript client's semantics).
#[derive(Debug, Clone)]
pub(crate) struct Reconnect {
    pub(crate) enabled: bool,
    /// 0 means no limit.
    pub(crate) attempts: u32,
    pub(crate) delay: Duration,
    pub(crate) delay_max: Duration,
    pub(crate) randomization: f64,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            enabled: true,
            attempts: 0,
            delay: Duration::from_secs(1),
            delay_max: Duration::from_secs(5),
            randomization: 0.5,
        }
    }
}

impl Reconnect {
    /// The wait before attempt number `attempt` (1-based): `delay × 2^(attempt-1)`, jittered by
    /// ±`randomization` of itself, then capped at `delay_max`.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        let base = self
            .delay
            .saturating_mul(1u32 << exp)
            .min(self.delay_max)
            .as_secs_f64();
        let factor = self.randomization.clamp(0.0, 1.0);
        let jitter = if factor > 0.0 {
            rand::random_range(-factor..=factor)
        } else {
            0.0
        };
        Duration::from_secs_f64((base * (1.0 + jitter)).max(0.0)).min(self.delay_max)
    }
}

/// Default of [`Limits::max_payload`]: 16 MiB (tungstenite's own frame limit).
pub(crate) const DEFAULT_MAX_PAYLOAD: usize = 16 << 20;
/// The smallest `pingInterval` and `pingTimeout` the client takes from a handshake: below it,
/// a heartbeat window of zero would end every connection at once.
pub(crate) const MIN_HEARTBEAT: Duration = Duration::from_millis(100);

/// What the client accepts from a server, and how long it waits for one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest polling response body, WebSocket frame or message, and Socket.IO packet (with
    /// its attachments), in bytes.
    pub(crate) max_payload: usize,
    /// Most binary attachments one packet may announce.
    pub(crate) max_attachments: usize,
    /// Deepest nesting of arrays and objects in an event's or ack's arguments.
    pub(crate) max_depth: usize,
    /// Bound of TCP connect, TLS and a proxy tunnel.
    pub(crate) connect_timeout: Duration,
    /// Largest `pingInterval` and `pingTimeout` taken from a handshake; larger values are
    /// clamped to it.
    pub(crate) max_heartbeat: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        let protocol = sockeye_protocol::socketio::Limits::default();
        Limits {
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_attachments: protocol.max_attachments,
            max_depth: protocol.max_depth,
            connect_timeout: Duration::from_secs(5),
            max_heartbeat: Duration::from_secs(300),
        }
    }
}

impl Limits {
    /// The Socket.IO decoder's limits for packets from the server.
    pub(crate) fn decoder(&self) -> sockeye_protocol::socketio::Limits {
        sockeye_protocol::socketio::Limits {
            max_attachments: self.max_attachments,
            max_depth: self.max_depth,
            max_packet_size: self.max_payload,
            ..sockeye_protocol::socketio::Limits::default()
        }
    }
}

/// Everything `connect` was given, kept for reconnections.
#[derive(Clone)]
pub(crate) struct Options {
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) auth: Auth,
    pub(crate) transports: Vec<Transport>,
    pub(crate) namespaces: Vec<String>,
    pub(crate) path: String,
    pub(crate) wait_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) retry_first_connect: bool,
    pub(crate) reconnect: Reconnect,
    /// Emits kept while reconnecting; 0 disables buffering.
    pub(crate) buffer: usize,
    /// Extra deliveries of an unacknowledged emit; 0 disables at-least-once delivery.
    pub(crate) retries: u32,
    pub(crate) ack_timeout: Duration,
    pub(crate) tls: TlsOptions,
    /// The Socket.IO wire format; the server must use the same one.
    pub(crate) parser: ParserKind,
    /// Which proxy to go through.
    pub(crate) proxy: ProxySetting,
    /// The cookie jar of this client, shared by its connections and reconnections; `None`
    /// when cookies are off.
    pub(crate) jar: Option<Arc<reqwest::cookie::Jar>>,
    /// permessage-deflate offered on WebSocket handshakes; `None`: not offered.
    pub(crate) ws_deflate: Option<DeflateConfig>,
    /// Bounds on what the server may send and on the client's waits.
    pub(crate) limits: Limits,
}

impl Options {
    pub(crate) fn new(url: String) -> Options {
        Options {
            url,
            headers: Vec::new(),
            auth: Auth::None,
            transports: vec![Transport::Polling, Transport::Websocket],
            namespaces: Vec::new(),
            path: "/socket.io".to_owned(),
            wait_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            retry_first_connect: false,
            reconnect: Reconnect::default(),
            buffer: 0,
            retries: 0,
            ack_timeout: Duration::from_secs(5),
            tls: TlsOptions::default(),
            parser: ParserKind::Json,
            proxy: ProxySetting::FromEnv,
            jar: Some(Arc::default()),
            ws_deflate: None,
            limits: Limits::default(),
        }
    }

    /// The namespaces to connect, normalised (`chat` → `/chat`), `/` when none was given.
    pub(crate) fn namespace_list(&self) -> Vec<String> {
        let mut list: Vec<String> = Vec::new();
        for ns in &self.namespaces {
            let ns = normalise_namespace(ns);
            if !list.contains(&ns) {
                list.push(ns);
            }
        }
        if list.is_empty() {
            list.push("/".to_owned());
        }
        list
    }

    pub(crate) fn engine_options(&self) -> Result<EngineOptions, ConnectionError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                ConnectionError::InvalidOption(format!("header name {name:?}: {e}"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|e| {
                ConnectionError::InvalidOption(format!("header value for {name}: {e}"))
            })?;
            headers.append(name, value);
        }
        let endpoint = Endpoint::new(&self.url, &self.path)?;
        let tls = self.tls.build(endpoint.is_secure())?;
        let proxy = self.proxy.resolve(&endpoint.polling(None))?;
        Ok(EngineOptions {
            proxy,
            jar: self.jar.clone(),
            deflate: self.ws_deflate,
            endpoint,
            tls,
            headers,
            polling: self.transports.contains(&Transport::Polling),
            websocket: self.transports.contains(&Transport::Websocket),
            request_timeout: self.request_timeout,
            limits: self.limits,
        })
    }
}

/// Namespaces always start with `/`.
pub(crate) fn normalise_namespace(ns: &str) -> String {
    if ns.starts_with('/') {
        ns.to_owned()
    } else {
        format!("/{ns}")
    }
}

/// The callbacks registered on a builder.
#[derive(Clone, Default)]
pub(crate) struct Handlers {
    /// By (namespace, event name).
    pub(crate) events: HashMap<(String, String), EventHandler>,
    /// Events no specific handler matched, on any namespace.
    pub(crate) any: Option<EventHandler>,
    pub(crate) connect: Option<ConnectHandler>,
    pub(crate) connect_error: Option<ConnectErrorHandler>,
    pub(crate) disconnect: Option<DisconnectHandler>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps_without_jitter() {
        let policy = Reconnect {
            enabled: true,
            attempts: 0,
            delay: Duration::from_millis(100),
            delay_max: Duration::from_millis(500),
            randomization: 0.0,
        };
        let delays: Vec<_> = (1..=5).map(|a| policy.backoff(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn backoff_jitter_stays_in_range() {
        let policy = Reconnect {
            delay: Duration::from_millis(1000),
            delay_max: Duration::from_secs(10),
            randomization: 0.5,
            ..Reconnect::default()
        };
        for _ in 0..200 {
            let d = policy.backoff(1).as_millis();
            assert!((500..=1500).contains(&d), "{d}");
        }
    }

    #[test]
    fn namespaces_are_normalised_and_deduplicated() {
        let mut options = Options::new("http://x".into());
        assert_eq!(options.namespace_list(), ["/"]);
        options.namespaces = vec!["chat".into(), "/chat".into(), "/".into()];
        assert_eq!(options.namespace_list(), ["/chat", "/"]);
    }
}
