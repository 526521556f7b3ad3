//! One node's connection to the Redis Cluster, shared by every namespace: a cluster
//! connection (RESP3, one multiplexed connection per cluster node, rerouted on `MOVED`) that
//! publishes with `SPUBLISH`, counts with `PUBSUB SHARDNUMSUB` and holds the `SSUBSCRIBE`
//! subscriptions; the client library resubscribes them after a reconnect. Pushed messages go
//! through a bounded queue to one dispatch task; responses are published by one task, in the
//! order they were made.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::cluster_async::ClusterConnection;
use tokio::sync::{Notify, mpsc, watch};

use super::adapter::ShardedAdapter;
use super::config::ShardedConfig;
use super::wire::{self, ChannelKind};
use crate::error::RedisError;
use crate::stats::Stats;
use crate::streams::wire::Limits;
use crate::wire::WireError;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section below leaves its map consistent, so a poisoned lock is usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A response waiting to be published.
struct Outgoing {
    channel: String,
    payload: Vec<u8>,
    what: &'static str,
}

pub(crate) struct Node {
    pub(crate) config: ShardedConfig,
    pub(crate) uid: String,
    pub(crate) stats: Stats,
    conn: ClusterConnection,
    routes: Mutex<HashMap<String, Weak<ShardedAdapter>>>,
    /// Channels wanted, with how many reasons each (a room channel may be wanted both as a
    /// socket's own-id room and as an explicit room of that name).
    wanted: Mutex<HashMap<String, usize>>,
    changed: Arc<Notify>,
    active: watch::Sender<BTreeSet<String>>,
    responses: mpsc::Sender<Outgoing>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("uid", &self.uid)
            .field("url", &self.config.redis.redacted_url())
            .finish_non_exhaustive()
    }
}

/// The cluster client for `config`'s seed URLs.
fn cluster_client(
    config: &ShardedConfig,
    push: impl redis::aio::AsyncPushSender,
) -> Result<redis::cluster::ClusterClient, RedisError> {
    #[cfg(feature = "tls")]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let redis = &config.redis;
    let builder = redis::cluster::ClusterClientBuilder::new(config.urls())
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(push)
        .connection_timeout(redis.command_timeout)
        .response_timeout(redis.command_timeout)
        .retries(2)
        .min_retry_wait(u64::try_from(redis.reconnect_min.as_millis()).unwrap_or(100))
        .max_retry_wait(u64::try_from(redis.reconnect_max.as_millis()).unwrap_or(5000));
    #[cfg(feature = "tls")]
    let builder = match &redis.tls_root_cert {
        Some(root) => builder.certs(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root.clone()),
        }),
        None => builder,
    };
    builder.build().map_err(|source| RedisError::InvalidUrl {
        url: redis.redacted_url(),
        source,
    })
}

