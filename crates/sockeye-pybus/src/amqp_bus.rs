//! The AMQP transport (python-socketio's `AsyncAioPikaManager`): a fanout exchange named after
//! the channel (non-durable, as aio-pika declares it), one queue per node bound to it with
//! `x-expires` 300 s, messages published persistent with routing key `*`.
//!
//! Unlike python nodes, whose queue is anonymous and replaced on every reconnect, a sockeye
//! node's queue is named after its `host_id` and declared again by that name after a lost
//! connection: what was published meanwhile is still there (if the broker itself did not
//! restart), and what the broker delivers again because its acknowledgement was lost is
//! recognised and dropped ([`Handled`]). The publisher uses confirms, so a broadcast resolves
//! once the broker took it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::Confirmation;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::{mpsc, watch};

use crate::bus::{Bus, Outgoing};
use crate::config::PyBusConfig;
use crate::error::PyBusError;
use crate::stats::Stats;

/// python-socketio's queue expiry: a queue nobody consumes is deleted after 5 minutes.
const EXPIRES_MS: i64 = 300_000;
/// Deliveries in flight to this node's consumer.
const PREFETCH: u16 = 256;
/// The consumer's longest wait between reconnect attempts. Short, because once the broker is
/// back the other nodes' publishers (which reconnect at their next publish) get their
/// messages confirmed into an exchange this node's queue is not bound to yet: whatever they
/// publish until this node re-binds is lost for it, unseen. An attempt is one TCP connect to
/// a broker that is usually on the same network.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

fn amqp_err(e: lapin::Error) -> PyBusError {
    PyBusError::Amqp(e.to_string())
}

async fn timed<T>(
    t: Duration,
    f: impl std::future::Future<Output = Result<T, lapin::Error>>,
) -> Result<T, PyBusError> {
    tokio::time::timeout(t, f)
        .await
        .map_err(|_| PyBusError::ConnectTimeout)?
        .map_err(amqp_err)
}

