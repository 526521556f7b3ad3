//! Headless Chromium (Debian's, driven by playwright-core) against the engine over HTTPS with a
//! self-signed certificate and HTTP/2 (ALPN): the page runs the official engine.io-client
//! bundle over WebSocket; the test asserts that the WebSocket really ran over an HTTP/2 stream
//! (RFC 8441 extended CONNECT, seen by the server) and that permessage-deflate was negotiated
//! and used (a 64 KiB message crossed the wire in a few KiB). Needs `chromium` (scripts/test
//! installs it); without it the test fails, it never skips.

use crate::common;

use std::convert::Infallible;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::self_signed;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use sockeye_engine::{
    CloseReason, DeflateConfig, Engine, EngineConfig, EngineHandler, Frame, Message, Session,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

fn root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::canonicalize(&root).unwrap_or(root)
}

const PAGE: &str = r#"<!doctype html><html><head><meta charset="utf-8"><title>pending</title></head>
<body><pre id="out"></pre><script src="/engine.io.min.js"></script><script>
const out = (m) => { document.getElementById("out").textContent += m + "\n"; console.log(m); };
const big = "sockeye over http/2 ".repeat(3277);
const socket = eio({ path: "/engine.io/", transports: ["websocket"] });
let step = 0;
socket.on("open", () => { out("open " + socket.transport.name); socket.send(big); });
socket.on("message", (data) => {
  step += 1;
  if (step === 1) {
    if (data !== big) { out("text echo differs"); document.title = "FAIL"; return; }
    out("text echo ok " + data.length);
    socket.send(new Uint8Array([1, 2, 3, 250]));
  } else if (step === 2) {
    const bytes = Array.from(new Uint8Array(data));
    out("binary echo " + JSON.stringify(bytes));
    document.title = JSON.stringify(bytes) === "[1,2,3,250]" ? "PASS" : "FAIL";
    socket.close();
  }
});
socket.on("close", (reason) => { out("close " + reason); if (step < 2) document.title = "FAIL"; });
</script></body></html>"#;

/// Echoes, and records how each session's WebSocket was asked for.
#[derive(Default)]
struct Recorder {
    opened: Mutex<Vec<(http::Version, http::Method, Option<String>)>>,
}

struct Echo(Arc<Recorder>);

impl EngineHandler for Echo {
    type Data = ();
    fn on_open(&self, session: &Arc<Session<()>>) {
        let request = session.request();
        let extensions = request
            .headers
            .get(http::header::SEC_WEBSOCKET_EXTENSIONS)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.0
            .opened
            .lock()
            .unwrap()
            .push((request.version, request.method.clone(), extensions));
    }
    async fn on_message(&self, session: &Arc<Session<()>>, message: Message) {
        let frame = match message {
            Message::Text(text) => {
                let mut packet = vec![b'4'];
                packet.extend_from_slice(&text);
                Frame::Text(packet.into())
            }
            Message::Binary(data) => Frame::Binary(data),
        };
        let _ = session.send(frame);
    }
    fn on_close(&self, _: &Arc<Session<()>>, _: CloseReason) {}
}

/// Counts the bytes the client sent (TLS records included).
struct Counted<S> {
    inner: S,
    bytes_in: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn chromium_runs_the_websocket_over_an_http2_stream_with_permessage_deflate() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} missing: scripts/test installs Debian's chromium (apt-get install chromium)"
    );
    let bundle = root().join("tests/node_modules/engine.io-client/dist/engine.io.min.js");
    let bundle = Bytes::from(std::fs::read(&bundle).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run npm ci in tests/ (scripts/test does it)",
            bundle.display()
        )
    }));
    let recorder = Arc::new(Recorder::default());
    let engine = Engine::new(
        Echo(Arc::clone(&recorder)),
        EngineConfig::builder()
            .ws_deflate(Some(DeflateConfig::default()))
            .build(),
    );
    let files = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let bundle = bundle.clone();
        async move {
            let (body, kind) = match req.uri().path() {
                "/" => (Bytes::from_static(PAGE.as_bytes()), "text/html"),
                "/engine.io.min.js" => (bundle, "application/javascript"),
                _ => (Bytes::new(), "text/plain"),
            };
            let mut res = http::Response::new(Full::new(body));
            res.headers_mut()
                .insert(http::header::CONTENT_TYPE, kind.parse().unwrap());
            Ok::<_, Infallible>(res)
        }
    });
    let service = tower::Layer::layer(&engine.layer(), files);
    let (tls, _) = self_signed();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bytes_in = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&bytes_in);
    let alpn = Arc::new(Mutex::new(Vec::new()));
    let seen_alpn = Arc::clone(&alpn);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, service, counter, seen_alpn) = (
                acceptor.clone(),
                service.clone(),
                Arc::clone(&counter),
                Arc::clone(&seen_alpn),
            );
            tokio::spawn(async move {
                let io = Counted {
                    inner: tcp,
                    bytes_in: counter,
                };
                let Ok(tls) = acceptor.accept(io).await else {
                    return;
                };
                seen_alpn
                    .lock()
                    .unwrap()
                    .push(tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec));
                let mut builder = Builder::new(TokioExecutor::new());
                builder.http2().enable_connect_protocol();
                let _ = builder
                    .serve_connection_with_upgrades(
                        TokioIo::new(tls),
                        TowerToHyperService::new(service),
                    )
                    .await;
            });
        }
    });
    let script = root().join("tests/engine/browser-engine.js");
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("node")
            .arg(&script)
            .arg(format!("https://127.0.0.1:{}/", addr.port()))
            .env("CHROMIUM", &chromium)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser script did not finish within 60 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| {
            panic!(
                "{e}: {stdout}\nstderr: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert_eq!(result["title"], "PASS", "{result}");
    assert_eq!(
        result["protocol"], "h2",
        "the page itself was not loaded over HTTP/2: {result}"
    );
    let opened = recorder.opened.lock().unwrap().clone();
    assert_eq!(opened.len(), 1, "{opened:?}");
    let (version, method, extensions) = &opened[0];
    assert_eq!(*version, http::Version::HTTP_2, "{opened:?}");
    assert_eq!(*method, http::Method::CONNECT, "{opened:?}");
    assert!(
        extensions
            .as_deref()
            .unwrap_or_default()
            .contains("permessage-deflate"),
        "Chromium did not offer permessage-deflate: {opened:?}"
    );
    // One TLS connection, h2: the page, the bundle and the WebSocket shared it.
    let alpn = alpn.lock().unwrap().clone();
    assert!(
        alpn.iter().all(|p| p.as_deref() == Some(&b"h2"[..])),
        "{alpn:?}"
    );
    // The 64 KiB text went up compressed: everything the browser sent is a few KiB.
    let sent = bytes_in.load(Ordering::Relaxed);
    assert!(sent < 16 * 1024, "the browser sent {sent} bytes");
}
