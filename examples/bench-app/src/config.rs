//! Command line and environment settings of the bench app.

use std::time::Duration;

/// Port used when neither the first argument nor `PORT` names one (the anchors use 4001-4003).
pub const DEFAULT_PORT: u16 = 4004;

/// Largest message accepted by default, in bytes: the anchors' 10 MB, so 64 KiB binary echo
/// fits and every server refuses the same sizes.
pub const DEFAULT_MAX_PAYLOAD: u64 = 10_000_000;

/// What the bench app was asked to run with. `None` keeps sockeye's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// TCP port on 127.0.0.1 (0 picks a free one).
    pub port: u16,
    /// `PING_INTERVAL` (milliseconds).
    pub ping_interval: Option<Duration>,
    /// `PING_TIMEOUT` (milliseconds).
    pub ping_timeout: Option<Duration>,
    /// `CONNECT_TIMEOUT` (milliseconds).
    pub connect_timeout: Option<Duration>,
    /// `MAX_PAYLOAD` (bytes).
    pub max_payload: u64,
    /// `BROKER_URL` (or its older name `REDIS_URL`): join a cluster through the adapter of
    /// `adapter` (several nodes share broadcasts); none: in-memory.
    pub redis_url: Option<String>,
    /// `REDIS_KEY`: the channel prefix (`redis`; default `socket.io`), the stream name and
    /// channel prefix (`redis-streams`), the channel (python buses; default `socketio`), or the
    /// notification channel prefix (`postgres`; default `socket.io`), or the subject prefix
    /// (`nats`; default `sockeye`).
    pub redis_key: Option<String>,
    /// `BENCH_ADAPTER`: which adapter joins the cluster at `redis_url` (default `redis`).
    pub adapter: AdapterKind,
}

/// The cluster adapters the bench app can run on (`BENCH_ADAPTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdapterKind {
    /// `redis`: the classic Redis adapter (`@socket.io/redis-adapter`'s format).
    #[default]
    Redis,
    /// `redis-streams`: `sockeye_redis::streams` (`@socket.io/redis-streams-adapter`'s format).
    RedisStreams,
    /// `python-redis`: python-socketio's `AsyncRedisManager` bus (`sockeye-pybus`).
    PythonRedis,
    /// `python-amqp`: python-socketio's `AsyncAioPikaManager` bus over AMQP (`sockeye-pybus`).
    PythonAmqp,
    /// `postgres`: `sockeye-postgres` (`@socket.io/postgres-adapter`'s format).
    Postgres,
    /// `nats`: `sockeye-nats` on core NATS (sockeye's own format; no JetStream).
    Nats,
}

impl AdapterKind {
    /// The name `BENCH_ADAPTER` takes.
    pub fn name(self) -> &'static str {
        match self {
            AdapterKind::Redis => "redis",
            AdapterKind::RedisStreams => "redis-streams",
            AdapterKind::PythonRedis => "python-redis",
            AdapterKind::PythonAmqp => "python-amqp",
            AdapterKind::Postgres => "postgres",
            AdapterKind::Nats => "nats",
        }
    }

    fn parse(value: &str) -> Option<AdapterKind> {
        [
            AdapterKind::Redis,
            AdapterKind::RedisStreams,
            AdapterKind::PythonRedis,
            AdapterKind::PythonAmqp,
            AdapterKind::Postgres,
            AdapterKind::Nats,
        ]
        .into_iter()
        .find(|kind| kind.name() == value.trim())
    }
}

/// A setting that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    /// The port argument (or `PORT`) is not a number from 0 to 65535.
    #[error("port {0:?} is not a TCP port number (0-65535); usage: bench-app [PORT]")]
    Port(String),
    /// An environment override is not a whole number.
    #[error("{name}={value:?} is not a whole number of {unit}; unset it or give e.g. {name}=25000")]
    Number {
        /// The variable.
        name: &'static str,
        /// What it held.
        value: String,
        /// Milliseconds or bytes.
        unit: &'static str,
    },
    /// `BENCH_ADAPTER` names no adapter the app knows.
    #[error(
        "BENCH_ADAPTER={0:?} is unknown; use redis, redis-streams, python-redis, python-amqp, postgres or nats"
    )]
    Adapter(String),
    /// `BENCH_ADAPTER` is set but no broker URL is.
    #[error("BENCH_ADAPTER={0} needs BROKER_URL (the broker to join), e.g. redis://127.0.0.1:6379")]
    NoBroker(&'static str),
}

impl Settings {
    /// Reads the settings from the first argument (else `PORT`) and the overrides, through
    /// `env` so tests need not touch the process environment.
    pub fn from_sources(
        first_arg: Option<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingsError> {
        let port = match first_arg.or_else(|| env("PORT")) {
            Some(p) => p
                .trim()
                .parse::<u16>()
                .map_err(|_| SettingsError::Port(p))?,
            None => DEFAULT_PORT,
        };
        let millis = |name: &'static str| -> Result<Option<Duration>, SettingsError> {
            number(name, env(name), "milliseconds").map(|v| v.map(Duration::from_millis))
        };
        let adapter_var = env("BENCH_ADAPTER").filter(|v| !v.is_empty());
        let adapter = match &adapter_var {
            None => AdapterKind::default(),
            Some(v) => AdapterKind::parse(v).ok_or_else(|| SettingsError::Adapter(v.clone()))?,
        };
        let redis_url = env("BROKER_URL")
            .filter(|v| !v.is_empty())
            .or_else(|| env("REDIS_URL").filter(|v| !v.is_empty()));
        if adapter_var.is_some() && redis_url.is_none() {
            return Err(SettingsError::NoBroker(adapter.name()));
        }
        Ok(Settings {
            port,
            ping_interval: millis("PING_INTERVAL")?,
            ping_timeout: millis("PING_TIMEOUT")?,
            connect_timeout: millis("CONNECT_TIMEOUT")?,
            max_payload: number("MAX_PAYLOAD", env("MAX_PAYLOAD"), "bytes")?
                .unwrap_or(DEFAULT_MAX_PAYLOAD),
            redis_url,
            redis_key: env("REDIS_KEY").filter(|v| !v.is_empty()),
            adapter,
        })
    }
}

