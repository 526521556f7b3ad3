//! One node's connections to PostgreSQL, shared by every namespace:
//! - the **listener**: `LISTEN`s on each namespace's channel and hands notifications, in the
//!   order the database sends them, to the namespace's adapter; when it is lost it reconnects
//!   (after the configured delay, jittered) and listens again on every channel;
//! - the **publisher**: one connection that runs every `NOTIFY` (and attachment `INSERT`) in
//!   the order the adapters queued them, and the periodic cleanup of the attachments table;
//! - the **fetcher**: reads attachment rows, on a connection of its own so that a slow read
//!   never holds the listener's socket.
//!
//! Each connection is (re)opened on demand; the tasks hold only weak references, so dropping
//! the last factory handle stops them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesOrdered;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{AsyncMessage, Client, NoTls};

use crate::adapter::PostgresAdapter;
use crate::config::PostgresConfig;
use crate::error::PostgresError;
use crate::stats::Stats;
use crate::wire::{self, Encoded, Limits, Message, WireError};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A queued publish, and where to report its outcome.
pub(crate) struct Job {
    pub(crate) channel: String,
    pub(crate) message: Encoded,
    pub(crate) reply: Option<oneshot::Sender<Result<(), String>>>,
}

enum Work {
    Publish(Job),
    Cleanup,
}

pub(crate) struct Node {
    pub(crate) uid: String,
    pub(crate) config: PostgresConfig,
    pub(crate) stats: Stats,
    pg: tokio_postgres::Config,
    handle: tokio::runtime::Handle,
    /// Channel name → the adapter of its namespace.
    adapters: Mutex<HashMap<String, Weak<PostgresAdapter>>>,
    /// Channels `LISTEN`ed on the current listener connection.
    listened: Mutex<HashSet<String>>,
    listen_client: Mutex<Option<Arc<Client>>>,
    fetch_client: tokio::sync::Mutex<Option<Owned>>,
    work: mpsc::Sender<Work>,
    /// Dropped with the node: its tasks stop.
    _alive: watch::Sender<()>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

/// A table name as the Node adapter interpolates it into SQL: it must be a plain identifier.
fn check_table(name: &str) -> Result<(), PostgresError> {
    let ident = |s: &str| {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let ok = match name.split_once('.') {
        Some((schema, table)) => ident(schema) && ident(table),
        None => ident(name),
    };
    if ok {
        Ok(())
    } else {
        Err(PostgresError::Config(format!(
            "table name {name:?} is not a plain identifier (letters, digits, _; optionally schema.table)"
        )))
    }
}

impl Node {
    pub(crate) async fn connect(config: PostgresConfig) -> Result<Arc<Node>, PostgresError> {
        check_table(&config.table_name)?;
        let mut pg: tokio_postgres::Config = config
            .conn
            .parse()
            .map_err(|e| PostgresError::Config(format!("connection string: {e}")))?;
        let uid = wire::random_id();
        pg.application_name(format!("sockeye-postgres {uid}"));
        // A (re)connect to an address that swallows packets must not hang a task for good.
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(config.request_timeout);
        }
        // One connection now, so that a wrong address or password is an error of `connect`
        // rather than a log line later; it becomes the publisher's.
        let (client, connection) = pg.connect(NoTls).await.map_err(PostgresError::Connect)?;
        let driver = tokio::spawn(drive(connection)).abort_handle();
        if config.create_table {
            create_table(&client, &config.table_name).await?;
        }
        let (work_tx, work_rx) = mpsc::channel(config.queue_capacity);
        let (alive, alive_rx) = watch::channel(());
        let node = Arc::new(Node {
            uid,
            config,
            stats: Stats::default(),
            pg,
            handle: tokio::runtime::Handle::current(),
            adapters: Mutex::new(HashMap::new()),
            listened: Mutex::new(HashSet::new()),
            listen_client: Mutex::new(None),
            fetch_client: tokio::sync::Mutex::new(None),
            work: work_tx,
            _alive: alive,
        });
        tokio::spawn(publisher(
            Arc::downgrade(&node),
            node.pg.clone(),
            node.config.clone(),
            Publisher::new(client, driver),
            work_rx,
        ));
        tokio::spawn(listener(Arc::downgrade(&node), alive_rx.clone()));
        tokio::spawn(cleaner(Arc::downgrade(&node), alive_rx));
        Ok(node)
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_size: self.config.max_message_size,
            max_depth: self.config.max_depth,
        }
    }

