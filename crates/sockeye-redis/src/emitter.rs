//! [`Emitter`]: emit into a cluster from a process that runs no server (the equivalent of
//! `@socket.io/redis-emitter` and python-socketio's write-only manager).

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use sockeye::Args;

use crate::broker;
use crate::config::RedisConfig;
use crate::error::RedisError;
use crate::wire::{self, Channels, Opts, kind};

/// The uid the official emitter puts in its messages; servers never match it.
const EMITTER_UID: &str = "emitter";

/// Emits events and room changes to the sockets of every node, through Redis only.
///
/// Each call publishes one message right away; there is no queue, so an error means the
/// message was not sent.
#[derive(Clone)]
pub struct Emitter {
    publisher: Arc<broker::Publisher>,
    key: String,
    ns: String,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("key", &self.key)
            .field("ns", &self.ns)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// Connects an emitter for namespace `/`.
    pub async fn connect(config: RedisConfig) -> Result<Emitter, RedisError> {
        let source = broker::Source::new(&config)?;
        let key = config.key.clone();
        let publisher = broker::Publisher::connect(source, Arc::new(config)).await?;
        Ok(Emitter {
            publisher: Arc::new(publisher),
            key,
            ns: "/".to_owned(),
        })
    }

    /// The same emitter for namespace `ns` (a leading `/` is added if missing).
    pub fn of(&self, ns: &str) -> Emitter {
        let ns = if ns.starts_with('/') {
            ns.to_owned()
        } else {
            format!("/{ns}")
        };
        Emitter { ns, ..self.clone() }
    }

    /// An operator targeting `rooms` of this namespace.
    pub fn to(&self, rooms: impl IntoIterator<Item = impl Into<String>>) -> EmitterOperator {
        self.operator().to(rooms)
    }

    /// An operator excluding `rooms`.
    pub fn except(&self, rooms: impl IntoIterator<Item = impl Into<String>>) -> EmitterOperator {
        self.operator().except(rooms)
    }

    /// An operator on the whole namespace.
    pub fn operator(&self) -> EmitterOperator {
        EmitterOperator {
            emitter: self.clone(),
            opts: Opts::default(),
        }
    }

    /// Emits `event` with one argument to every socket of the namespace.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), RedisError> {
        self.operator().emit(event, data).await
    }

    /// Sends `event` to every server's server-side handler (no answers: the official emitter
    /// has none either).
    pub async fn server_side_emit(&self, event: &str, args: &Args) -> Result<(), RedisError> {
        let mut data = vec![json!(event)];
        data.extend(
            args.deserialize::<Vec<serde_json::Value>>()
                .map_err(|e| RedisError::Encode(e.to_string()))?,
        );
        let payload = wire::encode_json(vec![
            ("uid", json!(EMITTER_UID)),
            ("type", json!(kind::SERVER_SIDE_EMIT)),
            ("data", json!(data)),
        ]);
        self.publish(self.channels().request, payload).await
    }

    fn channels(&self) -> Channels {
        Channels::new(&self.key, &self.ns, EMITTER_UID)
    }

    /// Publishes once. An error means Redis did not confirm it: refused, unreachable, or a
    /// timeout (then Redis may still have published it, and the connection is replaced).
    async fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), RedisError> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(payload);
        self.publisher
            .run::<i64>(broker::Request::One(&cmd), "PUBLISH")
            .await
            .map(|_| ())
    }
}

/// Rooms and flags of an emit or a room change; built by [`Emitter::to`] and friends.
#[derive(Debug, Clone)]
#[must_use = "an operator does nothing until emit (or another action) is called"]
pub struct EmitterOperator {
    emitter: Emitter,
    opts: Opts,
}

impl EmitterOperator {
    /// Adds target rooms.
    pub fn to(mut self, rooms: impl IntoIterator<Item = impl Into<String>>) -> EmitterOperator {
        self.opts.rooms.extend(rooms.into_iter().map(Into::into));
        self
    }

    /// Excludes the sockets in `rooms`.
    pub fn except(mut self, rooms: impl IntoIterator<Item = impl Into<String>>) -> EmitterOperator {
        self.opts.except.extend(rooms.into_iter().map(Into::into));
        self
    }

    /// Recipients not ready for the packet may miss it.
    pub fn volatile(mut self) -> EmitterOperator {
        self.opts.volatile = true;
        self
    }

    /// Emits `event` with one argument (binary parts travel as msgpack binary).
    pub async fn emit<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
    ) -> Result<(), RedisError> {
        let args = Args::from_value(data).map_err(|e| RedisError::Encode(e.to_string()))?;
        self.emit_args(event, &args).await
    }

    /// Emits `event` with `args`.
    pub async fn emit_args(self, event: &str, args: &Args) -> Result<(), RedisError> {
        if sockeye::RESERVED_EVENTS.contains(&event) {
            return Err(RedisError::Encode(format!(
                "\"{event}\" is a reserved event name"
            )));
        }
        let ch = self.emitter.channels();
        let packet =
            wire::packet_value(&self.emitter.ns, event, args).map_err(RedisError::Encode)?;
        let payload =
            wire::encode_broadcast(EMITTER_UID, packet, &self.opts).map_err(RedisError::Encode)?;
        self.emitter
            .publish(ch.broadcast_for(&self.opts.rooms), payload)
            .await
    }

    /// Makes the targeted sockets, on every node, join `rooms`.
    pub async fn sockets_join(
        self,
        rooms: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<(), RedisError> {
        self.room_request(kind::REMOTE_JOIN, rooms).await
    }

    /// Makes the targeted sockets, on every node, leave `rooms`.
    pub async fn sockets_leave(
        self,
        rooms: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<(), RedisError> {
        self.room_request(kind::REMOTE_LEAVE, rooms).await
    }

    /// Disconnects the targeted sockets on every node; `close` also closes their connections.
    pub async fn disconnect_sockets(self, close: bool) -> Result<(), RedisError> {
        let payload = wire::encode_json(vec![
            ("type", json!(kind::REMOTE_DISCONNECT)),
            (
                "opts",
                json!({"rooms": self.opts.rooms, "except": self.opts.except}),
            ),
            ("close", json!(close)),
        ]);
        self.emitter
            .publish(self.emitter.channels().request, payload)
            .await
    }

    async fn room_request(
        self,
        ty: u64,
        rooms: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<(), RedisError> {
        let rooms: Vec<String> = rooms.into_iter().map(Into::into).collect();
        let payload = wire::encode_json(vec![
            ("type", json!(ty)),
            (
                "opts",
                json!({"rooms": self.opts.rooms, "except": self.opts.except}),
            ),
            ("rooms", json!(rooms)),
        ]);
        self.emitter
            .publish(self.emitter.channels().request, payload)
            .await
    }
}
