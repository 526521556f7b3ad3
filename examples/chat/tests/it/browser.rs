//! Starts the `chat` binary and drives the page in headless Chromium (tests/browser/chat.js),
//! which loads the Socket.IO client that `npm ci` installed in `examples/chat`.
//! Skipped with a message when `chromium` (or, for the two-node test, Redis) is missing, unless
//! `CI=true` (then it fails).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

/// The shared Redis of the test machines.
const REDIS_ADDR: &str = "127.0.0.1:6379";

/// Two headless browsers at once are too much for the shared 2-core machine: one at a time.
static BROWSER: Mutex<()> = Mutex::new(());

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Chromium, or `None` after printing why the test is skipped (a panic under `CI=true`).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        !ci(),
        "chromium is missing: install it with `apt-get install -y chromium` (scripts/test does)"
    );
    eprintln!("SKIPPED: chromium is missing (apt-get install -y chromium)");
    None
}

/// True if Redis answers PING at `REDIS_ADDR`; a panic under `CI=true` when it does not.
fn redis_available() -> bool {
    let ping = || -> std::io::Result<bool> {
        let addr: SocketAddr = REDIS_ADDR.parse().expect("constant address");
        let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        tcp.set_read_timeout(Some(Duration::from_secs(3)))?;
        tcp.write_all(b"PING\r\n")?;
        let mut reply = [0u8; 7];
        tcp.read_exact(&mut reply)?;
        Ok(&reply == b"+PONG\r\n")
    };
    let ok = ping().unwrap_or(false);
    if !ok {
        assert!(
            !ci(),
            "Redis is not reachable at {REDIS_ADDR}; the two-node chat test needs it (CI=true)"
        );
        eprintln!("SKIPPED: Redis is not reachable at {REDIS_ADDR} (CI=true makes this a failure)");
    }
    ok
}

/// Starts the chat binary on an ephemeral port with `env`; returns it and its URL.
fn start_chat(env: &[(&str, &str)]) -> (Server, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat"));
    cmd.env("PORT", "0")
        .env("RUST_LOG", "warn")
        .env_remove("REDIS_URL")
        .env_remove("REDIS_KEY")
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("cannot start the chat binary");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("chat listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the chat binary did not print its address within 30 s (see its stderr)");
    (server, url)
}

/// Runs tests/browser/chat.js: alice's tab on `urls[0]`, bob's on the last URL.
fn run_browser(chromium: &Path, urls: &[&str], shot_name: &str) {
    run_browser_with(chromium, urls, shot_name, &[]);
}

/// [`run_browser`] with extra environment variables for the script.
fn run_browser_with(chromium: &Path, urls: &[&str], shot_name: &str, env: &[(&str, &str)]) {
    let root = root();
    assert!(
        root.join("tests/node_modules/playwright-core").is_dir(),
        "tests/node_modules/playwright-core is missing: run `npm ci` in tests/ (scripts/test does)"
    );
    // The page must get the client from the chat server (npm's copy): the browser reaches
    // nothing but loopback, so its CDN fallback cannot load.
    assert!(
        chat::client_js_path().is_file(),
        "{} is missing: run `npm ci` in examples/chat (scripts/test does)",
        chat::client_js_path().display()
    );
    let _one_browser = BROWSER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let shot = root.join("target/browser").join(shot_name);
    let _ = std::fs::remove_file(&shot);
    let mut node = Command::new("node");
    node.arg(root.join("tests/browser/chat.js"))
        .arg(urls[0])
        .arg(&shot)
        .args(&urls[1..])
        .envs(env.iter().copied())
        .env("CHROMIUM", chromium);
    let mut node = node
        .spawn()
        .expect("cannot run node: is Node.js installed?");
    // The script bounds each wait at 20 s; this bounds the whole run.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = node.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = node.kill();
            let _ = node.wait();
            panic!("the browser test did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "browser test failed: {status}");
    assert!(shot.exists(), "no screenshot at {}", shot.display());
}

#[test]
fn two_tabs_chat_in_headless_chromium() {
    let Some(chromium) = chromium() else { return };
    let (server, url) = start_chat(&[]);
    run_browser(&chromium, &[&url], "chat.png");
    drop(server);
}

/// Issue 7: two chat processes sharing Redis are one chat. alice's tab is served by node A,
/// bob's by node B; bob's join and alice's message cross nodes through Redis.
#[test]
fn two_nodes_share_the_chat_through_redis() {
    let Some(chromium) = chromium() else { return };
    if !redis_available() {
        return;
    }
    // A prefix of our own: other runs and other tests on the shared Redis never hear us.
    let key = format!(
        "sockeye-chat-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let redis_url = format!("redis://{REDIS_ADDR}");
    let env = [
        ("REDIS_URL", redis_url.as_str()),
        ("REDIS_KEY", key.as_str()),
    ];
    let (node_a, url_a) = start_chat(&env);
    let (node_b, url_b) = start_chat(&env);
    assert_ne!(url_a, url_b, "the two nodes must listen on two ports");
    run_browser(&chromium, &[&url_a, &url_b], "chat-two-nodes.png");
    drop((node_a, node_b));
}

/// What the HTTPS server saw of each request: HTTP version, method, path and query.
type Seen = std::sync::Arc<Mutex<Vec<(http::Version, http::Method, String)>>>;

/// The chat app (one node) over HTTPS with a self-signed certificate, ALPN `h2` and
/// `http/1.1`, extended CONNECT enabled; every request recorded in `seen`.
async fn serve_https(seen: Seen) -> String {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        cert.signing_key.serialize_der(),
    ));
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
    let (router, _io) = chat::app();
    let router = router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let seen = seen.clone();
            async move {
                let path = req.uri().path_and_query().map(ToString::to_string);
                seen.lock().unwrap().push((
                    req.version(),
                    req.method().clone(),
                    path.unwrap_or_default(),
                ));
                next.run(req).await
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut builder =
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                builder.http2().enable_connect_protocol();
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    format!("https://{addr}")
}

/// Issue 15: the chat page over HTTPS (self-signed) and HTTP/2. Chromium reuses the page's
/// HTTP/2 connection for the Socket.IO WebSocket (RFC 8441 extended CONNECT): the server must
/// see the upgrade as an HTTP/2 CONNECT, and no HTTP/1.1 request at all.
#[test]
fn the_chat_page_over_https_runs_its_websocket_on_an_http2_stream() {
    let Some(chromium) = chromium() else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let seen = Seen::default();
    let url = runtime.block_on(serve_https(seen.clone()));
    run_browser_with(
        &chromium,
        &[&url],
        "chat-h2.png",
        &[("CHAT_SELF_SIGNED", "1")],
    );
    let seen = seen.lock().unwrap().clone();
    let websockets: Vec<_> = seen
        .iter()
        .filter(|(_, _, path)| path.contains("transport=websocket"))
        .collect();
    assert!(
        !websockets.is_empty(),
        "no WebSocket request reached the server: {seen:?}"
    );
    assert!(
        websockets
            .iter()
            .all(|(v, m, _)| *v == http::Version::HTTP_2 && *m == http::Method::CONNECT),
        "a WebSocket did not use an HTTP/2 extended CONNECT: {websockets:?}"
    );
    assert!(
        seen.iter().all(|(v, _, _)| *v == http::Version::HTTP_2),
        "a request went over HTTP/1.1: {seen:?}"
    );
    drop(runtime);
}
