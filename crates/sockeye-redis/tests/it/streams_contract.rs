//! The adapter contract suite (`sockeye-testkit`) on the streams adapter: two nodes on the
//! Redis at 127.0.0.1:6379, each check on a stream, channel prefix and session prefix of its
//! own. Sessions are recovered across nodes (`recovers_across_nodes`).
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockeye::adapter::AdapterFactory;
use sockeye_redis::RedisConfig;
use sockeye_redis::streams::{StreamsAdapterFactory, StreamsConfig};
use sockeye_testkit::contract::{Cluster, Fut};

pub(crate) struct Streams {
    pub(crate) prefix: String,
    factories: Mutex<Vec<StreamsAdapterFactory>>,
}

/// A config isolated under `prefix` (stream, channels and session keys).
pub(crate) fn config(prefix: &str) -> StreamsConfig {
    StreamsConfig::new(
        RedisConfig::new("redis://127.0.0.1:6379").request_timeout(Duration::from_secs(3)),
    )
    .stream_name(format!("{prefix}-stream"))
    .channel_prefix(prefix.to_owned())
    .session_key_prefix(format!("{prefix}:session:"))
    .block_time(Duration::from_secs(1))
}

pub(crate) fn unique(label: &str) -> String {
    use rand::Rng as _;
    format!("sockeye-{label}-{:08x}", rand::rng().random::<u32>())
}

async fn streams() -> Streams {
    Streams {
        prefix: unique("streams-contract"),
        factories: Mutex::new(Vec::new()),
    }
}

impl Cluster for Streams {
    fn node_factory(&self) -> Fut<'_, Arc<dyn AdapterFactory>> {
        Box::pin(async move {
            let factory = StreamsAdapterFactory::connect(config(&self.prefix))
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
                    "the node's stream readers and subscriptions were not ready in time"
                );
            }
        })
    }

    fn supports_recovery(&self) -> bool {
        true
    }

    fn recovers_across_nodes(&self) -> bool {
        true
    }
}

sockeye_testkit::adapter_contract!(streams);
