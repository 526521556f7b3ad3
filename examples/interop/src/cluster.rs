//! Cluster mode (`shared/interop-app.md` §4): the adapter chosen by `INTEROP_ADAPTER`, the
//! node's name, connection-state recovery, and the cluster-wide events.
//!
//! On the python buses the library answers cluster-wide queries (fetch sockets, server count,
//! room-wide join/disconnect, broadcast acks) with a typed `Unsupported` error; the handlers
//! then answer for this node's sockets only, as python-socketio does, and the node says so in
//! its log at start.

use std::time::Duration;

use serde_json::{Value, json};
use sockeye::adapter::SocketInfo;
use sockeye::prelude::*;
use sockeye::{AdapterError, EmitError, RecoveryConfig, SocketIoBuilder};
use sockeye_nats::{JetStreamConfig, NatsAdapterFactory, NatsConfig};
use sockeye_postgres::{PostgresAdapterFactory, PostgresConfig};
use sockeye_pybus::{PyBusConfig, PyBusFactory, Unsupported};
use sockeye_redis::sharded::{ShardedAdapterFactory, ShardedConfig};
use sockeye_redis::streams::{StreamsAdapterFactory, StreamsConfig};
use sockeye_redis::{RedisAdapterFactory, RedisConfig};

use crate::dynamic::{Dynamic, object};

/// Cluster-wide waits (`broadcast-ask`, `ask-sid`) never last longer than this, whatever the
/// client asks.
const MAX_ASK_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the node waits at start for its adapter to be subscribed.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment variables of cluster mode; with none of them set the app is exactly the
/// single node of §3.
const CLUSTER_VARS: [&str; 5] = [
    "INTEROP_ADAPTER",
    "INTEROP_BROKER_URL",
    "INTEROP_CHANNEL",
    "INTEROP_RECOVERY_MS",
    "INTEROP_NODE",
];

/// This node's name (`INTEROP_NODE`, default its process id), reported by `whoami` in
/// cluster mode (`None` outside it); a server state.
#[derive(Clone, Debug)]
pub struct NodeName(pub Option<String>);

/// The adapter a node runs on, connected.
enum Backend {
    Memory,
    Redis(RedisAdapterFactory),
    Sharded(ShardedAdapterFactory),
    Streams(StreamsAdapterFactory),
    PyBus(PyBusFactory),
    Postgres(PostgresAdapterFactory),
    Nats(NatsAdapterFactory),
}

