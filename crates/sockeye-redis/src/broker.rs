//! The node's two Redis connections, shared by every namespace: a multiplexed publisher fed by
//! one bounded queue (so publishes keep the order they were made in) and a dedicated
//! subscriber that reconnects with backoff and resubscribes to every channel still wanted.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::aio::ConnectionManager;
use tokio::sync::{Notify, mpsc, watch};

use crate::adapter::RedisAdapter;
use crate::config::RedisConfig;
use crate::error::{LocalOutcome, NotPublished, NotPublishedReason, RedisError};
use crate::stats::Stats;
use crate::wire::WireError;

impl Outgoing {
    /// The error an operation returns when this message was refused.
    pub(crate) fn refused(
        self,
        reason: NotPublishedReason,
        ns: &str,
        local: LocalOutcome,
    ) -> sockeye::AdapterError {
        let np = NotPublished {
            what: self.what,
            ns: ns.to_owned(),
            local,
            reason,
            channel: self.channel,
            payload: self.payload,
        };
        sockeye::AdapterError::with_source(np.to_string(), np)
    }
}

/// One message to publish; `what` says what it was, for the log line if it is lost.
pub(crate) struct Outgoing {
    pub(crate) channel: String,
    pub(crate) payload: bytes::Bytes,
    pub(crate) what: &'static str,
    /// When it was queued (for the publish lag metric; empty without the feature).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) queued: crate::metrics::Stamp,
}

#[derive(Default, Clone, PartialEq, Eq)]
struct Subscriptions {
    patterns: BTreeSet<String>,
    channels: BTreeSet<String>,
}

pub(crate) struct Broker {
    pub(crate) config: Arc<RedisConfig>,
    pub(crate) publisher: Arc<Publisher>,
    pub(crate) stats: Stats,
    out: mpsc::Sender<Outgoing>,
    routes: Mutex<HashMap<String, Weak<RedisAdapter>>>,
    wanted: Mutex<Subscriptions>,
    changed: Notify,
    active: watch::Sender<Subscriptions>,
    stop: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section below leaves its map consistent, so a poisoned lock is usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Opens a client for `config`'s URL. A Sentinel URL is refused: only the classic adapter
/// and emitter resolve it (through [`Source`]).
pub(crate) fn client(config: &RedisConfig) -> Result<redis::Client, RedisError> {
    if parse_sentinel_url(&config.url).is_some() {
        return Err(RedisError::SentinelUnsupported {
            url: config.redacted_url(),
        });
    }
    // rustls needs a process-wide crypto provider; keep the application's if it chose one.
    #[cfg(feature = "tls")]
    let _ = rustls::crypto::ring::default_provider().install_default();
    #[cfg(feature = "tls")]
    if let Some(root) = &config.tls_root_cert {
        let certs = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root.clone()),
        };
        return redis::Client::build_with_tls(config.url.as_str(), certs).map_err(|source| {
            RedisError::InvalidUrl {
                url: config.redacted_url(),
                source,
            }
        });
    }
    redis::Client::open(config.url.as_str()).map_err(|source| RedisError::InvalidUrl {
        url: config.redacted_url(),
        source,
    })
}

/// A Sentinel URL as python-socketio reads it:
/// `redis+sentinel://[user:password@]host:port[,host:port...][/db[/service_name]]` (or
/// `valkey+sentinel://`). The credentials are those of the master, not of the sentinels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SentinelUrl {
    pub(crate) sentinels: Vec<(String, u16)>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) db: Option<i64>,
    pub(crate) service: Option<String>,
}

/// `None` when `url` is not a Sentinel URL; otherwise the parsed URL or why it is invalid.
pub(crate) fn parse_sentinel_url(url: &str) -> Option<Result<SentinelUrl, String>> {
    let rest = url
        .strip_prefix("redis+sentinel://")
        .or_else(|| url.strip_prefix("valkey+sentinel://"))?;
    Some(parse_sentinel_rest(rest))
}

