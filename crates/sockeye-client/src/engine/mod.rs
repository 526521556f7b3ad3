//! The Engine.IO v4 client: handshake, long-polling, WebSocket, the upgrade and heartbeats.
//!
//! [`open`] performs the handshake and spawns one task that owns the transport. The layer above
//! talks to it over two bounded channels: [`Command`]s in, [`EngineEvent`]s out.

mod polling;
pub(crate) mod url;
pub(crate) mod websocket;

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt as _;
use http::HeaderMap;
use sockeye_protocol::engine::{Frame, Handshake, Message, Packet};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use crate::error::ConnectionError;
use polling::Http;

use crate::tls::Tls;
use url::Endpoint;
use websocket::Ws;

/// How many outbound commands are batched into one polling POST at most.
const POST_BATCH: usize = 64;
/// Capacity of the channel from the transport task to the layer above.
const EVENT_QUEUE: usize = 256;
/// Capacity of the channel from the layer above to the transport task.
const COMMAND_QUEUE: usize = 256;

/// A transport of the Engine.IO connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    Websocket,
}

impl Transport {
    /// The protocol name of the transport (`"polling"` or `"websocket"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::Websocket => "websocket",
        }
    }
}

/// What the Engine.IO layer needs to open a connection.
#[derive(Debug, Clone)]
pub(crate) struct EngineOptions {
    pub(crate) endpoint: Endpoint,
    /// TLS for `https`/`wss` endpoints.
    pub(crate) tls: Tls,
    pub(crate) headers: HeaderMap,
    /// Start with polling (and upgrade when `websocket` is also allowed).
    pub(crate) polling: bool,
    pub(crate) websocket: bool,
    /// Bound of each HTTP request and of the WebSocket connect.
    pub(crate) request_timeout: Duration,
    /// The proxy both transports go through, if any.
    pub(crate) proxy: Option<crate::proxy::Proxy>,
    /// Cookies kept across requests (and reconnections): polling, the upgrade and WebSocket
    /// handshakes all send and receive them.
    pub(crate) jar: Option<websocket::Jar>,
    /// permessage-deflate offered on WebSocket handshakes.
    pub(crate) deflate: Option<sockeye_protocol::deflate::DeflateConfig>,
    /// Payload bounds, the connect timeout and the heartbeat clamp.
    pub(crate) limits: crate::options::Limits,
}

/// A message from the transport task to the layer above.
#[derive(Debug)]
pub(crate) enum EngineEvent {
    /// An Engine.IO MESSAGE.
    Message(Message),
    /// The connection is over; nothing follows.
    Closed(CloseCause),
}

/// Why the Engine.IO connection ended.
#[derive(Debug, Clone)]
pub(crate) enum CloseCause {
    /// The layer above asked for it.
    Client,
    /// The server sent an Engine.IO CLOSE packet.
    Server,
    /// The transport failed or the heartbeat timed out.
    Error(ConnectionError),
}

/// A request from the layer above to the transport task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send these frames in order (a packet and its binary attachments travel together).
    Send(Vec<Frame>),
    /// Close the session: send CLOSE, then end.
    Close,
}

/// An open Engine.IO connection.
pub(crate) struct Engine {
    /// The Engine.IO session id.
    pub(crate) sid: String,
    /// Commands to the transport task.
    pub(crate) commands: mpsc::Sender<Command>,
    /// Events from the transport task; ends with [`EngineEvent::Closed`].
    pub(crate) events: mpsc::Receiver<EngineEvent>,
    /// The transport in use right now.
    pub(crate) transport: watch::Receiver<Transport>,
}

