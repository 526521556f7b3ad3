//! What handlers receive ([`Event`]), how they answer ([`AckSender`], [`IntoAck`]), and the
//! reasons given to lifecycle callbacks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::DeserializeOwned;
use sockeye_protocol::socketio::{Args, DecodeError};
use tokio::sync::mpsc;

use crate::conn::Cmd;
use crate::error::{Result, SocketIoError};

/// An event sent by the server.
///
/// Read its arguments with [`Event::data`] (the first one, typed) or [`Event::args`]. When the
/// server asked for an acknowledgement, the handler answers in one of two ways:
/// - by returning a value (see [`IntoAck`]): `()` sends an empty ack, an [`Args`] or a
///   `serde_json::Value` is sent as the ack's arguments;
/// - by taking the [`AckSender`] with [`Event::take_ack`] and calling [`AckSender::send`], for
///   example later from another task. The return value is then ignored.
///
/// The server always gets an answer when it asked for one, even if no handler matched.
#[derive(Debug)]
pub struct Event {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) args: Args,
    pub(crate) ack: Option<AckSender>,
    pub(crate) offset: Option<String>,
}

impl Event {
    /// The event name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace the event arrived on.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The first argument as `T`. Binary parts deserialise into `bytes::Bytes` or `Vec<u8>`.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        self.args.first()
    }

    /// All arguments.
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// The connection-state-recovery offset of this event, when the server recovers sessions
    /// and stamped it: the server appends it as the event's last argument (it stays in
    /// [`Event::args`], as socket.io-client leaves it), and the client sends the last one
    /// back on reconnect to get the events it missed.
    pub fn offset(&self) -> Option<&str> {
        self.offset.as_deref()
    }

    /// True if the server waits for an acknowledgement.
    pub fn wants_ack(&self) -> bool {
        self.ack.is_some()
    }

    /// Takes the ack handle to answer explicitly; the handler's return value is then ignored.
    pub fn take_ack(&mut self) -> Option<AckSender> {
        self.ack.take()
    }
}

/// Answers one emit-with-ack of the server. Only the first answer is sent.
#[derive(Debug, Clone)]
pub struct AckSender {
    pub(crate) namespace: String,
    pub(crate) id: u64,
    pub(crate) commands: mpsc::Sender<Cmd>,
    pub(crate) sent: Arc<AtomicBool>,
}

impl AckSender {
    /// Sends `args` as the acknowledgement (binary attachments included). A second call does
    /// nothing. Fails with [`SocketIoError::Disconnected`] when the client is gone.
    pub async fn send(self, args: Args) -> Result<()> {
        if self.sent.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.commands
            .send(Cmd::Ack {
                namespace: self.namespace,
                id: self.id,
                args,
            })
            .await
            .map_err(|_| SocketIoError::Disconnected)
    }
}

/// What a handler may return. If the server asked for an ack and the handler did not send one
/// with [`AckSender`], the returned value becomes the ack.
pub trait IntoAck: Send + 'static {
    /// The ack arguments; `None` sends an empty ack (when one is requested).
    fn into_ack(self) -> Option<Args>;
}

impl IntoAck for () {
    fn into_ack(self) -> Option<Args> {
        None
    }
}

impl IntoAck for Args {
    fn into_ack(self) -> Option<Args> {
        Some(self)
    }
}

impl IntoAck for serde_json::Value {
    fn into_ack(self) -> Option<Args> {
        match Args::from_value(&self) {
            Ok(args) => Some(args),
            Err(error) => {
                tracing::warn!(%error, "cannot encode the handler's return value as an ack");
                None
            }
        }
    }
}

impl<T: IntoAck> IntoAck for Option<T> {
    fn into_ack(self) -> Option<Args> {
        self.and_then(IntoAck::into_ack)
    }
}

/// Why a namespace was disconnected, given to the `on_disconnect` callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client called `disconnect`. No reconnection follows.
    ClientDisconnect,
    /// The server disconnected the namespace (`socket.disconnect()`). No reconnection follows.
    ServerDisconnect,
    /// The server closed the connection, or it dropped. Reconnection follows when enabled.
    TransportClose,
    /// The transport failed (with the error text). Reconnection follows when enabled.
    TransportError(String),
    /// The server stopped sending heartbeats. Reconnection follows when enabled.
    PingTimeout,
}

impl DisconnectReason {
    /// True when the client reconnects after this reason (if reconnection is enabled).
    pub fn will_reconnect(&self) -> bool {
        !matches!(
            self,
            DisconnectReason::ClientDisconnect | DisconnectReason::ServerDisconnect
        )
    }
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
pub(crate) type EventHandler = Arc<dyn Fn(Event) -> BoxFuture<Option<Args>> + Send + Sync>;
pub(crate) type ConnectHandler = Arc<dyn Fn(String) -> BoxFuture<()> + Send + Sync>;
pub(crate) type ConnectErrorHandler =
    Arc<dyn Fn(String, SocketIoError) -> BoxFuture<()> + Send + Sync>;
pub(crate) type DisconnectHandler =
    Arc<dyn Fn(String, DisconnectReason) -> BoxFuture<()> + Send + Sync>;

/// Boxes an async event handler.
pub(crate) fn event_handler<F, Fut, R>(handler: F) -> EventHandler
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoAck,
{
    Arc::new(move |event| {
        let fut = handler(event);
        Box::pin(async move { fut.await.into_ack() })
    })
}