fn number(
    name: &'static str,
    value: Option<String>,
    unit: &'static str,
) -> Result<Option<u64>, SettingsError> {
    let Some(value) = value else {
        return Ok(None);
    };
    value
        .trim()
        .parse::<u64>()
        .map(Some)
        .map_err(|_| SettingsError::Number { name, value, unit })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_without_arguments_or_environment() {
        let s = Settings::from_sources(None, env_of(&[])).unwrap();
        assert_eq!(s.port, DEFAULT_PORT);
        assert_eq!(s.max_payload, 10_000_000);
        assert_eq!(s.ping_interval, None);
        assert_eq!(s.ping_timeout, None);
        assert_eq!(s.connect_timeout, None);
        assert_eq!(s.redis_url, None);
    }

    #[test]
    fn redis_url_and_key_are_read() {
        let s = Settings::from_sources(
            None,
            env_of(&[("REDIS_URL", "redis://127.0.0.1:6379"), ("REDIS_KEY", "k")]),
        )
        .unwrap();
        assert_eq!(s.redis_url.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(s.redis_key.as_deref(), Some("k"));
    }

    #[test]
    fn adapter_and_broker_url_are_read() {
        let s = Settings::from_sources(None, env_of(&[])).unwrap();
        assert_eq!(s.adapter, AdapterKind::Redis);
        let s = Settings::from_sources(
            None,
            env_of(&[
                ("BENCH_ADAPTER", "python-amqp"),
                ("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
                ("REDIS_URL", "redis://127.0.0.1:6379"),
            ]),
        )
        .unwrap();
        assert_eq!(s.adapter, AdapterKind::PythonAmqp);
        assert_eq!(
            s.redis_url.as_deref(),
            Some("amqp://guest:guest@127.0.0.1:5672/%2f")
        );
        let named = |pairs: &'static [(&'static str, &'static str)]| {
            Settings::from_sources(None, env_of(pairs)).unwrap().adapter
        };
        assert_eq!(
            named(&[("BENCH_ADAPTER", "redis"), ("REDIS_URL", "redis://x")]),
            AdapterKind::Redis
        );
        assert_eq!(
            named(&[
                ("BENCH_ADAPTER", "redis-streams"),
                ("REDIS_URL", "redis://x")
            ]),
            AdapterKind::RedisStreams
        );
        assert_eq!(
            named(&[
                ("BENCH_ADAPTER", "python-redis"),
                ("REDIS_URL", "redis://x")
            ]),
            AdapterKind::PythonRedis
        );
        assert_eq!(
            named(&[("BENCH_ADAPTER", "python-amqp"), ("REDIS_URL", "redis://x")]),
            AdapterKind::PythonAmqp
        );
        assert_eq!(
            named(&[
                ("BENCH_ADAPTER", "postgres"),
                ("BROKER_URL", "postgres://postgres@127.0.0.1:5432/test")
            ]),
            AdapterKind::Postgres
        );
        assert_eq!(
            named(&[
                ("BENCH_ADAPTER", "nats"),
                ("BROKER_URL", "nats://127.0.0.1:4222")
            ]),
            AdapterKind::Nats
        );
        assert_eq!(
            Settings::from_sources(
                None,
                env_of(&[("BENCH_ADAPTER", "kafka"), ("REDIS_URL", "x")])
            ),
            Err(SettingsError::Adapter("kafka".into()))
        );
        assert_eq!(
            Settings::from_sources(None, env_of(&[("BENCH_ADAPTER", "redis-streams")])),
            Err(SettingsError::NoBroker("redis-streams"))
        );
    }

    #[test]
    fn argument_wins_over_port_variable() {
        let s = Settings::from_sources(Some("4010".into()), env_of(&[("PORT", "4011")])).unwrap();
        assert_eq!(s.port, 4010);
        let s = Settings::from_sources(None, env_of(&[("PORT", "4011")])).unwrap();
        assert_eq!(s.port, 4011);
    }

    #[test]
    fn overrides_are_read_in_their_units() {
        let s = Settings::from_sources(
            Some("0".into()),
            env_of(&[
                ("PING_INTERVAL", "1500"),
                ("PING_TIMEOUT", "700"),
                ("CONNECT_TIMEOUT", "3000"),
                ("MAX_PAYLOAD", "2048"),
            ]),
        )
        .unwrap();
        assert_eq!(s.ping_interval, Some(Duration::from_millis(1500)));
        assert_eq!(s.ping_timeout, Some(Duration::from_millis(700)));
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(s.max_payload, 2048);
    }

    #[test]
    fn bad_values_are_refused_with_their_name() {
        assert_eq!(
            Settings::from_sources(Some("70000".into()), env_of(&[])),
            Err(SettingsError::Port("70000".into()))
        );
        let err = Settings::from_sources(None, env_of(&[("PING_TIMEOUT", "20s")])).unwrap_err();
        assert!(err.to_string().contains("PING_TIMEOUT=\"20s\""), "{err}");
    }
}
