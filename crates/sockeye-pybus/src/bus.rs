//! The node's two Redis connections, shared by every namespace: a publisher fed by one bounded
//! queue (publishes keep the order they were made in, and each reports back whether Redis took
//! it), and a subscriber to the channel that reconnects with backoff.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot, watch};

use crate::adapter::PyBusAdapter;
use crate::config::PyBusConfig;
use crate::error::PyBusError;
use crate::stats::Stats;
use crate::wire::{self, Message, WireError};

/// One message to publish, and who wants to know whether Redis took it.
struct Outgoing {
    payload: Vec<u8>,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// What reaches a pending emit-with-callback of this node.
pub(crate) enum Answer {
    /// A client's answer, from node `from` (absent for python nodes).
    Args {
        from: Option<String>,
        socket: Option<String>,
        args: sockeye::Args,
    },
    /// Node `from` asked `count` sockets.
    Count { from: String, count: u64 },
}

pub(crate) struct Bus {
    pub(crate) config: PyBusConfig,
    pub(crate) host_id: String,
    pub(crate) stats: Stats,
    out: mpsc::Sender<Outgoing>,
    routes: Mutex<HashMap<String, Weak<PyBusAdapter>>>,
    pending: Mutex<HashMap<u64, mpsc::UnboundedSender<Answer>>>,
    next_id: AtomicU64,
    subscribed: watch::Sender<bool>,
    stop: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves its map consistent, so a poisoned lock is usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes a pending answer wait when its stream is dropped (no wait outlives its stream).
pub(crate) struct PendingGuard {
    bus: Weak<Bus>,
    id: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            lock(&bus.pending).remove(&self.id);
        }
    }
}