fn parse_sentinel_rest(rest: &str) -> Result<SentinelUrl, String> {
    let (netloc, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match netloc.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, netloc),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, pass) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            (some(user), pass.and_then(some))
        }
    };
    let mut sentinels = Vec::new();
    for host_port in hosts.split(',') {
        let (host, port) = host_port
            .rsplit_once(':')
            .ok_or_else(|| format!("sentinel {host_port:?} has no port"))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("sentinel {host_port:?} has an invalid port"))?;
        if host.is_empty() {
            return Err(format!("sentinel {host_port:?} has no host"));
        }
        sentinels.push((host.to_owned(), port));
    }
    let mut parts = path.split('/').skip(1);
    let db = match parts.next() {
        None | Some("") => None,
        Some(db) => Some(
            db.parse::<i64>()
                .map_err(|_| format!("database {db:?} is not a number"))?,
        ),
    };
    let service = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(SentinelUrl {
        sentinels,
        username,
        password,
        db,
        service,
    })
}

/// Where the classic adapter's connections go: a fixed server, or the master Redis Sentinel
/// names at the time of each (re)connection, so that a node follows a failover.
#[derive(Clone)]
pub(crate) enum Source {
    Fixed(Box<redis::Client>),
    Sentinel(Arc<tokio::sync::Mutex<redis::sentinel::SentinelClient>>),
}

impl Source {
    /// The source of `config`'s URL; nothing is contacted yet.
    pub(crate) fn new(config: &RedisConfig) -> Result<Source, RedisError> {
        let Some(parsed) = parse_sentinel_url(&config.url) else {
            return client(config).map(|c| Source::Fixed(Box::new(c)));
        };
        let url = parsed.map_err(|reason| RedisError::InvalidSentinelUrl {
            url: config.redacted_url(),
            reason,
        })?;
        let addrs = url
            .sentinels
            .iter()
            .map(|(host, port)| redis::ConnectionAddr::Tcp(host.clone(), *port));
        // python-socketio's default service name is its channel; ours is the key.
        let service = url.service.clone().unwrap_or_else(|| config.key.clone());
        let invalid = |source| RedisError::InvalidUrl {
            url: config.redacted_url(),
            source,
        };
        let mut builder = redis::sentinel::SentinelClientBuilder::new(
            addrs,
            service,
            redis::sentinel::SentinelServerType::Master,
        )
        .map_err(invalid)?;
        if let Some(db) = url.db {
            builder = builder.set_client_to_redis_db(db);
        }
        if let Some(user) = &url.username {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(password) = &url.password {
            builder = builder.set_client_to_redis_password(password);
        }
        let sentinel = builder.build().map_err(invalid)?;
        Ok(Source::Sentinel(Arc::new(tokio::sync::Mutex::new(
            sentinel,
        ))))
    }

    /// A client for the server to connect to now (for Sentinel: asks the sentinels for the
    /// current master).
    pub(crate) async fn client(&self, config: &RedisConfig) -> Result<redis::Client, RedisError> {
        match self {
            Source::Fixed(c) => Ok((**c).clone()),
            Source::Sentinel(s) => {
                let mut sentinel = s.lock().await;
                match tokio::time::timeout(config.command_timeout * 2, sentinel.async_get_client())
                    .await
                {
                    Ok(Ok(client)) => Ok(client),
                    Ok(Err(source)) => Err(RedisError::Connect {
                        url: config.redacted_url(),
                        source,
                    }),
                    Err(_) => Err(RedisError::ConnectTimeout {
                        url: config.redacted_url(),
                    }),
                }
            }
        }
    }

    fn follows_failovers(&self) -> bool {
        matches!(self, Source::Sentinel(_))
    }
}

/// A connection manager (it reconnects on its own after a dropped connection) for `config`.
async fn connection_manager(
    client: redis::Client,
    config: &RedisConfig,
) -> Result<ConnectionManager, RedisError> {
    let manager_config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.command_timeout))
        .set_response_timeout(Some(config.command_timeout))
        .set_number_of_retries(1)
        .set_min_delay(config.reconnect_min)
        .set_max_delay(config.reconnect_max);
    match tokio::time::timeout(
        config.command_timeout * 2,
        client.get_connection_manager_with_config(manager_config),
    )
    .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => Err(RedisError::Connect {
            url: config.redacted_url(),
            source,
        }),
        Err(_) => Err(RedisError::ConnectTimeout {
            url: config.redacted_url(),
        }),
    }
}