impl Node {
    /// Connects to the cluster (failing if it cannot be reached now, or is no cluster) and
    /// starts the dispatch and response tasks.
    pub(crate) async fn connect(config: ShardedConfig) -> Result<Arc<Node>, RedisError> {
        let (tx, rx) = mpsc::channel::<redis::PushInfo>(config.receive_queue);
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = dropped.clone();
        // Called by the client library for every push of every cluster node; it must not
        // block, so a full queue drops the message (counted).
        let push = move |info: redis::PushInfo| -> Result<(), ()> {
            match tx.try_send(info) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Err(())
                }
                Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
            }
        };
        let client = cluster_client(&config, push)?;
        let url = config.redis.redacted_url();
        let conn = match tokio::time::timeout(
            config.redis.command_timeout * 2,
            client.get_async_connection(),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(source)) => {
                let text = source.to_string();
                if text.contains("cluster support disabled") {
                    return Err(RedisError::NotACluster { url });
                }
                return Err(RedisError::Connect { url, source });
            }
            Err(_) => return Err(RedisError::ConnectTimeout { url }),
        };
        let (responses, responses_rx) = mpsc::channel(config.redis.publish_queue);
        let node = Arc::new(Node {
            uid: crate::wire::random_id(16),
            config,
            stats: Stats::default(),
            conn,
            routes: Mutex::new(HashMap::new()),
            wanted: Mutex::new(HashMap::new()),
            changed: Arc::new(Notify::new()),
            active: watch::channel(BTreeSet::new()).0,
            responses,
            stop: watch::channel(false).0,
        });
        tokio::spawn(dispatch_loop(
            Arc::downgrade(&node),
            rx,
            dropped,
            node.stop.subscribe(),
        ));
        tokio::spawn(subscribe_loop(Arc::downgrade(&node), node.stop.subscribe()));
        tokio::spawn(respond_loop(
            Arc::downgrade(&node),
            responses_rx,
            node.stop.subscribe(),
        ));
        Ok(node)
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_size: self.config.redis.max_message_size,
            max_depth: self.config.redis.max_depth,
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.config.redis.key
    }

    /// Runs `cmd` on the cluster connection within the command timeout.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        command: &'static str,
    ) -> Result<T, RedisError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(
            self.config.redis.command_timeout,
            cmd.query_async::<T>(&mut conn),
        )
        .await
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.is_timeout() => Err(RedisError::Timeout { command }),
            Ok(Err(source)) => Err(RedisError::Command { command, source }),
            Err(_) => Err(RedisError::Timeout { command }),
        }
    }

    /// `SPUBLISH channel payload`, counted.
    pub(crate) async fn spublish(&self, channel: &str, payload: &[u8]) -> Result<(), RedisError> {
        let result = self
            .query::<redis::Value>(redis::cmd("SPUBLISH").arg(channel).arg(payload), "SPUBLISH")
            .await;
        match &result {
            Ok(_) => Stats::bump(&self.stats.published),
            Err(_) => Stats::bump(&self.stats.publish_failed),
        }
        result.map(drop)
    }

    /// Queues a response (published in order by one task); a full queue drops it, logged and
    /// counted: the requester then times out waiting for this node.
    pub(crate) fn respond(&self, channel: String, payload: Vec<u8>, what: &'static str) {
        if let Err(e) = self.responses.try_send(Outgoing {
            channel,
            payload,
            what,
        }) {
            Stats::bump(&self.stats.queue_full);
            let channel = match &e {
                mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => {
                    m.channel.clone()
                }
            };
            tracing::warn!(%channel, what, "response not published: the response queue is full or closed");
        }
    }

    /// Nodes subscribed to `channel` on the whole cluster (`PUBSUB SHARDNUMSUB` on every
    /// node, summed, as the JS adapter's `serverCount`).
    pub(crate) async fn shard_numsub(&self, channel: &str) -> Result<usize, RedisError> {
        let reply: redis::Value = self
            .query(
                redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel),
                "PUBSUB SHARDNUMSUB",
            )
            .await?;
        Ok(count_in(&reply))
    }

    /// Routes namespace `ns` to `adapter`.
    pub(crate) fn register(&self, ns: &str, adapter: &Arc<ShardedAdapter>) {
        lock(&self.routes).insert(ns.to_owned(), Arc::downgrade(adapter));
    }

    /// Forgets namespace `ns` if `adapter` still owns its route.
    pub(crate) fn unregister(&self, ns: &str, adapter: &ShardedAdapter) {
        let mut routes = lock(&self.routes);
        let owned = routes
            .get(ns)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), adapter as *const ShardedAdapter));
        if owned {
            routes.remove(ns);
        }
    }

    fn adapter(&self, ns: &str) -> Option<Arc<ShardedAdapter>> {
        lock(&self.routes).get(ns).and_then(Weak::upgrade)
    }

    /// One more reason to be subscribed to `channel`.
    pub(crate) fn want(&self, channel: String) {
        let first = {
            let mut wanted = lock(&self.wanted);
            let n = wanted.entry(channel).or_insert(0);
            *n += 1;
            *n == 1
        };
        if first {
            self.changed.notify_one();
        }
    }

    /// One reason less to be subscribed to `channel`; unsubscribed at the last.
    pub(crate) fn unwant(&self, channel: &str) {
        let last = {
            let mut wanted = lock(&self.wanted);
            match wanted.get_mut(channel) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    wanted.remove(channel);
                    true
                }
                None => false,
            }
        };
        if last {
            self.changed.notify_one();
        }
    }

    fn wanted_now(&self) -> BTreeSet<String> {
        lock(&self.wanted).keys().cloned().collect()
    }

    /// Waits until every wanted channel is subscribed.
    pub(crate) async fn ready(&self, timeout: Duration) -> bool {
        let mut rx = self.active.subscribe();
        let wait = async {
            loop {
                let wanted = self.wanted_now();
                if wanted.is_subset(&rx.borrow_and_update()) {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// Stops the tasks.
    pub(crate) fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Logs and counts a refused message.
    pub(crate) fn refused(&self, what: &str, e: &WireError) {
        match e {
            WireError::TooLarge(_) => Stats::bump(&self.stats.oversized),
            WireError::UnknownVersion(_) => Stats::bump(&self.stats.unknown_version),
            _ => Stats::bump(&self.stats.malformed),
        }
        tracing::warn!(what, error = %e, "dropped a malformed sharded message");
    }

    /// One pushed message.
    fn dispatch(&self, channel: &str, payload: &[u8]) {
        Stats::bump(&self.stats.received);
        if payload.len() > self.config.redis.max_message_size {
            Stats::bump(&self.stats.oversized);
            tracing::warn!(%channel, bytes = payload.len(), "dropped an oversized sharded message");
            return;
        }
        let Some((ns, kind)) = wire::parse_channel(self.prefix(), &self.uid, channel) else {
            return;
        };
        let Some(adapter) = self.adapter(ns) else {
            return;
        };
        let message = match wire::decode(payload, self.limits()) {
            Ok(m) => m,
            Err(e) => return self.refused("sharded message", &e),
        };
        let result = match kind {
            ChannelKind::Response => adapter.on_response(message),
            ChannelKind::Namespace | ChannelKind::Room(_) => adapter.on_message(message),
        };
        if let Err(e) = result {
            self.refused("sharded message", &e);
        }
    }
}

/// The count in a `PUBSUB SHARDNUMSUB` reply: a map (the cluster client sums every node's
/// answer into one) or the `[channel, count]` array of a single node.
fn count_in(reply: &redis::Value) -> usize {
    let int = |v: &redis::Value| match v {
        redis::Value::Int(n) => usize::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    match reply {
        redis::Value::Map(entries) => entries.iter().map(|(_, v)| int(v)).sum(),
        redis::Value::Array(items) => items.get(1).map(int).unwrap_or(0),
        _ => 0,
    }
}

async fn dispatch_loop(
    node: Weak<Node>,
    mut rx: mpsc::Receiver<redis::PushInfo>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut seen_dropped = 0;
    loop {
        let info = tokio::select! {
            info = rx.recv() => info,
            _ = stop.changed() => None,
        };
        let Some(info) = info else { return };
        let Some(node) = node.upgrade() else { return };
        let now_dropped = dropped.load(std::sync::atomic::Ordering::Relaxed);
        if now_dropped != seen_dropped {
            node.stats.receive_queue_full.fetch_add(
                now_dropped - seen_dropped,
                std::sync::atomic::Ordering::Relaxed,
            );
            tracing::warn!(
                dropped = now_dropped - seen_dropped,
                "sharded messages dropped: the receive queue was full"
            );
            seen_dropped = now_dropped;
        }
        match info.kind {
            redis::PushKind::SMessage => {
                let (Some(redis::Value::BulkString(channel)), Some(redis::Value::BulkString(p))) =
                    (info.data.first(), info.data.get(1))
                else {
                    Stats::bump(&node.stats.malformed);
                    continue;
                };
                match std::str::from_utf8(channel) {
                    Ok(channel) => node.dispatch(channel, p),
                    Err(_) => Stats::bump(&node.stats.malformed),
                }
            }
            redis::PushKind::Disconnection => {
                Stats::bump(&node.stats.reconnects);
                tracing::warn!(
                    "a Redis Cluster connection was lost: messages published on its shard are missed until the client library reconnects and resubscribes"
                );
            }
            _ => {}
        }
    }
}

/// Subscribes to what is wanted and unsubscribes from what is not, one channel at a time
/// (channels of different slots cannot share one command); a failure is retried with
/// backoff.
async fn subscribe_loop(node: Weak<Node>, mut stop: watch::Receiver<bool>) {
    let mut delay = Duration::ZERO;
    loop {
        let Some(n) = node.upgrade() else { return };
        let wanted = n.wanted_now();
        let active = n.active.borrow().clone();
        let mut conn = n.conn.clone();
        let timeout = n.config.redis.command_timeout;
        let mut failed = false;
        for channel in wanted.difference(&active) {
            match tokio::time::timeout(timeout, conn.ssubscribe(channel)).await {
                Ok(Ok(())) => {
                    n.active.send_modify(|a| {
                        a.insert(channel.clone());
                    });
                }
                Ok(Err(e)) => {
                    tracing::warn!(%channel, error = %e, "SSUBSCRIBE failed; retrying");
                    failed = true;
                    break;
                }
                Err(_) => {
                    tracing::warn!(%channel, "SSUBSCRIBE timed out; retrying");
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            for channel in active.difference(&wanted) {
                match tokio::time::timeout(timeout, conn.sunsubscribe(channel)).await {
                    Ok(Ok(())) => {
                        n.active.send_modify(|a| {
                            a.remove(channel);
                        });
                    }
                    _ => {
                        tracing::warn!(%channel, "SUNSUBSCRIBE failed; retrying");
                        failed = true;
                        break;
                    }
                }
            }
        }
        let (min, max) = (n.config.redis.reconnect_min, n.config.redis.reconnect_max);
        let notify = n.changed.clone();
        let changed = notify.notified();
        let again = failed || n.wanted_now() != *n.active.borrow();
        drop(n);
        if again {
            delay = (delay * 2).clamp(min, max);
            tokio::select! {
                _ = tokio::time::sleep(if failed { delay } else { Duration::ZERO }) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        delay = Duration::ZERO;
        tokio::select! {
            () = changed => {}
            _ = stop.changed() => return,
        }
    }
}

async fn respond_loop(
    node: Weak<Node>,
    mut rx: mpsc::Receiver<Outgoing>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = stop.changed() => None,
        };
        let Some(msg) = msg else { return };
        let Some(n) = node.upgrade() else { return };
        if let Err(e) = n.spublish(&msg.channel, &msg.payload).await {
            tracing::warn!(channel = %msg.channel, what = msg.what, error = %e, "response not published: lost");
        }
    }
}