impl Bus {
    /// Connects the publisher and subscribes before returning, so that the node hears the
    /// bus from its start (python nodes only subscribe at their first client).
    pub(crate) async fn connect(config: PyBusConfig) -> Result<Arc<Bus>, PyBusError> {
        let client = redis::Client::open(config.url.as_str()).map_err(PyBusError::InvalidUrl)?;
        let t = config.command_timeout;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(t))
            .set_response_timeout(Some(t))
            .set_number_of_retries(1);
        let publisher = tokio::time::timeout(
            t * 2,
            client.get_connection_manager_with_config(manager_config),
        )
        .await
        .map_err(|_| PyBusError::ConnectTimeout)?
        .map_err(PyBusError::Connect)?;
        let first = subscribe(&client, &config).await?;
        let (out, rx) = mpsc::channel(config.publish_queue);
        let bus = Arc::new(Bus {
            config,
            host_id: wire::host_id(),
            stats: Stats::default(),
            out,
            routes: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            subscribed: watch::Sender::new(true),
            stop: watch::Sender::new(false),
        });
        tokio::spawn(publish_loop(
            Arc::downgrade(&bus),
            publisher,
            rx,
            bus.stop.subscribe(),
        ));
        tokio::spawn(subscribe_loop(
            Arc::downgrade(&bus),
            client,
            first,
            bus.stop.subscribe(),
        ));
        Ok(bus)
    }

    pub(crate) fn register(&self, ns: &str, adapter: &Arc<PyBusAdapter>) {
        lock(&self.routes).insert(ns.to_owned(), Arc::downgrade(adapter));
    }

    /// Forgets namespace `ns`; the bus stops when no namespace is left.
    pub(crate) fn unregister(&self, ns: &str) {
        let empty = {
            let mut routes = lock(&self.routes);
            routes.remove(ns);
            routes.is_empty()
        };
        if empty {
            self.shutdown();
        }
    }

    pub(crate) fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    pub(crate) async fn ready(&self, timeout: Duration) -> bool {
        let mut rx = self.subscribed.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Queues `payload` without waiting for Redis (ordered with every other publish).
    pub(crate) fn enqueue(&self, payload: Vec<u8>) -> Result<(), String> {
        self.queue(payload, None)
    }

    fn queue(
        &self,
        payload: Vec<u8>,
        done: Option<oneshot::Sender<Result<(), String>>>,
    ) -> Result<(), String> {
        if *self.stop.borrow() {
            return Err("the bus is closed".to_owned());
        }
        self.out
            .try_send(Outgoing { payload, done })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => format!(
                    "the publish queue is full ({} messages): Redis is slow or unreachable",
                    self.config.publish_queue
                ),
                mpsc::error::TrySendError::Closed(_) => "the bus is closed".to_owned(),
            })
    }

    /// Publishes `payload` and waits until Redis took it.
    pub(crate) async fn publish(&self, payload: Vec<u8>) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.queue(payload, Some(tx))?;
        rx.await
            .unwrap_or_else(|_| Err("the bus closed before publishing".to_owned()))
    }

    /// A new answer id and the receiver of its answers; the guard frees it.
    pub(crate) fn pending(
        self: &Arc<Self>,
    ) -> (u64, mpsc::UnboundedReceiver<Answer>, PendingGuard) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.pending).insert(id, tx);
        (
            id,
            rx,
            PendingGuard {
                bus: Arc::downgrade(self),
                id,
            },
        )
    }

    fn answer(&self, id: u64, answer: Answer) {
        let sent = lock(&self.pending)
            .get(&id)
            .is_some_and(|tx| tx.send(answer).is_ok());
        if !sent {
            Stats::bump(&self.stats.late_answers);
        }
    }

    /// One message from the channel: untrusted, so decoded with the limits and dropped
    /// (counted, logged) when it does not fit.
    pub(crate) fn dispatch(&self, payload: &[u8]) {
        Stats::bump(&self.stats.received);
        let msg = match wire::decode(payload, self.config.max_message_size, self.config.max_depth) {
            Ok(m) => m,
            Err(e @ WireError::TooLarge { .. }) => {
                Stats::bump(&self.stats.oversized);
                tracing::warn!(error = %e, "dropped an oversized python-socketio bus message");
                return;
            }
            Err(e) => {
                Stats::bump(&self.stats.malformed);
                tracing::warn!(error = %e, "dropped a malformed python-socketio bus message");
                return;
            }
        };
        let (host, ns) = match &msg {
            // Answers are addressed *to* a host.
            Message::Callback {
                host_id,
                id,
                args,
                from,
                socket,
            } => {
                if *host_id == self.host_id {
                    self.answer(
                        *id,
                        Answer::Args {
                            from: from.clone(),
                            socket: socket.clone(),
                            args: args.clone(),
                        },
                    );
                } else {
                    Stats::bump(&self.stats.ignored);
                }
                return;
            }
            Message::AckCount {
                host_id,
                id,
                from,
                count,
            } => {
                if *host_id == self.host_id {
                    self.answer(
                        *id,
                        Answer::Count {
                            from: from.clone(),
                            count: *count,
                        },
                    );
                } else {
                    Stats::bump(&self.stats.ignored);
                }
                return;
            }
            Message::Other { method } => {
                Stats::bump(&self.stats.ignored);
                tracing::debug!(%method, "ignored a bus message of an unknown method");
                return;
            }
            Message::Emit { host_id, ns, .. }
            | Message::Disconnect { host_id, ns, .. }
            | Message::Room { host_id, ns, .. }
            | Message::CloseRoom { host_id, ns, .. } => (host_id, ns),
        };
        if *host == self.host_id {
            // Our own message, echoed by Redis: its local part was done when it was sent.
            return;
        }
        let adapter = lock(&self.routes).get(ns.as_str()).and_then(Weak::upgrade);
        match adapter {
            Some(adapter) => adapter.on_message(msg),
            None => Stats::bump(&self.stats.ignored),
        }
    }
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
    mut conn: ConnectionManager,
    mut rx: mpsc::Receiver<Outgoing>,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(BATCH);
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
        let result =
            tokio::time::timeout(b.config.command_timeout, pipe.query_async::<()>(&mut conn)).await;
        let outcome = match result {
            Ok(Ok(())) => {
                b.stats
                    .published
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) => Err(format!("Redis refused PUBLISH: {e}")),
            Err(_) => Err("Redis did not answer PUBLISH in time".to_owned()),
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
                b.subscribed.send_replace(true);
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
            b.subscribed.send_replace(false);
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
