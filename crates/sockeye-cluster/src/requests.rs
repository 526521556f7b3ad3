//! The bookkeeping of cluster requests, the same whatever broker carries them: the requests
//! this node waits answers for (bounded, removed when the wait ends), the streams of remote
//! acknowledgements and answers, the client counts a broadcast with acks collects first, and
//! the answering of another node's broadcast with acks.
//!
//! Generic over `M`, the response as each adapter decodes it; a `read` function tells what a
//! response is ([`Reply`]).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use sockeye::adapter::{AckResult, AckStream, BroadcastPacket, LocalNamespace};
use sockeye::{AckError, AdapterError, Args, SocketId};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::wire::{EventPacket, Opts};

/// Longest ack wait a remote broadcast may ask of this node: the wait holds a task and pending
/// acks, and the request may come from anyone who can write to the broker.
pub const MAX_REMOTE_ACK_TIMEOUT_MS: u64 = 600_000;

/// The requests of one namespace waiting for answers: request id → where its answers go.
#[derive(Debug)]
pub struct Pending<M> {
    requests: Mutex<HashMap<String, mpsc::Sender<M>>>,
}

impl<M> Default for Pending<M> {
    fn default() -> Self {
        Pending {
            requests: Mutex::new(HashMap::new()),
        }
    }
}

impl<M> Pending<M> {
    fn map(&self) -> MutexGuard<'_, HashMap<String, mpsc::Sender<M>>> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens request `id` of namespace `ns`, which takes up to `max_responses` answers
    /// buffered; refused when `max_pending` requests are already waiting. The request is
    /// forgotten when the returned guard is dropped.
    pub fn open(
        self: &Arc<Self>,
        id: String,
        ns: &str,
        max_pending: usize,
        max_responses: usize,
    ) -> Result<(String, mpsc::Receiver<M>, PendingGuard<M>), AdapterError> {
        let mut map = self.map();
        if map.len() >= max_pending {
            return Err(AdapterError::new(format!(
                "{} requests to other nodes are already in flight in namespace {ns}; retry later",
                map.len(),
            )));
        }
        let (tx, rx) = mpsc::channel(max_responses);
        map.insert(id.clone(), tx);
        let guard = PendingGuard {
            pending: Arc::downgrade(self),
            id: id.clone(),
        };
        Ok((id, rx, guard))
    }

    /// Where the answers of request `id` go, if this node waits for them.
    pub fn sender(&self, id: &str) -> Option<mpsc::Sender<M>> {
        self.map().get(id).cloned()
    }
}

/// Removes a pending request when the wait for its answers ends (or is dropped).
#[derive(Debug)]
pub struct PendingGuard<M> {
    pending: Weak<Pending<M>>,
    id: String,
}

impl<M> Drop for PendingGuard<M> {
    fn drop(&mut self) {
        if let Some(p) = self.pending.upgrade() {
            p.map().remove(&self.id);
        }
    }
}

/// What a response to one of this node's requests is, as far as acks are concerned.
#[derive(Debug)]
pub enum Reply {
    /// How many clients a node reached with a broadcast with acks.
    ClientCount(u64),
    /// An answer of the type waited for: its arguments (`None` if they are unreadable).
    Answer(Option<Args>),
    /// Anything else (skipped).
    Other,
}

/// How an adapter reads its responses: what each is ([`Reply`]) to the wait at hand.
pub trait ReadReply<M>: Fn(&M) -> Reply + Send + 'static {}

impl<M, F: Fn(&M) -> Reply + Send + 'static> ReadReply<M> for F {}

/// Remote acknowledgements carry no socket id in the official format.
fn remote_id() -> SocketId {
    SocketId::from("")
}

