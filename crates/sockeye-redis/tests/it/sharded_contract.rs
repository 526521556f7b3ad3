//! The adapter contract suite (`sockeye-testkit`) on the sharded adapter in its default
//! `dynamic` mode: two nodes on a 3-master Redis Cluster that each check starts (and kills).
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockeye::adapter::AdapterFactory;
use sockeye_redis::RedisConfig;
use sockeye_redis::sharded::{ShardedAdapterFactory, ShardedConfig};
use sockeye_testkit::contract::{Cluster, Fut};
use sockeye_testkit::redis_cluster::{RedisCluster, redis_cluster_or_skip};

pub(crate) struct Sharded {
    pub(crate) cluster: RedisCluster,
    factories: Mutex<Vec<ShardedAdapterFactory>>,
}

/// A config for `cluster` with short waits.
pub(crate) fn config(cluster: &RedisCluster) -> ShardedConfig {
    ShardedConfig::new(
        RedisConfig::new(cluster.url())
            .request_timeout(Duration::from_secs(3))
            .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500)),
    )
    .seed_nodes(cluster.urls().into_iter().skip(1))
}

async fn sharded() -> Sharded {
    let cluster = tokio::task::spawn_blocking(|| redis_cluster_or_skip(3))
        .await
        .unwrap()
        // The contract cannot be skipped from here: without Redis the check fails.
        .expect("redis-server 7 or later is needed for the sharded adapter tests");
    Sharded {
        cluster,
        factories: Mutex::new(Vec::new()),
    }
}

impl Cluster for Sharded {
    fn node_factory(&self) -> Fut<'_, Arc<dyn AdapterFactory>> {
        Box::pin(async move {
            let factory = ShardedAdapterFactory::connect(config(&self.cluster))
                .await
                .unwrap_or_else(|e| panic!("the test's Redis Cluster is unreachable: {e}"));
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
            // A remote join travels on the namespace channel and a broadcast to one room on
            // the room's channel: no order between them, so a node may be told to subscribe
            // to a room channel after `ready` last looked. The pause lets the join messages in
            // flight arrive (what a settle means for this adapter); `ready` then waits for
            // the subscriptions they asked for.
            for round in 0..2 {
                for factory in &factories {
                    assert!(
                        factory.ready(Duration::from_secs(10)).await,
                        "the node's sharded subscriptions were not ready in time"
                    );
                }
                if round == 0 {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            }
        })
    }

    fn supports_recovery(&self) -> bool {
        false
    }
}

sockeye_testkit::adapter_contract!(sharded);
