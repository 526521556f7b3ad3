//! The client against a hostile server (`sockeye_testkit::hostile_server`), issue 20.
//!
//! One test per case; each runs the async `Client`, the async `SimpleClient`, the blocking
//! `Client` and the blocking `SimpleClient` (those that apply) over the transports the case
//! concerns, and asserts for each: the expected typed error, disconnect reason or ignored
//! packets; the memory allocated during the run stays under a bound (a counting allocator is
//! this test binary's global allocator); a second client of the same process, connected to our
//! own server all along, still gets its acks; and nothing panicked (a counting panic hook).
// The counting allocator forwards to the system allocator; that takes `unsafe`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use sockeye_client::{
    Client, ClientBuilder, ConnectionError, DisconnectReason, Event, SimpleClient, SocketIoError,
    Status, Transport, blocking,
};
use sockeye_testkit::hostile_server::{
    HostileServer, Reply, Script, WsStep, frame, frame_header, open_packet, polling_script,
    websocket_script,
};

use crate::common;

/// Counts the bytes allocated right now and the peak since the last reset.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grow(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grow(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            grow(new_size);
        }
        new
    }
}

fn grow(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// The client's `max_payload` in these tests.
const MAX_PAYLOAD: usize = 1 << 20;
/// What one run may allocate above where it started, far below what the floods send
/// (hundreds of MiB, or a 4 GiB announcement).
const MEMORY_BOUND: usize = 24 << 20;
/// Most a flood sends.
const FLOOD: u64 = 256 << 20;
/// How long a hostile server holds a connection it stalls.
const HOLD: Duration = Duration::from_secs(8);

/// A heartbeat long enough for a case to finish before it matters.
const CALM: &str =
    r#""sid":"hs","upgrades":[],"pingInterval":2000,"pingTimeout":2000,"maxPayload":1000000"#;
/// A heartbeat short enough to end a stalled connection in under a second.
const BRISK: &str =
    r#""sid":"hs","upgrades":[],"pingInterval":300,"pingTimeout":300,"maxPayload":1000000"#;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Flavour {
    Async,
    Simple,
    Blocking,
    BlockingSimple,
}

const ALL: &[Flavour] = &[
    Flavour::Async,
    Flavour::Simple,
    Flavour::Blocking,
    Flavour::BlockingSimple,
];
const MULTI_NAMESPACE: &[Flavour] = &[Flavour::Async, Flavour::Blocking];

/// What a case must end with.
#[derive(Clone, Copy)]
enum Expect {
    /// `connect` fails with an error the predicate accepts.
    ConnectFails(fn(&SocketIoError) -> bool),
    /// Connects, then is disconnected with a reason the predicate accepts.
    Disconnects(fn(&DisconnectReason) -> bool),
    /// Connects, stays connected, and receives exactly these events.
    Events(&'static [&'static str]),
    /// Connects; `call("ask")` returns the first ack only; then receives exactly `ok`.
    AckOnce,
}

/// What a run saw.
#[derive(Debug)]
enum Observed {
    ConnectErr(SocketIoError),
    Disconnected(DisconnectReason),
    Connected {
        events: Vec<String>,
        ack: Option<String>,
        namespaces: Vec<String>,
    },
}

/// Makes a fresh script for each run (scripts keep per-session state).
type MakeScript = Arc<dyn Fn() -> Script + Send + Sync>;

struct Case {
    transport: Transport,
    script: MakeScript,
    expect: Expect,
    flavours: &'static [Flavour],
    namespaces: &'static [&'static str],
    /// Emit large events once connected, to a server that stops reading.
    flood_emits: bool,
    /// Polling with the upgrade to WebSocket allowed (the case's transport is ignored).
    upgrade: bool,
    /// Serve the script behind TLS with this front.
    #[cfg(feature = "tls")]
    tls: Option<Arc<tls::Front>>,
}

fn case(
    transport: Transport,
    script: impl Fn() -> Script + Send + Sync + 'static,
    expect: Expect,
) -> Case {
    Case {
        transport,
        script: Arc::new(script),
        expect,
        flavours: ALL,
        namespaces: &["/"],
        flood_emits: false,
        upgrade: false,
        #[cfg(feature = "tls")]
        tls: None,
    }
}

/// Hostile Engine.IO packets sent once connected: in one polling answer (binary as `b…`
/// base64) or as WebSocket messages.
#[derive(Clone)]
enum Out {
    Text(String),
    Binary(Vec<u8>),
}

fn text(s: &str) -> Out {
    Out::Text(s.to_owned())
}

fn polling_payload(packets: &[Out]) -> Vec<u8> {
    use base64::Engine as _;
    let parts: Vec<String> = packets
        .iter()
        .map(|p| match p {
            Out::Text(t) => format!("4{t}"),
            Out::Binary(b) => format!("b{}", base64::engine::general_purpose::STANDARD.encode(b)),
        })
        .collect();
    parts.join("\u{1e}").into_bytes()
}