/// The publishing connection, replaced by a new one after a command times out.
///
/// Why: answers on a multiplexed connection are matched to commands by order. A command that
/// never reached Redis (its bytes swallowed by a partitioned network) never gets an answer, so
/// after the network heals every later answer is taken for the command before it: each
/// command seems to time out although Redis ran it, and retrying it publishes it twice. A
/// timed-out connection is therefore never trusted again.
pub(crate) struct Publisher {
    source: Source,
    config: Arc<RedisConfig>,
    /// The connection and its generation (bumped on each replacement).
    current: Mutex<(ConnectionManager, u64)>,
    renewing: tokio::sync::Mutex<()>,
}

impl Publisher {
    /// Connects (failing if Redis cannot be reached now).
    pub(crate) async fn connect(
        source: Source,
        config: Arc<RedisConfig>,
    ) -> Result<Publisher, RedisError> {
        let conn = connection_manager(source.client(&config).await?, &config).await?;
        Ok(Publisher {
            source,
            config,
            current: Mutex::new((conn, 0)),
            renewing: tokio::sync::Mutex::new(()),
        })
    }

    fn current(&self) -> (ConnectionManager, u64) {
        lock(&self.current).clone()
    }

    /// Replaces generation `stale` by a new connection in the background, unless another
    /// caller already did; the caller does not wait for it. If no new connection can be made
    /// now, the old one stays (and is replaced at the next timeout).
    fn renew(self: &Arc<Self>, stale: u64) {
        let this = self.clone();
        tokio::spawn(async move {
            let _one_at_a_time = this.renewing.lock().await;
            if lock(&this.current).1 != stale {
                return;
            }
            let fresh = match this.source.client(&this.config).await {
                Ok(client) => connection_manager(client, &this.config).await,
                Err(e) => Err(e),
            };
            match fresh {
                Ok(conn) => {
                    *lock(&this.current) = (conn, stale.wrapping_add(1));
                    tracing::info!("Redis publisher connection replaced after a timeout");
                }
                Err(e) => tracing::warn!(error = %e, "Redis publisher connection not replaced"),
            }
        });
    }

    /// Runs `request`. A command that failed on a connection found dropped before it was
    /// answered is tried once more; a command that timed out is not (Redis may have run it)
    /// and its connection is replaced.
    pub(crate) async fn run<T: redis::FromRedisValue>(
        self: &Arc<Self>,
        request: Request<'_>,
        command: &'static str,
    ) -> Result<T, RedisError> {
        let mut retried = false;
        loop {
            let (mut conn, generation) = self.current();
            let limit = self.config.command_timeout;
            let result = match request {
                Request::One(cmd) => {
                    tokio::time::timeout(limit, cmd.query_async::<T>(&mut conn)).await
                }
                Request::Pipe(pipe) => {
                    tokio::time::timeout(limit, pipe.query_async::<T>(&mut conn)).await
                }
            };
            match result {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if e.is_timeout() => {
                    self.renew(generation);
                    return Err(RedisError::Timeout { command });
                }
                Ok(Err(e))
                    if !retried && (e.is_connection_dropped() || e.is_connection_refusal()) =>
                {
                    // Behind Sentinel the master may have moved: ask again where it is.
                    if self.source.follows_failovers() {
                        self.renew(generation);
                    }
                    retried = true;
                }
                Ok(Err(source)) => return Err(RedisError::Command { command, source }),
                Err(_) => {
                    self.renew(generation);
                    return Err(RedisError::Timeout { command });
                }
            }
        }
    }
}

