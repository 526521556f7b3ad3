//! The adapter contract suite (`sockeye-testkit`) on the Redis adapter: two nodes on the Redis
//! at 127.0.0.1:6379, each check under a key prefix of its own.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockeye::adapter::AdapterFactory;
use sockeye_redis::{RedisAdapterFactory, RedisConfig};
use sockeye_testkit::contract::{Cluster, Fut};

struct Redis {
    key: String,
    factories: Mutex<Vec<RedisAdapterFactory>>,
}

async fn redis() -> Redis {
    use rand::Rng as _;
    Redis {
        key: format!("sockeye-contract-{:08x}", rand::rng().random::<u32>()),
        factories: Mutex::new(Vec::new()),
    }
}

impl Cluster for Redis {
    fn node_factory(&self) -> Fut<'_, Arc<dyn AdapterFactory>> {
        Box::pin(async move {
            let config = RedisConfig::new("redis://127.0.0.1:6379")
                .key(self.key.clone())
                .request_timeout(Duration::from_secs(3));
            let factory = RedisAdapterFactory::connect(config)
                .await
                .unwrap_or_else(|e| panic!("the Redis at 127.0.0.1:6379 is needed: {e}"));
            self.factories.lock().unwrap().push(factory.clone());
            Arc::new(factory) as Arc<dyn AdapterFactory>
        })
    }

    fn max_nodes(&self) -> usize {
        2
    }

    fn settle(&self) -> Fut<'_, ()> {
        Box::pin(async move {
            let factories = self.factories.lock().unwrap().clone();
            for factory in factories {
                assert!(
                    factory.ready(Duration::from_secs(10)).await,
                    "the node's Redis subscriptions were not ready in time"
                );
            }
        })
    }

    fn supports_recovery(&self) -> bool {
        false
    }
}

sockeye_testkit::adapter_contract!(redis);
