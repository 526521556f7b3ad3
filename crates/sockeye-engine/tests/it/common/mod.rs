//! Test server: an engine with a recording echo handler, served by hyper on 127.0.0.1:0.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use sockeye_engine::{
    CloseReason, Engine, EngineConfig, EngineHandler, Frame, Message, SendError, Session,
};
use tokio::net::TcpListener;

pub const WAIT: Duration = Duration::from_secs(10);

/// What the handler saw.
#[derive(Default)]
pub struct Recorder {
    pub opened: AtomicUsize,
    pub messages: AtomicUsize,
    /// `slow` messages whose handler ran to the end, and whether on_close had run by then.
    pub slow_done: Mutex<Vec<bool>>,
    pub closes: Mutex<Vec<(String, CloseReason)>>,
    pub send_errors: Mutex<Vec<SendError>>,
    pub closed: tokio::sync::Notify,
    /// The test makes the handler panic on purpose (`HandlerPanic` closes are expected).
    pub panic_expected: std::sync::atomic::AtomicBool,
}

impl Recorder {
    pub fn closes(&self) -> Vec<(String, CloseReason)> {
        self.closes.lock().unwrap().clone()
    }

    /// Waits until `sid` was closed, and returns its reason.
    pub async fn wait_close(&self, sid: &str) -> CloseReason {
        let wait = async {
            loop {
                let notified = self.closed.notified();
                if let Some((_, r)) = self.closes().into_iter().find(|(s, _)| s == sid) {
                    return r;
                }
                notified.await;
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("session {sid} not closed within {WAIT:?}"))
    }
}

/// Echoes messages; `flood:N` makes it send N frames at once instead.
pub struct Echo {
    pub rec: Arc<Recorder>,
}

impl EngineHandler for Echo {
    type Data = ();

    fn on_open(&self, _session: &Arc<Session<()>>) {
        self.rec.opened.fetch_add(1, Ordering::SeqCst);
    }

    async fn on_message(&self, session: &Arc<Session<()>>, message: Message) {
        self.rec.messages.fetch_add(1, Ordering::SeqCst);
        let frame = match message {
            Message::Text(text) => {
                let text = std::str::from_utf8(&text).unwrap().to_owned();
                assert!(text != "panic", "the handler panics on request");
                if text == "slow" {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let closed_before = self
                        .rec
                        .closes()
                        .iter()
                        .any(|(sid, _)| sid == session.sid());
                    self.rec.slow_done.lock().unwrap().push(closed_before);
                    return;
                }
                if let Some(n) = text.strip_prefix("blob:") {
                    let blob = format!("4{}", "b".repeat(64 * 1024));
                    let frame = Frame::Text(blob.into());
                    for _ in 0..n.parse::<usize>().unwrap() {
                        if let Err(e) = session.send(frame.clone()) {
                            self.rec.send_errors.lock().unwrap().push(e);
                            break;
                        }
                    }
                    return;
                }
                if let Some(n) = text.strip_prefix("flood:") {
                    for i in 0..n.parse::<usize>().unwrap() {
                        if let Err(e) = session.send(Frame::message(&format!("f{i}"))) {
                            self.rec.send_errors.lock().unwrap().push(e);
                            break;
                        }
                    }
                    return;
                }
                Frame::message(&text)
            }
            Message::Binary(data) => Frame::Binary(data),
        };
        if let Err(e) = session.send(frame) {
            self.rec.send_errors.lock().unwrap().push(e);
        }
    }

    fn on_close(&self, session: &Arc<Session<()>>, reason: CloseReason) {
        self.rec
            .closes
            .lock()
            .unwrap()
            .push((session.sid().to_owned(), reason));
        self.rec.closed.notify_waiters();
    }
}

/// The engine under test. Dropping it at the end of a test fails the test if anything outside
/// test code panicked meanwhile (`PanicWatch`), or if a session was closed as `HandlerPanic`
/// without the test saying it made the handler panic (`rec.panic_expected`): the handler here
/// is the test's echo, so such a close means the engine handed it something it must never
/// get (non-UTF-8 text, a message after close).
pub struct TestServer {
    pub addr: SocketAddr,
    pub engine: Engine<Echo>,
    pub rec: Arc<Recorder>,
    pub watch: sockeye_testkit::panics::PanicWatch,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.watch.assert_none();
        if !self.rec.panic_expected.load(Ordering::SeqCst) {
            let panics: Vec<_> = self
                .rec
                .closes()
                .into_iter()
                .filter(|(_, r)| *r == CloseReason::HandlerPanic)
                .collect();
            assert!(
                panics.is_empty(),
                "sessions closed by a handler panic: {panics:?}"
            );
        }
    }
}

impl TestServer {
    pub fn url(&self, query: &str) -> String {
        format!(
            "http://{}{}?{query}",
            self.addr,
            self.engine.config().path()
        )
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}{}?{query}", self.addr, self.engine.config().path())
    }
}

