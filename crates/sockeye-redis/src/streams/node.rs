//! What one node shares between its namespaces: the command connection, one blocking reader
//! per stream, the pub/sub subscriber, the publish queue for responses, and the adapters by
//! namespace.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use tokio::sync::{mpsc, watch};

use super::adapter::StreamsAdapter;
use super::config::StreamsConfig;
use super::wire::{self, Limits};
use crate::error::RedisError;
use crate::stats::Stats;
use crate::wire::WireError;

/// A stream entry: its id and its fields.
pub(crate) type Entry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// What a stream's reader has handled (`None` until it knows where it starts).
type Handled = watch::Receiver<Option<(u64, u64)>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves its map consistent, so a poisoned lock is usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How many responses may wait to be published.
const RESPONSE_QUEUE: usize = 4096;

/// One node's shared state.
pub(crate) struct Node {
    pub(crate) config: StreamsConfig,
    pub(crate) uid: String,
    pub(crate) stats: Stats,
    client: redis::Client,
    conn: ConnectionManager,
    adapters: Mutex<HashMap<String, Weak<StreamsAdapter>>>,
    /// The id each stream's reader has handled, by stream name (`None` until it knows where
    /// it starts).
    readers: Mutex<HashMap<String, Handled>>,
    /// Channels to subscribe, sent to the subscriber task; the set it must hold.
    subscribe_tx: mpsc::UnboundedSender<(String, bool)>,
    channels: Mutex<BTreeSet<String>>,
    /// Confirmed subscriptions.
    subscribed: watch::Sender<BTreeSet<String>>,
    responses: mpsc::Sender<(String, Vec<u8>)>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

impl Node {
    pub(crate) async fn connect(config: StreamsConfig) -> Result<Arc<Node>, RedisError> {
        let client = crate::broker::client(&config.redis)?;
        let rc = &config.redis;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(rc.command_timeout))
            .set_response_timeout(Some(rc.command_timeout))
            .set_number_of_retries(1)
            .set_min_delay(rc.reconnect_min)
            .set_max_delay(rc.reconnect_max);
        let conn = match tokio::time::timeout(
            rc.command_timeout * 2,
            client.get_connection_manager_with_config(manager_config),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(source)) => {
                return Err(RedisError::Connect {
                    url: rc.redacted_url(),
                    source,
                });
            }
            Err(_) => {
                return Err(RedisError::ConnectTimeout {
                    url: rc.redacted_url(),
                });
            }
        };
        let (subscribe_tx, subscribe_rx) = mpsc::unbounded_channel();
        let (responses, responses_rx) = mpsc::channel(RESPONSE_QUEUE);
        let (stop, _) = watch::channel(false);
        let node = Arc::new(Node {
            uid: crate::wire::random_id(16),
            config,
            stats: Stats::default(),
            client,
            conn,
            adapters: Mutex::new(HashMap::new()),
            readers: Mutex::new(HashMap::new()),
            subscribe_tx,
            channels: Mutex::new(BTreeSet::new()),
            subscribed: watch::Sender::new(BTreeSet::new()),
            responses,
            stop,
        });
        tokio::spawn(subscriber(
            Arc::downgrade(&node),
            subscribe_rx,
            node.stop.subscribe(),
        ));
        tokio::spawn(response_publisher(Arc::downgrade(&node), responses_rx));
        Ok(node)
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_size: self.config.redis.max_message_size,
            max_depth: self.config.redis.max_depth,
        }
    }

    /// Runs one command on the shared connection, bounded by the command timeout.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        what: &'static str,
    ) -> Result<T, RedisError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(
            self.config.redis.command_timeout,
            cmd.query_async::<T>(&mut conn),
        )
        .await
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(RedisError::Command {
                command: what,
                source,
            }),
            Err(_) => Err(RedisError::Timeout { command: what }),
        }
    }

    /// Runs a pipeline (MULTI/EXEC when `atomic`) on the shared connection.
    pub(crate) async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
        what: &'static str,
    ) -> Result<T, RedisError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(
            self.config.redis.command_timeout,
            pipe.query_async::<T>(&mut conn),
        )
        .await
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(RedisError::Command {
                command: what,
                source,
            }),
            Err(_) => Err(RedisError::Timeout { command: what }),
        }
    }

    /// Registers a namespace's adapter: starts its stream's reader (once per stream) and
    /// subscribes to its public and private channels.
    pub(crate) fn register(self: &Arc<Self>, adapter: &Arc<StreamsAdapter>) {
        lock(&self.adapters).insert(adapter.ns().to_owned(), Arc::downgrade(adapter));
        self.ensure_reader(adapter.stream());
        for channel in [adapter.public_channel(), adapter.private_channel()] {
            if lock(&self.channels).insert(channel.to_owned()) {
                let _ = self.subscribe_tx.send((channel.to_owned(), true));
            }
        }
    }

    /// Forgets a namespace's adapter and unsubscribes its channels, so that the other nodes
    /// stop counting this one there.
    pub(crate) fn unregister(&self, adapter: &StreamsAdapter) {
        {
            let mut adapters = lock(&self.adapters);
            let same = adapters
                .get(adapter.ns())
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), adapter));
            if !same {
                return;
            }
            adapters.remove(adapter.ns());
        }
        for channel in [adapter.public_channel(), adapter.private_channel()] {
            if lock(&self.channels).remove(channel) {
                let _ = self.subscribe_tx.send((channel.to_owned(), false));
            }
        }
    }

    fn adapter(&self, ns: &str) -> Option<Arc<StreamsAdapter>> {
        lock(&self.adapters).get(ns).and_then(Weak::upgrade)
    }

    /// True once every wanted channel is subscribed and every reader runs, within `timeout`.
    pub(crate) async fn ready(&self, timeout: Duration) -> bool {
        let mut rx = self.subscribed.subscribe();
        let readers: Vec<_> = lock(&self.readers).values().cloned().collect();
        let wait = async {
            loop {
                let wanted = lock(&self.channels).clone();
                if wanted.is_subset(&rx.borrow_and_update()) {
                    break;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
            for mut reader in readers {
                if reader.wait_for(Option::is_some).await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// Waits until `stream`'s reader knows where it starts, so that an entry added from now
    /// on is read by it; false after `timeout`.
    pub(crate) async fn reading(&self, stream: &str, timeout: Duration) -> bool {
        let Some(mut rx) = lock(&self.readers).get(stream).cloned() else {
            return false;
        };
        tokio::time::timeout(timeout, rx.wait_for(Option::is_some))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn ensure_reader(self: &Arc<Self>, stream: &str) {
        let mut readers = lock(&self.readers);
        if readers.contains_key(stream) {
            return;
        }
        let (tx, rx) = watch::channel(None);
        readers.insert(stream.to_owned(), rx);
        tokio::spawn(reader(
            Arc::downgrade(self),
            self.client.clone(),
            stream.to_owned(),
            tx,
            self.stop.subscribe(),
        ));
    }

    /// Waits until `stream`'s reader handled entry `id` (or later), at most `timeout`.
    pub(crate) async fn handled(&self, stream: &str, id: (u64, u64), timeout: Duration) -> bool {
        let Some(mut rx) = lock(&self.readers).get(stream).cloned() else {
            return false;
        };
        tokio::time::timeout(timeout, rx.wait_for(|seen| seen.is_some_and(|s| s >= id)))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Queues a response for publishing (in order, one task).
    pub(crate) fn respond(&self, channel: String, payload: Vec<u8>) {
        if self.responses.try_send((channel, payload)).is_err() {
            Stats::bump(&self.stats.queue_full);
            tracing::warn!("Redis streams adapter: response queue full; a response is dropped");
        }
    }

    pub(crate) fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    fn on_entry(&self, id: &str, fields: &[(Vec<u8>, Vec<u8>)]) {
        Stats::bump(&self.stats.received);
        match wire::decode_entry(fields, self.limits()) {
            Ok(message) => {
                if let Some(adapter) = self.adapter(&message.nsp) {
                    adapter.on_stream_message(id, message);
                }
            }
            Err(e) => self.refused("stream entry", &e),
        }
    }

    fn on_pubsub(&self, payload: &[u8]) {
        Stats::bump(&self.stats.received);
        match wire::decode_pubsub(payload, self.limits()) {
            Ok(message) => {
                if message.uid == self.uid {
                    return;
                }
                if let Some(adapter) = self.adapter(&message.nsp)
                    && let Err(e) = adapter.on_pubsub_message(message)
                {
                    self.refused("pub/sub message", &e);
                }
            }
            Err(e) => self.refused("pub/sub message", &e),
        }
    }

    pub(crate) fn refused(&self, what: &str, e: &WireError) {
        match e {
            WireError::TooLarge(_) => Stats::bump(&self.stats.oversized),
            WireError::UnknownVersion(_) => Stats::bump(&self.stats.unknown_version),
            _ => Stats::bump(&self.stats.malformed),
        }
        tracing::warn!(error = %e, "Redis streams adapter: {what} dropped");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Entries of an XRANGE/XREVRANGE reply, or of the one stream of an XREAD reply:
/// `[[id, [field, value, ...]], ...]`. Anything else is skipped.
pub(crate) fn parse_entries(v: &redis::Value) -> Vec<Entry> {
    let redis::Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let redis::Value::Array(pair) = item else {
                return None;
            };
            let [id, redis::Value::Array(flat)] = pair.as_slice() else {
                return None;
            };
            let id = bulk(id).and_then(|b| String::from_utf8(b.to_vec()).ok())?;
            let fields = flat
                .chunks_exact(2)
                .filter_map(|kv| match kv {
                    [k, v] => Some((bulk(k)?.to_vec(), bulk(v)?.to_vec())),
                    _ => None,
                })
                .collect();
            Some((id, fields))
        })
        .collect()
}

fn bulk(v: &redis::Value) -> Option<&[u8]> {
    match v {
        redis::Value::BulkString(b) => Some(b),
        redis::Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// The entries of an XREAD reply (one stream): `[[name, entries]]` in RESP2, a map in RESP3.
fn xread_entries(v: &redis::Value) -> Vec<Entry> {
    match v {
        redis::Value::Array(streams) => streams
            .iter()
            .flat_map(|s| match s {
                redis::Value::Array(pair) if pair.len() == 2 => {
                    pair.get(1).map(parse_entries).unwrap_or_default()
                }
                _ => Vec::new(),
            })
            .collect(),
        redis::Value::Map(streams) => streams.iter().flat_map(|(_, e)| parse_entries(e)).collect(),
        _ => Vec::new(),
    }
}

/// Reads `stream` with blocking XREAD from the last id handled, on a connection of its own
/// (a blocked connection serves nothing else), reconnecting with backoff. Resuming from the
/// last id after an outage means nothing is handled twice. Entries lost meanwhile (Redis
/// restarted without the stream, or trimmed past the reader) cannot be read again; the reader
/// notices that the last id it handled is gone (checked with every read, in its round trip),
/// counts it in `stream_gaps` and logs it.
async fn reader(
    node: Weak<Node>,
    client: redis::Client,
    stream: String,
    handled: watch::Sender<Option<(u64, u64)>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut delay = Duration::ZERO;
    // The last id a gap was reported for, so that one loss is counted once.
    let mut gap_reported: Option<(u64, u64)> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let Some(n) = node.upgrade() else { return };
        let (block, count, min, max) = (
            n.config.block_time,
            n.config.read_count,
            n.config.redis.reconnect_min,
            n.config.redis.reconnect_max,
        );
        let timeout = n.config.redis.command_timeout;
        drop(n);
        if conn.is_none() {
            // No response timeout on this connection: XREAD blocks up to `block`.
            let cfg = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(None);
            match client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await
            {
                Ok(c) => {
                    if delay > Duration::ZERO {
                        tracing::info!(%stream, "Redis stream reader reconnected; resuming from its last id");
                        if let Some(n) = node.upgrade() {
                            Stats::bump(&n.stats.reconnects);
                        }
                    }
                    conn = Some(c);
                    delay = Duration::ZERO;
                }
                Err(e) => {
                    delay = (delay * 2).clamp(min, max);
                    tracing::warn!(%stream, error = %e, retry_in = ?delay, "Redis stream reader cannot connect");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => return,
                    }
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let known = *handled.borrow();
        let last = match known {
            Some(last) => last,
            None => {
                // Start after the stream's last entry: older ones were for the nodes of that
                // time. An empty (or absent) stream starts at 0-0.
                let mut cmd = redis::cmd("XREVRANGE");
                cmd.arg(&stream).arg("+").arg("-").arg("COUNT").arg(1);
                let newest = cmd.query_async::<redis::Value>(c);
                match tokio::time::timeout(timeout, newest).await {
                    Ok(Ok(v)) => parse_entries(&v)
                        .into_iter()
                        .next()
                        .and_then(|(id, _)| wire::parse_id(&id))
                        .unwrap_or((0, 0)),
                    _ => {
                        conn = None;
                        tokio::time::sleep(min).await;
                        continue;
                    }
                }
            }
        };
        if known.is_none() {
            handled.send_replace(Some(last));
        }
        let block_ms = u64::try_from(block.as_millis()).unwrap_or(5000);
        let last_id = format!("{}-{}", last.0, last.1);
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&stream)
            .arg(&last_id);
        // Whether the last entry handled is still in the stream, asked in the same round trip
        // right before the read: if it is, nothing after it was trimmed or lost before the
        // read, which then gets everything after it. Trimming removes the oldest entries
        // first, so an entry after it can only be gone if it is gone too.
        let check = known.is_some() && last != (0, 0);
        let read = async {
            if check {
                let mut pipe = redis::pipe();
                pipe.cmd("XRANGE")
                    .arg(&stream)
                    .arg(&last_id)
                    .arg(&last_id)
                    .add_command(cmd);
                let (kept, reply) = pipe.query_async::<(redis::Value, redis::Value)>(c).await?;
                Ok::<_, redis::RedisError>((!parse_entries(&kept).is_empty(), reply))
            } else {
                cmd.query_async::<redis::Value>(c)
                    .await
                    .map(|reply| (true, reply))
            }
        };
        let result = tokio::select! {
            r = tokio::time::timeout(block + timeout, read) => r,
            _ = stop.changed() => return,
        };
        match result {
            Ok(Ok((kept, reply))) => {
                let Some(n) = node.upgrade() else { return };
                let mut newest = last;
                let entries = xread_entries(&reply);
                if !kept && gap_reported != Some(last) {
                    gap_reported = Some(last);
                    Stats::bump(&n.stats.stream_gaps);
                    tracing::warn!(
                        %stream,
                        last_handled = %last_id,
                        oldest_after_it = %entries.first().map_or("none", |(id, _)| id.as_str()),
                        "Redis stream gap: the last entry this node handled is gone from the \
                         stream (Redis restarted without it, or the stream was deleted or trimmed \
                         past this reader); entries written after it and not read yet are lost \
                         for this node's clients. Reading goes on with what the stream holds."
                    );
                }
                for (id, fields) in entries {
                    let Some(parsed) = wire::parse_id(&id) else {
                        continue;
                    };
                    if parsed <= newest {
                        continue;
                    }
                    n.on_entry(&id, &fields);
                    newest = parsed;
                }
                if newest != last {
                    handled.send_replace(Some(newest));
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(%stream, error = %e, "Redis stream read failed; reconnecting");
                conn = None;
                delay = delay.max(min);
                tokio::time::sleep(delay).await;
            }
            Err(_) => {
                tracing::warn!(%stream, "Redis stream read timed out; reconnecting");
                conn = None;
                delay = delay.max(min);
            }
        }
    }
}

/// Subscribes to the channels it is told, reconnecting (and resubscribing) with backoff.
async fn subscriber(
    node: Weak<Node>,
    mut wanted: mpsc::UnboundedReceiver<(String, bool)>,
    mut stop: watch::Receiver<bool>,
) {
    let mut delay = Duration::ZERO;
    loop {
        if *stop.borrow() {
            return;
        }
        let Some(n) = node.upgrade() else { return };
        let (client, timeout, min, max) = (
            n.client.clone(),
            n.config.redis.command_timeout,
            n.config.redis.reconnect_min,
            n.config.redis.reconnect_max,
        );
        drop(n);
        let pubsub = match tokio::time::timeout(timeout, client.get_async_pubsub()).await {
            Ok(Ok(p)) => p,
            _ => {
                delay = (delay * 2).clamp(min, max);
                tracing::warn!(retry_in = ?delay, "Redis streams subscriber cannot connect");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
        };
        let (mut sink, mut messages) = pubsub.split();
        let mut active = BTreeSet::new();
        let mut broken = false;
        // Drain what was asked before, then (re)subscribe to every wanted channel.
        while wanted.try_recv().is_ok() {}
        let all = match node.upgrade() {
            Some(n) => lock(&n.channels).clone(),
            None => return,
        };
        for channel in all {
            if sink.subscribe(&channel).await.is_err() {
                broken = true;
                break;
            }
            active.insert(channel);
        }
        if let Some(n) = node.upgrade() {
            n.subscribed.send_replace(active.clone());
        }
        let mut ping = tokio::time::interval(Duration::from_secs(5));
        if !broken {
            loop {
                tokio::select! {
                    msg = messages.next() => {
                        let Some(msg) = msg else { break };
                        let Some(n) = node.upgrade() else { return };
                        n.on_pubsub(msg.get_payload_bytes());
                    }
                    change = wanted.recv() => {
                        let Some((channel, subscribe)) = change else { return };
                        if subscribe {
                            if sink.subscribe(&channel).await.is_err() {
                                break;
                            }
                            active.insert(channel);
                        } else {
                            if sink.unsubscribe(&channel).await.is_err() {
                                break;
                            }
                            active.remove(&channel);
                        }
                        if let Some(n) = node.upgrade() {
                            n.subscribed.send_replace(active.clone());
                        }
                    }
                    _ = ping.tick() => {
                        let alive = tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await;
                        if !matches!(alive, Ok(Ok(_))) {
                            break;
                        }
                    }
                    _ = stop.changed() => return,
                }
            }
        }
        if let Some(n) = node.upgrade() {
            n.subscribed.send_replace(BTreeSet::new());
            Stats::bump(&n.stats.reconnects);
        }
        tracing::warn!(
            "Redis streams subscriber lost; requests and responses are missed until it is back"
        );
        delay = (delay * 2).clamp(min, max);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Publishes responses in the order they were queued.
async fn response_publisher(node: Weak<Node>, mut rx: mpsc::Receiver<(String, Vec<u8>)>) {
    while let Some((channel, payload)) = rx.recv().await {
        let Some(n) = node.upgrade() else { return };
        match n
            .query::<redis::Value>(redis::cmd("PUBLISH").arg(&channel).arg(payload), "PUBLISH")
            .await
        {
            Ok(_) => Stats::bump(&n.stats.published),
            Err(e) => {
                Stats::bump(&n.stats.publish_failed);
                tracing::warn!(%channel, error = %e, "Redis streams adapter: response not published");
            }
        }
    }
}