/// A stream of `expected` remote answers (the `buffered` ones first, then those `read` calls
/// [`Reply::Answer`]); whatever has not arrived by `deadline` yields a timeout.
pub fn remote_acks<M: Send + 'static>(
    rx: mpsc::Receiver<M>,
    guard: PendingGuard<M>,
    buffered: VecDeque<Args>,
    expected: usize,
    deadline: Instant,
    timeout: Duration,
    read: impl ReadReply<M>,
) -> AckStream {
    struct State<M, R> {
        rx: mpsc::Receiver<M>,
        _guard: PendingGuard<M>,
        buffered: VecDeque<Args>,
        left: usize,
        read: R,
    }
    let state = State {
        rx,
        _guard: guard,
        buffered,
        left: expected,
        read,
    };
    let stream = futures_util::stream::unfold(state, move |mut s| async move {
        if s.left == 0 {
            return None;
        }
        s.left -= 1;
        if let Some(args) = s.buffered.pop_front() {
            return Some(((remote_id(), Ok(args)), s));
        }
        loop {
            match tokio::time::timeout_at(deadline, s.rx.recv()).await {
                Ok(Some(resp)) => {
                    if let Reply::Answer(Some(args)) = (s.read)(&resp) {
                        return Some(((remote_id(), Ok(args)), s));
                    }
                }
                Ok(None) | Err(_) => {
                    let r: AckResult = (remote_id(), Err(AckError::Timeout(timeout)));
                    return Some((r, s));
                }
            }
        }
    });
    AckStream::new(stream, expected)
}

/// The `expected` answers to a request just sent (those `read` calls [`Reply::Answer`]),
/// waited for `timeout` from now.
pub fn answers<M: Send + 'static>(
    rx: mpsc::Receiver<M>,
    guard: PendingGuard<M>,
    expected: usize,
    timeout: Duration,
    read: impl ReadReply<M>,
) -> AckStream {
    let deadline = Instant::now() + timeout;
    remote_acks(
        rx,
        guard,
        VecDeque::new(),
        expected,
        deadline,
        timeout,
        read,
    )
}

/// The wait of a broadcast with acks sent to the other nodes.
#[derive(Debug, Clone, Copy)]
pub struct AckWait {
    /// When the broadcast started.
    pub start: Instant,
    /// The ack timeout of the broadcast.
    pub timeout: Duration,
    /// The adapter's request timeout (the longest wait for the client counts).
    pub request_timeout: Duration,
    /// The most remote acks waited for.
    pub max_responses: usize,
}

impl AckWait {
    /// The wait of a broadcast with acks started at `start`, with the adapter's
    /// `request_timeout` and `max_responses`.
    pub fn new(
        start: Instant,
        timeout: Duration,
        request_timeout: Duration,
        max_responses: usize,
    ) -> AckWait {
        AckWait {
            start,
            timeout,
            request_timeout,
            max_responses,
        }
    }
}

/// The acks of a broadcast with acks: `local`'s, then the other nodes'. Each of the `others`
/// nodes first reports how many clients it reached; the stream's length is known once every
/// node did (or the wait for them ran out). Acks that come before the counts are kept.
pub async fn broadcast_acks<M: Send + 'static>(
    local: AckStream,
    mut rx: mpsc::Receiver<M>,
    guard: PendingGuard<M>,
    others: usize,
    wait: AckWait,
    ns: &str,
    read: impl ReadReply<M>,
) -> AckStream {
    let counts_deadline = wait.start + wait.timeout.min(wait.request_timeout);
    let (mut servers, mut clients, mut buffered) = (0usize, 0usize, VecDeque::new());
    while servers < others {
        match tokio::time::timeout_at(counts_deadline, rx.recv()).await {
            Ok(Some(resp)) => match read(&resp) {
                Reply::ClientCount(n) => {
                    servers += 1;
                    clients = clients.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
                }
                Reply::Answer(Some(args)) => buffered.push_back(args),
                Reply::Answer(None) | Reply::Other => {}
            },
            Ok(None) | Err(_) => break,
        }
    }
    if servers < others {
        tracing::warn!(%ns, servers, others, "not every node reported its client count for a broadcast with ack; their clients are not waited for");
    }
    let clients = clients.min(wait.max_responses);
    let remote = remote_acks(
        rx,
        guard,
        buffered,
        clients,
        wait.start + wait.timeout,
        wait.timeout,
        read,
    );
    local.chain(remote)
}

