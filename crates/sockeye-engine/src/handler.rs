//! The seam between the engine and the layer above it.

use std::future::Future;
use std::sync::Arc;

use sockeye_protocol::engine::Message;

use crate::close::CloseReason;
use crate::session::Session;

/// What the layer above Engine.IO (Socket.IO, or an application) does with sessions.
pub trait EngineHandler: Send + Sync + 'static {
    /// Per-session state owned by the layer above, created with `Default` at handshake.
    type Data: Default + Send + Sync + 'static;

    /// A session finished its handshake (the OPEN packet is on its way to the client).
    fn on_open(&self, session: &Arc<Session<Self::Data>>);

    /// One inbound message. The engine reads nothing more from this session until the
    /// returned future resolves, so messages are handled in order and a slow handler slows
    /// the client down instead of buffering. Keep it shorter than `ping_timeout`: pongs that
    /// arrive meanwhile are only read afterwards.
    fn on_message(
        &self,
        session: &Arc<Session<Self::Data>>,
        message: Message,
    ) -> impl Future<Output = ()> + Send;

    /// The session is gone; called exactly once per session that `on_open` saw.
    fn on_close(&self, session: &Arc<Session<Self::Data>>, reason: CloseReason);
}
