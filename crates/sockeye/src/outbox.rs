//! A socket's ordered queue of emits that go through its adapter (with connection-state
//! recovery on, a socket's own emits are broadcasts to its own room).
//!
//! `SocketRef::emit` is synchronous, an adapter's broadcast is a future. The future is polled
//! once in the caller: the in-memory adapter finishes there, so nothing is queued and no task
//! is spawned. A future that has to wait (a cluster adapter reaching its backend) is queued,
//! and one task runs the queue in order: emits from one task keep their order, and a later
//! emit never overtakes a waiting one. The queue is bounded.

use std::collections::VecDeque;
use std::sync::Mutex;

use futures_util::FutureExt as _;

use crate::adapter::BoxFuture;
use crate::error::{AdapterError, EmitError};
use crate::socket::SocketRef;

/// Emits that may wait in one socket's outbox, at most.
const CAPACITY: usize = 1024;

type Pending = BoxFuture<'static, Result<(), AdapterError>>;

#[derive(Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    /// A task is running the queue.
    running: bool,
}

impl Outbox {
    /// Runs `emit` now if nothing waits before it and it completes at once; otherwise queues it
    /// behind the others.
    pub(crate) fn push(
        &self,
        socket: &SocketRef,
        emit: impl Future<Output = Result<(), AdapterError>> + Send + 'static,
    ) -> Result<(), EmitError> {
        let mut state = crate::sync::lock(&self.state);
        if state.running {
            if state.queue.len() >= CAPACITY {
                return Err(EmitError::QueueFull(format!(
                    "{CAPACITY} emits already wait for the adapter"
                )));
            }
            state.queue.push_back(Box::pin(emit));
            return Ok(());
        }
        // Polled under the lock, so a concurrent emit cannot slip in between this poll and
        // the queueing below. The first poll of an adapter's broadcast only delivers locally
        // or hands the packet to its backend's queue: it does not block and does not emit on
        // this socket's outbox again.
        let mut emit: Pending = Box::pin(emit);
        match (&mut emit).now_or_never() {
            Some(result) => result.map_err(EmitError::from),
            None => {
                state.queue.push_back(emit);
                state.running = true;
                drop(state);
                let socket = socket.clone();
                tokio::spawn(async move { socket.recovery_outbox_drain().await });
                Ok(())
            }
        }
    }

    /// The next queued emit; `None` stops the task (under the same lock as `push` checks).
    fn next(&self) -> Option<Pending> {
        let mut state = crate::sync::lock(&self.state);
        let next = state.queue.pop_front();
        if next.is_none() {
            state.running = false;
        }
        next
    }

    /// Runs the queue to its end, logging each failure.
    pub(crate) async fn drain(&self, socket: &SocketRef) {
        while let Some(emit) = self.next() {
            if let Err(e) = emit.await {
                tracing::warn!(socket = %socket.id(), error = %e, "emit through the adapter failed");
            }
        }
    }
}
