//! The adapter contract suite (`sockeye-testkit`) on the python-socketio bus: two sockeye
//! nodes on the Redis at 127.0.0.1:6379, each check on a channel of its own. The bus has no
//! cluster queries, so the suite requires them to fail.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockeye::adapter::AdapterFactory;
use sockeye_pybus::{PyBusConfig, PyBusFactory};
use sockeye_testkit::contract::{Cluster, Fut};

/// A cluster of sockeye nodes on one bus (`url`), on a channel of its own.
pub(crate) struct PyBus {
    url: &'static str,
    channel: String,
    factories: Mutex<Vec<PyBusFactory>>,
}

impl PyBus {
    pub(crate) fn new(url: &'static str) -> PyBus {
        use rand::Rng as _;
        PyBus {
            url,
            channel: format!("sockeye-contract-{:08x}", rand::rng().random::<u32>()),
            factories: Mutex::new(Vec::new()),
        }
    }
}

async fn pybus() -> PyBus {
    PyBus::new("redis://127.0.0.1:6379/0")
}

impl Cluster for PyBus {
    fn node_factory(&self) -> Fut<'_, Arc<dyn AdapterFactory>> {
        Box::pin(async move {
            let config = PyBusConfig::new(self.url).channel(self.channel.clone());
            let factory = PyBusFactory::connect(config)
                .await
                .unwrap_or_else(|e| panic!("the broker at {} is needed: {e}", self.url));
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
                    "the node's subscription was not ready in time"
                );
            }
        })
    }

    fn supports_recovery(&self) -> bool {
        false
    }

    fn supports_cluster_queries(&self) -> bool {
        false
    }
}

sockeye_testkit::adapter_contract!(pybus);
