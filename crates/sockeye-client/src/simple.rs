//! [`SimpleClient`]: one namespace, events pulled with [`SimpleClient::receive`].

use std::time::Duration;

use serde::Serialize;
use sockeye_protocol::socketio::Args;
use tokio::sync::{Mutex, mpsc};

use crate::client::{Client, ClientBuilder};
use crate::error::{Result, SocketIoError};
use crate::event::Event;

/// How many received events wait for `receive` before new ones are dropped.
const RECEIVE_QUEUE: usize = 1024;

/// A client for one namespace whose events are read with [`SimpleClient::receive`] instead of
/// handlers. Reconnection stays transparent: the underlying [`Client`] keeps reconnecting.
#[derive(Debug)]
pub struct SimpleClient {
    client: Client,
    namespace: String,
    events: Mutex<mpsc::Receiver<(String, Args)>>,
}

impl SimpleClient {
    /// Connects to `namespace` with `builder`'s options (its namespaces and catch-all handler
    /// are replaced). Server events asking for an ack get an empty one.
    pub async fn connect(builder: ClientBuilder, namespace: &str) -> Result<SimpleClient> {
        let (tx, rx) = mpsc::channel(RECEIVE_QUEUE);
        let client = builder
            .namespaces([namespace])
            .on_any(move |event: Event| {
                let tx = tx.clone();
                async move {
                    let name = event.name().to_owned();
                    if tx.try_send((name, event.args().clone())).is_err() {
                        tracing::warn!(event = %event.name(), "receive queue full; event dropped");
                    }
                }
            })
            .connect()
            .await?;
        Ok(SimpleClient {
            namespace: client.of(namespace).name().to_owned(),
            client,
            events: Mutex::new(rx),
        })
    }

    /// The namespace's Socket.IO sid.
    pub fn sid(&self) -> Option<String> {
        self.client.sid(&self.namespace)
    }

    /// True when the namespace's last CONNECT recovered its session; see [`Client::recovered`].
    pub fn recovered(&self) -> bool {
        self.client.recovered(&self.namespace)
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Emits `event` with one argument. See [`crate::Namespace::emit`].
    pub async fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<()> {
        self.client.of(&self.namespace).emit(event, data).await
    }

    /// Emits `event` and waits for the ack. See [`crate::Namespace::call`].
    pub async fn call<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Args> {
        self.client
            .of(&self.namespace)
            .call(event, data, timeout)
            .await
    }

    /// The next event as `(name, arguments)`. Fails with [`SocketIoError::Timeout`] when none
    /// arrives within `timeout`, or [`SocketIoError::Disconnected`] once the client is closed
    /// and every received event was read.
    pub async fn receive(&self, timeout: Duration) -> Result<(String, Args)> {
        let mut events = self.events.lock().await;
        if let Ok(event) = events.try_recv() {
            return Ok(event);
        }
        let closed = self.client.closed();
        tokio::select! {
            event = events.recv() => event.ok_or(SocketIoError::Disconnected),
            () = closed => events.try_recv().map_err(|_| SocketIoError::Disconnected),
            () = tokio::time::sleep(timeout) => Err(SocketIoError::Timeout),
        }
    }

    /// Disconnects; see [`Client::disconnect`].
    pub async fn disconnect(&self) {
        self.client.disconnect().await;
    }
}
