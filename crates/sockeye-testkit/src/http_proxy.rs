//! An HTTP forward proxy on 127.0.0.1 for client tests: CONNECT tunnels (RFC 9110 §9.3.6)
//! and absolute-form requests (`GET http://host/path`), with optional Basic credentials
//! (407 without them), recording what it was asked.
//!
//! A forwarded (absolute-form) request goes upstream with `Connection: close`, so each client
//! connection carries one request and its answer; a CONNECT tunnel carries anything until
//! either side closes. Only loopback upstreams are accepted.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Longest request head the proxy reads.
const MAX_HEAD: usize = 16 * 1024;

/// What the proxy was asked, one entry per client connection's first request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// `CONNECT`, `GET`, `POST`...
    pub method: String,
    /// The request target: `host:port` for CONNECT, the absolute URL otherwise.
    pub target: String,
    /// Whether the request carried the right credentials (always true without credentials).
    pub authorized: bool,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct HttpProxy {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<ProxyRequest>>>,
    stop: CancellationToken,
}

impl HttpProxy {
    /// Starts a proxy on an ephemeral loopback port; with `credentials` (`user`, `password`),
    /// requests without the matching `Proxy-Authorization: Basic` get 407.
    pub async fn start(credentials: Option<(&str, &str)>) -> std::io::Result<HttpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let expected = credentials.map(|(user, password)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        });
        let task_log = Arc::clone(&log);
        let task_stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = task_stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                let log = Arc::clone(&task_log);
                let expected = expected.clone();
                let stop = task_stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = stop.cancelled() => {}
                        _ = serve(client, log, expected) => {}
                    }
                });
            }
        });
        Ok(HttpProxy { addr, log, stop })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://[user:password@]127.0.0.1:port`, to give a client.
    pub fn url(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("http://{user}:{password}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// Everything asked so far.
    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Reads a request head; `None` if the client went away or sent garbage.
async fn read_head(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return None;
        }
        head.push(client.read_u8().await.ok()?);
    }
    Some(head)
}

async fn serve(
    mut client: TcpStream,
    log: Arc<Mutex<Vec<ProxyRequest>>>,
    expected: Option<String>,
) -> std::io::Result<()> {
    let Some(head) = read_head(&mut client).await else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let header = |name: &str| {
        text.split("\r\n").skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let authorized = match &expected {
        None => true,
        Some(expected) => header("proxy-authorization").as_deref() == Some(expected.as_str()),
    };
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(ProxyRequest {
            method: method.clone(),
            target: target.clone(),
            authorized,
        });
    if !authorized {
        client
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"sockeye-test\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    }
    let authority = if method == "CONNECT" {
        target.clone()
    } else {
        let Some(rest) = target.strip_prefix("http://") else {
            client
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await?;
            return Ok(());
        };
        rest.split('/').next().unwrap_or_default().to_owned()
    };
    let upstream_addr: Option<SocketAddr> = tokio::net::lookup_host(&authority)
        .await
        .ok()
        .and_then(|mut addrs| addrs.find(|a| a.ip().is_loopback()));
    let Some(upstream_addr) = upstream_addr else {
        client
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    let mut upstream = match TcpStream::connect(upstream_addr).await {
        Ok(upstream) => upstream,
        Err(_) => {
            client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                .await?;
            return Ok(());
        }
    };
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    if method == "CONNECT" {
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
    } else {
        // Origin form, without the proxy's own headers.
        let path = target
            .strip_prefix("http://")
            .and_then(|rest| rest.find('/').map(|i| rest.get(i..).unwrap_or("/")))
            .unwrap_or("/");
        let version = parts.next().unwrap_or("HTTP/1.1");
        let mut forwarded = format!("{method} {path} {version}\r\n");
        for line in lines.filter(|l| !l.is_empty()) {
            let name = line.split(':').next().unwrap_or_default().trim();
            if name.eq_ignore_ascii_case("proxy-authorization")
                || name.eq_ignore_ascii_case("proxy-connection")
                || name.eq_ignore_ascii_case("connection")
                || name.eq_ignore_ascii_case("keep-alive")
            {
                continue;
            }
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
        forwarded.push_str("Connection: close\r\n\r\n");
        upstream.write_all(forwarded.as_bytes()).await?;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    Ok(())
}