/// What the factory and the adapters hold: when the last one is dropped, the connection tasks
/// (which only hold the broker weakly or until told to stop) end.
pub(crate) struct BrokerHandle(Arc<Broker>);

impl std::ops::Deref for BrokerHandle {
    type Target = Arc<Broker>;

    fn deref(&self) -> &Arc<Broker> {
        &self.0
    }
}

impl Drop for BrokerHandle {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

impl Broker {
    /// Connects both connections (failing if Redis is unreachable now) and starts their tasks.
    pub(crate) async fn connect(config: RedisConfig) -> Result<Arc<BrokerHandle>, RedisError> {
        let config = Arc::new(config);
        let source = Source::new(&config)?;
        let publisher = Arc::new(Publisher::connect(source.clone(), config.clone()).await?);
        let client = source.client(&config).await?;
        let first =
            match tokio::time::timeout(config.command_timeout * 2, client.get_async_pubsub()).await
            {
                Ok(Ok(pubsub)) => pubsub,
                Ok(Err(source)) => {
                    return Err(RedisError::Connect {
                        url: config.redacted_url(),
                        source,
                    });
                }
                Err(_) => {
                    return Err(RedisError::ConnectTimeout {
                        url: config.redacted_url(),
                    });
                }
            };
        let (out, rx) = mpsc::channel(config.publish_queue);
        let broker = Arc::new(Broker {
            config,
            publisher,
            stats: Stats::default(),
            out,
            routes: Mutex::new(HashMap::new()),
            wanted: Mutex::new(Subscriptions::default()),
            changed: Notify::new(),
            active: watch::channel(Subscriptions::default()).0,
            stop: watch::channel(false).0,
        });
        tokio::spawn(publish_loop(
            Arc::downgrade(&broker),
            rx,
            broker.stop.subscribe(),
        ));
        tokio::spawn(subscribe_loop(
            Arc::downgrade(&broker),
            source,
            first,
            broker.stop.subscribe(),
        ));
        Ok(Arc::new(BrokerHandle(broker)))
    }

    /// Queues a message; refused (logged and counted) when the queue is full or closed. The
    /// refused message comes back so the caller can say what it was and offer a retry.
    pub(crate) fn publish(&self, msg: Outgoing) -> Result<(), (Outgoing, NotPublishedReason)> {
        match self.out.try_send(msg) {
            Ok(()) => Ok(()),
            Err(e) => {
                Stats::bump(&self.stats.queue_full);
                let (msg, reason) = match e {
                    mpsc::error::TrySendError::Full(m) => (
                        m,
                        NotPublishedReason::QueueFull {
                            capacity: self.config.publish_queue,
                        },
                    ),
                    mpsc::error::TrySendError::Closed(m) => (m, NotPublishedReason::Closed),
                };
                crate::metrics::lost(
                    1,
                    match reason {
                        NotPublishedReason::Closed => "closed",
                        _ => "queue_full",
                    },
                );
                tracing::warn!(channel = %msg.channel, what = msg.what, %reason, "Redis message not published: it is lost for the other nodes");
                Err((msg, reason))
            }
        }
    }

    /// `PUBSUB NUMSUB channel`: how many connections (nodes) subscribe to it.
    pub(crate) async fn numsub(&self, channel: &str) -> Result<usize, RedisError> {
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg("NUMSUB").arg(channel);
        self.query::<(String, usize)>(&cmd, "PUBSUB NUMSUB")
            .await
            .map(|(_, n)| n)
    }

    /// Runs `cmd` on the publisher connection. The connection manager reconnects after a
    /// failure but fails the command that found the connection broken, so a command that
    /// failed on a dropped connection is tried once more.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        command: &'static str,
    ) -> Result<T, RedisError> {
        self.run(Request::One(cmd), command).await
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        request: Request<'_>,
        command: &'static str,
    ) -> Result<T, RedisError> {
        self.publisher.run(request, command).await
    }

