//! The per-socket inbox: events of one socket run one after another, in arrival order.
//!
//! The engine's reader hands each event to [`Inbox::push`], which waits for one of
//! `capacity` permits (bounded by a timer: the caller closes the client when it expires) and
//! queues the event. A drain task is spawned only while there is work: it runs the jobs in
//! order and exits when the queue is empty, so an idle socket costs no task. Events of a route
//! marked concurrent do not queue: each runs in its own task, still holding one permit, so the
//! number of a socket's events in flight stays bounded either way.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::event::Event;
use crate::reason::DisconnectReason;

/// One unit of work of a socket.
pub(crate) enum Job {
    /// An event, holding its inbox permit until it has been handled.
    Event(Event, OwnedSemaphorePermit),
    /// The socket disconnected: run its disconnect handler, then free its state. Takes no
    /// permit, so a disconnect is never refused by a full inbox.
    Disconnect(DisconnectReason),
}

/// Why an event could not be queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PushError {
    /// The inbox stayed full for the whole wait: the application is slower than the client.
    #[error("the socket's inbox stayed full for {0:?}: its handlers are slower than the client")]
    Full(Duration),
}

pub(crate) struct Inbox {
    permits: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    running: bool,
}

impl Inbox {
    pub(crate) fn new(capacity: usize) -> Inbox {
        Inbox {
            permits: Arc::new(Semaphore::new(capacity.max(1))),
            state: Mutex::new(State::default()),
        }
    }

    /// Waits (at most `wait`) for room for one event.
    pub(crate) async fn reserve(&self, wait: Duration) -> Result<OwnedSemaphorePermit, PushError> {
        // The usual case, a free permit, must not pay for arming and clearing a timer on
        // every event (timer-wheel work showed in the echo profile).
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a full inbox anyway.
            Ok(Err(_)) | Err(_) => Err(PushError::Full(wait)),
        }
    }

    /// Queues `job`; returns true when the caller must spawn the drain task.
    pub(crate) fn enqueue(&self, job: Job) -> bool {
        let mut state = self.lock();
        state.queue.push_back(job);
        !std::mem::replace(&mut state.running, true)
    }

    /// The next job for the drain task; `None` ends the task (and marks it stopped under the
    /// same lock, so a concurrent `enqueue` spawns a new one).
    pub(crate) fn next(&self) -> Option<Job> {
        let mut state = self.lock();
        let job = state.queue.pop_front();
        if job.is_none() {
            state.running = false;
        }
        job
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reserve_times_out_when_full() {
        let inbox = Inbox::new(1);
        let first = inbox.reserve(Duration::from_secs(1)).await.unwrap();
        let second = inbox.reserve(Duration::from_millis(20)).await;
        assert!(matches!(second, Err(PushError::Full(_))));
        drop(first);
        assert!(inbox.reserve(Duration::from_secs(1)).await.is_ok());
    }

    #[test]
    fn drain_task_is_requested_once_per_busy_period() {
        let inbox = Inbox::new(4);
        assert!(inbox.enqueue(Job::Disconnect(DisconnectReason::ClientDisconnect)));
        assert!(!inbox.enqueue(Job::Disconnect(DisconnectReason::ClientDisconnect)));
        assert!(inbox.next().is_some());
        assert!(inbox.next().is_some());
        assert!(inbox.next().is_none(), "empty: the task stops");
        assert!(
            inbox.enqueue(Job::Disconnect(DisconnectReason::ClientDisconnect)),
            "new work after the task stopped spawns a new one"
        );
    }
}
