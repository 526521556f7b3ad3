//! RabbitMQ restarted under steady broadcasts, on a private RabbitMQ node (the shared one on
//! 5672 is never restarted): two sockeye nodes, node A broadcasting numbered events every few
//! milliseconds to a client on each node while the broker stops and starts again.
//!
//! What the test holds the bus to:
//! - every broadcast A's application saw fail is one `publish_failed`, every one that
//!   succeeded one `published` (exact counts);
//! - A's own client gets every broadcast, failed or not, in order (local delivery does not
//!   wait for the broker);
//! - both nodes reconnect once, declare their exchange and queue again on the empty broker,
//!   and B gets every broadcast published after it re-subscribed;
//! - B gets nothing twice and nothing out of order;
//! - what B misses is exactly: the failed publishes (except at most one, the publish whose
//!   confirm the stopping broker never sent), plus broadcasts confirmed before the stop that
//!   were still queued for B, plus broadcasts confirmed after A reconnected but before B's
//!   queue was bound again. The test prints each part.
//!
//! `amqp_connection_cut_redelivers_nothing_twice` cuts one node's connection instead, with the
//! broker up: what the broker delivers again is not handled twice.
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sockeye::SocketIo;
use sockeye_pybus::{PyBusConfig, PyBusError, PyBusFactory};
use sockeye_testkit::contract::serve;
use sockeye_testkit::sio::{Received, SioClient};
use tokio::process::{Child, Command};

/// A RabbitMQ node boots in 3-15 s here, depending on the load.
const BOOT: Duration = Duration::from_secs(40);
const WAIT: Duration = Duration::from_secs(15);

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A private RabbitMQ node: its own name, ports, config, database and logs in a temporary
/// directory, plugins off. Killed (and its directory removed) when dropped.
struct PrivateRabbit {
    dir: PathBuf,
    port: u16,
    dist_port: u16,
    /// The `rabbitmq-server` script; the Erlang VM is its child, found by the pid file.
    script: Option<Child>,
}

