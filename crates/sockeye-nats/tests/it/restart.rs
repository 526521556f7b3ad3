//! A private `nats-server` (the shared one must never be restarted) killed and started again
//! on the same port while one node broadcasts steadily: nothing reaches a client twice or out
//! of order, every emit that failed was an error to the application, and every emit that was
//! accepted but never arrived is counted as missed by the receiving node.
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sockeye::SocketIo;
use sockeye_nats::NatsAdapterFactory;
use sockeye_testkit::contract::{WAIT, serve};
use sockeye_testkit::sio::SioClient;

use crate::common::{config, init_tracing, settle, unique};

/// A private server on `port`; killed on drop.
struct Server(Child);

impl Server {
    fn start(port: u16) -> Server {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("nats-server (the NATS server binary) is needed: {e}"));
        Server(child)
    }

    async fn wait_listening(port: u16) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

async fn node(factory: &NatsAdapterFactory) -> (SocketIo, std::net::SocketAddr) {
    use sockeye::prelude::*;
    let io = SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
        .adapter(factory.clone())
        .build();
    io.ns("/", |_socket: SocketRef| async move {});
    let (addr, _server) = serve(&io).await;
    (io, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restarted_during_steady_broadcasts() {
    init_tracing();
    let port = free_port();
    let mut server = Server::start(port);
    Server::wait_listening(port).await;
    let url = format!("nats://127.0.0.1:{port}");
    let prefix = unique("restart");
    let connect = || async {
        NatsAdapterFactory::connect(config(&url, &prefix, false))
            .await
            .unwrap_or_else(|e| panic!("private nats-server: {e}"))
    };
    let (a, b) = (connect().await, connect().await);
    let (io_a, _) = node(&a).await;
    let (_io_b, addr_b) = node(&b).await;
    settle(&[a.clone(), b.clone()]).await;
    let mut client = SioClient::connected(addr_b, "/", None, WAIT).await.unwrap();

    // Node A emits every 10 ms; each outcome is kept.
    let outcomes: Arc<Mutex<Vec<bool>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let emitter = {
        let (outcomes, stop, io_a) = (outcomes.clone(), stop.clone(), io_a.clone());
        tokio::spawn(async move {
            let mut i = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let ok = io_a.emit("n", &i).await.is_ok();
                outcomes.lock().unwrap().push(ok);
                i += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let received: Arc<Mutex<Vec<i64>>> = Arc::default();
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            while let Some(args) = client.event("n", Duration::from_secs(8)).await {
                received.lock().unwrap().push(args[0].as_i64().unwrap());
            }
        })
    };
    let count = |r: &Arc<Mutex<Vec<i64>>>| r.lock().unwrap().len();
    let deadline = tokio::time::Instant::now() + WAIT;
    while count(&received) < 20 {
        assert!(tokio::time::Instant::now() < deadline, "no steady traffic");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(server);
    tokio::time::sleep(Duration::from_millis(700)).await;
    server = Server::start(port);
    Server::wait_listening(port).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while a.stats().reconnects == 0 || b.stats().reconnects == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nodes did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Traffic flows again after the restart.
    let before = count(&received);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while count(&received) < before + 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "traffic did not resume"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    emitter.await.unwrap();
    reader.await.unwrap();

    let outcomes = outcomes.lock().unwrap().clone();
    let received = received.lock().unwrap().clone();
    assert!(
        received.windows(2).all(|w| w[0] < w[1]),
        "in order, none twice: {received:?}"
    );
    let failed = outcomes.iter().filter(|ok| !**ok).count() as u64;
    assert!(failed > 0, "the outage was noticed by the emitter");
    assert_eq!(a.stats().publish_failed, failed, "each failure an error");
    for &n in &received {
        assert!(
            outcomes[usize::try_from(n).unwrap()],
            "{n} arrived though its emit failed"
        );
    }
    let last = *received.last().unwrap();
    let accepted_not_received = (0..last)
        .filter(|&n| outcomes[usize::try_from(n).unwrap()] && !received.contains(&n))
        .count() as u64;
    assert_eq!(
        b.stats().missed,
        accepted_not_received,
        "every accepted emit that never arrived is counted (failed: {failed}, received: {})",
        received.len()
    );
    tracing::info!(
        failed,
        accepted_not_received,
        received = received.len(),
        "restart outcome"
    );
    drop(server);
}
