//! [`PyBusFactory`]: connects once per node and builds each namespace's adapter.

use std::sync::Arc;
use std::time::Duration;

use sockeye::adapter::{Adapter, AdapterFactory, LocalNamespace};

use crate::adapter::PyBusAdapter;
use crate::bus::Bus;
use crate::config::PyBusConfig;
use crate::error::PyBusError;
use crate::stats::StatsSnapshot;

/// The python-socketio bus of one node: give it to `SocketIo::builder().adapter(..)`.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use sockeye_pybus::{PyBusConfig, PyBusFactory};
/// let bus = PyBusFactory::connect(PyBusConfig::new("redis://127.0.0.1:6379/0")).await?;
/// let (layer, io) = sockeye::SocketIo::builder().adapter(bus.clone()).build_layer();
/// io.emit("hello", "every client of every node, python ones included").await?;
/// # let _ = layer; Ok(()) }
/// ```
///
/// It holds two Redis connections for the whole node (one publisher, one subscriber), and is
/// subscribed when `connect` returns.
#[derive(Clone)]
pub struct PyBusFactory {
    bus: Arc<Bus>,
}

impl std::fmt::Debug for PyBusFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyBusFactory")
            .field("host_id", &self.bus.host_id)
            .field("channel", &self.bus.config.channel)
            .finish_non_exhaustive()
    }
}

impl PyBusFactory {
    /// Connects to Redis and subscribes to the channel. Fails when Redis cannot be reached
    /// now; later outages are survived (the subscriber reconnects).
    pub async fn connect(config: PyBusConfig) -> Result<PyBusFactory, PyBusError> {
        Ok(PyBusFactory {
            bus: Bus::connect(config).await?,
        })
    }

    /// This node's `host_id` on the bus (32 hex digits, as python's `uuid4().hex`).
    pub fn host_id(&self) -> &str {
        &self.bus.host_id
    }

    /// Waits until the subscriber is subscribed (it is when `connect` returns, and again
    /// after a reconnect); false if not within `timeout`.
    pub async fn ready(&self, timeout: Duration) -> bool {
        self.bus.ready(timeout).await
    }

    /// The counters: received, dropped, ignored, published, failed.
    pub fn stats(&self) -> StatsSnapshot {
        self.bus.stats.snapshot()
    }

    /// The emits with ack of this node still waiting for answers from other nodes. Each wait
    /// is freed when its answer stream ends (at its timeout at the latest) or is dropped, so
    /// a node that died holding the target frees it at the timeout too. A value that keeps
    /// growing means answer streams are kept alive without being read to their end.
    pub fn pending_callbacks(&self) -> usize {
        self.bus.pending_count()
    }

    /// Stops both connections' tasks; the node's adapters stop receiving and publishing.
    pub fn close(&self) {
        self.bus.shutdown();
    }
}

impl AdapterFactory for PyBusFactory {
    fn create(&self, local: LocalNamespace) -> Arc<dyn Adapter> {
        let ns = local.name().to_owned();
        let adapter = PyBusAdapter::new(self.bus.clone(), local);
        self.bus.register(&ns, &adapter);
        adapter
    }
}
