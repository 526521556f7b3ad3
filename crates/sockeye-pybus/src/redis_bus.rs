//! The Redis transport (python-socketio's `AsyncRedisManager`): one publishing connection fed
//! by the bus's queue, one subscriber to the channel that reconnects with backoff.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, watch};

use crate::bus::{Bus, Outgoing};
use crate::config::PyBusConfig;
use crate::error::PyBusError;
use crate::stats::Stats;

/// The connections, made (and the channel subscribed) before the bus starts.
pub(crate) struct RedisTransport {
    client: redis::Client,
    publisher: ConnectionManager,
    subscriber: redis::aio::PubSub,
}

pub(crate) async fn connect(config: &PyBusConfig) -> Result<RedisTransport, PyBusError> {
    let client = redis::Client::open(config.url.as_str()).map_err(PyBusError::InvalidUrl)?;
    let publisher = publisher(&client, config.command_timeout)
        .await
        .map_err(|e| e.unwrap_or(PyBusError::ConnectTimeout))?;
    let subscriber = subscribe(&client, config).await?;
    Ok(RedisTransport {
        client,
        publisher,
        subscriber,
    })
}

impl RedisTransport {
    pub(crate) fn spawn(self, bus: &Arc<Bus>, rx: mpsc::Receiver<Outgoing>) {
        tokio::spawn(publish_loop(
            Arc::downgrade(bus),
            self.client.clone(),
            self.publisher,
            rx,
            bus.stopped(),
        ));
        tokio::spawn(subscribe_loop(
            Arc::downgrade(bus),
            self.client,
            self.subscriber,
            bus.stopped(),
        ));
    }
}

/// A publishing connection within `t` (twice `t` in all: the connect and its retry); `None`
/// as the error when it did not come in time.
async fn publisher(
    client: &redis::Client,
    t: Duration,
) -> Result<ConnectionManager, Option<PyBusError>> {
    let manager_config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(t))
        .set_response_timeout(Some(t))
        .set_number_of_retries(1);
    tokio::time::timeout(
        t * 2,
        client.get_connection_manager_with_config(manager_config),
    )
    .await
    .map_err(|_| None)?
    .map_err(|e| Some(PyBusError::Connect(e)))
}

async fn subscribe(
    client: &redis::Client,
    config: &PyBusConfig,
) -> Result<redis::aio::PubSub, PyBusError> {
    let t = config.command_timeout;
    let mut pubsub = tokio::time::timeout(t, client.get_async_pubsub())
        .await
        .map_err(|_| PyBusError::ConnectTimeout)?
        .map_err(PyBusError::Connect)?;
    tokio::time::timeout(t, pubsub.subscribe(&config.channel))
        .await
        .map_err(|_| PyBusError::ConnectTimeout)?
        .map_err(PyBusError::Connect)?;
    Ok(pubsub)
}

/// Most messages sent in one pipeline: one round trip for a burst.
const BATCH: usize = 128;

async fn publish_loop(
    bus: Weak<Bus>,
    client: redis::Client,
    conn: ConnectionManager,
    mut rx: mpsc::Receiver<Outgoing>,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut conn = Some(conn);
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            _ = stop.changed() => 0,
        };
        if n == 0 {
            return;
        }
        let Some(b) = bus.upgrade() else { return };
        let mut pipe = redis::pipe();
        for msg in &batch {
            pipe.cmd("PUBLISH")
                .arg(&b.config.channel)
                .arg(&msg.payload[..])
                .ignore();
        }
        let t = b.config.command_timeout;
        if conn.is_none() {
            conn = match publisher(&client, t).await {
                Ok(c) => Some(c),
                Err(e) => {
                    let e = e.map_or("timed out".to_owned(), |e| e.to_string());
                    tracing::warn!(error = %e, "python-socketio bus: publisher cannot reconnect");
                    None
                }
            };
        }
        let outcome = match conn.as_mut() {
            None => Err("Redis is unreachable (no publishing connection)".to_owned()),
            Some(c) => match tokio::time::timeout(t, pipe.query_async::<()>(c)).await {
                Ok(Ok(())) => {
                    b.stats
                        .published
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    Ok(())
                }
                Ok(Err(e)) if !e.is_timeout() => Err(format!("Redis refused PUBLISH: {e}")),
                Ok(Err(_)) | Err(_) => {
                    // The answer may still come, or was lost with the link: either way the
                    // connection's answers no longer line up with its requests, so the next
                    // batch goes on a new one.
                    conn = None;
                    Err("Redis did not answer PUBLISH in time".to_owned())
                }
            },
        };
        if let Err(e) = &outcome {
            b.stats
                .publish_failed
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::warn!(error = %e, messages = batch.len(), "python-socketio bus: publish failed");
        }
        for msg in batch.drain(..) {
            if let Some(done) = msg.done {
                let _ = done.send(outcome.clone());
            }
        }
    }
}

async fn subscribe_loop(
    bus: Weak<Bus>,
    client: redis::Client,
    first: redis::aio::PubSub,
    mut stop: watch::Receiver<bool>,
) {
    let mut next = Some(first);
    let mut delay = Duration::from_millis(100);
    loop {
        if *stop.borrow() {
            return;
        }
        let pubsub = match next.take() {
            Some(p) => Some(p),
            None => {
                let Some(b) = bus.upgrade() else { return };
                match subscribe(&client, &b.config).await {
                    Ok(p) => {
                        Stats::bump(&b.stats.reconnects);
                        tracing::info!("python-socketio bus: subscriber reconnected");
                        Some(p)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?delay, "python-socketio bus: subscriber cannot reconnect");
                        None
                    }
                }
            }
        };
        if let Some(pubsub) = pubsub {
            delay = Duration::from_millis(100);
            if let Some(b) = bus.upgrade() {
                b.set_subscribed(true);
            }
            let mut messages = pubsub.into_on_message();
            loop {
                tokio::select! {
                    msg = messages.next() => {
                        let Some(msg) = msg else { break };
                        let Some(b) = bus.upgrade() else { return };
                        b.dispatch(msg.get_payload_bytes());
                    }
                    _ = stop.changed() => return,
                }
            }
            let Some(b) = bus.upgrade() else { return };
            b.set_subscribed(false);
            tracing::warn!(
                "python-socketio bus: subscriber connection lost; messages from other nodes are missed until it is back"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