    pub(crate) fn spawn<F>(&self, f: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.handle.spawn(f);
    }

    pub(crate) fn channel_of(&self, ns: &str) -> String {
        format!("{}#{ns}", self.config.channel_prefix)
    }

    /// Routes the channel's notifications to `adapter` and listens on it.
    pub(crate) fn register(self: &Arc<Self>, channel: &str, adapter: &Arc<PostgresAdapter>) {
        lock(&self.adapters).insert(channel.to_owned(), Arc::downgrade(adapter));
        let client = lock(&self.listen_client).clone();
        if let Some(client) = client {
            let node = Arc::downgrade(self);
            let channel = channel.to_owned();
            self.spawn(async move {
                listen(node, client, vec![channel]).await;
            });
        }
    }

    /// Stops routing the channel (the adapter closed or was dropped) and unlistens.
    pub(crate) fn unregister(&self, channel: &str, adapter: &PostgresAdapter) {
        let mut adapters = lock(&self.adapters);
        let ours = adapters
            .get(channel)
            .is_some_and(|w| w.upgrade().is_none_or(|a| std::ptr::eq(&*a, adapter)));
        if !ours {
            return;
        }
        adapters.remove(channel);
        drop(adapters);
        lock(&self.listened).remove(channel);
        let client = lock(&self.listen_client).clone();
        if let Some(client) = client
            && tokio::runtime::Handle::try_current().is_ok()
        {
            let sql = format!("UNLISTEN {}", wire::quote_ident(channel));
            self.spawn(async move {
                let _ = client.batch_execute(&sql).await;
            });
        }
    }

    pub(crate) fn adapter(&self, ns: &str) -> Option<Arc<PostgresAdapter>> {
        lock(&self.adapters)
            .get(&self.channel_of(ns))
            .and_then(Weak::upgrade)
    }

    pub(crate) fn is_listening(&self, channel: &str) -> bool {
        lock(&self.listened).contains(channel)
    }

    /// True once every registered channel is listened on.
    pub(crate) fn all_listening(&self) -> bool {
        let wanted: Vec<String> = lock(&self.adapters).keys().cloned().collect();
        let listened = lock(&self.listened);
        wanted.iter().all(|c| listened.contains(c))
    }

    /// Queues a publish; `Err` when the queue is full.
    pub(crate) fn queue(&self, job: Job) -> Result<(), String> {
        self.work.try_send(Work::Publish(job)).map_err(|e| {
            Stats::bump(&self.stats.queue_full);
            match e {
                mpsc::error::TrySendError::Full(_) => format!(
                    "the publish queue is full ({} messages waiting for PostgreSQL)",
                    self.config.queue_capacity
                ),
                mpsc::error::TrySendError::Closed(_) => "the adapter is closed".to_owned(),
            }
        })
    }

    /// One notification, on the listener's task: decoded, its attachment read, and handed to
    /// the namespace's adapter; anything malformed is dropped and counted.
    async fn on_notification(&self, channel: &str, payload: &str) {
        let adapter = lock(&self.adapters).get(channel).and_then(Weak::upgrade);
        let Some(adapter) = adapter else {
            return;
        };
        let header = match wire::decode_notification(payload, self.limits()) {
            Ok(m) => m,
            Err(e) => {
                Stats::bump(&self.stats.received);
                return self.refused(channel, "notification", &e);
            }
        };
        // The database echoes this node's own notifications back: skipped, not counted.
        if header.uid == self.uid {
            return;
        }
        Stats::bump(&self.stats.received);
        let message = match header.attachment_id {
            None => header,
            Some(id) => match self.attachment(id).await {
                Ok(m) => m,
                Err(e) => {
                    Stats::bump(&self.stats.bad_attachments);
                    tracing::warn!(channel, attachment = id, error = %e, "attachment dropped");
                    return;
                }
            },
        };
        if message.uid == self.uid {
            return;
        }
        if let Some(nsp) = &message.nsp
            && nsp != adapter.ns()
        {
            let e = WireError::Schema("message namespace is not its channel's");
            return self.refused(channel, "notification", &e);
        }
        if let Err(e) = adapter.on_message(message) {
            self.refused(channel, "message", &e);
        }
    }