/// A node's cluster settings, read from the environment and connected to the broker.
pub struct Cluster {
    node: Option<String>,
    recovery: Option<Duration>,
    backend: Backend,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Cluster {
    /// Reads `INTEROP_ADAPTER`, `INTEROP_BROKER_URL`, `INTEROP_CHANNEL`,
    /// `INTEROP_RECOVERY_MS` and `INTEROP_NODE`, and connects to the broker; an error says
    /// what is wrong or not implemented.
    pub async fn from_env() -> Result<Cluster, String> {
        let node = CLUSTER_VARS
            .iter()
            .any(|name| env(name).is_some())
            .then(|| env("INTEROP_NODE").unwrap_or_else(|| std::process::id().to_string()));
        let recovery = match env("INTEROP_RECOVERY_MS") {
            None => None,
            Some(ms) => Some(Duration::from_millis(ms.parse::<u64>().map_err(|_| {
                format!("INTEROP_RECOVERY_MS={ms:?} is not a number of milliseconds")
            })?)),
        };
        let mode = env("INTEROP_ADAPTER").unwrap_or_else(|| "memory".to_owned());
        let url = env("INTEROP_BROKER_URL");
        let channel = env("INTEROP_CHANNEL");
        let redis_url = || {
            url.clone()
                .unwrap_or_else(|| "redis://127.0.0.1:6379/0".to_owned())
        };
        let backend = match mode.as_str() {
            "memory" => Backend::Memory,
            "redis" => {
                let mut config = RedisConfig::new(redis_url());
                if let Some(channel) = &channel {
                    config = config.key(channel.clone());
                }
                let factory = RedisAdapterFactory::connect(config)
                    .await
                    .map_err(|e| format!("INTEROP_ADAPTER=redis: {e}"))?;
                Backend::Redis(factory)
            }
            "redis-sharded" => {
                // A Redis Cluster: the URL of one of its nodes (more, comma-separated, are
                // extra seeds); the subscription mode is the JS default, `dynamic`.
                let url = redis_url();
                let mut urls = url.split(',').map(str::trim).filter(|u| !u.is_empty());
                let first = urls.next().unwrap_or_default().to_owned();
                let mut config = ShardedConfig::new(RedisConfig::new(first)).seed_nodes(urls);
                if let Some(channel) = &channel {
                    config = config.prefix(channel.clone());
                }
                let factory = ShardedAdapterFactory::connect(config)
                    .await
                    .map_err(|e| format!("INTEROP_ADAPTER=redis-sharded: {e}"))?;
                Backend::Sharded(factory)
            }
            "redis-streams" => {
                let mut config = StreamsConfig::new(RedisConfig::new(redis_url()));
                if let Some(channel) = &channel {
                    config = config
                        .stream_name(channel.clone())
                        .channel_prefix(channel.clone());
                }
                let factory = StreamsAdapterFactory::connect(config)
                    .await
                    .map_err(|e| format!("INTEROP_ADAPTER=redis-streams: {e}"))?;
                Backend::Streams(factory)
            }
            "python-redis" | "python-amqp" => {
                let default = if mode == "python-redis" {
                    "redis://127.0.0.1:6379/0"
                } else {
                    "amqp://guest:guest@127.0.0.1:5672/"
                };
                let url = amqp_default_vhost(url.clone().unwrap_or_else(|| default.into()));
                let mut config = PyBusConfig::new(url);
                if let Some(channel) = &channel {
                    config = config.channel(channel.clone());
                }
                let factory = PyBusFactory::connect(config)
                    .await
                    .map_err(|e| format!("INTEROP_ADAPTER={mode}: {e}"))?;
                tracing::warn!(
                    adapter = %mode,
                    "python-socketio's bus cannot answer cluster-wide queries: where it \
                     refuses one (fetch sockets and server count; any other it reports \
                     unsupported), cluster-sockets, server-count, cluster-join, \
                     cluster-disconnect and broadcast-ask answer for this node's sockets only"
                );
                Backend::PyBus(factory)
            }
            "postgres" => {
                // The adapter creates its attachments table if it is missing.
                let url = url
                    .clone()
                    .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned());
                let mut config = PostgresConfig::new(url);
                if let Some(channel) = &channel {
                    config = config.channel_prefix(channel.clone());
                }
                let factory = PostgresAdapterFactory::connect(config)
                    .await
                    .map_err(|e| format!("INTEROP_ADAPTER=postgres: {e}"))?;
                Backend::Postgres(factory)
            }
            "nats" => {
                let url = url
                    .clone()
                    .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
                let prefix = channel.clone().unwrap_or_else(|| "sockeye".to_owned());
                let mut config = NatsConfig::new(url).prefix(prefix.clone());
                // Recovery across nodes needs the JetStream half: a stream and a session
                // bucket named after the channel, so that clusters stay apart.
                if let Some(window) = recovery {
                    let name = prefix.replace('.', "_");
                    config = config.jetstream(
                        JetStreamConfig::new()
                            .stream(name.clone())
                            .bucket(format!("{name}-sessions"))
                            .session_ttl(window.max(Duration::from_secs(1))),
                    );
                }
                let factory = NatsAdapterFactory::connect(config)
                    .await
                    .map_err(|e| format!("INTEROP_ADAPTER=nats: {e}"))?;
                Backend::Nats(factory)
            }
            other => {
                return Err(format!(
                    "INTEROP_ADAPTER={other:?} is unknown (one of memory, redis, redis-sharded, \
                     redis-streams, postgres, python-redis, python-amqp, nats)"
                ));
            }
        };
        Ok(Cluster {
            node,
            recovery,
            backend,
        })
    }

    /// The builder with this node's adapter, recovery settings and name.
    pub fn configure(&self, builder: SocketIoBuilder) -> SocketIoBuilder {
        let mut builder = builder.with_state(NodeName(self.node.clone()));
        if let Some(max) = self.recovery {
            builder = builder.connection_state_recovery(RecoveryConfig {
                max_disconnection_duration: max,
                skip_middlewares: true,
                ..RecoveryConfig::default()
            });
        }
        match &self.backend {
            Backend::Memory => builder,
            Backend::Redis(f) => builder.adapter(f.clone()),
            Backend::Sharded(f) => builder.adapter(f.clone()),
            Backend::Streams(f) => builder.adapter(f.clone()),
            Backend::PyBus(f) => builder.adapter(f.clone()),
            Backend::Postgres(f) => builder.adapter(f.clone()),
            Backend::Nats(f) => builder.adapter(f.clone()),
        }
    }

