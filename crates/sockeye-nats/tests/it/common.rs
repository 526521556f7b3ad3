//! The cluster harness: nodes of one cluster share a subject prefix (and, in JetStream mode, a
//! stream and a bucket) of their own, so tests run in parallel on the shared server.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockeye::adapter::AdapterFactory;
use sockeye_nats::{JetStreamConfig, NatsAdapterFactory, NatsConfig};
use sockeye_testkit::contract::{Cluster, Fut};

pub(crate) const NATS: &str = "nats://127.0.0.1:4222";

pub(crate) fn unique(label: &str) -> String {
    use rand::Rng as _;
    format!("sockeye-{label}-{:08x}", rand::rng().random::<u32>())
}

/// A config isolated under `prefix`; JetStream names derived from it when `jetstream`.
pub(crate) fn config(url: &str, prefix: &str, jetstream: bool) -> NatsConfig {
    let config = NatsConfig::new(url)
        .prefix(prefix.to_owned())
        .request_timeout(Duration::from_secs(3));
    if jetstream {
        config.jetstream(
            JetStreamConfig::new()
                .stream(prefix.replace('.', "_"))
                .bucket(format!("{}-sessions", prefix.replace('.', "_")))
                .retention(Duration::from_secs(600), 10_000),
        )
    } else {
        config
    }
}

pub(crate) struct Nats {
    pub(crate) prefix: String,
    pub(crate) jetstream: bool,
    pub(crate) factories: Mutex<Vec<NatsAdapterFactory>>,
}

impl Nats {
    pub(crate) fn new(label: &str, jetstream: bool) -> Nats {
        init_tracing();
        Nats {
            prefix: unique(label),
            jetstream,
            factories: Mutex::new(Vec::new()),
        }
    }
}

/// Waits until every factory's namespaces are subscribed and each knows all the others.
pub(crate) async fn settle(factories: &[NatsAdapterFactory]) {
    for factory in factories {
        assert!(
            factory.ready(Duration::from_secs(10)).await,
            "the node's NATS subscriptions were not ready in time"
        );
    }
    let others = factories.len().saturating_sub(1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for factory in factories {
        while factory.known_nodes("/").is_some_and(|n| n < others) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the nodes did not hear each other's heartbeats in time"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Deletes the JetStream streams (log and sessions) made under `prefix`, from a thread of its
/// own (a `Drop` inside a test's runtime cannot block on it).
pub(crate) fn delete_streams(prefix: &str) {
    let name = prefix.replace('.', "_");
    let result = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let client = async_nats::connect(NATS).await.map_err(|e| e.to_string())?;
            let js = async_nats::jetstream::new(client);
            for stream in [name.clone(), format!("{name}-sessions")] {
                // Absent when the test failed before connecting.
                let _ = js.delete_stream(&stream).await;
            }
            Ok::<(), String>(())
        })
    })
    .join();
    if let Ok(Err(e)) = result {
        eprintln!("JetStream streams of {prefix} not deleted: {e}");
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if self.jetstream {
            delete_streams(&self.prefix);
        }
    }
}

impl Cluster for Nats {
    fn node_factory(&self) -> Fut<'_, Arc<dyn AdapterFactory>> {
        Box::pin(async move {
            let factory = NatsAdapterFactory::connect(config(NATS, &self.prefix, self.jetstream))
                .await
                .unwrap_or_else(|e| panic!("the NATS server at {NATS} is needed: {e}"));
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
            settle(&factories).await;
        })
    }

    fn supports_recovery(&self) -> bool {
        self.jetstream
    }

    fn recovers_across_nodes(&self) -> bool {
        self.jetstream
    }
}

/// Logs to the test output when `RUST_LOG` is set.
pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
