//! Blocking clients for code without an async runtime: each runs a small tokio runtime of its
//! own, on a background thread, and blocks the caller on each operation.
//!
//! Do not call these from inside an async runtime (tokio panics on nested `block_on`); use
//! [`crate::Client`] there.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sockeye_protocol::socketio::Args;
use tokio::runtime::Runtime;

use crate::error::{ConnectionError, Result, SocketIoError};
use crate::{ClientBuilder, Status, Transport};

fn runtime() -> Result<Arc<Runtime>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sockeye-client")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| {
            SocketIoError::Connection(ConnectionError::Transport(format!(
                "cannot start the client runtime: {e}"
            )))
        })
}

/// The blocking form of [`crate::Client`]. Handlers registered on the builder are async and run
/// on the client's runtime.
#[derive(Debug, Clone)]
pub struct Client {
    runtime: Arc<Runtime>,
    inner: crate::Client,
}

impl Client {
    /// Connects with `builder`'s options; see [`ClientBuilder::connect`].
    pub fn connect(builder: ClientBuilder) -> Result<Client> {
        let runtime = runtime()?;
        let inner = runtime.block_on(builder.connect())?;
        Ok(Client { runtime, inner })
    }

    /// Emits `event` with one argument on `namespace`.
    pub fn emit<T: Serialize + ?Sized>(
        &self,
        namespace: &str,
        event: &str,
        data: &T,
    ) -> Result<()> {
        self.runtime
            .block_on(self.inner.of(namespace).emit(event, data))
    }

    /// Emits `event` with any arguments on `namespace`.
    pub fn emit_args(&self, namespace: &str, event: &str, args: Args) -> Result<()> {
        self.runtime
            .block_on(self.inner.of(namespace).emit_args(event, args))
    }

    /// Emits `event` on `namespace` and waits for the ack.
    pub fn call<T: Serialize + ?Sized>(
        &self,
        namespace: &str,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Args> {
        self.runtime
            .block_on(self.inner.of(namespace).call(event, data, timeout))
    }

    /// Disconnects and stops reconnecting.
    pub fn disconnect(&self) {
        self.runtime.block_on(self.inner.disconnect());
    }

    /// Blocks until the client is closed for good.
    pub fn wait(&self) {
        self.runtime.block_on(self.inner.closed());
    }

    /// The lifecycle state.
    pub fn status(&self) -> Status {
        self.inner.status()
    }

    /// The Socket.IO sid of a connected namespace.
    pub fn sid(&self, namespace: &str) -> Option<String> {
        self.inner.sid(namespace)
    }

    /// The transport in use.
    pub fn transport(&self) -> Option<Transport> {
        self.inner.transport()
    }

    /// True when the namespace's last CONNECT recovered its session; see
    /// [`crate::Client::recovered`].
    pub fn recovered(&self, namespace: &str) -> bool {
        self.inner.recovered(namespace)
    }
}

/// The blocking form of [`crate::SimpleClient`].
#[derive(Debug)]
pub struct SimpleClient {
    runtime: Arc<Runtime>,
    inner: crate::SimpleClient,
}

impl SimpleClient {
    /// Connects to `namespace`; see [`crate::SimpleClient::connect`].
    pub fn connect(builder: ClientBuilder, namespace: &str) -> Result<SimpleClient> {
        let runtime = runtime()?;
        let inner = runtime.block_on(crate::SimpleClient::connect(builder, namespace))?;
        Ok(SimpleClient { runtime, inner })
    }

    /// The namespace's Socket.IO sid.
    pub fn sid(&self) -> Option<String> {
        self.inner.sid()
    }

    /// True when the namespace's last CONNECT recovered its session.
    pub fn recovered(&self) -> bool {
        self.inner.recovered()
    }

    /// Emits `event` with one argument.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<()> {
        self.runtime.block_on(self.inner.emit(event, data))
    }

    /// Emits `event` and waits for the ack.
    pub fn call<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Args> {
        self.runtime.block_on(self.inner.call(event, data, timeout))
    }

    /// The next event; see [`crate::SimpleClient::receive`].
    pub fn receive(&self, timeout: Duration) -> Result<(String, Args)> {
        self.runtime.block_on(self.inner.receive(timeout))
    }

    /// Disconnects.
    pub fn disconnect(&self) {
        self.runtime.block_on(self.inner.disconnect());
    }
}
