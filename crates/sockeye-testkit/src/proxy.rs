//! The fault proxy: one accept loop, two pumps per connection (one per direction), and a
//! `watch` channel holding the fault of each direction so a change reaches every pump at once.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Which way bytes travel through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the connecting side (client, node) to the upstream (server, Redis).
    Up,
    /// From the upstream back to the connecting side.
    Down,
    /// Both directions.
    Both,
}

impl Direction {
    fn covers(self, up: bool) -> bool {
        match self {
            Direction::Both => true,
            Direction::Up => up,
            Direction::Down => !up,
        }
    }
}

/// What the proxy does to the bytes of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Forward as fast as both ends allow.
    #[default]
    Pass,
    /// Stop reading and writing: the sender's TCP window fills, as in a network stall. Bytes
    /// already read stay queued (at most [`PUMP_QUEUE`] chunks) and go out when it resumes.
    Pause,
    /// Hold every chunk for this long before writing it (latency, not a throughput cap).
    Delay(Duration),
    /// Read and discard: the sender sees a healthy connection, the receiver gets nothing.
    Blackhole,
    /// Forward at most this many bytes per second (a slow link or a slow reader).
    Throttle {
        /// The rate cap.
        bytes_per_sec: u64,
    },
}

/// Chunks read but not yet written, per direction: bounds the proxy's own buffering.
pub const PUMP_QUEUE: usize = 16;
const CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Faults {
    up: Fault,
    down: Fault,
}

impl Faults {
    fn of(&self, up: bool) -> Fault {
        if up { self.up } else { self.down }
    }
}

/// One proxied connection, as the control side sees it.
struct Conn {
    stop: CancellationToken,
    reset: Arc<AtomicBool>,
    half_close_up: CancellationToken,
    half_close_down: CancellationToken,
}

