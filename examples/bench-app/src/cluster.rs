//! The optional Redis adapter (`REDIS_URL`): several bench-app nodes share broadcasts.

use sockeye_redis::{RedisAdapterFactory, RedisConfig, RedisError};

/// Why the Redis adapter could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot use Redis at REDIS_URL: {0}; start Redis or unset REDIS_URL")]
pub struct ConnectError(#[from] RedisError);

/// Connects the adapter factory to `url`, with channel prefix `key` when given.
pub async fn connect(url: &str, key: Option<&str>) -> Result<RedisAdapterFactory, ConnectError> {
    let mut config = RedisConfig::new(url);
    if let Some(key) = key {
        config = config.key(key);
    }
    Ok(RedisAdapterFactory::connect(config).await?)
}