    /// Routes the channels of namespace `ns` to `adapter` and subscribes to them.
    pub(crate) fn register(&self, ns: &str, adapter: &Arc<RedisAdapter>) {
        lock(&self.routes).insert(ns.to_owned(), Arc::downgrade(adapter));
        let ch = adapter.channels();
        {
            let mut wanted = lock(&self.wanted);
            wanted.patterns.insert(ch.broadcast_pattern());
            wanted.channels.insert(ch.request.clone());
            wanted.channels.insert(ch.response.clone());
            wanted.channels.insert(ch.specific_response.clone());
        }
        self.changed.notify_one();
    }

    /// Forgets namespace `ns` (if `adapter` still owns its route) and unsubscribes.
    pub(crate) fn unregister(&self, ns: &str, adapter: &RedisAdapter) {
        let mut routes = lock(&self.routes);
        let owned = routes
            .get(ns)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), adapter as *const RedisAdapter));
        if !owned {
            return;
        }
        routes.remove(ns);
        drop(routes);
        let ch = adapter.channels();
        {
            let mut wanted = lock(&self.wanted);
            wanted.patterns.remove(&ch.broadcast_pattern());
            wanted.channels.remove(&ch.request);
            wanted.channels.remove(&ch.response);
            wanted.channels.remove(&ch.specific_response);
        }
        self.changed.notify_one();
    }

    /// The adapter of namespace `ns`, if it is alive.
    pub(crate) fn adapter(&self, ns: &str) -> Option<Arc<RedisAdapter>> {
        lock(&self.routes).get(ns).and_then(Weak::upgrade)
    }

    /// Waits until every wanted channel is subscribed.
    pub(crate) async fn ready(&self, timeout: Duration) -> bool {
        let mut rx = self.active.subscribe();
        let wait = async {
            loop {
                let wanted = lock(&self.wanted).clone();
                let done = {
                    let active = rx.borrow_and_update();
                    wanted.patterns.is_subset(&active.patterns)
                        && wanted.channels.is_subset(&active.channels)
                };
                if done {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// Stops both tasks.
    pub(crate) fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// One message from the subscriber connection.
    fn dispatch(&self, channel: &str, payload: &[u8]) {
        Stats::bump(&self.stats.received);
        if payload.len() > self.config.max_message_size {
            Stats::bump(&self.stats.oversized);
            tracing::warn!(%channel, bytes = payload.len(), "dropped an oversized broker message");
            return;
        }
        let key = &self.config.key;
        let Some(rest) = channel.strip_prefix(key.as_str()) else {
            return;
        };
        let (kind, rest) = if let Some(r) = rest.strip_prefix("-request#") {
            (Kind::Request, r)
        } else if let Some(r) = rest.strip_prefix("-response#") {
            (Kind::Response, r)
        } else if let Some(r) = rest.strip_prefix('#') {
            (Kind::Broadcast, r)
        } else {
            return;
        };
        // `ns#` then, for a room channel, `room#`. Namespace names never contain `#` (the
        // Socket.IO parser ends a namespace at `,`; `#` would be ambiguous in the JS adapter too).
        let Some((ns, tail)) = rest.split_once('#') else {
            return;
        };
        let Some(adapter) = self.adapter(ns) else {
            return;
        };
        let result = match kind {
            Kind::Broadcast => {
                let room = tail.strip_suffix('#').filter(|r| !r.is_empty());
                adapter.on_broadcast(room, payload)
            }
            Kind::Request => adapter.on_request(payload),
            Kind::Response => adapter.on_response(payload),
        };
        match result {
            Ok(()) => {}
            Err(e @ WireError::UnknownVersion(_)) => {
                Stats::bump(&self.stats.unknown_version);
                tracing::warn!(%channel, error = %e, "dropped a broker message of a newer wire version");
            }
            Err(e) => {
                Stats::bump(&self.stats.malformed);
                tracing::warn!(%channel, error = %e, "dropped a malformed broker message");
            }
        }
    }
}

enum Kind {
    Broadcast,
    Request,
    Response,
}

/// A command or a pipeline of them.
#[derive(Clone, Copy)]
pub(crate) enum Request<'a> {
    One(&'a redis::Cmd),
    Pipe(&'a redis::Pipeline),
}

/// Most messages sent in one pipeline: one round trip for a burst of broadcasts.
const BATCH: usize = 128;

async fn publish_loop(
    broker: Weak<Broker>,
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
        let Some(b) = broker.upgrade() else { return };
        let mut pipe = redis::pipe();
        for msg in &batch {
            pipe.cmd("PUBLISH")
                .arg(&msg.channel)
                .arg(&msg.payload[..])
                .ignore();
        }
        match b.run::<()>(Request::Pipe(&pipe), "PUBLISH").await {
            Ok(()) => {
                crate::metrics::published(&batch);
                b.stats
                    .published
                    .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => {
                crate::metrics::lost(batch.len(), "redis_error");
                b.stats
                    .publish_failed
                    .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                for msg in &batch {
                    tracing::warn!(channel = %msg.channel, what = msg.what, error = %e, "Redis publish failed: message lost");
                }
            }
        }
        batch.clear();
    }
}

async fn subscribe_loop(
    broker: Weak<Broker>,
    source: Source,
    first: redis::aio::PubSub,
    mut stop: watch::Receiver<bool>,
) {
    let mut next = Some(first);
    let mut delay = Duration::ZERO;
    let mut reconnecting = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let Some(b) = broker.upgrade() else { return };
        let (min, max, timeout) = (
            b.config.reconnect_min,
            b.config.reconnect_max,
            b.config.command_timeout,
        );
        let pubsub = match next.take() {
            Some(p) => Some(p),
            None => match tokio::time::timeout(timeout, async {
                let client = source.client(&b.config).await.map_err(|e| {
                    redis::RedisError::from((redis::ErrorKind::Io, "no server", e.to_string()))
                })?;
                client.get_async_pubsub().await
            })
            .await
            {
                Ok(Ok(p)) => Some(p),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, retry_in = ?delay.max(min), "Redis subscriber cannot reconnect");
                    None
                }
                Err(_) => {
                    tracing::warn!(retry_in = ?delay.max(min), "Redis subscriber reconnect timed out");
                    None
                }
            },
        };
        if let Some(pubsub) = pubsub {
            if reconnecting {
                Stats::bump(&b.stats.reconnects);
                tracing::info!("Redis subscriber reconnected; resubscribing");
            }
            delay = Duration::ZERO;
            session(&b, pubsub, &mut stop).await;
            b.active.send_replace(Subscriptions::default());
            if *stop.borrow() {
                return;
            }
            tracing::warn!(
                "Redis subscriber connection lost: broadcasts and requests from other nodes are missed until it is back"
            );
            reconnecting = true;
        }
        drop(b);
        delay = (delay * 2).clamp(min, max);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Runs one subscriber connection until it fails or the broker stops.
async fn session(b: &Broker, pubsub: redis::aio::PubSub, stop: &mut watch::Receiver<bool>) {
    let (mut sink, mut stream) = pubsub.split();
    let mut active = Subscriptions::default();
    let mut ping = tokio::time::interval(Duration::from_secs(5));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Subscribes to whatever is wanted now; `changed` may already hold a permit.
    b.changed.notify_one();
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return };
                b.dispatch(msg.get_channel_name(), msg.get_payload_bytes());
            }
            () = b.changed.notified() => {
                let wanted = lock(&b.wanted).clone();
                if reconcile(b, &mut sink, &mut active, &wanted).await.is_err() {
                    return;
                }
                b.active.send_replace(active.clone());
            }
            _ = ping.tick() => {
                let alive = tokio::time::timeout(b.config.command_timeout, sink.ping::<redis::Value>()).await;
                if !matches!(alive, Ok(Ok(_))) {
                    tracing::warn!("Redis subscriber did not answer a ping");
                    return;
                }
            }
            _ = stop.changed() => return,
        }
    }
}