    /// Waits until the adapter is subscribed, so that the node misses nothing once it
    /// announces its port.
    pub async fn ready(&self) {
        let ready = match &self.backend {
            Backend::Memory => true,
            Backend::Redis(f) => f.ready(READY_TIMEOUT).await,
            Backend::Sharded(f) => f.ready(READY_TIMEOUT).await,
            Backend::Streams(f) => f.ready(READY_TIMEOUT).await,
            Backend::PyBus(f) => f.ready(READY_TIMEOUT).await,
            Backend::Postgres(f) => f.ready(READY_TIMEOUT).await,
            Backend::Nats(f) => f.ready(READY_TIMEOUT).await,
        };
        if !ready {
            tracing::warn!("the adapter is not subscribed after {READY_TIMEOUT:?}; serving anyway");
        }
    }
}

/// The spec writes AMQP URLs as `amqp://…:5672/`, which python-socketio's aio-pika reads as
/// the default vhost `/`; the AMQP client under sockeye-pybus reads the empty path as the
/// vhost named "", which RabbitMQ refuses. So an empty vhost is spelled out as `%2f`.
fn amqp_default_vhost(url: String) -> String {
    match url.strip_suffix('/') {
        Some(base) if url.starts_with("amqp") && base.matches('/').count() == 2 => {
            format!("{base}/%2f")
        }
        _ => url,
    }
}

/// Registers the cluster events of §4 on the namespace of `handle`.
pub fn register(handle: sockeye::NsHandle) -> sockeye::NsHandle {
    handle
        .on("cluster-sockets", cluster_sockets)
        .on("cluster-join", cluster_join)
        .on("cluster-disconnect", cluster_disconnect)
        .on("server-count", server_count)
        .on("disconnect-sid", disconnect_sid)
        .on("room-of", room_of)
        .on("close-room", close_room)
        // Both wait for clients: must not hold back the socket's other events meanwhile.
        .on_concurrent("broadcast-ask", broadcast_ask)
        .on_concurrent("ask-sid", ask_sid)
}

/// The namespace's operator on every node.
fn operator(io: &SocketIo, socket: &SocketRef) -> Result<sockeye::BroadcastOperator, NoAck> {
    io.of(socket.ns()).map_err(|e| {
        tracing::warn!(error = %e, "namespace gone");
        NoAck
    })
}

/// True when the adapter cannot do `what` cluster-wide (the python buses): the caller falls
/// back to this node's sockets.
fn unsupported(error: &AdapterError, what: &str) -> bool {
    let refused = Unsupported::in_adapter_error(error).is_some();
    if refused {
        tracing::debug!(error = %error, what, "answering for this node's sockets only");
    } else {
        tracing::warn!(error = %error, what, "cluster operation failed");
    }
    refused
}

/// Runs `op` on every node, or on this node only when the adapter refuses it as unsupported.
macro_rules! cluster_or_local {
    ($io:expr, $socket:expr, $what:expr, |$op:ident| $body:expr) => {{
        let $op = operator(&$io, &$socket)?;
        match $body.await {
            Ok(v) => Ok(v),
            Err(e) if unsupported(&e, $what) => {
                let $op = operator(&$io, &$socket)?.local();
                $body.await.map_err(|e| {
                    tracing::warn!(error = %e, what = $what, "local operation failed");
                    NoAck
                })
            }
            Err(_) => Err(NoAck),
        }
    }};
}

fn string_arg(args: &Args, n: usize) -> Result<String, NoAck> {
    args.nth::<String>(n).map_err(|_| NoAck)
}