/// Performs the handshake and spawns the transport task.
pub(crate) async fn open(options: EngineOptions) -> Result<Engine, ConnectionError> {
    if !options.polling && !options.websocket {
        return Err(ConnectionError::InvalidOption(
            "no transport enabled: allow polling, websocket or both".into(),
        ));
    }
    let http = Http::new(&options)?;
    let (handshake, start) = if options.polling {
        let mut packets = http
            .get(options.endpoint.polling(None), options.request_timeout)
            .await?
            .into_iter();
        match packets.next() {
            Some(Packet::Open(handshake)) => (handshake, Start::Polling(packets.collect())),
            other => {
                return Err(ConnectionError::Protocol(format!(
                    "expected an OPEN packet first, got {other:?}"
                )));
            }
        }
    } else {
        let mut ws = websocket::connect(&options, &options.endpoint.websocket(None)).await?;
        match tokio::time::timeout(options.request_timeout, websocket::next_packet(&mut ws)).await {
            Ok(Some(Ok(Packet::Open(handshake)))) => (handshake, Start::Websocket(Box::new(ws))),
            Ok(Some(Err(e))) => return Err(e),
            Ok(other) => {
                return Err(ConnectionError::Protocol(format!(
                    "expected an OPEN packet first, got {other:?}"
                )));
            }
            Err(_) => {
                return Err(ConnectionError::Timeout {
                    what: "the OPEN packet".into(),
                    after: options.request_timeout,
                });
            }
        }
    };
    let handshake = clamp_handshake(handshake, &options.limits);
    tracing::debug!(sid = %handshake.sid, "engine.io handshake done");
    let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
    let initial = match start {
        Start::Polling(_) => Transport::Polling,
        Start::Websocket(_) => Transport::Websocket,
    };
    let (transport_tx, transport_rx) = watch::channel(initial);
    let sid = handshake.sid.clone();
    let task = Task {
        http,
        options,
        handshake,
        commands: command_rx,
        events: event_tx,
        transport: transport_tx,
        heartbeat: Box::pin(tokio::time::sleep(Duration::ZERO)),
    };
    tokio::spawn(task.run(start));
    Ok(Engine {
        sid,
        commands: command_tx,
        events: event_rx,
        transport: transport_rx,
    })
}

enum Start {
    /// Polling, with any packets that came in the handshake response after OPEN.
    Polling(Vec<Packet>),
    Websocket(Box<Ws>),
}

/// What a transport loop ended with.
enum Outcome {
    Closed(CloseCause),
    Upgraded(Box<Ws>),
}

/// What to do after one inbound packet.
enum Action {
    Nothing,
    Reply(Packet),
    Deliver(Message),
    Closed,
}

struct Task {
    http: Http,
    options: EngineOptions,
    handshake: Handshake,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<EngineEvent>,
    transport: watch::Sender<Transport>,
    /// Fires when the server has been silent for longer than `pingInterval + pingTimeout`.
    heartbeat: Pin<Box<Sleep>>,
}

impl Task {
    async fn run(mut self, start: Start) {
        self.reset_heartbeat();
        let cause = match start {
            Start::Websocket(ws) => self.websocket(*ws).await,
            Start::Polling(pending) => match self.polling(pending).await {
                Outcome::Closed(cause) => cause,
                Outcome::Upgraded(ws) => self.websocket(*ws).await,
            },
        };
        tracing::debug!(sid = %self.handshake.sid, ?cause, "engine.io connection closed");
        let _ = self.events.send(EngineEvent::Closed(cause)).await;
    }

    fn reset_heartbeat(&mut self) {
        let silence = Duration::from_millis(
            self.handshake
                .ping_interval
                .saturating_add(self.handshake.ping_timeout),
        );
        self.heartbeat.as_mut().reset(Instant::now() + silence);
    }

    fn on_packet(&mut self, packet: Packet) -> Action {
        self.reset_heartbeat();
        match packet {
            Packet::Ping(data) => Action::Reply(Packet::Pong(data)),
            Packet::Message(text) => Action::Deliver(Message::Text(text)),
            Packet::Binary(data) => Action::Deliver(Message::Binary(data)),
            Packet::Close => Action::Closed,
            Packet::Open(_) | Packet::Pong(_) | Packet::Upgrade | Packet::Noop => Action::Nothing,
        }
    }

    /// Hands a message to the layer above; false when nobody listens any more.
    async fn deliver(&self, message: Message) -> bool {
        self.events
            .send(EngineEvent::Message(message))
            .await
            .is_ok()
    }