async fn reconcile(
    b: &Broker,
    sink: &mut redis::aio::PubSubSink,
    active: &mut Subscriptions,
    wanted: &Subscriptions,
) -> Result<(), ()> {
    let t = b.config.command_timeout;
    for p in wanted.patterns.difference(&active.patterns.clone()) {
        checked(p, tokio::time::timeout(t, sink.psubscribe(p)).await)?;
        active.patterns.insert(p.clone());
    }
    for c in wanted.channels.difference(&active.channels.clone()) {
        checked(c, tokio::time::timeout(t, sink.subscribe(c)).await)?;
        active.channels.insert(c.clone());
    }
    for p in active.patterns.clone().difference(&wanted.patterns) {
        checked(p, tokio::time::timeout(t, sink.punsubscribe(p)).await)?;
        active.patterns.remove(p);
    }
    for c in active.channels.clone().difference(&wanted.channels) {
        checked(c, tokio::time::timeout(t, sink.unsubscribe(c)).await)?;
        active.channels.remove(c);
    }
    Ok(())
}

/// Logs a failed (un)subscribe; the caller then drops the connection and starts over.
fn checked(
    what: &str,
    result: Result<redis::RedisResult<()>, tokio::time::error::Elapsed>,
) -> Result<(), ()> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(%what, error = %e, "Redis (un)subscribe failed");
            Err(())
        }
        Err(_) => {
            tracing::warn!(%what, "Redis (un)subscribe timed out");
            Err(())
        }
    }
}

