//! A bare Engine.IO echo server for the protocol-reach measurements (docs/benchmarks.md,
//! `scripts/bench-protocol-reach.sh`): HTTP/1.1, h2c with extended CONNECT, optional
//! permessage-deflate, HTTP compression of polling answers on unless told otherwise. It counts
//! the bytes of every TCP connection and answers `stats` on stdin with one JSON line:
//! `{"rss_kb", "cpu_us", "bytes_in", "bytes_out", "sessions"}`.
//!
//! `cargo run --release -p sockeye-engine --example bench_server -- [--deflate]
//! [--no-http-compression] [--max-streams N]`; prints `PORT <n>`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use sockeye_engine::{
    CloseReason, DeflateConfig, Engine, EngineConfig, EngineHandler, Frame, Message, Session,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, ReadBuf};

struct Echo;

impl EngineHandler for Echo {
    type Data = ();
    fn on_open(&self, _: &Arc<Session<()>>) {}
    async fn on_message(&self, session: &Arc<Session<()>>, message: Message) {
        let frame = match message {
            Message::Text(text) => {
                let mut packet = Vec::with_capacity(text.len() + 1);
                packet.push(b'4');
                packet.extend_from_slice(&text);
                Frame::Text(packet.into())
            }
            Message::Binary(data) => Frame::Binary(data),
        };
        let _ = session.send(frame);
    }
    fn on_close(&self, _: &Arc<Session<()>>, _: CloseReason) {}
}

#[derive(Default)]
struct Counters {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// A TCP stream that counts what crosses it.
struct Counted<S> {
    inner: S,
    counters: Arc<Counters>,
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
        self.counters.bytes_in.fetch_add(n, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            self.counters
                .bytes_out
                .fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Resident set size (kB) of this process, and the CPU time (µs) of all its threads: the
/// sum of `/proc/self/task/*/schedstat` (nanosecond run time, not 10 ms ticks).
fn rss_and_cpu() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let mut nanos: u64 = 0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            nanos += stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    (rss, nanos / 1000)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u32>().ok())
    };
    let mut config = EngineConfig::builder()
        .path("/engine.io/")
        .ping_interval(Duration::from_secs(25))
        .ping_timeout(Duration::from_secs(20));
    if flag("--deflate") {
        config = config.ws_deflate(Some(DeflateConfig::default()));
    }
    if flag("--no-http-compression") {
        config = config.http_compression(None);
    }
    let max_streams = value("--max-streams").unwrap_or(200);
    let engine = Engine::new(Echo, config.build());
    let counters = Arc::new(Counters::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("PORT {}", listener.local_addr()?.port());
    let service = engine.service();
    let accept_counters = Arc::clone(&counters);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let io = Counted {
                inner: tcp,
                counters: Arc::clone(&accept_counters),
            };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let mut builder = Builder::new(TokioExecutor::new());
                builder
                    .http2()
                    .enable_connect_protocol()
                    .max_concurrent_streams(max_streams);
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(io), service)
                    .await;
            });
        }
    });
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() == "stats" {
            let (rss_kb, cpu_us) = rss_and_cpu();
            println!(
                "{{\"rss_kb\":{rss_kb},\"cpu_us\":{cpu_us},\"bytes_in\":{},\"bytes_out\":{},\"sessions\":{}}}",
                counters.bytes_in.load(Ordering::Relaxed),
                counters.bytes_out.load(Ordering::Relaxed),
                engine.session_count()
            );
        }
    }
    Ok(())
}