    fn polling_url(&self) -> ::url::Url {
        self.options.endpoint.polling(Some(&self.handshake.sid))
    }

    async fn post(&self, frames: &[Frame]) -> Result<(), ConnectionError> {
        self.http
            .post(self.polling_url(), frames, self.options.request_timeout)
            .await
    }

    /// Runs a batch of inbound polling packets; `Some` ends the polling loop.
    async fn polling_packets(&mut self, packets: Vec<Packet>) -> Option<CloseCause> {
        for packet in packets {
            match self.on_packet(packet) {
                Action::Nothing => {}
                Action::Reply(reply) => {
                    if let Err(e) = self.post(&[Frame::from(&reply)]).await {
                        return Some(CloseCause::Error(e));
                    }
                }
                Action::Deliver(message) => {
                    if !self.deliver(message).await {
                        return Some(CloseCause::Client);
                    }
                }
                Action::Closed => return Some(CloseCause::Server),
            }
        }
        None
    }

    async fn polling(&mut self, pending: Vec<Packet>) -> Outcome {
        let (batch_tx, mut batch_rx) = mpsc::channel(4);
        let (stop_tx, stop_rx) = watch::channel(false);
        // The server holds a GET for up to pingInterval; give it that plus the request timeout.
        let get_timeout = Duration::from_millis(self.handshake.ping_interval)
            .saturating_add(self.options.request_timeout);
        let poller = tokio::spawn(poll_loop(
            self.http.clone(),
            self.options.endpoint.clone(),
            self.handshake.sid.clone(),
            get_timeout,
            batch_tx,
            stop_rx,
        ));
        let _abort = AbortOnDrop(poller.abort_handle());
        let mut poller = Some(poller);
        let mut upgrade = (self.options.websocket
            && self.handshake.upgrades.iter().any(|u| u == "websocket"))
        .then(|| tokio::spawn(probe(self.options.clone(), self.handshake.sid.clone())));
        let _abort_probe = upgrade.as_ref().map(|t| AbortOnDrop(t.abort_handle()));

        if let Some(cause) = self.polling_packets(pending).await {
            return Outcome::Closed(cause);
        }
        loop {
            tokio::select! {
                batch = batch_rx.recv() => match batch {
                    Some(Ok(packets)) => {
                        if let Some(cause) = self.polling_packets(packets).await {
                            return Outcome::Closed(cause);
                        }
                    }
                    Some(Err(e)) => return Outcome::Closed(CloseCause::Error(e)),
                    None => {
                        return Outcome::Closed(CloseCause::Error(ConnectionError::Transport(
                            "the polling loop ended".into(),
                        )));
                    }
                },
                command = self.commands.recv() => match command {
                    Some(Command::Send(mut frames)) => {
                        let mut close = false;
                        for _ in 0..POST_BATCH {
                            match self.commands.try_recv() {
                                Ok(Command::Send(more)) => frames.extend(more),
                                Ok(Command::Close) => { close = true; break; }
                                Err(_) => break,
                            }
                        }
                        if close {
                            frames.push(Frame::from(&Packet::Close));
                        }
                        if let Err(e) = self.post(&frames).await {
                            return Outcome::Closed(CloseCause::Error(e));
                        }
                        if close {
                            return Outcome::Closed(CloseCause::Client);
                        }
                    }
                    Some(Command::Close) | None => {
                        let _ = self.post(&[Frame::from(&Packet::Close)]).await;
                        return Outcome::Closed(CloseCause::Client);
                    }
                },
                () = self.heartbeat.as_mut() => {
                    return Outcome::Closed(CloseCause::Error(ConnectionError::PingTimeout));
                }
                probed = join_opt(&mut upgrade) => {
                    upgrade = None;
                    match probed {
                        Ok(mut ws) => {
                            // The server answers the pending GET with NOOP once probed, so the
                            // poller ends quickly; packets of that last GET still count.
                            let _ = stop_tx.send(true);
                            if let Some(task) = poller.take() {
                                // Keep taking batches meanwhile: once probed, the server
                                // answers every GET at once, and a poller blocked on a full
                                // batch channel would never look at `stop` again.
                                let deadline = tokio::time::sleep(get_timeout);
                                tokio::pin!(task, deadline);
                                loop {
                                    tokio::select! {
                                        _ = &mut task => break,
                                        () = &mut deadline => break,
                                        batch = batch_rx.recv() => match batch {
                                            Some(Ok(packets)) => {
                                                if let Some(cause) = self.polling_packets(packets).await {
                                                    return Outcome::Closed(cause);
                                                }
                                            }
                                            Some(Err(e)) => return Outcome::Closed(CloseCause::Error(e)),
                                            None => break,
                                        },
                                    }
                                }
                            }
                            while let Ok(batch) = batch_rx.try_recv() {
                                match batch {
                                    Ok(packets) => {
                                        if let Some(cause) = self.polling_packets(packets).await {
                                            return Outcome::Closed(cause);
                                        }
                                    }
                                    Err(e) => return Outcome::Closed(CloseCause::Error(e)),
                                }
                            }
                            if let Err(e) = self.bounded_write(websocket::send_packet(&mut ws, &Packet::Upgrade)).await {
                                return Outcome::Closed(CloseCause::Error(e));
                            }
                            tracing::debug!(sid = %self.handshake.sid, "upgraded to websocket");
                            return Outcome::Upgraded(Box::new(ws));
                        }
                        Err(e) => {
                            tracing::debug!(sid = %self.handshake.sid, error = %e, "websocket upgrade failed; staying on polling");
                        }
                    }
                }
            }
        }
    }