/// The suite's timings, at `/engine.io/`.
pub fn fast_config() -> sockeye_engine::EngineConfigBuilder {
    EngineConfig::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
}

/// Serves an engine with `config` on an ephemeral port (standalone service on hyper, HTTP/1.1
/// and h2c with extended CONNECT).
pub async fn serve(config: EngineConfig) -> TestServer {
    serve_with(config, ServeOptions::default()).await
}

/// How the test server listens.
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// TLS with ALPN `h2` and `http/1.1`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The HTTP/2 concurrent-stream limit (hyper's default, 200, when `None`).
    pub max_concurrent_streams: Option<u32>,
}

/// A self-signed certificate for `localhost` and `127.0.0.1`: the server's TLS configuration
/// (ALPN `h2`, `http/1.1`) and the certificate, to trust on the client side.
pub fn self_signed() -> (
    Arc<rustls::ServerConfig>,
    rustls::pki_types::CertificateDer<'static>,
) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        cert.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (Arc::new(server), der)
}

/// Serves an engine with `config` as `options` say.
pub async fn serve_with(config: EngineConfig, options: ServeOptions) -> TestServer {
    let watch = sockeye_testkit::panics::PanicWatch::start();
    let rec = Arc::new(Recorder::default());
    let engine = Engine::new(Echo { rec: rec.clone() }, config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = engine.service();
    let acceptor = options.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                continue;
            };
            tcp.set_nodelay(true).unwrap();
            let mut service = service.clone();
            let service =
                tower::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(sockeye_engine::RemoteAddr(peer));
                    tower::Service::call(&mut service, req)
                });
            let acceptor = acceptor.clone();
            let max_streams = options.max_concurrent_streams;
            tokio::spawn(async move {
                let mut builder = Builder::new(TokioExecutor::new());
                builder.http2().enable_connect_protocol();
                if let Some(max) = max_streams {
                    builder.http2().max_concurrent_streams(max);
                }
                let service = TowerToHyperService::new(service);
                match acceptor {
                    Some(acceptor) => {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let _ = builder
                            .serve_connection_with_upgrades(TokioIo::new(tls), service)
                            .await;
                    }
                    None => {
                        let _ = builder
                            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                            .await;
                    }
                }
            });
        }
    });
    TestServer {
        addr,
        engine,
        rec,
        watch,
    }
}

/// A plain HTTP client with a timeout on every request.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

pub async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let res = client.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let res = client.post(url).body(body).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Opens a polling session; returns its sid.
pub async fn handshake(server: &TestServer, client: &reqwest::Client) -> String {
    let (status, body) = get(client, &server.url("EIO=4&transport=polling")).await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body[1..]).unwrap();
    json["sid"].as_str().unwrap().to_owned()
}

pub type WsClient =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn ws_connect(url: &str) -> WsClient {
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("WebSocket connect timed out")
        .unwrap();
    ws
}

/// Next text frame, skipping WebSocket-level ping/pong.
pub async fn next_text(ws: &mut WsClient) -> String {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message as Ws;
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no frame in time")
        {
            Some(Ok(Ws::Text(t))) => return t.to_string(),
            Some(Ok(Ws::Ping(_) | Ws::Pong(_))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads until the socket closes; returns the close code if a close frame came.
pub async fn wait_ws_close(ws: &mut WsClient) -> Option<u16> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message as Ws;
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("socket not closed in time")
        {
            Some(Ok(Ws::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// A WebSocket session opened directly; returns the client and its sid.
pub async fn ws_session(server: &TestServer) -> (WsClient, String) {
    let mut ws = ws_connect(&server.ws_url("EIO=4&transport=websocket")).await;
    let open = next_text(&mut ws).await;
    let json: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
    (ws, json["sid"].as_str().unwrap().to_owned())
}

fn workspace_root() -> std::path::PathBuf {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Node resolves NODE_PATH lexically: hand it a path without `..`.
    std::fs::canonicalize(&root).unwrap_or(root)
}

/// Runs `tests/js/SCRIPT` with the server's base URL and `args`, the npm packages of
/// `tests/node_modules` on NODE_PATH (`package` must be among them), and returns its last
/// output line as JSON; a line with an `error` key fails the test.
pub async fn run_node(
    script: &str,
    package: &str,
    server: &TestServer,
    args: &[&str],
) -> serde_json::Value {
    let node_modules = workspace_root().join("tests/node_modules");
    assert!(
        node_modules.join(package).is_dir(),
        "{package} missing from {}: run `npm ci` in tests/ (scripts/test does it)",
        node_modules.display()
    );
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/js")
        .join(script);
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(&path)
        .arg(format!("http://{}", server.addr))
        .args(args)
        .env("NODE_PATH", &node_modules)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("node {script} {args:?} did not finish within 60 s"))
        .unwrap_or_else(|e| panic!("cannot run `node` (is Node.js installed?): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "node printed nothing; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let value: serde_json::Value = serde_json::from_str(line).unwrap();
    assert!(
        value.get("error").is_none(),
        "node {script} {args:?} failed: {value}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    value
}