/// Every socket of the namespace on every node: `{id, rooms}` sorted by id.
async fn cluster_sockets(socket: SocketRef, io: SocketIo) -> Result<Json<Value>, NoAck> {
    let sockets: Vec<SocketInfo> =
        cluster_or_local!(io, socket, "fetch_sockets", |op| op.fetch_sockets())?;
    let mut listed: Vec<(String, Vec<String>)> = sockets
        .into_iter()
        .map(|s| {
            let id = s.id.as_str().to_owned();
            let mut rooms: Vec<String> = s
                .rooms
                .iter()
                .map(ToString::to_string)
                .filter(|r| *r != id)
                .collect();
            rooms.sort();
            rooms.dedup();
            (id, rooms)
        })
        .collect();
    listed.sort();
    Ok(Json(Value::Array(
        listed
            .into_iter()
            .map(|(id, rooms)| json!({"id": id, "rooms": rooms}))
            .collect(),
    )))
}

/// Every socket in room `target` joins `room`, on every node.
async fn cluster_join(socket: SocketRef, io: SocketIo, args: Args) -> Result<Json<bool>, NoAck> {
    let room = string_arg(&args, 0)?;
    let target = string_arg(&args, 1)?;
    cluster_or_local!(io, socket, "sockets_join", |op| op
        .to(target.clone())
        .join(room.clone()))?;
    Ok(Json(true))
}

/// Every socket in `room` is disconnected, on every node.
async fn cluster_disconnect(
    socket: SocketRef,
    io: SocketIo,
    args: Args,
) -> Result<Json<bool>, NoAck> {
    let room = string_arg(&args, 0)?;
    cluster_or_local!(io, socket, "disconnect_sockets", |op| op
        .to(room.clone())
        .disconnect())?;
    Ok(Json(true))
}

/// Every socket in `room` leaves it, on every node.
async fn close_room(socket: SocketRef, io: SocketIo, args: Args) -> Result<Json<bool>, NoAck> {
    let room = string_arg(&args, 0)?;
    cluster_or_local!(io, socket, "close_room", |op| op
        .to(room.clone())
        .leave(room.clone()))?;
    Ok(Json(true))
}

/// The number of nodes the adapter knows (1 when it cannot tell).
async fn server_count(socket: SocketRef, io: SocketIo) -> Result<Json<usize>, NoAck> {
    match io.server_count(socket.ns()).await {
        Ok(n) => Ok(Json(n)),
        Err(EmitError::Adapter(e)) if unsupported(&e, "server_count") => Ok(Json(1)),
        Err(e) => {
            tracing::warn!(error = %e, "server count failed");
            Err(NoAck)
        }
    }
}

fn refusal(error: &str) -> Json<Value> {
    Json(json!({"ok": false, "error": error}))
}

/// The socket with id `sid`, wherever it is, is disconnected.
async fn disconnect_sid(socket: SocketRef, io: SocketIo, args: Args) -> Result<Json<Value>, NoAck> {
    let request = args.first::<Value>().unwrap_or(Value::Null);
    let Some(sid) = request.get("sid").and_then(Value::as_str) else {
        return Ok(refusal("sid missing"));
    };
    operator(&io, &socket)?
        .to(sid.to_owned())
        .disconnect()
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "disconnect-sid failed");
            NoAck
        })?;
    Ok(Json(Value::Bool(true)))
}

/// The socket with id `sid`, wherever it is, joins or leaves `room`.
async fn room_of(socket: SocketRef, io: SocketIo, args: Args) -> Result<Json<Value>, NoAck> {
    let request = args.first::<Value>().unwrap_or(Value::Null);
    let sid = request.get("sid").and_then(Value::as_str);
    let room = request.get("room").and_then(Value::as_str);
    let (Some(sid), Some(room)) = (sid, room) else {
        return Ok(refusal("sid and room required"));
    };
    let join = request.get("join").and_then(Value::as_bool).unwrap_or(true);
    let op = operator(&io, &socket)?.to(sid.to_owned());
    let done = if join {
        op.join(room.to_owned()).await
    } else {
        op.leave(room.to_owned()).await
    };
    done.map_err(|e| {
        tracing::warn!(error = %e, "room-of failed");
        NoAck
    })?;
    Ok(Json(Value::Bool(true)))
}

fn timeout_of(value: Option<&Value>) -> Duration {
    value
        .and_then(Value::as_u64)
        .map_or(Duration::ZERO, Duration::from_millis)
        .min(MAX_ASK_TIMEOUT)
}