    /// A write bounded by the request timeout: a server that stops reading fills the socket
    /// buffers, and an unbounded write would then hold this task (and every emit queued
    /// behind it) forever, the heartbeat included.
    async fn bounded_write(
        &self,
        write: impl Future<Output = Result<(), ConnectionError>>,
    ) -> Result<(), ConnectionError> {
        let after = self.options.request_timeout;
        tokio::time::timeout(after, write)
            .await
            .unwrap_or(Err(ConnectionError::Timeout {
                what: "a WebSocket write".into(),
                after,
            }))
    }

    async fn websocket(&mut self, mut ws: Ws) -> CloseCause {
        let _ = self.transport.send(Transport::Websocket);
        loop {
            tokio::select! {
                // Reading is cancel-safe: a frame is only taken once it is whole.
                packet = websocket::next_packet(&mut ws) => {
                    let packet = match packet {
                        None => return CloseCause::Error(ConnectionError::Transport("the server closed the WebSocket".into())),
                        Some(Err(e)) => return CloseCause::Error(e),
                        Some(Ok(packet)) => packet,
                    };
                    match self.on_packet(packet) {
                        Action::Nothing => {}
                        Action::Reply(reply) => {
                            if let Err(e) = self.bounded_write(websocket::send_packet(&mut ws, &reply)).await {
                                return CloseCause::Error(e);
                            }
                        }
                        Action::Deliver(message) => {
                            if !self.deliver(message).await {
                                return CloseCause::Client;
                            }
                        }
                        Action::Closed => return CloseCause::Server,
                    }
                }
                command = self.commands.recv() => match command {
                    Some(Command::Send(frames)) => {
                        let write = async {
                            for frame in &frames {
                                websocket::feed(&mut ws, frame).await?;
                            }
                            ws.flush().await.map_err(websocket::ws_error)
                        };
                        if let Err(e) = self.bounded_write(write).await {
                            return CloseCause::Error(e);
                        }
                    }
                    Some(Command::Close) | None => {
                        let goodbye = async {
                            websocket::send_packet(&mut ws, &Packet::Close).await?;
                            ws.close(None).await.map_err(websocket::ws_error)
                        };
                        let _ = self.bounded_write(goodbye).await;
                        return CloseCause::Client;
                    }
                },
                () = self.heartbeat.as_mut() => {
                    return CloseCause::Error(ConnectionError::PingTimeout);
                }
            }
        }
    }
}

