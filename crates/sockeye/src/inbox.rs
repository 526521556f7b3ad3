//! The per-socket inbox: events of one socket run one after another, in arrival order.
//!
//! The engine's reader takes one of `capacity` permits for each event (waiting for it is
//! bounded by a timer: the caller closes the client when it expires) and queues the event. A
//! drain runs only while there is work: it runs the jobs in order and ends when the queue is
//! empty, so an idle socket costs no task. It starts in the reader's task or in a task of its
//! own ([`Start`]). Events of a route marked concurrent do not queue: each runs in its own
//! task, still holding one permit, so the number of a socket's events in flight stays bounded
//! either way.
//!
//! The semaphore lives inside the socket rather than in an `Arc` of its own: a permit reaches
//! it through a handle on its socket, which saves every idle socket one allocation.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::event::Event;
use crate::reason::DisconnectReason;
use crate::socket::SocketRef;

/// One unit of work of a socket.
pub(crate) enum Job {
    /// An event, holding its inbox permit until it has been handled.
    Event(Event, InboxPermit),
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
    permits: Semaphore,
    state: Mutex<State>,
}

/// One event slot of a socket's inbox, given back when dropped (after the event was handled).
pub(crate) struct InboxPermit(SocketRef);

impl InboxPermit {
    /// Waits (at most `wait`) for a free slot in `socket`'s inbox.
    pub(crate) async fn acquire(socket: &SocketRef, wait: Duration) -> Result<Self, PushError> {
        socket.inbox().take_slot(wait).await?;
        // No `.await` between taking the slot and building its guard: a cancelled caller
        // cannot lose the slot.
        Ok(InboxPermit(socket.clone()))
    }
}

impl Drop for InboxPermit {
    fn drop(&mut self) {
        self.0.inbox().release_slot();
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    running: bool,
    /// A handler of this socket fanned out to other sockets: its drains get a task of their
    /// own from then on (see [`Start`]).
    fans_out: bool,
}

/// How the caller of [`Inbox::enqueue`] must start the drain of a socket that was idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// In the engine reader's own task, moving to a task of its own only if a handler has to
    /// wait: a handler that answers at once (an echo, an ack) then costs no spawn and no
    /// scheduling round.
    Inline,
    /// In a task of its own. For sockets whose handlers fan out: run inline, the sender's
    /// connection writes its ack before the receivers' connections have run, so an
    /// ack-paced sender runs ahead of its broadcasts and fills their queues (measured: p99
    /// delivery latency 4× higher at 10 000 receivers).
    Task,
}

impl Inbox {
    pub(crate) fn new(capacity: usize) -> Inbox {
        Inbox {
            permits: Semaphore::new(capacity.max(1)),
            state: Mutex::new(State::default()),
        }
    }

    /// Waits (at most `wait`) for room for one event and takes it; the caller gives it back
    /// with [`Inbox::release_slot`] (through [`InboxPermit`]).
    async fn take_slot(&self, wait: Duration) -> Result<(), PushError> {
        // The usual case, a free permit, must not pay for arming and clearing a timer on
        // every event (timer-wheel work showed in the echo profile).
        if let Ok(permit) = self.permits.try_acquire() {
            permit.forget();
            return Ok(());
        }
        match tokio::time::timeout(wait, self.permits.acquire()).await {
            Ok(Ok(permit)) => {
                permit.forget();
                Ok(())
            }
            // The semaphore is never closed; treat it like a full inbox anyway.
            Ok(Err(_)) | Err(_) => Err(PushError::Full(wait)),
        }
    }

    fn release_slot(&self) {
        self.permits.add_permits(1);
    }

    /// Queues `job`; returns how to start the drain when none is running.
    pub(crate) fn enqueue(&self, job: Job) -> Option<Start> {
        let mut state = self.lock();
        state.queue.push_back(job);
        if std::mem::replace(&mut state.running, true) {
            None
        } else if state.fans_out {
            Some(Start::Task)
        } else {
            Some(Start::Inline)
        }
    }

    /// Records that a handler of this socket fanned out to other sockets (it broadcast through
    /// an operator built from the socket): its drains get a task of their own from now on.
    pub(crate) fn mark_fans_out(&self) {
        self.lock().fans_out = true;
    }

    /// True once a handler of this socket fanned out.
    pub(crate) fn fans_out(&self) -> bool {
        self.lock().fans_out
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
    async fn take_slot_times_out_when_full() {
        let inbox = Inbox::new(1);
        inbox.take_slot(Duration::from_secs(1)).await.unwrap();
        let second = inbox.take_slot(Duration::from_millis(20)).await;
        assert!(matches!(second, Err(PushError::Full(_))));
        inbox.release_slot();
        assert!(inbox.take_slot(Duration::from_secs(1)).await.is_ok());
    }

    #[tokio::test]
    async fn a_waiter_gets_the_slot_given_back() {
        let inbox = std::sync::Arc::new(Inbox::new(1));
        inbox.take_slot(Duration::from_secs(1)).await.unwrap();
        let waiter = tokio::spawn({
            let inbox = inbox.clone();
            async move { inbox.take_slot(Duration::from_secs(10)).await.is_ok() }
        });
        tokio::task::yield_now().await;
        inbox.release_slot();
        assert!(
            tokio::time::timeout(Duration::from_secs(10), waiter)
                .await
                .unwrap()
                .unwrap()
        );
    }

    #[test]
    fn drain_task_is_requested_once_per_busy_period() {
        let inbox = Inbox::new(4);
        let job = || Job::Disconnect(DisconnectReason::ClientDisconnect);
        assert_eq!(inbox.enqueue(job()), Some(Start::Inline));
        assert_eq!(inbox.enqueue(job()), None);
        assert!(inbox.next().is_some());
        assert!(inbox.next().is_some());
        assert!(inbox.next().is_none(), "empty: the drain stops");
        assert_eq!(
            inbox.enqueue(job()),
            Some(Start::Inline),
            "new work after the drain stopped starts a new one"
        );
        assert!(inbox.next().is_some());
        assert!(inbox.next().is_none());
        inbox.mark_fans_out();
        assert_eq!(
            inbox.enqueue(job()),
            Some(Start::Task),
            "a socket that fanned out drains in a task of its own"
        );
    }
}