/// The same packets over each transport, with `expect`.
fn both(open: &str, packets: &[Out], expect: Expect) -> Vec<Case> {
    let steps = packets
        .iter()
        .map(|p| match p {
            Out::Text(t) => WsStep::Text(format!("4{t}")),
            Out::Binary(b) => WsStep::Binary(b.clone()),
        })
        .collect();
    let (open, payload) = (open_packet(open), polling_payload(packets));
    let ws_open = open.clone();
    vec![
        case(
            Transport::Polling,
            move || polling_script(open.clone(), vec![Reply::ok(payload.clone())]),
            expect,
        ),
        websocket_case_raw(ws_open, steps, expect),
    ]
}

fn builder(url: &str, case: &Case, reasons: &Arc<Mutex<Vec<DisconnectReason>>>) -> ClientBuilder {
    let reasons = Arc::clone(reasons);
    #[cfg(feature = "tls")]
    let url = case
        .tls
        .as_ref()
        .map_or_else(|| url.to_owned(), |front| front.url.clone());
    #[cfg(feature = "tls")]
    let url = url.as_str();
    let transports = if case.upgrade {
        vec![Transport::Polling, Transport::Websocket]
    } else {
        vec![case.transport]
    };
    let builder = Client::builder(url)
        .transports(transports)
        .namespaces(case.namespaces.iter().copied())
        .no_proxy()
        .reconnection(false)
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(1))
        .wait_timeout(Duration::from_secs(3))
        .max_payload(MAX_PAYLOAD)
        .on_disconnect(move |_ns, reason| {
            let reasons = Arc::clone(&reasons);
            async move { reasons.lock().unwrap().push(reason) }
        });
    #[cfg(feature = "tls")]
    if let Some(front) = case.tls.as_ref().filter(|front| front.trusted) {
        return builder.tls_root_certificate(front.pem.clone());
    }
    builder
}

/// How long a run watches a connected client.
const WATCH: Duration = Duration::from_secs(5);