struct Shared {
    faults: watch::Sender<Faults>,
    conns: Mutex<Vec<Conn>>,
    refuse: AtomicBool,
    accepted: AtomicUsize,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// A loopback TCP proxy with per-direction faults. Dropping it stops the listener and closes
/// every connection it holds.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (ephemeral port) and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        FaultProxy::start_with(upstream, None).await
    }

    /// Like [`FaultProxy::start`], with the receive buffer of the proxy's upstream sockets
    /// set to `recv_buffer` bytes: a throttled direction then backs up into the upstream's
    /// send path after kilobytes instead of the megabytes loopback autotuning allows, as a
    /// slow client on a real network would.
    pub async fn start_with(
        upstream: SocketAddr,
        recv_buffer: Option<u32>,
    ) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (faults, _) = watch::channel(Faults::default());
        let shared = Arc::new(Shared {
            faults,
            conns: Mutex::new(Vec::new()),
            refuse: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
        });
        let shutdown = CancellationToken::new();
        tokio::spawn(accept_loop(
            listener,
            upstream,
            recv_buffer,
            shared.clone(),
            shutdown.clone(),
        ));
        Ok(FaultProxy {
            addr,
            shared,
            shutdown,
        })
    }

    /// The address clients connect to instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Applies `fault` to `direction` on every connection, current and future.
    pub fn set(&self, direction: Direction, fault: Fault) {
        self.shared.faults.send_modify(|f| {
            if direction.covers(true) {
                f.up = fault;
            }
            if direction.covers(false) {
                f.down = fault;
            }
        });
    }

    /// Back to [`Fault::Pass`] both ways.
    pub fn heal(&self) {
        self.set(Direction::Both, Fault::Pass);
    }

    /// Sends FIN in `direction` on every current connection (the receiver reads end of
    /// stream) and forwards nothing more that way; the other direction keeps working.
    pub fn half_close(&self, direction: Direction) {
        for conn in self.lock_conns().iter() {
            if direction.covers(true) {
                conn.half_close_up.cancel();
            }
            if direction.covers(false) {
                conn.half_close_down.cancel();
            }
        }
    }

    /// Resets (TCP RST, no FIN) every current connection on both sides.
    pub fn reset_all(&self) {
        for conn in self.lock_conns().drain(..) {
            conn.reset.store(true, Ordering::SeqCst);
            conn.stop.cancel();
        }
    }

    /// While true, new connections are reset as soon as they are accepted (a node that is
    /// down but whose port still answers).
    pub fn refuse_new(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Connections accepted so far (including refused ones).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections currently proxied.
    pub fn open_connections(&self) -> usize {
        let mut conns = self.lock_conns();
        conns.retain(|c| !c.stop.is_cancelled());
        conns.len()
    }

    /// Bytes written to the destination in `direction` (`Both`: the sum).
    pub fn bytes(&self, direction: Direction) -> u64 {
        let up = self.shared.bytes_up.load(Ordering::SeqCst);
        let down = self.shared.bytes_down.load(Ordering::SeqCst);
        match direction {
            Direction::Up => up,
            Direction::Down => down,
            Direction::Both => up + down,
        }
    }

    fn lock_conns(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.shared
            .conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
        for conn in self.lock_conns().drain(..) {
            conn.stop.cancel();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    recv_buffer: Option<u32>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((client, _)) = accepted else {
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if shared.refuse.load(Ordering::SeqCst) {
            let _ = client.set_zero_linger();
            continue;
        }
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let server = match connect(upstream, recv_buffer).await {
                Ok(server) => server,
                Err(e) => {
                    // The upstream is down: the client sees a reset, as it would without us.
                    tracing::debug!(%upstream, error = %e, "fault proxy: upstream refused");
                    let _ = client.set_zero_linger();
                    return;
                }
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let conn = Conn {
                stop: shutdown.child_token(),
                reset: Arc::new(AtomicBool::new(false)),
                half_close_up: CancellationToken::new(),
                half_close_down: CancellationToken::new(),
            };
            let stop = conn.stop.clone();
            let reset = conn.reset.clone();
            let (hc_up, hc_down) = (conn.half_close_up.clone(), conn.half_close_down.clone());
            {
                let mut conns = shared.conns.lock().unwrap_or_else(PoisonError::into_inner);
                // Ended connections go when new ones come, so the list stays as long as the
                // number of open connections.
                conns.retain(|c| !c.stop.is_cancelled());
                conns.push(conn);
            }
            let (client_r, client_w) = client.into_split();
            let (server_r, server_w) = server.into_split();
            let ctx = |up, half_close| Pump {
                up,
                shared: shared.clone(),
                half_close,
                stop: stop.clone(),
                reset: reset.clone(),
            };
            let up = tokio::spawn(pump(client_r, server_w, ctx(true, hc_up)));
            let down = tokio::spawn(pump(server_r, client_w, ctx(false, hc_down)));
            // Ends when both directions ended (a half-close keeps the other way open), or on
            // stop/reset, which every await of the pumps watches.
            let _ = tokio::join!(up, down);
            stop.cancel();
        });
    }
}

async fn connect(upstream: SocketAddr, recv_buffer: Option<u32>) -> io::Result<TcpStream> {
    let socket = if upstream.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(bytes) = recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.connect(upstream).await
}

/// What one direction's pump needs besides its socket halves.
#[derive(Clone)]
struct Pump {
    up: bool,
    shared: Arc<Shared>,
    half_close: CancellationToken,
    stop: CancellationToken,
    reset: Arc<AtomicBool>,
}

/// Forwards one direction: this task reads, a second one writes (so a delayed or throttled
/// writer does not stop the reads that timestamp the next chunks).
async fn pump(mut from: OwnedReadHalf, to: OwnedWriteHalf, ctx: Pump) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>(PUMP_QUEUE);
    let writer = tokio::spawn(write_side(rx, to, ctx.clone()));
    let mut faults = ctx.shared.faults.subscribe();
    let mut buf = vec![0u8; CHUNK];
    let up = ctx.up;
    loop {
        // A paused direction does not read, so the sender's window fills.
        while faults.borrow_and_update().of(up) == Fault::Pause {
            tokio::select! {
                changed = faults.changed() => if changed.is_err() { break },
                () = ctx.half_close.cancelled() => break,
                () = ctx.stop.cancelled() => break,
            }
        }
        let n = tokio::select! {
            n = from.read(&mut buf) => n,
            () = ctx.half_close.cancelled() => Ok(0),
            () = ctx.stop.cancelled() => Ok(0),
        };
        let n = match n {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let fault = faults.borrow().of(up);
        let due = match fault {
            Fault::Blackhole => continue,
            Fault::Delay(d) => Instant::now() + d,
            _ => Instant::now(),
        };
        let chunk = buf.get(..n).map(<[u8]>::to_vec).unwrap_or_default();
        if tx.send((due, chunk)).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
    if ctx.reset.load(Ordering::SeqCst) {
        // Linger 0 makes the last drop of this socket an RST instead of a FIN.
        let _ = from.as_ref().set_zero_linger();
    }
}

async fn write_side(mut rx: mpsc::Receiver<(Instant, Vec<u8>)>, mut to: OwnedWriteHalf, ctx: Pump) {
    let up = ctx.up;
    let mut faults = ctx.shared.faults.subscribe();
    let counter = if up {
        &ctx.shared.bytes_up
    } else {
        &ctx.shared.bytes_down
    };
    let stopped = 'forward: loop {
        let next = tokio::select! {
            next = rx.recv() => next,
            () = ctx.half_close.cancelled() => None,
            () = ctx.stop.cancelled() => break 'forward true,
        };
        let Some((due, chunk)) = next else {
            break false;
        };
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            () = ctx.stop.cancelled() => break 'forward true,
        }
        let mut rest = chunk.as_slice();
        while !rest.is_empty() {
            let fault = faults.borrow_and_update().of(up);
            let take = match fault {
                Fault::Pause => {
                    tokio::select! {
                        changed = faults.changed() => if changed.is_err() { break 'forward true },
                        () = ctx.stop.cancelled() => break 'forward true,
                    }
                    continue;
                }
                Fault::Throttle { bytes_per_sec } => {
                    // Slices of a tenth of a second keep the rate smooth.
                    let slice = usize::try_from((bytes_per_sec / 10).max(1)).unwrap_or(usize::MAX);
                    slice.min(rest.len())
                }
                Fault::Pass | Fault::Delay(_) | Fault::Blackhole => rest.len(),
            };
            let (now, later) = rest.split_at(take);
            if fault != Fault::Blackhole {
                let written = tokio::select! {
                    w = to.write_all(now) => w.is_ok(),
                    () = ctx.stop.cancelled() => break 'forward true,
                };
                if !written {
                    break 'forward false;
                }
                counter.fetch_add(now.len() as u64, Ordering::SeqCst);
            }
            if let Fault::Throttle { bytes_per_sec } = fault {
                let pause = Duration::from_secs(now.len() as u64)
                    / u32::try_from(bytes_per_sec.max(1)).unwrap_or(u32::MAX);
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = ctx.stop.cancelled() => break 'forward true,
                }
            }
            rest = later;
        }
    };
    // The reader may have seen the stop first and closed the channel: still a stop, and a
    // reset must not turn into a FIN.
    if stopped || ctx.stop.is_cancelled() {
        if ctx.reset.load(Ordering::SeqCst) {
            let _ = to.as_ref().set_zero_linger();
            // Dropping a write half sends FIN; a reset must not, so only the read half closes.
            to.forget();
        }
        return;
    }
    // The source ended (FIN) or this direction was half-closed: pass the FIN on. The socket
    // stays open for the other direction, whose pump holds its other half.
    let _ = to.shutdown().await;
}