#[cfg(test)]
mod sentinel_url_tests {
    use super::{SentinelUrl, parse_sentinel_url};

    #[test]
    fn sentinel_urls_are_read_as_python_socketio_reads_them() {
        assert_eq!(parse_sentinel_url("redis://127.0.0.1:6379/0"), None);
        assert_eq!(
            parse_sentinel_url("redis+sentinel://user:pw@h1:26379,h2:26380/2/mymaster"),
            Some(Ok(SentinelUrl {
                sentinels: vec![("h1".into(), 26379), ("h2".into(), 26380)],
                username: Some("user".into()),
                password: Some("pw".into()),
                db: Some(2),
                service: Some("mymaster".into()),
            }))
        );
        assert_eq!(
            parse_sentinel_url("valkey+sentinel://:secret@10.0.0.1:5000"),
            Some(Ok(SentinelUrl {
                sentinels: vec![("10.0.0.1".into(), 5000)],
                username: None,
                password: Some("secret".into()),
                db: None,
                service: None,
            }))
        );
        let only_db = parse_sentinel_url("redis+sentinel://h:1/3")
            .unwrap()
            .unwrap();
        assert_eq!((only_db.db, only_db.service), (Some(3), None));
        let no_db = parse_sentinel_url("redis+sentinel://h:1//svc")
            .unwrap()
            .unwrap();
        assert_eq!((no_db.db, no_db.service.as_deref()), (None, Some("svc")));
        for bad in [
            "redis+sentinel://host/0/s",
            "redis+sentinel://host:port/0/s",
            "redis+sentinel://:26379/0",
            "redis+sentinel://h:1/zero/s",
            "redis+sentinel://h:1,h2/0",
        ] {
            assert!(
                matches!(parse_sentinel_url(bad), Some(Err(_))),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn modes_that_do_not_resolve_sentinel_say_so() {
        let config = crate::RedisConfig::new("redis+sentinel://u:secret@h:26379/0/m");
        let err = super::client(&config).unwrap_err().to_string();
        assert!(err.contains("classic adapter and emitter only"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let config = crate::RedisConfig::new("redis+sentinel://h/0/m");
        let err = super::Source::new(&config).err().unwrap().to_string();
        assert!(err.contains("invalid Redis Sentinel URL"), "{err}");
    }
}
