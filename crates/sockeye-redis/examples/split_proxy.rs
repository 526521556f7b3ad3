//! Benchmark helper: a loopback TCP proxy that hands accepted connections to its backends in
//! turn (1st to the first backend, 2nd to the second, ...), so a load generator that knows one
//! URL spreads its sockets over several sockeye nodes sharing Redis (see docs/redis.md,
//! "Figures"). Every connection is a plain byte pipe; nothing is parsed.
//!
//! `cargo run --release -p sockeye-redis --example split_proxy -- LISTEN_PORT BACKEND_PORT...`
//! Prints `listening on 127.0.0.1:<port>` once it accepts.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use tokio::net::{TcpListener, TcpStream};

fn ports() -> Result<(u16, Vec<SocketAddr>), String> {
    let usage = "usage: split_proxy LISTEN_PORT BACKEND_PORT [BACKEND_PORT...] (all on 127.0.0.1)";
    let mut ports = std::env::args().skip(1).map(|a| {
        a.parse::<u16>()
            .map_err(|e| format!("{a:?} is not a port: {e}; {usage}"))
    });
    let listen = ports.next().ok_or(usage)??;
    let backends = ports
        .map(|p| p.map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p))))
        .collect::<Result<Vec<_>, _>>()?;
    if backends.is_empty() {
        return Err(usage.to_owned());
    }
    Ok((listen, backends))
}

async fn pipe(client: TcpStream, backend: SocketAddr) {
    let mut client = client;
    let mut server = match TcpStream::connect(backend).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("split_proxy: backend {backend} refused: {e}");
            return;
        }
    };
    // Small Socket.IO frames must not wait for delayed ACKs on either leg.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

fn main() -> ExitCode {
    let (listen, backends) = match ports() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("split_proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, listen)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("split_proxy: cannot listen on port {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(addr) => println!("listening on {addr}"),
            Err(e) => eprintln!("split_proxy: local address unknown: {e}"),
        }
        let mut next = 0usize;
        loop {
            match listener.accept().await {
                Ok((tcp, _)) => {
                    let backend = backends[next % backends.len()];
                    next = next.wrapping_add(1);
                    tokio::spawn(pipe(tcp, backend));
                }
                Err(e) => {
                    eprintln!("split_proxy: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    })
}