    pub(crate) fn refused(&self, channel: &str, what: &str, e: &WireError) {
        match e {
            WireError::TooLarge(_) => Stats::bump(&self.stats.oversized),
            _ => Stats::bump(&self.stats.malformed),
        }
        tracing::warn!(channel, error = %e, "{what} from PostgreSQL dropped");
    }

    /// Reads and decodes attachment row `id`.
    async fn attachment(&self, id: i64) -> Result<Message, String> {
        let sql = format!(
            "SELECT payload FROM {} WHERE id = $1",
            self.config.table_name
        );
        let mut slot = self.fetch_client.lock().await;
        if slot.as_ref().is_none_or(|o| o.client.is_closed()) {
            let (client, connection) = connect_within(&self.pg, self.config.request_timeout)
                .await
                .map_err(|e| format!("cannot connect to read it: {e}"))?;
            *slot = Some(Owned::new(client, connection));
        }
        let client = &slot.as_ref().ok_or("no connection")?.client;
        let answered = tokio::time::timeout(
            self.config.request_timeout,
            client.query_opt(sql.as_str(), &[&id]),
        )
        .await;
        let Ok(answered) = answered else {
            // The request may still be on its way, or lost with the link: an answer arriving
            // later would be taken for the next request's. A new connection next time.
            *slot = None;
            return Err("the database did not answer in time".to_owned());
        };
        let row = answered
            .map_err(|e| format!("cannot read it: {e}"))?
            .ok_or("no such row (deleted by the cleanup, or never written)")?;
        let bytes: Option<Vec<u8>> = row
            .try_get(0)
            .map_err(|e| format!("payload is not bytea: {e}"))?;
        let bytes = bytes.ok_or("payload is NULL")?;
        wire::decode_attachment(&bytes, self.limits()).map_err(|e| e.to_string())
    }
}

async fn create_table(client: &Client, table: &str) -> Result<(), PostgresError> {
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {table} (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)"
    );
    if let Err(first) = client.batch_execute(&sql).await {
        // Two nodes creating it at once: one of them loses a race on the catalog; the table
        // is there all the same.
        let check = format!("SELECT 1 FROM {table} LIMIT 0");
        if client.batch_execute(&check).await.is_err() {
            return Err(PostgresError::Setup {
                what: "creating the attachments table",
                source: first,
            });
        }
    }
    Ok(())
}

/// Drives a connection whose notifications nobody reads (publisher, fetcher).
type Connection =
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>;

/// A client whose connection task ends when it is dropped. tokio-postgres keeps a connection
/// open while requests are pending on it, and a request lost with a stalled link stays
/// pending for good: dropping the client alone would leave the task and its socket behind.
pub(crate) struct Owned {
    pub(crate) client: Client,
    driver: tokio::task::AbortHandle,
}

impl Owned {
    pub(crate) fn new(client: Client, connection: Connection) -> Owned {
        Owned {
            client,
            driver: tokio::spawn(drive(connection)).abort_handle(),
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Connects within `within`, startup included: `connect_timeout` bounds only the TCP
/// connect, and a link that accepts and then swallows every byte would hang the startup.
async fn connect_within(
    pg: &tokio_postgres::Config,
    within: Duration,
) -> Result<(Client, Connection), String> {
    match tokio::time::timeout(within, pg.connect(NoTls)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("PostgreSQL did not answer within {within:?}")),
    }
}

async fn drive(connection: Connection) {
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "PostgreSQL connection ended");
    }
}

/// `delay` randomised between half and one and a half times it.
fn jittered(delay: Duration) -> Duration {
    use rand::Rng as _;
    delay.mul_f64(0.5 + rand::rng().random::<f64>())
}