/// The first disconnect reason, waited for a moment (the callback runs on its own task).
fn reason(reasons: &Mutex<Vec<DisconnectReason>>) -> Option<DisconnectReason> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        if let Some(first) = reasons.lock().unwrap().first() {
            return Some(first.clone());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Watches a handler-based client until it closes or received `ok`.
fn watch_client(
    status: impl Fn() -> Status,
    events: &Mutex<Vec<String>>,
    reasons: &Mutex<Vec<DisconnectReason>>,
) -> Option<Observed> {
    let start = Instant::now();
    while start.elapsed() < WATCH {
        if status() == Status::Closed {
            return reason(reasons).map(Observed::Disconnected);
        }
        if events.lock().unwrap().iter().any(|e| e == "ok") {
            // Anything the server sent after `ok` gets a moment to arrive too.
            std::thread::sleep(Duration::from_millis(200));
            if status() == Status::Closed {
                return reason(reasons).map(Observed::Disconnected);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn wants_ack(case: &Case) -> bool {
    matches!(case.expect, Expect::AckOnce)
}

fn ack_text(result: Result<sockeye_client::Args, SocketIoError>) -> String {
    match result {
        Ok(args) => args.first::<String>().unwrap_or_else(|_| "?".into()),
        Err(e) => format!("error: {e}"),
    }
}

const CALL: Duration = Duration::from_secs(2);

/// Emits 32 KiB events (25 MiB in all, more than the socket buffers hold) until one fails.
const FLOOD_EMITS: usize = 800;

fn flood_payload() -> String {
    "x".repeat(32 << 10)
}

async fn flood_async<F, Fut>(emit: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), SocketIoError>>,
{
    for _ in 0..FLOOD_EMITS {
        // Every emit must return: accepted, or refused once the connection is gone.
        match tokio::time::timeout(Duration::from_secs(5), emit(flood_payload())).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => panic!("an emit hung for 5 s"),
        }
    }
}

fn flood_blocking(emit: impl Fn(String) -> Result<(), SocketIoError>) {
    for _ in 0..FLOOD_EMITS {
        if emit(flood_payload()).is_err() {
            return;
        }
    }
}

async fn run_async(url: String, case: Arc<Case>) -> Observed {
    let reasons = Arc::default();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let client = match builder(&url, &case, &reasons)
        .on_any(move |event: Event| {
            let seen = Arc::clone(&seen);
            async move { seen.lock().unwrap().push(event.name().to_owned()) }
        })
        .connect()
        .await
    {
        Ok(client) => client,
        Err(e) => return Observed::ConnectErr(e),
    };
    if case.flood_emits {
        let c = &client;
        flood_async(move |data| async move { c.emit("big", &data).await }).await;
    }
    let ack = if wants_ack(&case) {
        Some(ack_text(client.call("ask", &1, CALL).await))
    } else {
        None
    };
    let watched = {
        let client = client.clone();
        let events = Arc::clone(&events);
        tokio::task::spawn_blocking(move || watch_client(|| client.status(), &events, &reasons))
            .await
            .unwrap()
    };
    let namespaces = client.namespaces();
    client.disconnect().await;
    watched.unwrap_or_else(|| Observed::Connected {
        events: events.lock().unwrap().clone(),
        ack,
        namespaces,
    })
}

async fn run_simple(url: String, case: Arc<Case>) -> Observed {
    let reasons = Arc::default();
    let client = match SimpleClient::connect(builder(&url, &case, &reasons), "/").await {
        Ok(client) => client,
        Err(e) => return Observed::ConnectErr(e),
    };
    if case.flood_emits {
        let c = &client;
        flood_async(move |data| async move { c.emit("big", &data).await }).await;
    }
    let ack = if wants_ack(&case) {
        Some(ack_text(client.call("ask", &1, CALL).await))
    } else {
        None
    };
    let mut events = Vec::new();
    let start = Instant::now();
    while start.elapsed() < WATCH {
        let wait = if events.iter().any(|e| e == "ok") {
            Duration::from_millis(200)
        } else {
            Duration::from_millis(500)
        };
        match client.receive(wait).await {
            Ok((name, _)) => events.push(name),
            Err(SocketIoError::Disconnected) => {
                let reasons = Arc::clone(&reasons);
                return tokio::task::spawn_blocking(move || reason(&reasons))
                    .await
                    .unwrap()
                    .map_or(Observed::ConnectErr(SocketIoError::Disconnected), |r| {
                        Observed::Disconnected(r)
                    });
            }
            Err(_) if events.iter().any(|e| e == "ok") => break,
            Err(_) => {}
        }
    }
    client.disconnect().await;
    Observed::Connected {
        events,
        ack,
        namespaces: vec!["/".into()],
    }
}

fn run_blocking(url: &str, case: &Case) -> Observed {
    let reasons = Arc::default();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let builder = builder(url, case, &reasons).on_any(move |event: Event| {
        let seen = Arc::clone(&seen);
        async move { seen.lock().unwrap().push(event.name().to_owned()) }
    });
    let client = match blocking::Client::connect(builder) {
        Ok(client) => client,
        Err(e) => return Observed::ConnectErr(e),
    };
    if case.flood_emits {
        flood_blocking(|data| client.emit("/", "big", &data));
    }
    let ack = wants_ack(case).then(|| ack_text(client.call("/", "ask", &1, CALL)));
    let watched = watch_client(|| client.status(), &events, &reasons);
    let namespaces = {
        let mut list: Vec<String> = case
            .namespaces
            .iter()
            .filter(|ns| client.sid(ns).is_some())
            .map(|ns| (*ns).to_owned())
            .collect();
        list.sort();
        list
    };
    client.disconnect();
    watched.unwrap_or_else(|| Observed::Connected {
        events: events.lock().unwrap().clone(),
        ack,
        namespaces,
    })
}

fn run_blocking_simple(url: &str, case: &Case) -> Observed {
    let reasons = Arc::default();
    let client = match blocking::SimpleClient::connect(builder(url, case, &reasons), "/") {
        Ok(client) => client,
        Err(e) => return Observed::ConnectErr(e),
    };
    if case.flood_emits {
        flood_blocking(|data| client.emit("big", &data));
    }
    let ack = wants_ack(case).then(|| ack_text(client.call("ask", &1, CALL)));
    let mut events = Vec::new();
    let start = Instant::now();
    while start.elapsed() < WATCH {
        let wait = if events.iter().any(|e| e == "ok") {
            Duration::from_millis(200)
        } else {
            Duration::from_millis(500)
        };
        match client.receive(wait) {
            Ok((name, _)) => events.push(name),
            Err(SocketIoError::Disconnected) => {
                return reason(&reasons).map_or(
                    Observed::ConnectErr(SocketIoError::Disconnected),
                    Observed::Disconnected,
                );
            }
            Err(_) if events.iter().any(|e| e == "ok") => break,
            Err(_) => {}
        }
    }
    client.disconnect();
    Observed::Connected {
        events,
        ack,
        namespaces: vec!["/".into()],
    }
}

async fn run(flavour: Flavour, url: String, case: Arc<Case>) -> Observed {
    match flavour {
        Flavour::Async => run_async(url, case).await,
        Flavour::Simple => run_simple(url, case).await,
        Flavour::Blocking | Flavour::BlockingSimple => {
            // A thread of its own: the blocking clients refuse to run inside a runtime.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let observed = if flavour == Flavour::Blocking {
                    run_blocking(&url, &case)
                } else {
                    run_blocking_simple(&url, &case)
                };
                let _ = tx.send(observed);
            });
            tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
                .await
                .unwrap()
                .expect("the blocking run did not end in 30 s")
        }
    }
}

fn check(expect: Expect, observed: &Observed, label: &str) {
    match (expect, observed) {
        (Expect::ConnectFails(ok), Observed::ConnectErr(e)) => {
            assert!(ok(e), "{label}: unexpected connect error {e:?}");
        }
        (Expect::Disconnects(ok), Observed::Disconnected(r)) => {
            assert!(ok(r), "{label}: unexpected disconnect reason {r:?}");
        }
        (
            Expect::Events(expected),
            Observed::Connected {
                events, namespaces, ..
            },
        ) => {
            // Handlers run on tasks of their own: the order of two events is not kept.
            let (mut got, mut want) = (events.clone(), expected.to_vec());
            got.sort();
            want.sort_unstable();
            assert_eq!(got, want, "{label}: events");
            assert!(
                namespaces.iter().all(|ns| ns == "/"),
                "{label}: namespaces {namespaces:?}"
            );
        }
        (Expect::AckOnce, Observed::Connected { events, ack, .. }) => {
            assert_eq!(ack.as_deref(), Some("first"), "{label}: ack");
            assert_eq!(events, &["ok"], "{label}: events");
        }
        _ => panic!("{label}: got {observed:?}"),
    }
}

/// Runs each case with each of its flavours, then checks the bystander client.
async fn play(cases: Vec<Case>) {
    // nextest gives each test a process of its own; under plain `cargo test` the hostile
    // tests at least do not reset each other's allocation peak.
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _serial = SERIAL.lock().await;
    count_panics();
    let (layer, io) = sockeye::SocketIo::builder().build_layer();
    let _ = common::echo_and_ask(&io, "/");
    let good_url = common::serve_layer(layer).await;
    let bystander = Client::builder(&good_url)
        .no_proxy()
        .connect()
        .await
        .unwrap();
    for case in cases {
        let case = Arc::new(case);
        for &flavour in case.flavours {
            let server = HostileServer::start((case.script)()).await.unwrap();
            #[cfg(feature = "tls")]
            if let Some(front) = &case.tls {
                front.point_at(server.addr()).await;
            }
            let label = format!("{flavour:?} over {:?}", case.transport);
            let baseline = CURRENT.load(Ordering::Relaxed);
            PEAK.store(baseline, Ordering::Relaxed);
            let observed = run(flavour, server.url(), Arc::clone(&case)).await;
            let peak = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
            tracing::info!(%label, ?observed, peak, sent = server.stats().bytes_written.load(Ordering::Relaxed), "case done");
            assert!(
                peak < MEMORY_BOUND,
                "{label}: {peak} bytes allocated at the peak"
            );
            check(case.expect, &observed, &label);
        }
    }
    let echoed = bystander
        .call("echo", &"still here", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(echoed.first::<String>().unwrap(), "still here");
    bystander.disconnect().await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}

fn connection_error(e: &SocketIoError) -> bool {
    matches!(e, SocketIoError::Connection(_))
}

fn protocol_error(e: &SocketIoError) -> bool {
    matches!(e, SocketIoError::Connection(ConnectionError::Protocol(_)))
}

fn timeout_error(e: &SocketIoError) -> bool {
    matches!(
        e,
        SocketIoError::Connection(ConnectionError::Timeout { .. })
    )
}

fn too_large_error(e: &SocketIoError) -> bool {
    matches!(
        e,
        SocketIoError::Connection(ConnectionError::PayloadTooLarge { .. })
    )
}

fn transport_error(r: &DisconnectReason) -> bool {
    matches!(r, DisconnectReason::TransportError(_))
}

fn over_the_limit(r: &DisconnectReason) -> bool {
    matches!(r, DisconnectReason::TransportError(text) if text.contains("limit"))
}

fn stalled(r: &DisconnectReason) -> bool {
    matches!(
        r,
        DisconnectReason::PingTimeout | DisconnectReason::TransportError(_)
    )
}

/// A raw HTTP answer head.
fn head(lines: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\n{lines}\r\n").into_bytes()
}

/// A polling session whose first GET after CONNECT gets `reply`.
fn polling_then(open: &str, reply: Reply) -> Case {
    let open = open_packet(open);
    case(
        Transport::Polling,
        move || polling_script(open.clone(), vec![reply.clone()]),
        Expect::Events(&[]),
    )
}

/// Every request of a connection gets `reply`.
fn always(transport: Transport, reply: Reply, expect: Expect) -> Case {
    case(
        transport,
        move || {
            let reply = reply.clone();
            Arc::new(move |_: &_| reply.clone()) as Script
        },
        expect,
    )
}

#[tokio::test]
async fn handshake_with_absurd_heartbeat_and_payload_values() {
    let absurd = r#""sid":"hs","upgrades":["websocket"],"pingInterval":18446744073709551615,"pingTimeout":18446744073709551615,"maxPayload":18446744073709551615"#;
    play(both(absurd, &[text(r#"2["ok"]"#)], Expect::Events(&["ok"]))).await;
}

#[tokio::test]
async fn handshake_with_invalid_or_missing_fields() {
    let mut cases = both(
        r#""sid":"hs","upgrades":[],"pingInterval":-1,"pingTimeout":1e308,"maxPayload":"lots""#,
        &[],
        Expect::ConnectFails(protocol_error),
    );
    cases.extend(both(
        r#""sid":"hs""#,
        &[],
        Expect::ConnectFails(protocol_error),
    ));
    play(cases).await;
}

#[tokio::test]
async fn unknown_sid_on_later_requests() {
    let script = || -> Script {
        Arc::new(|request: &sockeye_testkit::hostile_server::Request| {
            if request.param("sid").is_none() {
                Reply::ok(open_packet(CALM))
            } else {
                Reply::Http {
                    status: 400,
                    headers: vec!["Content-Type: application/json".into()],
                    body: br#"{"code":1,"message":"Session ID unknown"}"#.to_vec(),
                }
            }
        })
    };
    play(vec![case(
        Transport::Polling,
        script,
        Expect::ConnectFails(connection_error),
    )])
    .await;
}

#[tokio::test]
async fn polling_answer_that_never_ends() {
    let stall = Reply::Stall {
        head: [head("Content-Length: 100\r\n"), b"0{".to_vec()].concat(),
        hold: HOLD,
    };
    let mut late = polling_then(
        BRISK,
        Reply::Stall {
            head: [head("Content-Length: 1000\r\n"), b"42[".to_vec()].concat(),
            hold: HOLD,
        },
    );
    late.expect = Expect::Disconnects(stalled);
    play(vec![
        always(
            Transport::Polling,
            stall,
            Expect::ConnectFails(timeout_error),
        ),
        late,
    ])
    .await;
}

#[tokio::test]
async fn polling_answer_gigabytes_long() {
    let announced = Reply::Stream {
        head: head("Content-Length: 4294967296\r\n"),
        chunk: vec![b'6'; 64 << 10],
        budget: FLOOD,
    };
    let mut unannounced = polling_then(
        CALM,
        Reply::Stream {
            head: head("Connection: close\r\n"),
            chunk: vec![b'6'; 64 << 10],
            budget: FLOOD,
        },
    );
    unannounced.expect = Expect::Disconnects(over_the_limit);
    play(vec![
        always(
            Transport::Polling,
            announced,
            Expect::ConnectFails(too_large_error),
        ),
        unannounced,
    ])
    .await;
}

#[tokio::test]
async fn polling_answer_chunked_forever() {
    let chunk = [b"10000\r\n".to_vec(), vec![b'6'; 0x10000], b"\r\n".to_vec()].concat();
    let mut forever = polling_then(
        CALM,
        Reply::Stream {
            head: head("Transfer-Encoding: chunked\r\n"),
            chunk,
            budget: FLOOD,
        },
    );
    forever.expect = Expect::Disconnects(over_the_limit);
    play(vec![forever]).await;
}

fn websocket_case(open: &str, steps: Vec<WsStep>, expect: Expect) -> Case {
    websocket_case_raw(open_packet(open), steps, expect)
}

fn websocket_case_raw(open: String, steps: Vec<WsStep>, expect: Expect) -> Case {
    case(
        Transport::Websocket,
        move || websocket_script(open.clone(), steps.clone(), HOLD),
        expect,
    )
}

#[tokio::test]
async fn websocket_frame_over_the_limit() {
    play(vec![
        websocket_case(
            CALM,
            vec![WsStep::Raw(frame_header(true, 0x1, 1 << 40))],
            Expect::Disconnects(over_the_limit),
        ),
        websocket_case(
            CALM,
            vec![WsStep::Binary(vec![4u8; MAX_PAYLOAD + 1])],
            Expect::Disconnects(over_the_limit),
        ),
    ])
    .await;
}

#[tokio::test]
async fn websocket_flood_of_tiny_fragments() {
    play(vec![websocket_case(
        CALM,
        vec![
            WsStep::Raw(frame(false, 0x1, b"4")),
            // One-byte fragments, written 4096 at a time.
            WsStep::Flood {
                frame: frame(false, 0x0, b"x").repeat(4096),
                budget: FLOOD,
            },
        ],
        Expect::Disconnects(over_the_limit),
    )])
    .await;
}

#[tokio::test]
async fn websocket_message_that_never_completes() {
    play(vec![
        websocket_case(
            BRISK,
            vec![WsStep::Raw(frame(false, 0x1, b"42["))],
            Expect::Disconnects(stalled),
        ),
        // Empty fragments forever: no byte limit is reached, the heartbeat ends it.
        websocket_case(
            BRISK,
            vec![
                WsStep::Raw(frame(false, 0x1, b"42[")),
                WsStep::Flood {
                    frame: frame(false, 0x0, b""),
                    budget: 64 << 20,
                },
            ],
            Expect::Disconnects(stalled),
        ),
    ])
    .await;
}

#[tokio::test]
async fn binary_packets_with_absurd_attachment_counts_or_placeholders() {
    let mut cases = both(
        CALM,
        &[text(r#"54294967296-["e",{"_placeholder":true,"num":0}]"#)],
        Expect::Disconnects(transport_error),
    );
    cases.extend(both(
        CALM,
        &[text(r#"511-["e",{"_placeholder":true,"num":0}]"#)],
        Expect::Disconnects(transport_error),
    ));
    cases.extend(both(
        CALM,
        &[
            text(r#"51-["e",{"_placeholder":true,"num":7}]"#),
            Out::Binary(vec![1, 2, 3]),
        ],
        Expect::Disconnects(transport_error),
    ));
    // Zero attachments is a plain event, as in the JS parser.
    cases.extend(both(
        CALM,
        &[text(r#"50-["zero"]"#), text(r#"2["ok"]"#)],
        Expect::Events(&["zero", "ok"]),
    ));
    play(cases).await;
}

#[tokio::test]
async fn text_packet_in_the_middle_of_attachments() {
    play(both(
        CALM,
        &[
            text(r#"52-["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#),
            Out::Binary(vec![1]),
            text(r#"2["ok"]"#),
        ],
        Expect::Disconnects(transport_error),
    ))
    .await;
}

#[tokio::test]
async fn json_nested_100_000_deep() {
    let deep = format!(r#"2["e",{}{}]"#, "[".repeat(100_000), "]".repeat(100_000));
    play(both(
        CALM,
        &[Out::Text(deep)],
        Expect::Disconnects(transport_error),
    ))
    .await;
}

#[tokio::test]
async fn event_names_that_are_not_strings() {
    let mut cases = Vec::new();
    for packet in [r#"2[1,"x"]"#, r#"2[{"a":1}]"#, "2[]", r#"2[null]"#] {
        cases.extend(both(
            CALM,
            &[text(packet)],
            Expect::Disconnects(transport_error),
        ));
    }
    play(cases).await;
}

#[tokio::test]
async fn acks_for_ids_never_sent() {
    play(both(
        CALM,
        &[text(r#"3999["x"]"#), text(r#"30["y"]"#), text(r#"2["ok"]"#)],
        Expect::Events(&["ok"]),
    ))
    .await;
}

#[tokio::test]
async fn acks_sent_twice_or_on_another_namespace() {
    // The first `call` of a client has ack id 0.
    let answer = [
        r#"43/elsewhere,0["wrong namespace"]"#,
        r#"430["first"]"#,
        r#"430["second"]"#,
        r#"42["ok"]"#,
    ];
    let joined = answer.join("\u{1e}");
    let polling = case(
        Transport::Polling,
        move || {
            polling_script(
                open_packet(CALM),
                vec![Reply::AfterPost {
                    needle: "420[".into(),
                    within: Duration::from_secs(3),
                    then: Box::new(Reply::ok(joined.clone())),
                }],
            )
        },
        Expect::AckOnce,
    );
    let mut steps = vec![WsStep::AwaitText {
        prefix: "420[".into(),
        within: Duration::from_secs(3),
    }];
    steps.extend(answer.iter().map(|p| WsStep::Text((*p).to_owned())));
    let websocket = websocket_case(CALM, steps, Expect::AckOnce);
    play(vec![polling, websocket]).await;
}

#[tokio::test]
async fn events_on_a_namespace_never_joined() {
    play(both(
        CALM,
        &[
            text(r#"2/nowhere,["evil"]"#),
            text(r#"2/nowhere,1["evil with ack"]"#),
            text("1/nowhere,"),
            text(r#"2["ok"]"#),
        ],
        Expect::Events(&["ok"]),
    ))
    .await;
}

#[tokio::test]
async fn connect_reply_for_a_namespace_never_asked() {
    play(both(
        CALM,
        &[
            text(r#"0/never,{"sid":"z"}"#),
            text(r#"2/never,["evil"]"#),
            text(r#"4/never2,{"message":"no"}"#),
            text(r#"2["ok"]"#),
        ],
        Expect::Events(&["ok"]),
    ))
    .await;
}

#[tokio::test]
async fn events_acks_and_connect_on_a_namespace_the_server_made_us_leave() {
    let mut cases = both(
        CALM,
        &[
            text(r#"0/left,{"sid":"l"}"#),
            text("1/left,"),
            text(r#"2/left,["evil"]"#),
            text(r#"3/left,0["x"]"#),
            text(r#"0/left,{"sid":"again"}"#),
            text(r#"2/left,["evil again"]"#),
            text(r#"2["ok"]"#),
        ],
        Expect::Events(&["ok"]),
    );
    for case in &mut cases {
        case.flavours = MULTI_NAMESPACE;
        case.namespaces = &["/", "/left"];
    }
    play(cases).await;
}

#[tokio::test]
async fn server_that_accepts_tcp_and_says_nothing() {
    play(vec![
        always(
            Transport::Polling,
            Reply::Silent(HOLD),
            Expect::ConnectFails(timeout_error),
        ),
        always(
            Transport::Websocket,
            Reply::Silent(HOLD),
            Expect::ConnectFails(timeout_error),
        ),
        // WebSocket handshake done, then no OPEN packet.
        always(
            Transport::Websocket,
            Reply::WebSocket(vec![WsStep::Hold(HOLD)]),
            Expect::ConnectFails(timeout_error),
        ),
    ])
    .await;
}

#[tokio::test]
async fn redirect_loop_on_the_handshake() {
    let redirect = Reply::Http {
        status: 302,
        headers: vec!["Location: /socket.io/?EIO=4&transport=polling".into()],
        body: Vec::new(),
    };
    play(vec![
        always(
            Transport::Polling,
            redirect.clone(),
            Expect::ConnectFails(connection_error),
        ),
        always(
            Transport::Websocket,
            redirect,
            Expect::ConnectFails(|e| {
                matches!(
                    e,
                    SocketIoError::Connection(ConnectionError::Status { status: 302, .. })
                )
            }),
        ),
    ])
    .await;
}

#[cfg(feature = "tls")]
mod tls {
    //! A TLS front with a self-signed certificate, before the hostile server.

    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    /// Terminates TLS and forwards the bytes to the hostile server of the current run.
    pub(super) struct Front {
        pub(super) url: String,
        pub(super) pem: String,
        /// Whether the client is given the certificate as a root.
        pub(super) trusted: bool,
        backend: Arc<Mutex<Option<SocketAddr>>>,
    }

    impl Front {
        pub(super) async fn start(trusted: bool) -> Front {
            let cert = rcgen::generate_simple_self_signed(vec![
                "127.0.0.1".to_owned(),
                "localhost".to_owned(),
            ])
            .unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.cert.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                        cert.signing_key.serialize_der(),
                    )),
                )
                .unwrap();
            let acceptor = TlsAcceptor::from(Arc::new(config));
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let backend: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
            let target = Arc::clone(&backend);
            tokio::spawn(async move {
                for _ in 0..512 {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let acceptor = acceptor.clone();
                    let target = *target.lock().unwrap();
                    tokio::spawn(async move {
                        let bound = Duration::from_secs(10);
                        let Ok(Ok(mut tls)) =
                            tokio::time::timeout(bound, acceptor.accept(tcp)).await
                        else {
                            return;
                        };
                        let Some(target) = target else { return };
                        let Ok(mut back) = TcpStream::connect(target).await else {
                            return;
                        };
                        let _ = tokio::time::timeout(
                            bound,
                            tokio::io::copy_bidirectional(&mut tls, &mut back),
                        )
                        .await;
                    });
                }
            });
            Front {
                url: format!("https://127.0.0.1:{}", addr.port()),
                pem: cert.cert.pem(),
                trusted,
                backend,
            }
        }

        pub(super) async fn point_at(&self, backend: SocketAddr) {
            *self.backend.lock().unwrap() = Some(backend);
        }
    }
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_server_with_a_self_signed_certificate() {
    let packets = [text(r#"2["ok"]"#)];
    let mut cases = both(
        CALM,
        &packets,
        Expect::ConnectFails(
            |e| matches!(e, SocketIoError::Connection(ConnectionError::Transport(text)) if text.to_lowercase().contains("certificate")),
        ),
    );
    let refused = Arc::new(tls::Front::start(false).await);
    for case in &mut cases {
        case.tls = Some(Arc::clone(&refused));
    }
    let trusted = Arc::new(tls::Front::start(true).await);
    for mut case in both(CALM, &packets, Expect::Events(&["ok"])) {
        case.tls = Some(Arc::clone(&trusted));
        cases.push(case);
    }
    play(cases).await;
}

#[tokio::test]
async fn server_that_stops_reading() {
    let deaf_polling = || -> Script {
        let base = polling_script(open_packet(CALM), Vec::new());
        Arc::new(move |request: &sockeye_testkit::hostile_server::Request| {
            if request.method == "POST" && request.body.len() > 1000 {
                Reply::Silent(HOLD)
            } else {
                base(request)
            }
        })
    };
    let mut cases = vec![
        case(
            Transport::Polling,
            deaf_polling,
            Expect::Disconnects(timed_out),
        ),
        websocket_case(
            CALM,
            vec![WsStep::Deaf(HOLD)],
            Expect::Disconnects(timed_out),
        ),
    ];
    for case in &mut cases {
        case.flood_emits = true;
    }
    play(cases).await;
}

fn timed_out(r: &DisconnectReason) -> bool {
    matches!(r, DisconnectReason::TransportError(text) if text.contains("did not finish within"))
}

#[tokio::test]
async fn event_flood_to_slow_handlers() {
    count_panics();
    // 40 000 events of 1 KiB each (about 40 MiB) to a handler that takes 30 s: the client
    // runs at most 1024 handlers at once and stops reading until one ends.
    let event = format!(r#"42["slow","{}"]"#, "x".repeat(1024));
    let server = HostileServer::start(websocket_script(
        open_packet(CALM),
        vec![WsStep::Flood {
            frame: frame(true, 0x1, event.as_bytes()),
            budget: 40 << 20,
        }],
        HOLD,
    ))
    .await
    .unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&started);
    let baseline = CURRENT.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let client = Client::builder(server.url())
        .transports([Transport::Websocket])
        .no_proxy()
        .reconnection(false)
        .on("slow", move |_event: Event| {
            seen.fetch_add(1, Ordering::SeqCst);
            async move { tokio::time::sleep(Duration::from_secs(30)).await }
        })
        .connect()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
    let handlers = started.load(Ordering::SeqCst);
    assert!(handlers >= 1000, "only {handlers} handlers started");
    assert!(handlers <= 1024, "{handlers} handlers at once");
    assert!(peak < MEMORY_BOUND, "{peak} bytes allocated at the peak");
    assert!(
        server.stats().bytes_written.load(Ordering::Relaxed) < 40 << 20,
        "the client read the whole flood"
    );
    drop(client);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}

#[tokio::test]
async fn hostile_answers_to_the_upgrade_probe() {
    // The probe's WebSocket gets a frame over the limit, a wrong answer, or silence; the client
    // stays on polling and still gets the event sent 1.2 s later.
    let open = r#""sid":"hs","upgrades":["websocket"],"pingInterval":2000,"pingTimeout":2000,"maxPayload":1000000"#;
    let probes = [
        vec![WsStep::Raw(frame_header(true, 0x1, 1 << 40))],
        vec![WsStep::Text("3wrong".into())],
        vec![WsStep::Hold(HOLD)],
    ];
    let mut cases = Vec::new();
    for probe in probes {
        let mut upgrade = case(
            Transport::Polling,
            move || {
                let base = polling_script(
                    open_packet(open),
                    vec![Reply::After(
                        Duration::from_millis(1200),
                        Box::new(Reply::ok(r#"42["ok"]"#)),
                    )],
                );
                let probe = probe.clone();
                Arc::new(move |request: &sockeye_testkit::hostile_server::Request| {
                    if request.param("transport") == Some("websocket") {
                        Reply::WebSocket(probe.clone())
                    } else {
                        base(request)
                    }
                }) as Script
            },
            Expect::Events(&["ok"]),
        );
        upgrade.upgrade = true;
        // The probe runs in the engine, the same for every client; two of them keep it short.
        upgrade.flavours = &[Flavour::Async, Flavour::BlockingSimple];
        cases.push(upgrade);
    }
    play(cases).await;
}

/// A recovering server (the Node one) replays missed packets before its CONNECT reply, so the
/// client keeps events that arrive while its CONNECT is unanswered and hands them over after
/// the reply, in order, as socket.io-client does. A server that floods events there gets the
/// first 1 024 kept and the rest dropped: the client's memory stays bounded.
#[tokio::test]
async fn events_before_the_connect_reply_are_kept_within_a_bound() {
    const SENT: usize = 3000;
    const KEPT: usize = 1024;
    count_panics();
    let mut steps = vec![
        WsStep::Text(open_packet(CALM)),
        WsStep::AwaitText {
            prefix: "40".into(),
            within: Duration::from_secs(5),
        },
    ];
    let filler = "x".repeat(1000);
    steps.extend((0..SENT).map(|i| WsStep::Text(format!(r#"42["early",{i},"{filler}"]"#))));
    steps.push(WsStep::Text(r#"40{"sid":"hostile-ns-sid"}"#.into()));
    steps.push(WsStep::Text(r#"42["ok"]"#.into()));
    steps.push(WsStep::Hold(HOLD));
    let script: Script = Arc::new(move |_| Reply::WebSocket(steps.clone()));
    let server = HostileServer::start(script).await.unwrap();
    let baseline = CURRENT.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let early = Arc::new(Mutex::new(Vec::new()));
    let ok = Arc::new(AtomicUsize::new(0));
    let (seen, oks) = (Arc::clone(&early), Arc::clone(&ok));
    let client = Client::builder(server.url())
        .no_proxy()
        .transports([Transport::Websocket])
        .on("early", move |event: Event| {
            let seen = Arc::clone(&seen);
            async move { seen.lock().unwrap().push(event.data::<usize>().unwrap()) }
        })
        .on("ok", move |_event: Event| {
            let oks = Arc::clone(&oks);
            async move {
                oks.fetch_add(1, Ordering::SeqCst);
            }
        })
        .connect()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ok.load(Ordering::SeqCst) == 0 || early.lock().unwrap().len() < KEPT {
        assert!(
            Instant::now() < deadline,
            "the kept events and `ok` did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
    let mut got = early.lock().unwrap().clone();
    // Handlers run as tasks of their own: compare as a set, then check nothing is missing.
    got.sort_unstable();
    assert_eq!(
        got,
        (0..KEPT).collect::<Vec<_>>(),
        "the first {KEPT} kept, once each"
    );
    assert!(client.is_connected());
    client.disconnect().await;
    assert!(peak < MEMORY_BOUND, "{peak} bytes allocated at the peak");
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}
