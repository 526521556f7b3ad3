//! The adapter contract suite (`sockeye-testkit`) on the PostgreSQL adapter: two nodes on the
//! PostgreSQL at 127.0.0.1:5432, each check on channels of its own.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockeye::adapter::AdapterFactory;
use sockeye_postgres::PostgresAdapterFactory;
use sockeye_testkit::contract::{Cluster, Fut};

use crate::common;

struct Postgres {
    prefix: String,
    factories: Mutex<Vec<PostgresAdapterFactory>>,
}

async fn postgres() -> Postgres {
    Postgres {
        prefix: common::prefix(),
        factories: Mutex::new(Vec::new()),
    }
}

impl Cluster for Postgres {
    fn node_factory(&self) -> Fut<'_, Arc<dyn AdapterFactory>> {
        Box::pin(async move {
            let factory = common::factory(common::config(&self.prefix)).await;
            self.factories.lock().unwrap().push(factory.clone());
            Arc::new(factory) as Arc<dyn AdapterFactory>
        })
    }

    fn max_nodes(&self) -> usize {
        2
    }

    /// Every channel listened on, and every node counting every other (heartbeats).
    fn settle(&self) -> Fut<'_, ()> {
        Box::pin(async move {
            let factories = self.factories.lock().unwrap().clone();
            for factory in &factories {
                assert!(
                    factory.ready(Duration::from_secs(10)).await,
                    "the node's LISTEN was not in place in time"
                );
            }
            let n = factories.len();
            common::until(
                Duration::from_secs(10),
                "every node counts the others",
                || {
                    factories
                        .iter()
                        .all(|f| f.server_count("/").is_none_or(|c| c == n))
                },
            )
            .await;
        })
    }

    fn supports_recovery(&self) -> bool {
        false
    }
}

sockeye_testkit::adapter_contract!(postgres);