/// Aborts a helper task when the loop that owns it ends, whichever way.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits for an optional task; pending forever when there is none.
async fn join_opt(
    task: &mut Option<JoinHandle<Result<Ws, ConnectionError>>>,
) -> Result<Ws, ConnectionError> {
    match task {
        Some(handle) => match handle.await {
            Ok(result) => result,
            Err(e) => Err(ConnectionError::Transport(format!(
                "upgrade task failed: {e}"
            ))),
        },
        None => std::future::pending().await,
    }
}

/// Issues GETs one after another until told to stop, the server closes, or a request fails.
async fn poll_loop(
    http: Http,
    endpoint: Endpoint,
    sid: String,
    timeout: Duration,
    batches: mpsc::Sender<Result<Vec<Packet>, ConnectionError>>,
    stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let result = http.get(endpoint.polling(Some(&sid)), timeout).await;
        let last = match &result {
            Ok(packets) => packets.iter().any(|p| matches!(p, Packet::Close)),
            Err(_) => true,
        };
        if batches.send(result).await.is_err() || last {
            return;
        }
    }
}

/// Opens a WebSocket for the session and checks it with the `2probe`/`3probe` exchange.
async fn probe(options: EngineOptions, sid: String) -> Result<Ws, ConnectionError> {
    let timeout = options.request_timeout;
    let bound = timeout
        .saturating_mul(2)
        .saturating_add(options.limits.connect_timeout);
    tokio::time::timeout(bound, probe_inner(options, sid))
        .await
        .unwrap_or(Err(ConnectionError::Timeout {
            what: "the upgrade probe".into(),
            after: bound,
        }))
}

async fn probe_inner(options: EngineOptions, sid: String) -> Result<Ws, ConnectionError> {
    let timeout = options.request_timeout;
    let mut ws = websocket::connect(&options, &options.endpoint.websocket(Some(&sid))).await?;
    websocket::send_packet(&mut ws, &Packet::Ping(Bytes::from_static(b"probe"))).await?;
    match tokio::time::timeout(timeout, websocket::next_packet(&mut ws)).await {
        Ok(Some(Ok(Packet::Pong(data)))) if data.as_ref() == b"probe" => Ok(ws),
        Ok(Some(Err(e))) => Err(e),
        Ok(other) => Err(ConnectionError::Protocol(format!(
            "the upgrade probe was answered with {other:?}"
        ))),
        Err(_) => Err(ConnectionError::Timeout {
            what: "the upgrade probe".into(),
            after: timeout,
        }),
    }
}

/// Brings the server's heartbeat values into `[MIN_HEARTBEAT, max_heartbeat]`, so that every
/// wait derived from them is bounded and no deadline overflows. `maxPayload` is left as is:
/// the client sends what the application emits and lets the server refuse it.
fn clamp_handshake(mut handshake: Handshake, limits: &crate::options::Limits) -> Handshake {
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let min = millis(crate::options::MIN_HEARTBEAT);
    let max = millis(limits.max_heartbeat).max(min);
    let (interval, timeout) = (handshake.ping_interval, handshake.ping_timeout);
    handshake.ping_interval = interval.clamp(min, max);
    handshake.ping_timeout = timeout.clamp(min, max);
    if (interval, timeout) != (handshake.ping_interval, handshake.ping_timeout) {
        tracing::warn!(
            interval,
            timeout,
            "the server's heartbeat values are out of range; clamped"
        );
    }
    handshake
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_heartbeat_values_are_clamped() {
        let limits = crate::options::Limits::default();
        let handshake = |interval, timeout| Handshake {
            sid: "s".into(),
            upgrades: Vec::new(),
            ping_interval: interval,
            ping_timeout: timeout,
            max_payload: u64::MAX,
        };
        let high = clamp_handshake(handshake(u64::MAX, u64::MAX), &limits);
        assert_eq!((high.ping_interval, high.ping_timeout), (300_000, 300_000));
        let low = clamp_handshake(handshake(0, 0), &limits);
        assert_eq!((low.ping_interval, low.ping_timeout), (100, 100));
        let fine = clamp_handshake(handshake(25_000, 20_000), &limits);
        assert_eq!((fine.ping_interval, fine.ping_timeout), (25_000, 20_000));
    }
}