/// `LISTEN`s on `channels` through `client`; each becomes ready when the database confirms.
async fn listen(node: Weak<Node>, client: Arc<Client>, channels: Vec<String>) -> bool {
    for channel in channels {
        let sql = format!("LISTEN {}", wire::quote_ident(&channel));
        if let Err(e) = client.batch_execute(&sql).await {
            tracing::warn!(channel, error = %e, "LISTEN failed; retried when the listener reconnects");
            return false;
        }
        let Some(node) = node.upgrade() else {
            return false;
        };
        // Only if this client is still the listener's (not replaced by a reconnect meanwhile).
        let current = lock(&node.listen_client)
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &client));
        if current {
            lock(&node.listened).insert(channel);
        }
    }
    true
}

/// The listener task: connects, listens on every channel, handles notifications in order;
/// when the connection is lost, counts it, waits and starts over.
async fn listener(node: Weak<Node>, mut alive: watch::Receiver<()>) {
    let mut first = true;
    loop {
        let Some(n) = node.upgrade() else { return };
        let (pg, delay, within) = (
            n.pg.clone(),
            n.config.reconnect_delay,
            n.config.request_timeout,
        );
        drop(n);
        let connected = tokio::select! {
            c = connect_within(&pg, within) => c,
            _ = alive.changed() => return,
        };
        let (client, mut connection) = match connected {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "PostgreSQL listener cannot connect; retrying");
                tokio::select! {
                    () = tokio::time::sleep(jittered(delay)) => continue,
                    _ = alive.changed() => return,
                }
            }
        };
        let client = Arc::new(client);
        let Some(n) = node.upgrade() else { return };
        *lock(&n.listen_client) = Some(client.clone());
        lock(&n.listened).clear();
        if !first {
            Stats::bump(&n.stats.reconnects);
            tracing::info!("PostgreSQL listener reconnected; listening again");
        }
        let channels: Vec<String> = lock(&n.adapters).keys().cloned().collect();
        // At the first connection each adapter's heartbeat task announces it.
        let relisten = !first && !channels.is_empty();
        first = false;
        let weak = node.clone();
        let listen_client = client.clone();
        n.spawn(async move {
            if listen(weak.clone(), listen_client, channels).await
                && relisten
                && let Some(n) = weak.upgrade()
            {
                // Messages of the outage are gone; a new round of heartbeats at least makes
                // the node count right again at once.
                let adapters: Vec<_> = lock(&n.adapters)
                    .values()
                    .filter_map(Weak::upgrade)
                    .collect();
                for a in adapters {
                    a.announce();
                }
            }
        });
        drop(n);
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        loop {
            let next = tokio::select! {
                m = messages.next() => m,
                _ = alive.changed() => return,
            };
            match next {
                Some(Ok(AsyncMessage::Notification(note))) => {
                    let Some(n) = node.upgrade() else { return };
                    n.on_notification(note.channel(), note.payload()).await;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "PostgreSQL listener connection lost");
                    break;
                }
                None => {
                    tracing::warn!("PostgreSQL listener connection closed");
                    break;
                }
            }
        }
        let Some(n) = node.upgrade() else { return };
        Stats::bump(&n.stats.listen_losses);
        *lock(&n.listen_client) = None;
        lock(&n.listened).clear();
        drop(n);
        tokio::select! {
            () = tokio::time::sleep(jittered(delay)) => {}
            _ = alive.changed() => return,
        }
    }
}

/// Queues the attachments-table cleanup every `cleanup_interval`.
async fn cleaner(node: Weak<Node>, mut alive: watch::Receiver<()>) {
    let Some(every) = node.upgrade().map(|n| n.config.cleanup_interval) else {
        return;
    };
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = alive.changed() => return,
        }
        let Some(n) = node.upgrade() else { return };
        let _ = n.work.try_send(Work::Cleanup);
    }
}

/// The publisher's statements.
#[derive(Clone, Copy)]
enum Sql {
    Notify,
    Attachment,
}