/// A connection and a channel with the exchange declared.
async fn open(config: &PyBusConfig) -> Result<(Connection, Channel), PyBusError> {
    let t = config.command_timeout;
    let conn = timed(
        t * 2,
        Connection::connect(&config.url, ConnectionProperties::default()),
    )
    .await?;
    let channel = timed(t, conn.create_channel()).await?;
    timed(
        t,
        channel.exchange_declare(
            config.channel.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await?;
    Ok((conn, channel))
}

/// The publishing channel (confirms on).
async fn open_publisher(config: &PyBusConfig) -> Result<(Connection, Channel), PyBusError> {
    let (conn, channel) = open(config).await?;
    timed(
        config.command_timeout,
        channel.confirm_select(ConfirmSelectOptions::default()),
    )
    .await?;
    Ok((conn, channel))
}

/// The consuming channel: the node's queue declared, bound and consumed.
async fn open_consumer(
    config: &PyBusConfig,
    queue: &str,
) -> Result<(Connection, Channel, lapin::Consumer), PyBusError> {
    let t = config.command_timeout;
    let (conn, channel) = open(config).await?;
    timed(t, channel.basic_qos(PREFETCH, BasicQosOptions::default())).await?;
    let mut args = FieldTable::default();
    args.insert("x-expires".into(), AMQPValue::LongLongInt(EXPIRES_MS));
    timed(
        t,
        channel.queue_declare(queue.into(), QueueDeclareOptions::default(), args),
    )
    .await?;
    timed(
        t,
        channel.queue_bind(
            queue.into(),
            config.channel.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await?;
    let consumer = timed(
        t,
        channel.basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await?;
    Ok((conn, channel, consumer))
}

/// The connections, made (and the queue consumed) before the bus starts.
pub(crate) struct AmqpTransport {
    config: PyBusConfig,
    queue: String,
    publisher: (Connection, Channel),
    consumer: (Connection, Channel, lapin::Consumer),
}

pub(crate) async fn connect(
    config: &PyBusConfig,
    host_id: &str,
) -> Result<AmqpTransport, PyBusError> {
    let queue = format!("sockeye-pybus.{host_id}");
    let publisher = open_publisher(config).await?;
    let consumer = open_consumer(config, &queue).await?;
    Ok(AmqpTransport {
        config: config.clone(),
        queue,
        publisher,
        consumer,
    })
}

impl AmqpTransport {
    pub(crate) fn spawn(self: Box<Self>, bus: &Arc<Bus>, rx: mpsc::Receiver<Outgoing>) {
        let this = *self;
        tokio::spawn(publish_loop(
            Arc::downgrade(bus),
            this.config.clone(),
            this.publisher,
            rx,
            bus.stopped(),
        ));
        tokio::spawn(consume_loop(
            Arc::downgrade(bus),
            this.config,
            this.queue,
            this.consumer,
            bus.stopped(),
        ));
    }
}

const BATCH: usize = 128;

/// Publishes one batch in order, then waits for each confirm.
async fn publish_batch(
    channel: &Channel,
    exchange: &str,
    batch: &[Outgoing],
    t: Duration,
) -> Result<(), String> {
    let mut confirms = Vec::with_capacity(batch.len());
    for msg in batch {
        let confirm = tokio::time::timeout(
            t,
            channel.basic_publish(
                exchange.into(),
                "*".into(),
                BasicPublishOptions::default(),
                &msg.payload,
                BasicProperties::default().with_delivery_mode(2),
            ),
        )
        .await
        .map_err(|_| "the AMQP broker did not take the message in time".to_owned())?
        .map_err(|e| format!("AMQP publish failed: {e}"))?;
        confirms.push(confirm);
    }
    for confirm in confirms {
        match tokio::time::timeout(t, confirm).await {
            Ok(Ok(Confirmation::Ack(_) | Confirmation::NotRequested)) => {}
            Ok(Ok(Confirmation::Nack(_))) => return Err("the AMQP broker refused it".to_owned()),
            Ok(Err(e)) => return Err(format!("AMQP publish failed: {e}")),
            Err(_) => return Err("the AMQP broker did not confirm in time".to_owned()),
        }
    }
    Ok(())
}

async fn publish_loop(
    bus: Weak<Bus>,
    config: PyBusConfig,
    first: (Connection, Channel),
    mut rx: mpsc::Receiver<Outgoing>,
    mut stop: watch::Receiver<bool>,
) {
    let mut current = Some(first);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            _ = stop.changed() => 0,
        };
        if n == 0 {
            if let Some((conn, _)) = current {
                let _ = conn.close(200, "closing".into()).await;
            }
            return;
        }
        let Some(b) = bus.upgrade() else { return };
        if current.is_none() {
            // Reconnect on demand: a lost connection fails the batch that finds it, not later.
            match open_publisher(&config).await {
                Ok(p) => current = Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "python-socketio bus: AMQP publisher cannot reconnect");
                }
            }
        }
        let outcome = match &current {
            Some((_, channel)) => {
                publish_batch(channel, &config.channel, &batch, config.command_timeout).await
            }
            None => Err("no connection to the AMQP broker".to_owned()),
        };
        match &outcome {
            Ok(()) => {
                b.stats
                    .published
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                current = None;
                b.stats
                    .publish_failed
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                tracing::warn!(error = %e, messages = batch.len(), "python-socketio bus: AMQP publish failed");
            }
        }
        for msg in batch.drain(..) {
            if let Some(done) = msg.done {
                let _ = done.send(outcome.clone());
            }
        }
    }
}

/// The last [`PREFETCH`] messages this node handled, as keyed hashes of their bytes.
///
/// The node acknowledges a message after handling it. When the connection drops before an
/// acknowledgement reaches the broker, the broker delivers that message again, flagged
/// `redelivered`, once the node is back on its queue (which outlived the connection). The
/// broker holds at most [`PREFETCH`] unacknowledged messages per consumer, so a redelivered
/// message this node already handled is among its last [`PREFETCH`]. Only redeliveries are
/// compared, so identical messages published twice are both handled. A redelivered message
/// that was received but never handled is handled then, unless an identical message is among
/// the last [`PREFETCH`] handled: then it is dropped as a duplicate too.
struct Handled {
    keys: std::hash::RandomState,
    recent: std::collections::VecDeque<u64>,
}

impl Default for Handled {
    fn default() -> Self {
        Handled {
            keys: std::hash::RandomState::new(),
            recent: std::collections::VecDeque::with_capacity(usize::from(PREFETCH)),
        }
    }
}

impl Handled {
    /// True for a redelivery of a message already handled (which it forgets: a message is
    /// dropped as a duplicate at most once); otherwise records the message as handled.
    fn seen_again(&mut self, data: &[u8], redelivered: bool) -> bool {
        use std::hash::BuildHasher as _;
        let hash = self.keys.hash_one(data);
        if redelivered && let Some(i) = self.recent.iter().position(|h| *h == hash) {
            self.recent.remove(i);
            return true;
        }
        if self.recent.len() == usize::from(PREFETCH) {
            self.recent.pop_front();
        }
        self.recent.push_back(hash);
        false
    }
}

async fn consume_loop(
    bus: Weak<Bus>,
    config: PyBusConfig,
    queue: String,
    first: (Connection, Channel, lapin::Consumer),
    mut stop: watch::Receiver<bool>,
) {
    let mut next = Some(first);
    let mut delay = Duration::from_millis(100);
    // Kept across reconnects: that is when the broker delivers again.
    let mut handled = Handled::default();
    loop {
        if *stop.borrow() {
            return;
        }
        let opened = match next.take() {
            Some(c) => Some(c),
            None => match open_consumer(&config, &queue).await {
                Ok(c) => {
                    if let Some(b) = bus.upgrade() {
                        Stats::bump(&b.stats.reconnects);
                    }
                    tracing::info!("python-socketio bus: AMQP consumer reconnected");
                    Some(c)
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "python-socketio bus: AMQP consumer cannot reconnect");
                    None
                }
            },
        };
        if let Some((conn, channel, mut consumer)) = opened {
            delay = Duration::from_millis(100);
            if let Some(b) = bus.upgrade() {
                b.set_subscribed(true);
            }
            loop {
                tokio::select! {
                    delivery = consumer.next() => {
                        let Some(Ok(delivery)) = delivery else { break };
                        let Some(b) = bus.upgrade() else { return };
                        if handled.seen_again(&delivery.data, delivery.redelivered) {
                            Stats::bump(&b.stats.duplicates);
                            tracing::debug!("python-socketio bus: dropped an AMQP redelivery of a message already handled");
                        } else {
                            b.dispatch(&delivery.data);
                        }
                        if let Err(e) = delivery.acker.ack(BasicAckOptions::default()).await {
                            tracing::warn!(error = %e, "python-socketio bus: AMQP ack failed");
                            break;
                        }
                    }
                    _ = stop.changed() => {
                        // An orderly close: the queue goes now rather than in 5 minutes.
                        let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
                        let _ = conn.close(200, "closing".into()).await;
                        return;
                    }
                }
            }
            let Some(b) = bus.upgrade() else { return };
            b.set_subscribed(false);
            tracing::warn!(
                "python-socketio bus: AMQP consumer connection lost; reconnecting to its queue"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::Handled;

    #[test]
    fn only_redeliveries_of_handled_messages_are_dropped() {
        let mut h = Handled::default();
        assert!(!h.seen_again(b"a", false));
        // The same bytes published twice are two messages.
        assert!(!h.seen_again(b"a", false));
        // Redelivered, never handled: handled now.
        assert!(!h.seen_again(b"b", true));
        // Redeliveries of the two handled copies and of b: dropped, each once.
        assert!(h.seen_again(b"a", true));
        assert!(h.seen_again(b"a", true));
        assert!(h.seen_again(b"b", true));
        assert!(!h.seen_again(b"a", true));
    }

    #[test]
    fn remembers_only_what_the_broker_can_redeliver() {
        let mut h = Handled::default();
        assert!(!h.seen_again(b"old", false));
        for i in 0..super::PREFETCH {
            assert!(!h.seen_again(&i.to_be_bytes(), false));
        }
        assert!(!h.seen_again(b"old", true), "out of the window");
        assert!(h.recent.len() <= usize::from(super::PREFETCH));
    }
}