/// Another node's broadcast with acks, delivered to this node's sockets: how many clients it
/// reached (the count to answer with), and the task that hands each acknowledgement to
/// `send_ack` until it returns false. The wait is the requested timeout, `request_timeout` when none,
/// at most [`MAX_REMOTE_ACK_TIMEOUT_MS`].
pub fn answer_broadcast<S>(
    local: &LocalNamespace,
    packet: EventPacket,
    opts: Opts,
    request_timeout: Duration,
    mut send_ack: S,
) -> (u64, impl Future<Output = ()> + Send + 'static)
where
    S: FnMut(Args) -> bool + Send + 'static,
{
    let default_ms = u64::try_from(request_timeout.as_millis()).unwrap_or(5000);
    let timeout = Duration::from_millis(
        opts.timeout_ms
            .unwrap_or(default_ms)
            .min(MAX_REMOTE_ACK_TIMEOUT_MS),
    );
    let packet = BroadcastPacket::new(
        sockeye::Str::from(local.name()),
        sockeye::Str::from(packet.event.as_str()),
        packet.args,
    );
    let stream = local.deliver_with_ack(&packet, &opts.broadcast_options(), timeout);
    let expected = u64::try_from(stream.expected()).unwrap_or(u64::MAX);
    let forward = async move {
        let mut stream = stream;
        while let Some((_, result)) = stream.next().await {
            let Ok(args) = result else { continue };
            if !send_ack(args) {
                return;
            }
        }
    };
    (expected, forward)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::wire::values_to_args;

    fn arg(n: u64) -> Args {
        values_to_args(vec![rmpv::Value::from(n)]).unwrap()
    }

    #[tokio::test]
    async fn pending_requests_are_bounded_and_forgotten_with_their_guard() {
        let pending: Arc<Pending<u32>> = Arc::default();
        let (id, mut rx, guard) = pending.open("a".into(), "/chat", 1, 2).unwrap();
        assert_eq!(id, "a");
        let refused = pending.open("b".into(), "/chat", 1, 2).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "adapter error: 1 requests to other nodes are already in flight in namespace /chat; retry later"
        );
        let tx = pending.sender("a").unwrap();
        tx.try_send(7).unwrap();
        tx.try_send(8).unwrap();
        assert!(tx.try_send(9).is_err(), "max_responses bounds the answers");
        assert_eq!(rx.recv().await, Some(7));
        assert!(pending.sender("b").is_none());
        drop(guard);
        assert!(pending.sender("a").is_none());
        assert!(pending.open("b".into(), "/chat", 1, 2).is_ok());
    }

    #[tokio::test]
    async fn remote_acks_yield_buffered_then_answers_then_timeouts() {
        let pending: Arc<Pending<u64>> = Arc::default();
        let (id, rx, guard) = pending.open("r".into(), "/", 8, 8).unwrap();
        let tx = pending.sender(&id).unwrap();
        // 0 is not an answer; 5 is one; 6 is an unreadable answer.
        for m in [0, 5, 6] {
            tx.try_send(m).unwrap();
        }
        let read = |m: &u64| match m {
            5 => Reply::Answer(Some(arg(5))),
            6 => Reply::Answer(None),
            _ => Reply::Other,
        };
        let timeout = Duration::from_millis(50);
        let mut acks = remote_acks(
            rx,
            guard,
            VecDeque::from([arg(1)]),
            3,
            Instant::now() + timeout,
            timeout,
            read,
        );
        assert_eq!(acks.expected(), 3);
        let mut got = Vec::new();
        while let Some((_, result)) = acks.next().await {
            got.push(result.map_err(|e| e.to_string()));
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_ref().unwrap(), &arg(1));
        assert_eq!(got[1].as_ref().unwrap(), &arg(5));
        assert!(got[2].is_err(), "the third never came: {:?}", got[2]);
        drop(acks);
        assert!(pending.sender(&id).is_none(), "the stream held the guard");
    }

    #[tokio::test]
    async fn broadcast_acks_wait_for_every_client_count() {
        let pending: Arc<Pending<(u8, u64)>> = Arc::default();
        let (id, rx, guard) = pending.open("r".into(), "/", 8, 8).unwrap();
        let tx = pending.sender(&id).unwrap();
        // An ack overtakes the counts; two nodes report 1 and 2 clients.
        for m in [(1, 40), (0, 1), (0, 2), (1, 41)] {
            tx.try_send(m).unwrap();
        }
        let read = |m: &(u8, u64)| match m {
            (0, n) => Reply::ClientCount(*n),
            (_, v) => Reply::Answer(Some(arg(*v))),
        };
        let wait = AckWait {
            start: Instant::now(),
            timeout: Duration::from_millis(50),
            request_timeout: Duration::from_secs(5),
            max_responses: 100,
        };
        let acks = broadcast_acks(AckStream::empty(), rx, guard, 2, wait, "/", read).await;
        assert_eq!(acks.expected(), 3);
        let got: Vec<_> = acks.collect().await;
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].1.as_ref().unwrap(), &arg(40));
        assert_eq!(got[1].1.as_ref().unwrap(), &arg(41));
        assert!(got[2].1.is_err(), "the third client never answered");
    }
}