/// `broadcast-question` to every socket of the namespace on every node, with acks.
async fn broadcast_ask(socket: SocketRef, io: SocketIo, args: Args) -> Result<Json<Value>, NoAck> {
    let payload = args.nth::<Dynamic>(0).unwrap_or(Dynamic::Null);
    let timeout = timeout_of(args.nth::<Value>(1).ok().as_ref());
    let question = Args::from_value(&payload).map_err(|e| {
        tracing::warn!(error = %e, "broadcast-ask payload not re-encodable");
        NoAck
    })?;
    let emit = |op: sockeye::BroadcastOperator| {
        op.timeout(timeout)
            .emit_args_with_ack("broadcast-question", question.clone())
    };
    let stream = match emit(operator(&io, &socket)?).await {
        Ok(stream) => stream,
        Err(EmitError::Adapter(e)) if unsupported(&e, "broadcast_with_ack") => {
            emit(operator(&io, &socket)?.local()).await.map_err(|e| {
                tracing::warn!(error = %e, "local broadcast-ask failed");
                NoAck
            })?
        }
        Err(e) => {
            tracing::warn!(error = %e, "broadcast-ask failed");
            return Err(NoAck);
        }
    };
    let mut ok = true;
    let mut replies: Vec<(String, Value)> = Vec::new();
    for (_, result) in stream.collect_all().await {
        match result {
            Ok(reply) => {
                let first = reply.first::<Value>().unwrap_or(Value::Null);
                replies.push((first.to_string(), first));
            }
            Err(_) => ok = false,
        }
    }
    replies.sort_by(|a, b| a.0.cmp(&b.0));
    let replies: Vec<Value> = replies.into_iter().map(|(_, v)| v).collect();
    Ok(Json(json!({"ok": ok, "replies": replies})))
}

/// `server-ask` to the socket with id `sid`, wherever it is, and its answer.
async fn ask_sid(socket: SocketRef, io: SocketIo, args: Args) -> Result<Json<Dynamic>, NoAck> {
    let Ok(request) = args.first::<Dynamic>() else {
        return Err(NoAck);
    };
    let Some(Dynamic::Str(sid)) = request.get("sid").cloned() else {
        return Ok(Json(object([
            ("ok", Dynamic::Bool(false)),
            ("error", Dynamic::Str("sid missing".to_owned())),
        ])));
    };
    let payload = request.get("payload").cloned().unwrap_or(Dynamic::Null);
    let timeout = request
        .get("timeoutMs")
        .and_then(Dynamic::as_u64)
        .map_or(Duration::ZERO, Duration::from_millis)
        .min(MAX_ASK_TIMEOUT);
    let question = Args::from_value(&payload).map_err(|e| {
        tracing::warn!(error = %e, "ask-sid payload not re-encodable");
        NoAck
    })?;
    let stream = operator(&io, &socket)?
        .to(sid)
        .timeout(timeout)
        .emit_args_with_ack("server-ask", question)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "ask-sid failed");
            NoAck
        })?;
    let timed_out = object([
        ("ok", Dynamic::Bool(false)),
        ("error", Dynamic::Str("timeout".to_owned())),
    ]);
    let first_answer = {
        use futures_util::StreamExt as _;
        let mut stream = stream;
        let mut answer = None;
        while let Some((_, result)) = stream.next().await {
            if let Ok(reply) = result {
                answer = Some(reply);
                break;
            }
        }
        answer
    };
    let Some(reply) = first_answer else {
        return Ok(Json(timed_out));
    };
    match reply.deserialize::<Vec<Dynamic>>() {
        Ok(items) => Ok(Json(object([
            ("ok", Dynamic::Bool(true)),
            ("reply", Dynamic::Seq(items)),
        ]))),
        Err(e) => {
            tracing::warn!(error = %e, "server-ask answer not decodable");
            Err(NoAck)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::amqp_default_vhost;

    #[test]
    fn an_empty_amqp_vhost_is_the_default_one() {
        let cases = [
            (
                "amqp://guest:guest@127.0.0.1:5672/",
                "amqp://guest:guest@127.0.0.1:5672/%2f",
            ),
            (
                "amqp://guest:guest@127.0.0.1:5672",
                "amqp://guest:guest@127.0.0.1:5672",
            ),
            ("amqp://h:5672/%2f", "amqp://h:5672/%2f"),
            ("amqp://h:5672/app/", "amqp://h:5672/app/"),
            ("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/"),
        ];
        for (url, expected) in cases {
            assert_eq!(amqp_default_vhost(url.to_owned()), expected, "{url}");
        }
    }
}