/// The publisher's connection and the statements prepared on it.
struct Publisher {
    client: Arc<Client>,
    notify: Option<tokio_postgres::Statement>,
    attachment: Option<tokio_postgres::Statement>,
    /// Set when a request on this connection went unanswered within `request_timeout`: its
    /// answer may still come and would be taken for a later request's (tokio-postgres pairs
    /// answers with requests by order), so the connection is not used again.
    stale: Arc<std::sync::atomic::AtomicBool>,
    driver: tokio::task::AbortHandle,
}

impl Publisher {
    fn new(client: Client, driver: tokio::task::AbortHandle) -> Publisher {
        Publisher {
            client: Arc::new(client),
            notify: None,
            attachment: None,
            stale: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            driver,
        }
    }

    fn usable(&self) -> bool {
        !self.client.is_closed() && !self.stale.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The statement `which` (`sql`), prepared on first use.
    async fn statement(
        &mut self,
        which: Sql,
        sql: &str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        let slot = match which {
            Sql::Notify => &mut self.notify,
            Sql::Attachment => &mut self.attachment,
        };
        if let Some(stmt) = slot {
            return Ok(stmt.clone());
        }
        let stmt = self.client.prepare(sql).await?;
        *slot = Some(stmt.clone());
        Ok(stmt)
    }

    /// The request for `sent`, not polled yet (its statement prepared first if need be).
    async fn execute(
        &mut self,
        sent: Sent,
        attachment_sql: &str,
    ) -> Result<Exec, tokio_postgres::Error> {
        let client = self.client.clone();
        Ok(match sent {
            Sent::Sql(sql) => {
                Box::pin(async move { client.batch_execute(&sql).await.map_err(|e| e.to_string()) })
            }
            Sent::Message(channel, Encoded::Notify(text)) => {
                let stmt = self
                    .statement(Sql::Notify, "SELECT pg_notify($1, $2)")
                    .await?;
                Box::pin(async move {
                    client
                        .execute(&stmt, &[&channel, &text])
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
            }
            Sent::Message(channel, Encoded::Attachment { bytes, uid, kind }) => {
                let stmt = self.statement(Sql::Attachment, attachment_sql).await?;
                let kind = i32::try_from(kind).unwrap_or(i32::MAX);
                Box::pin(async move {
                    client
                        .execute(&stmt, &[&bytes, &channel, &uid, &kind])
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
            }
        })
    }
}

/// The publisher task: runs the queued work in order on one connection, reconnecting when it
/// is lost (the message that met the loss fails; the next ones go on the new connection).
async fn publisher(
    node: Weak<Node>,
    pg: tokio_postgres::Config,
    config: PostgresConfig,
    first: Publisher,
    mut work: mpsc::Receiver<Work>,
) {
    let notify_with_attachment = format!(
        "WITH a AS (INSERT INTO {} (payload) VALUES ($1) RETURNING id) \
         SELECT pg_notify($2, json_build_object('uid', $3::text, 'type', $4::int, 'attachmentId', a.id::text)::text) FROM a",
        config.table_name
    );
    let cleanup = format!(
        "DELETE FROM {} WHERE created_at < now() - interval '{} milliseconds'",
        config.table_name,
        config.cleanup_interval.as_millis()
    );
    // The statements are prepared once per connection: a plain `execute` of SQL text would
    // prepare it again each time, a second round trip per message.
    let mut conn = Some(first);
    let mut inflight: FuturesOrdered<Pending> = FuturesOrdered::new();
    loop {
        let item = tokio::select! {
            biased;
            Some((done, result)) = inflight.next(), if !inflight.is_empty() => {
                let Some(n) = node.upgrade() else { return };
                done.finish(&n, result);
                continue;
            }
            item = work.recv(), if inflight.len() < MAX_IN_FLIGHT => item,
        };
        let Some(item) = item else { break };
        if conn.as_ref().is_none_or(|p| !p.usable()) {
            // What was sent on the lost connection fails (or finishes) first, in order.
            while let Some((done, result)) = inflight.next().await {
                let Some(n) = node.upgrade() else { return };
                done.finish(&n, result);
            }
            conn = match connect_within(&pg, config.request_timeout).await {
                Ok((c, connection)) => {
                    let driver = tokio::spawn(drive(connection)).abort_handle();
                    Some(Publisher::new(c, driver))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL publisher cannot connect");
                    None
                }
            };
        }
        let (done, sent) = match item {
            Work::Cleanup => (Done::cleanup(), Sent::Sql(cleanup.clone())),
            Work::Publish(job) => {
                let done = Done {
                    reply: job.reply,
                    channel: job.channel.clone(),
                    attachment: matches!(job.message, Encoded::Attachment { .. }),
                    cleanup: false,
                };
                (done, Sent::Message(job.channel, job.message))
            }
        };
        let Some(p) = conn.as_mut() else {
            inflight.push_back(Box::pin(std::future::ready((
                done,
                Err("PostgreSQL is unreachable".to_owned()),
            ))));
            continue;
        };
        let timeout = config.request_timeout;
        let stale = p.stale.clone();
        // Preparing a statement is a round trip of its own, bounded like the request.
        let exec =
            match tokio::time::timeout(timeout, p.execute(sent, &notify_with_attachment)).await {
                Ok(Ok(exec)) => exec,
                Ok(Err(e)) => {
                    inflight.push_back(Box::pin(std::future::ready((done, Err(e.to_string())))));
                    continue;
                }
                Err(_) => {
                    stale.store(true, std::sync::atomic::Ordering::Relaxed);
                    let e = format!("PostgreSQL did not answer within {timeout:?}");
                    inflight.push_back(Box::pin(std::future::ready((done, Err(e)))));
                    continue;
                }
            };
        // tokio-postgres sends a request when its future is first polled, and runs requests
        // in that order: polling each once here, as it is queued, keeps the queue's order on
        // the wire while several messages are in flight (pipelined).
        let mut exec = exec;
        let first = exec
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        let pending: Pending = match first {
            std::task::Poll::Ready(r) => Box::pin(std::future::ready((done, r))),
            std::task::Poll::Pending => Box::pin(async move {
                let r = match tokio::time::timeout(timeout, exec).await {
                    Ok(r) => r,
                    Err(_) => {
                        stale.store(true, std::sync::atomic::Ordering::Relaxed);
                        Err(format!("PostgreSQL did not answer within {timeout:?}"))
                    }
                };
                (done, r)
            }),
        };
        inflight.push_back(pending);
    }
    while let Some((done, result)) = inflight.next().await {
        let Some(n) = node.upgrade() else { return };
        done.finish(&n, result);
    }
}

/// Messages a publisher keeps in flight on its connection at most.
const MAX_IN_FLIGHT: usize = 64;

type Exec = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;
type Pending =
    std::pin::Pin<Box<dyn std::future::Future<Output = (Done, Result<(), String>)> + Send>>;

/// What one queued item sends.
enum Sent {
    Sql(String),
    Message(String, Encoded),
}

/// What to do once an item's request is answered.
struct Done {
    reply: Option<oneshot::Sender<Result<(), String>>>,
    channel: String,
    attachment: bool,
    cleanup: bool,
}

impl Done {
    fn cleanup() -> Done {
        Done {
            reply: None,
            channel: String::new(),
            attachment: false,
            cleanup: true,
        }
    }

    fn finish(self, node: &Node, result: Result<(), String>) {
        if self.cleanup {
            if let Err(e) = result {
                tracing::warn!(error = %e, "attachments cleanup failed; retried next time");
            }
            return;
        }
        match &result {
            Ok(()) => {
                Stats::bump(&node.stats.published);
                if self.attachment {
                    Stats::bump(&node.stats.attachments_written);
                }
            }
            Err(e) => {
                Stats::bump(&node.stats.publish_failed);
                tracing::warn!(channel = %self.channel, error = %e, "message not published");
            }
        }
        if let Some(reply) = self.reply {
            let _ = reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_plain_identifiers() {
        assert!(check_table("socket_io_attachments").is_ok());
        assert!(check_table("public.t1").is_ok());
        for bad in ["", "1t", "t;drop", "a.b.c", "t-x", "\"t\""] {
            assert!(check_table(bad).is_err(), "{bad}");
        }
    }
}
