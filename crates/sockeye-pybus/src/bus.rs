//! The node's bus, shared by every namespace: one bounded publish queue (publishes keep the
//! order they were made in, and each reports back whether the broker took it), the routing of
//! received messages to namespaces and of answers to pending acks. The transports
//! (`redis_bus`, `amqp_bus`) move the bytes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::adapter::PyBusAdapter;
use crate::config::PyBusConfig;
use crate::error::PyBusError;
use crate::stats::Stats;
use crate::wire::{self, Message, WireError};

/// One message to publish, and who wants to know whether the broker took it.
pub(crate) struct Outgoing {
    pub(crate) payload: Vec<u8>,
    pub(crate) done: Option<oneshot::Sender<Result<(), String>>>,
}

/// The connections of one transport, made before the bus exists.
enum Transport {
    Redis(Box<crate::redis_bus::RedisTransport>),
    #[cfg(feature = "amqp")]
    Amqp(Box<crate::amqp_bus::AmqpTransport>),
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
    /// bus from its start (python nodes only subscribe at their first client). The URL's
    /// scheme picks the transport: `amqp://` (feature `amqp`) or Redis.
    pub(crate) async fn connect(config: PyBusConfig) -> Result<Arc<Bus>, PyBusError> {
        let host_id = wire::host_id();
        let amqp = config.url.starts_with("amqp://") || config.url.starts_with("amqps://");
        let transport = if amqp {
            #[cfg(feature = "amqp")]
            {
                Transport::Amqp(Box::new(crate::amqp_bus::connect(&config, &host_id).await?))
            }
            #[cfg(not(feature = "amqp"))]
            {
                return Err(PyBusError::AmqpDisabled);
            }
        } else {
            Transport::Redis(Box::new(crate::redis_bus::connect(&config).await?))
        };
        let (out, rx) = mpsc::channel(config.publish_queue);
        let bus = Arc::new(Bus {
            config,
            host_id,
            stats: Stats::default(),
            out,
            routes: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            subscribed: watch::Sender::new(true),
            stop: watch::Sender::new(false),
        });
        match transport {
            Transport::Redis(t) => t.spawn(&bus, rx),
            #[cfg(feature = "amqp")]
            Transport::Amqp(t) => t.spawn(&bus, rx),
        }
        Ok(bus)
    }

    /// A receiver of the stop signal, for a transport's tasks.
    pub(crate) fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Says whether the subscriber is subscribed now.
    pub(crate) fn set_subscribed(&self, now: bool) {
        self.subscribed.send_replace(now);
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

    /// How many emits with ack are still waiting for other nodes' answers.
    pub(crate) fn pending_count(&self) -> usize {
        lock(&self.pending).len()
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
