//! The optional cluster adapter (`BROKER_URL` or `REDIS_URL`, `BENCH_ADAPTER`): several
//! bench-app nodes share broadcasts through one broker (Redis, RabbitMQ, PostgreSQL or NATS).

use std::time::Duration;

use sockeye::SocketIoBuilder;
use sockeye_nats::{NatsAdapterFactory, NatsConfig, NatsError};
use sockeye_postgres::{PostgresAdapterFactory, PostgresConfig, PostgresError};
use sockeye_pybus::{PyBusConfig, PyBusError, PyBusFactory};
use sockeye_redis::streams::{StreamsAdapterFactory, StreamsConfig};
use sockeye_redis::{RedisAdapterFactory, RedisConfig, RedisError};

use crate::config::AdapterKind;

/// Why the cluster adapter could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A Redis adapter (classic or streams) could not connect.
    #[error(
        "cannot use Redis at BROKER_URL/REDIS_URL: {0}; start Redis or unset BROKER_URL and REDIS_URL"
    )]
    Redis(#[from] RedisError),
    /// python-socketio's bus could not connect.
    #[error(
        "cannot join python-socketio's bus at BROKER_URL/REDIS_URL: {0}; start the broker or unset BROKER_URL and REDIS_URL"
    )]
    PyBus(#[from] PyBusError),
    /// The PostgreSQL adapter could not connect.
    #[error(
        "cannot use PostgreSQL at BROKER_URL: {0}; start PostgreSQL, fix the URL (e.g. postgres://postgres@127.0.0.1:5432/test) or unset BROKER_URL"
    )]
    Postgres(#[from] PostgresError),
    /// The NATS adapter could not connect.
    #[error(
        "cannot use NATS at BROKER_URL: {0}; start nats-server, fix the URL (e.g. nats://127.0.0.1:4222) or unset BROKER_URL"
    )]
    Nats(#[from] NatsError),
}

/// A connected cluster adapter factory.
#[derive(Clone)]
pub enum Cluster {
    /// The classic Redis adapter.
    Redis(RedisAdapterFactory),
    /// The Redis Streams adapter.
    Streams(StreamsAdapterFactory),
    /// python-socketio's pub/sub bus (Redis or AMQP).
    PyBus(PyBusFactory),
    /// The PostgreSQL adapter (`@socket.io/postgres-adapter`'s format).
    Postgres(PostgresAdapterFactory),
    /// The NATS adapter, core NATS only (sockeye's own format).
    Nats(NatsAdapterFactory),
}

impl Cluster {
    /// Connects the adapter `kind` to `url`, with channel prefix (or stream and channel name)
    /// `key` when given.
    pub async fn connect(
        kind: AdapterKind,
        url: &str,
        key: Option<&str>,
    ) -> Result<Cluster, ConnectError> {
        Ok(match kind {
            AdapterKind::Redis => {
                let mut config = RedisConfig::new(url);
                if let Some(key) = key {
                    config = config.key(key);
                }
                Cluster::Redis(RedisAdapterFactory::connect(config).await?)
            }
            AdapterKind::RedisStreams => {
                let mut config = StreamsConfig::new(RedisConfig::new(url));
                if let Some(key) = key {
                    config = config.stream_name(key).channel_prefix(key);
                }
                Cluster::Streams(StreamsAdapterFactory::connect(config).await?)
            }
            AdapterKind::PythonRedis | AdapterKind::PythonAmqp => {
                let mut config = PyBusConfig::new(url);
                if let Some(key) = key {
                    config = config.channel(key);
                }
                Cluster::PyBus(PyBusFactory::connect(config).await?)
            }
            AdapterKind::Postgres => {
                let mut config = PostgresConfig::new(url);
                if let Some(key) = key {
                    config = config.channel_prefix(key);
                }
                let factory = PostgresAdapterFactory::connect(config).await?;
                // bench/cluster.sh finds this node's backends in pg_stat_activity by it, to
                // count their CPU as the broker's.
                eprintln!("postgres application_name: {}", factory.application_name());
                Cluster::Postgres(factory)
            }
            AdapterKind::Nats => {
                let mut config = NatsConfig::new(url);
                if let Some(key) = key {
                    config = config.prefix(key);
                }
                Cluster::Nats(NatsAdapterFactory::connect(config).await?)
            }
        })
    }

    /// `builder` with this adapter.
    pub fn apply(&self, builder: SocketIoBuilder) -> SocketIoBuilder {
        match self {
            Cluster::Redis(f) => builder.adapter(f.clone()),
            Cluster::Streams(f) => builder.adapter(f.clone()),
            Cluster::PyBus(f) => builder.adapter(f.clone()),
            Cluster::Postgres(f) => builder.adapter(f.clone()),
            Cluster::Nats(f) => builder.adapter(f.clone()),
        }
    }

    /// Whether the adapter is subscribed within `timeout`.
    pub async fn ready(&self, timeout: Duration) -> bool {
        match self {
            Cluster::Redis(f) => f.ready(timeout).await,
            Cluster::Streams(f) => f.ready(timeout).await,
            Cluster::PyBus(f) => f.ready(timeout).await,
            Cluster::Postgres(f) => f.ready(timeout).await,
            Cluster::Nats(f) => f.ready(timeout).await,
        }
    }
}