impl PrivateRabbit {
    /// `None` when RabbitMQ is not installed, outside CI; under CI=true that fails the test.
    fn new() -> Option<PrivateRabbit> {
        let exe = std::path::Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        if !exe.exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "rabbitmq-server (/usr/lib/rabbitmq/bin) is needed for the AMQP outage test (CI=true)"
            );
            eprintln!("rabbitmq-server is not installed: AMQP outage test not run");
            return None;
        }
        let port = free_port();
        let dist_port = free_port();
        let dir = std::env::temp_dir().join(format!("sockeye-pybus-rabbit-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"),
        )
        .unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        // The system's env file names the shared node; this one names nothing.
        std::fs::write(dir.join("env.conf"), "").unwrap();
        Some(PrivateRabbit {
            dir,
            port,
            dist_port,
            script: None,
        })
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("pid")
    }

    /// Starts the node and waits until it accepts AMQP connections; returns the boot time.
    async fn start(&mut self) -> Duration {
        let _ = std::fs::remove_file(self.pid_file());
        let d = &self.dir;
        let script = Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server")
            .env("HOME", d)
            .env("RABBITMQ_CONF_ENV_FILE", d.join("env.conf"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env(
                "RABBITMQ_NODENAME",
                format!("sockeye-test-{}@localhost", self.port),
            )
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_PID_FILE", self.pid_file())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot run rabbitmq-server");
        self.script = Some(script);
        let started = Instant::now();
        loop {
            // The listener opens at the end of the boot, once the node takes connections.
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
                && self.vm_pid().is_some()
            {
                return started.elapsed();
            }
            if let Some(script) = &mut self.script
                && let Ok(Some(status)) = script.try_wait()
            {
                panic!(
                    "the private RabbitMQ node exited while booting ({status}); logs in {}",
                    self.dir.display()
                );
            }
            assert!(
                started.elapsed() < BOOT,
                "the private RabbitMQ node did not start within {BOOT:?}; logs in {}",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn vm_pid(&self) -> Option<String> {
        let pid = std::fs::read_to_string(self.pid_file()).ok()?;
        let pid = pid.trim();
        (!pid.is_empty()).then(|| pid.to_owned())
    }

    fn signal(&self, signal: &str) {
        if let Some(pid) = self.vm_pid() {
            let _ = std::process::Command::new("kill")
                .args([signal, &pid])
                .status();
        }
    }

    /// Stops the node as an operator does (SIGTERM: connections are closed, the node shuts
    /// down) and waits until it is gone.
    async fn stop(&mut self) {
        self.signal("-TERM");
        let mut script = self.script.take().expect("the node runs");
        tokio::time::timeout(WAIT, script.wait())
            .await
            .expect("the private RabbitMQ node did not stop within 15 s")
            .unwrap();
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        if self.script.is_some() {
            self.signal("-KILL");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads the `n` events of one client until its `end` event; returns their numbers.
fn collect(mut client: SioClient) -> tokio::task::JoinHandle<Vec<u64>> {
    tokio::spawn(async move {
        let mut got = Vec::new();
        loop {
            match client.next(Duration::from_secs(90)).await {
                Some(Received::Event { name, args, .. }) if name == "n" => {
                    got.push(args.first().and_then(Value::as_u64).expect("a number"));
                }
                Some(Received::Event { name, .. }) if name == "end" => return got,
                Some(Received::Event { .. } | Received::Ack { .. }) => {}
                other => panic!("the client stopped reading: {other:?}"),
            }
        }
    })
}

async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Default)]
struct Outcomes {
    ok: Vec<u64>,
    failed: Vec<u64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_outage() {
    let Some(mut rabbit) = PrivateRabbit::new() else {
        return;
    };
    let first_boot = rabbit.start().await;
    let url = rabbit.url();
    let config = || {
        PyBusConfig::new(url.clone())
            .channel("sockeye-amqp-outage")
            .command_timeout(Duration::from_secs(1))
    };
    let a = PyBusFactory::connect(config()).await.unwrap();
    let b = PyBusFactory::connect(config()).await.unwrap();
    let io_a = SocketIo::builder().adapter(a.clone()).build();
    let io_b = SocketIo::builder().adapter(b.clone()).build();
    io_a.ns("/", || async {});
    io_b.ns("/", || async {});
    let (addr_a, server_a) = serve(&io_a).await;
    let (addr_b, server_b) = serve(&io_b).await;
    let mut here = SioClient::connected(addr_a, "/", None, WAIT).await.unwrap();
    let mut there = SioClient::connected(addr_b, "/", None, WAIT).await.unwrap();
    io_a.emit("n", &0).await.unwrap();
    assert_eq!(there.event("n", WAIT).await, Some(vec![json!(0)]));
    assert_eq!(here.event("n", WAIT).await, Some(vec![json!(0)]));
    let here = collect(here);
    let there = collect(there);

    // Node A broadcasts 1, 2, 3, ... one after the other, each awaited, every 5 ms.
    let outcomes = Arc::new(std::sync::Mutex::new(Outcomes::default()));
    let next = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let emitter = {
        let (io, outcomes, next, stop) =
            (io_a.clone(), outcomes.clone(), next.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let k = next.load(Ordering::SeqCst);
                let result = io.emit("n", &k).await;
                let published = match result {
                    Ok(()) => true,
                    Err(sockeye::EmitError::Adapter(e)) => {
                        assert!(
                            matches!(
                                PyBusError::in_adapter_error(&e),
                                Some(PyBusError::NotPublished {
                                    what: "broadcast",
                                    ..
                                })
                            ),
                            "a failed broadcast is a NotPublished error: {e}"
                        );
                        false
                    }
                    Err(e) => panic!("expected an adapter error, got {e:?}"),
                };
                {
                    let mut o = outcomes.lock().unwrap();
                    if published {
                        o.ok.push(k);
                    } else {
                        o.failed.push(k);
                    }
                }
                next.store(k + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let oks = || outcomes.lock().unwrap().ok.len();
    let fails = || outcomes.lock().unwrap().failed.len();
    wait_until("100 broadcasts before the outage", || oks() >= 100).await;

    let stopping = Instant::now();
    rabbit.stop().await;
    let stop_time = stopping.elapsed();
    wait_until("a broadcast failing during the outage", || fails() >= 1).await;
    let second_boot = rabbit.start().await;
    for (node, f) in [("A", &a), ("B", &b)] {
        wait_until(&format!("node {node} re-subscribed"), || {
            f.stats().reconnects == 1
        })
        .await;
        assert!(f.ready(WAIT).await, "node {node} subscribed again");
    }
    // From here on, B's queue is bound again: every broadcast that succeeds must reach it.
    let resubscribed = next.load(Ordering::SeqCst) + 1;
    let oks_then = oks();
    wait_until("100 broadcasts after the outage", || {
        oks() >= oks_then + 100
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    emitter.await.unwrap();
    io_a.emit("end", &()).await.unwrap();
    let here = tokio::time::timeout(WAIT, here).await.unwrap().unwrap();
    let there = tokio::time::timeout(WAIT, there).await.unwrap().unwrap();

    let Outcomes { ok, failed } = std::mem::take(&mut *outcomes.lock().unwrap());
    let last = next.load(Ordering::SeqCst) - 1;
    let stats = a.stats();
    eprintln!(
        "private RabbitMQ: boot {first_boot:?}, stop {stop_time:?}, restart {second_boot:?}; \
         broadcasts 1..={last}: {} confirmed, {} failed; A {stats:?}; B {:?}",
        ok.len(),
        failed.len(),
        b.stats()
    );

    // The application saw every failure, and the counters say exactly that.
    assert_eq!(ok.len() + failed.len(), usize::try_from(last).unwrap());
    assert!(!failed.is_empty());
    assert_eq!(stats.publish_failed, failed.len() as u64, "{stats:?}");
    // The warm-up, the confirmed broadcasts and the end.
    assert_eq!(stats.published, ok.len() as u64 + 2, "{stats:?}");
    // The failures are one stretch: the outage.
    let (first_fail, last_fail) = (failed[0], *failed.last().unwrap());
    assert_eq!(
        failed,
        (first_fail..=last_fail).collect::<Vec<_>>(),
        "the failed broadcasts are the outage's"
    );
    assert!(
        resubscribed > last_fail,
        "A published again before B was back"
    );
    // The restarted broker had no queue left to deliver anything again from.
    assert_eq!(b.stats().duplicates, 0, "{:?}", b.stats());

    // Local delivery never waits for the broker.
    assert_eq!(here, (1..=last).collect::<Vec<_>>(), "A's client gets all");

    // B: nothing twice, nothing out of order, everything after it re-subscribed.
    assert!(
        there.windows(2).all(|w| w[0] < w[1]),
        "B got a broadcast twice or out of order: {there:?}"
    );
    assert!(there.iter().all(|k| (1..=last).contains(k)), "{there:?}");
    let got = |k: &u64| there.binary_search(k).is_ok();
    let late: Vec<u64> = ok
        .iter()
        .copied()
        .filter(|k| *k >= resubscribed && !got(k))
        .collect();
    assert!(
        late.is_empty(),
        "B missed broadcasts after it re-subscribed: {late:?}"
    );

    // What B lost, part by part.
    let failed_but_delivered: Vec<u64> = failed.iter().copied().filter(got).collect();
    assert!(
        failed_but_delivered.is_empty() || failed_but_delivered == [first_fail],
        "only the broadcast in flight when the broker stopped may fail yet arrive: {failed_but_delivered:?}"
    );
    let queued_at_stop = ok.iter().filter(|k| **k < first_fail && !got(k)).count();
    let before_rebind = ok
        .iter()
        .filter(|k| **k > last_fail && **k < resubscribed && !got(k))
        .count();
    let lost = usize::try_from(last).unwrap() - there.len();
    assert_eq!(
        lost,
        failed.len() - failed_but_delivered.len() + queued_at_stop + before_rebind,
        "B's losses are the failed broadcasts and the ones in flight"
    );
    eprintln!(
        "B lost {lost}: {} failed (and {} failed yet delivered), {queued_at_stop} confirmed but \
         still queued at the stop, {before_rebind} confirmed before its queue was bound again",
        failed.len() - failed_but_delivered.len(),
        failed_but_delivered.len(),
    );

    a.close();
    b.close();
    server_a.abort();
    server_b.abort();
    rabbit.stop().await;
}

/// Node B's connection to the (shared, never restarted) RabbitMQ is cut while broadcasts flow,
/// after its acknowledgements stopped reaching the broker: the broker delivers those messages
/// again when B's consumer is back on its queue. B must handle each broadcast once, in order,
/// and lose none (its queue outlived the cut).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_connection_cut_redelivers_nothing_twice() {
    use sockeye_testkit::{Direction, Fault, FaultProxy};
    let proxy = FaultProxy::start("127.0.0.1:5672".parse().unwrap())
        .await
        .unwrap();
    let channel = format!("sockeye-amqp-cut-{}", free_port());
    let config = |url: String| {
        PyBusConfig::new(url)
            .channel(channel.clone())
            .command_timeout(Duration::from_secs(2))
    };
    let broker = "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned();
    let a = PyBusFactory::connect(config(broker))
        .await
        .expect("the RabbitMQ at 127.0.0.1:5672 is needed");
    let b = PyBusFactory::connect(config(format!("amqp://guest:guest@{}/%2f", proxy.addr())))
        .await
        .unwrap();
    let io_a = SocketIo::builder().adapter(a.clone()).build();
    let io_b = SocketIo::builder().adapter(b.clone()).build();
    io_a.ns("/", || async {});
    io_b.ns("/", || async {});
    let (_, server_a) = serve(&io_a).await;
    let (addr_b, server_b) = serve(&io_b).await;
    let mut there = SioClient::connected(addr_b, "/", None, WAIT).await.unwrap();
    io_a.emit("n", &0).await.unwrap();
    assert_eq!(there.event("n", WAIT).await, Some(vec![json!(0)]));
    let there = collect(there);

    let mut k = 1u64;
    let mut emit_until = async |n: u64| {
        while k <= n {
            io_a.emit("n", &k).await.unwrap();
            k += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    emit_until(100).await;
    // B keeps receiving and handling, but its acks stop at the proxy; then the cut.
    proxy.set(Direction::Up, Fault::Pause);
    emit_until(150).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received_before_cut = b.stats().received;
    proxy.reset_all();
    proxy.heal();
    emit_until(200).await;
    wait_until("B re-subscribed", || b.stats().reconnects == 1).await;
    assert!(b.ready(WAIT).await);
    emit_until(300).await;
    io_a.emit("end", &()).await.unwrap();
    let there = tokio::time::timeout(WAIT, there).await.unwrap().unwrap();
    let stats = b.stats();
    eprintln!("B received {received_before_cut} before the cut; B {stats:?}");
    assert!(
        received_before_cut >= 150,
        "B handled the broadcasts whose acks were held"
    );
    assert_eq!(
        there,
        (1..=300).collect::<Vec<_>>(),
        "B gets every broadcast once, in order"
    );
    // The acks of 101..=150 were held, give or take the few that crossed the proxy while
    // the pause was taking effect (49 seen once) and a few earlier ones still on their way.
    // The exact-once check is the one above; this one shows the redelivery path ran.
    assert!(
        (40..=60).contains(&stats.duplicates),
        "the broker delivered the unacknowledged broadcasts again, dropped: {stats:?}"
    );
    assert_eq!(stats.received, 302, "0, 1..=300 and the end: {stats:?}");

    a.close();
    b.close();
    server_a.abort();
    server_b.abort();
}
