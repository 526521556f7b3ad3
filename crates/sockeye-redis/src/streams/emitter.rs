//! [`StreamsEmitter`]: broadcasts and room operations from a process that runs no server, as
//! stream entries with uid `emitter` (the uid the official emitters use), and server-side
//! emits over pub/sub as the official streams adapter sends them (no official streams
//! emitter package exists to compare with).

use std::sync::Arc;

use redis::aio::ConnectionManager;
use rmpv::Value;
use sockeye::Args;
use sockeye::adapter::BroadcastOptions;

use super::config::StreamsConfig;
use super::wire::{self, kind, map};
use crate::error::RedisError;
use crate::wire as classic;

/// The uid the official emitters write; nodes never take it for a server.
const EMITTER_UID: &str = "emitter";

/// Writes to the namespaces' streams like a node would; no acks and no requests (as the
/// official emitters). Each call is one `XADD` (one `PUBLISH` for
/// [`StreamsEmitter::server_side_emit`]) whose error is returned.
#[derive(Clone)]
pub struct StreamsEmitter {
    config: Arc<StreamsConfig>,
    conn: ConnectionManager,
    ns: String,
    opts: BroadcastOptions,
}

impl std::fmt::Debug for StreamsEmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsEmitter")
            .field("ns", &self.ns)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl StreamsEmitter {
    /// Connects; fails when Redis cannot be reached now.
    pub async fn connect(config: StreamsConfig) -> Result<StreamsEmitter, RedisError> {
        let client = crate::broker::client(&config.redis)?;
        let conn = match tokio::time::timeout(
            config.redis.command_timeout * 2,
            client.get_connection_manager(),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(source)) => {
                return Err(RedisError::Connect {
                    url: config.redis.redacted_url(),
                    source,
                });
            }
            Err(_) => {
                return Err(RedisError::ConnectTimeout {
                    url: config.redis.redacted_url(),
                });
            }
        };
        Ok(StreamsEmitter {
            config: Arc::new(config),
            conn,
            ns: "/".to_owned(),
            opts: BroadcastOptions::default(),
        })
    }

    /// The same emitter on namespace `ns` (targets reset).
    pub fn of(&self, ns: &str) -> StreamsEmitter {
        StreamsEmitter {
            ns: if ns.starts_with('/') {
                ns.to_owned()
            } else {
                format!("/{ns}")
            },
            opts: BroadcastOptions::default(),
            ..self.clone()
        }
    }

    /// Targets `room` too (union of rooms).
    pub fn to(mut self, room: impl Into<String>) -> StreamsEmitter {
        self.opts.rooms.push(room.into());
        self
    }

    /// Skips the sockets of `room`.
    pub fn except(mut self, room: impl Into<String>) -> StreamsEmitter {
        self.opts.except.push(room.into());
        self
    }

    /// Marks the broadcast volatile (not kept for recovery).
    pub fn volatile(mut self) -> StreamsEmitter {
        self.opts.flags.volatile = true;
        self
    }

    /// Broadcasts `event` with `args` to the targeted sockets of every node.
    pub async fn emit(&self, event: &str, args: &Args) -> Result<String, RedisError> {
        let packet = classic::packet_value(&self.ns, event, args).map_err(RedisError::Encode)?;
        let data = map(vec![
            ("packet", packet),
            ("opts", wire::opts_value(&self.opts)),
        ]);
        self.add(kind::BROADCAST, &data).await
    }

    /// Makes the targeted sockets join `rooms`.
    pub async fn sockets_join(&self, rooms: &[&str]) -> Result<String, RedisError> {
        self.rooms_op(kind::SOCKETS_JOIN, rooms).await
    }

    /// Makes the targeted sockets leave `rooms`.
    pub async fn sockets_leave(&self, rooms: &[&str]) -> Result<String, RedisError> {
        self.rooms_op(kind::SOCKETS_LEAVE, rooms).await
    }

    /// Disconnects the targeted sockets (`close`: their whole connection).
    pub async fn disconnect_sockets(&self, close: bool) -> Result<String, RedisError> {
        let data = map(vec![
            ("opts", wire::opts_value(&self.opts)),
            ("close", Value::from(close)),
        ]);
        self.add(kind::DISCONNECT_SOCKETS, &data).await
    }

    /// Emits `event` with `args` to the servers of the namespace (their server-side
    /// listeners: `on_server_event` on sockeye, `io.of(ns).on(event)` on Node), not to clients. As
    /// the official streams adapter does it, this is a pub/sub message (type 9 on
    /// `<prefix>#<ns>#`), not a stream entry: a node that is down or not yet subscribed misses
    /// it, and there is no answer (no acks from an emitter). Returns how many nodes received
    /// it (Redis' count of subscribers).
    pub async fn server_side_emit(&self, event: &str, args: &Args) -> Result<u64, RedisError> {
        let mut packet = vec![Value::from(event)];
        packet.extend(classic::args_to_values(args).map_err(RedisError::Encode)?);
        let payload = wire::encode_pubsub(
            EMITTER_UID,
            &self.ns,
            kind::SERVER_SIDE_EMIT,
            map(vec![("packet", Value::Array(packet))]),
        )
        .map_err(RedisError::Encode)?;
        let channel = format!("{}#{}#", self.config.channel_prefix, self.ns);
        let mut conn = self.conn.clone();
        match tokio::time::timeout(
            self.config.redis.command_timeout,
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload)
                .query_async::<u64>(&mut conn),
        )
        .await
        {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(source)) => Err(RedisError::Command {
                command: "PUBLISH",
                source,
            }),
            Err(_) => Err(RedisError::Timeout { command: "PUBLISH" }),
        }
    }

    async fn rooms_op(&self, kind: u64, rooms: &[&str]) -> Result<String, RedisError> {
        let data = map(vec![
            ("opts", wire::opts_value(&self.opts)),
            (
                "rooms",
                Value::Array(rooms.iter().map(|r| Value::from(*r)).collect()),
            ),
        ]);
        self.add(kind, &data).await
    }

    /// One XADD; the entry id.
    async fn add(&self, kind: u64, data: &Value) -> Result<String, RedisError> {
        let fields =
            wire::encode_entry(EMITTER_UID, &self.ns, kind, data).map_err(RedisError::Encode)?;
        let stream =
            wire::stream_name(&self.config.stream_name, self.config.stream_count, &self.ns);
        let mut cmd = redis::cmd("XADD");
        cmd.arg(stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.config.max_len)
            .arg("*");
        for (k, v) in fields {
            cmd.arg(k).arg(v);
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(
            self.config.redis.command_timeout,
            cmd.query_async::<String>(&mut conn),
        )
        .await
        {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(source)) => Err(RedisError::Command {
                command: "XADD",
                source,
            }),
            Err(_) => Err(RedisError::Timeout { command: "XADD" }),
        }
    }
}
