//! Streams-mode faults: Redis restarted under steady broadcasts (kept on disk, then lost), a
//! node killed while a broadcast with acks waits for its clients, and recovery attempts that
//! must restore nothing.
//!
//! The restart test runs its own `redis-server` on a free port (never the shared 6379).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sockeye::{RecoveryConfig, SocketIo, SocketRef};
use sockeye_redis::RedisConfig;
use sockeye_redis::streams::{StreamsAdapterFactory, StreamsConfig};
use sockeye_testkit::sio::{Received, SioClient};
use tokio::process::{Child, Command};

use crate::common::{self, SHARED_URL, WAIT, redis_available};
use crate::faults::spare_port;
use crate::streams_contract::unique;

/// A `redis-server` on `port` keeping its snapshot in `dir` (written only by `SHUTDOWN SAVE`).
async fn start_redis(port: u16, dir: &Path) -> Child {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--dbfilename",
            "dump.rdb",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot run redis-server: is it installed?");
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(client) = redis::Client::open(url.as_str())
            && let Ok(Ok(mut conn)) = tokio::time::timeout(
                Duration::from_secs(1),
                client.get_multiplexed_async_connection(),
            )
            .await
            && redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok()
        {
            return child;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "private redis-server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn private_config(url: &str, prefix: &str) -> StreamsConfig {
    StreamsConfig::new(
        RedisConfig::new(url)
            .request_timeout(Duration::from_secs(3))
            .command_timeout(Duration::from_secs(1))
            .reconnect_backoff(Duration::from_millis(50), Duration::from_millis(300)),
    )
    .stream_name(format!("{prefix}-stream"))
    .channel_prefix(prefix.to_owned())
    .session_key_prefix(format!("{prefix}:session:"))
    .block_time(Duration::from_secs(1))
}

struct Node {
    io: SocketIo,
    adapter: StreamsAdapterFactory,
    addr: SocketAddr,
}

async fn node(config: StreamsConfig) -> Node {
    let adapter = StreamsAdapterFactory::connect(config).await.unwrap();
    let io = SocketIo::builder()
        .adapter(adapter.clone())
        .connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(30),
            ..RecoveryConfig::default()
        })
        .build();
    io.ns("/", |_s: SocketRef| async {})
        .on("join", |s: SocketRef, e: sockeye::Event| async move {
            s.join(e.args.first::<String>().unwrap_or_default());
            json!("ok")
        });
    assert!(adapter.ready(WAIT).await, "streams adapter not ready");
    let addr = common::serve(&io).await;
    Node { io, adapter, addr }
}

/// Records the `tick` numbers a client receives, in order, until `stop`.
fn record_ticks(mut client: SioClient, stop: Arc<AtomicBool>) -> Arc<Mutex<Vec<i64>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let out = got.clone();
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            match client.next(Duration::from_millis(200)).await {
                Some(Received::Event { name, args, .. }) if name == "tick" => {
                    if let Some(i) = args.first().and_then(Value::as_i64) {
                        out.lock().unwrap().push(i);
                    }
                }
                Some(Received::Closed) => return,
                _ => {}
            }
        }
    });
    got
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn last_of(list: &Arc<Mutex<Vec<i64>>>) -> i64 {
    list.lock().unwrap().last().copied().unwrap_or(-1)
}

/// Redis restarted twice under steady broadcasts from node A, read by nodes A and B. First
/// with its data kept (`SHUTDOWN SAVE`, reloaded): each reader resumes from its last id, no
/// gap, nothing missed or twice. Then killed and started empty: the readers resume with the
/// new entries, each counts one gap (and logs it), nothing is delivered twice, and B misses at
/// most the last entries before the kill it had not read yet. A recovery attempt while Redis
/// is down gets a fresh session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarts_under_broadcasts_resume_without_duplicates_and_count_the_gap() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let port = spare_port();
    let url = format!("redis://127.0.0.1:{port}");
    let dir: PathBuf = std::env::temp_dir().join(unique("streams-restart"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis = start_redis(port, &dir).await;
    let prefix = unique("streams-restart");
    let a = node(private_config(&url, &prefix)).await;
    let b = node(private_config(&url, &prefix)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let on_a = record_ticks(
        SioClient::connected(a.addr, "/", None, WAIT).await.unwrap(),
        stop.clone(),
    );
    let on_b = record_ticks(
        SioClient::connected(b.addr, "/", None, WAIT).await.unwrap(),
        stop.clone(),
    );
    // The recovering client: connected to A, it gets an offset from the ticks.
    let mut recovering = SioClient::connected(a.addr, "/", None, WAIT).await.unwrap();

    // Steady broadcasts from A: tick i every 15 ms, each result kept.
    let results: Arc<Mutex<Vec<bool>>> = Arc::new(Mutex::new(Vec::new()));
    let ticker = {
        let (io, results, stop) = (a.io.clone(), results.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i: i64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let ok = io.emit("tick", &i).await.is_ok();
                results.lock().unwrap().push(ok);
                i += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let sent =
        |results: &Arc<Mutex<Vec<bool>>>| i64::try_from(results.lock().unwrap().len()).unwrap();
    wait_until("ticks on B", || last_of(&on_b) >= 10).await;

    // 1. Restart with the data kept: the stream is reloaded, readers resume, no gap.
    let mut admin = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _ = redis::cmd("SHUTDOWN")
        .arg("SAVE")
        .query_async::<redis::Value>(&mut admin)
        .await;
    let _ = redis.wait().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis = start_redis(port, &dir).await;
    let restarted = sent(&results);
    wait_until("ticks on B after the first restart", || {
        last_of(&on_b) >= restarted + 10
    })
    .await;
    assert_eq!(
        (a.adapter.stats().stream_gaps, b.adapter.stats().stream_gaps),
        (0, 0),
        "the stream was kept: no gap"
    );

    // 2. The recovering client leaves (A keeps its session), then Redis dies for good.
    let offset = loop {
        if let Some(args) = recovering.event("tick", WAIT).await {
            assert!(!args.is_empty());
        }
        if let Some(o) = recovering.offset.clone() {
            break o;
        }
    };
    let pid = recovering.pid.clone().expect("recovery is on: a pid");
    let old_sid = recovering.sid.clone();
    recovering.drop_transport();
    wait_until("A to keep the session", || {
        a.io.recovery_stats("/").unwrap().sessions_persisted >= 1
    })
    .await;
    let killed_at = sent(&results);
    redis.kill().await.unwrap();
    let _ = std::fs::remove_file(dir.join("dump.rdb"));
    // While Redis is down: broadcasts fail, and the recovery attempt gets a fresh session.
    let failed_before = results.lock().unwrap().iter().filter(|ok| !**ok).count();
    wait_until("a broadcast to fail while Redis is down", || {
        results.lock().unwrap().iter().filter(|ok| !**ok).count() > failed_before
    })
    .await;
    let errors_before = b.io.recovery_stats("/").unwrap().errors;
    let fresh = SioClient::connected(
        b.addr,
        "/",
        Some(json!({"pid": pid, "offset": offset})),
        WAIT,
    )
    .await
    .unwrap();
    assert_ne!(
        fresh.sid, old_sid,
        "no recovery while Redis is down: a fresh socket"
    );
    assert!(
        fresh.pid.is_some(),
        "the fresh socket is recoverable itself"
    );
    assert_eq!(
        b.io.recovery_stats("/").unwrap().errors,
        errors_before + 1,
        "the failed recovery is counted as an adapter error"
    );
    drop(fresh);
    redis = start_redis(port, &dir).await;
    let restarted = sent(&results);
    wait_until("ticks on B after the second restart", || {
        last_of(&on_b) >= restarted + 10
    })
    .await;
    wait_until("ticks on A after the second restart", || {
        last_of(&on_a) >= restarted + 10
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    ticker.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let results = results.lock().unwrap().clone();
    let ok: BTreeSet<i64> = (0..)
        .zip(&results)
        .filter(|(_, ok)| **ok)
        .map(|(i, _)| i)
        .collect();
    let failed = results.len() - ok.len();
    let (got_a, got_b) = (on_a.lock().unwrap().clone(), on_b.lock().unwrap().clone());
    for (name, got) in [("A", &got_a), ("B", &got_b)] {
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "{name}: each tick once, in order: {got:?}"
        );
        let attempted = i64::try_from(results.len()).unwrap();
        assert!(
            got.iter().all(|i| (0..attempted).contains(i)),
            "{name}: only ticks that were sent"
        );
    }
    // A's broadcast resolves once A's own reader delivered it: A has every successful tick.
    let set_a: BTreeSet<i64> = got_a.iter().copied().collect();
    let missed_a: Vec<i64> = ok.difference(&set_a).copied().collect();
    assert!(missed_a.is_empty(), "A missed its own ticks {missed_a:?}");
    // B can only miss entries it had not read when Redis died without them: the tail of the
    // ticks sent before the kill, none before a tick it did get.
    let set_b: BTreeSet<i64> = got_b.iter().copied().collect();
    let missed_b: Vec<i64> = ok.difference(&set_b).copied().collect();
    let last_before_kill = got_b
        .iter()
        .copied()
        .filter(|i| *i < killed_at)
        .max()
        .unwrap_or(-1);
    assert!(
        missed_b
            .iter()
            .all(|m| *m > last_before_kill && *m <= killed_at + 2),
        "B missed {missed_b:?}: only the unread tail before the kill (last read {last_before_kill}, kill at {killed_at})"
    );
    let (sa, sb) = (a.adapter.stats(), b.adapter.stats());
    assert_eq!(
        (sa.stream_gaps, sb.stream_gaps),
        (1, 1),
        "one gap counted per node, for the restart that lost the stream"
    );
    assert!(sa.reconnects >= 2 && sb.reconnects >= 2, "{sa:?} {sb:?}");
    assert!(failed >= 1, "broadcasts failed while Redis was down");
    eprintln!(
        "redis restarts: {} ticks sent ({} ok, {failed} failed while down); A got {}, B got {} \
         (missed {} unread at the kill); gaps A {} B {}",
        results.len(),
        ok.len(),
        got_a.len(),
        got_b.len(),
        missed_b.len(),
        sa.stream_gaps,
        sb.stream_gaps
    );
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A node (a process) killed with SIGKILL while a broadcast with acks waits for its clients:
/// the requester's ack stream still ends at the ack timeout, with every ack that arrived
/// (its own clients', the dead node's client that answered before the kill) and one typed
/// timeout for the client whose answer died with its node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_killed_during_a_broadcast_with_acks_ends_the_stream_at_the_timeout() {
    use futures_util::StreamExt as _;
    if !redis_available(SHARED_URL).await {
        return;
    }
    let prefix = unique("streams-ackkill");
    let a = node(crate::streams_contract::config(&prefix)).await;
    let mut b = crate::streams_kill::spawn_node(&prefix).await;
    // The peer's Node server is a third node (it has no client: it answers a count of 0).
    let mut peer = common::Peer::start_script(
        "streams-peer.js",
        "@socket.io/redis-streams-adapter",
        &[SHARED_URL, &prefix],
    )
    .await;
    peer.call(json!({"op": "clients", "urls": [
        {"name": "a1", "port": a.addr.port()}, {"name": "a2", "port": a.addr.port()},
        {"name": "b1", "port": b.port}, {"name": "b2", "port": b.port},
    ]}))
    .await;
    // b2 answers 2 s late: by then its node is dead.
    peer.call(json!({"op": "client_ack_delay", "name": "b2", "ms": 2000}))
        .await;
    wait_until_count(&a.io, 3).await;

    let timeout = Duration::from_secs(3);
    let started = tokio::time::Instant::now();
    let mut stream =
        a.io.of("/")
            .unwrap()
            .timeout(timeout)
            .emit_with_ack("ask", &1)
            .await
            .unwrap();
    assert_eq!(
        stream.expected(),
        4,
        "2 clients here, 2 on B, 0 on the Node node"
    );
    let mut answers: Vec<String> = Vec::new();
    let mut timeouts = 0;
    let mut other_errors = Vec::new();
    let mut killed = false;
    while let Some((_, result)) = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("the ack stream ended in time")
    {
        match result {
            Ok(args) => answers.push(args.first::<String>().unwrap()),
            Err(sockeye::AckError::Timeout(_)) => timeouts += 1,
            Err(e) => other_errors.push(e.to_string()),
        }
        if answers.len() == 3 && !killed {
            // kill -9 of B while b2's answer is still to come.
            b.child.start_kill().unwrap();
            let _ = b.child.wait().await;
            killed = true;
        }
    }
    let elapsed = started.elapsed();
    answers.sort();
    assert!(killed, "B was killed after 3 answers; got {answers:?}");
    assert_eq!(answers, ["a1", "a2", "b1"], "every ack that arrived");
    assert_eq!(
        (timeouts, other_errors.len()),
        (1, 0),
        "one typed timeout for b2: {other_errors:?}"
    );
    assert!(
        elapsed >= timeout - Duration::from_millis(100)
            && elapsed < timeout + Duration::from_secs(2),
        "the stream ends at the ack timeout ({timeout:?}), not later: {elapsed:?}"
    );
    eprintln!(
        "acks with a killed node: expected 4, {} arrived, {timeouts} timed out, after {elapsed:?}",
        answers.len()
    );
    peer.call(json!({"op": "close_clients"})).await;
    peer.stop().await;
}

async fn wait_until_count(io: &SocketIo, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let count = io.server_count("/").await.unwrap();
        if count == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server count never reached {n}: {count}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next `s` event of `c` within `within`, skipping others; its number.
async fn next_s(c: &mut SioClient, within: Duration) -> Option<i64> {
    c.event("s", within)
        .await
        .and_then(|args| args.first().and_then(Value::as_i64))
}

/// Recovery attempts that must restore nothing and leak nothing: the pid of a socket still
/// connected (to another node, then to this one), and an offset from the future in the
/// stream's own id format. Each gets a fresh socket outside the victim's rooms, and the victim
/// keeps its session (it recovers it itself afterwards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stolen_live_pid_and_future_offset_restore_nothing() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let prefix = unique("streams-forged");
    let a = node(crate::streams_contract::config(&prefix)).await;
    let b = node(crate::streams_contract::config(&prefix)).await;
    let mut victim = SioClient::connected(a.addr, "/", None, WAIT).await.unwrap();
    let id = victim
        .emit_with_ack("join", &[json!("secret")])
        .await
        .unwrap();
    assert!(matches!(victim.next(WAIT).await, Some(Received::Ack { id: got, .. }) if got == id));
    a.io.to("secret").emit("s", &1).await.unwrap();
    assert_eq!(next_s(&mut victim, WAIT).await, Some(1));
    let stolen = victim.recovery_auth().expect("pid and offset");
    let pid = victim.pid.clone().unwrap();
    // The live copy of the victim's session, stored by A.
    let deadline = tokio::time::Instant::now() + WAIT;
    while crate::streams_kill::stored_session(&prefix, &pid)
        .await
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the live copy was never stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The victim's pid and offset presented to B while the victim is connected to A.
    let mut thief = SioClient::connected(b.addr, "/", Some(stolen.clone()), WAIT)
        .await
        .unwrap();
    assert_ne!(thief.sid, victim.sid, "a stolen live pid: a fresh socket");
    assert!(
        crate::streams_kill::stored_session(&prefix, &pid)
            .await
            .is_some(),
        "the live copy was put back for its owner"
    );
    a.io.to("secret").emit("s", &2).await.unwrap();
    assert_eq!(
        next_s(&mut victim, WAIT).await,
        Some(2),
        "the victim is still served"
    );
    assert_eq!(
        next_s(&mut thief, Duration::from_millis(500)).await,
        None,
        "the thief is not in the victim's rooms and got no replay"
    );

    // An offset from the future, in the stream's id format, with a real kept session.
    let mut other = SioClient::connected(a.addr, "/", None, WAIT).await.unwrap();
    a.io.emit("s", &3).await.unwrap();
    assert_eq!(next_s(&mut other, WAIT).await, Some(3));
    let (other_pid, other_sid) = (other.pid.clone().unwrap(), other.sid.clone());
    let persisted = a.io.recovery_stats("/").unwrap().sessions_persisted;
    other.drop_transport();
    wait_until("A to keep the session", || {
        a.io.recovery_stats("/").unwrap().sessions_persisted > persisted
    })
    .await;
    let failed = b.io.recovery_stats("/").unwrap();
    let future = SioClient::connected(
        b.addr,
        "/",
        Some(json!({"pid": other_pid, "offset": "99999999999999-0"})),
        WAIT,
    )
    .await
    .unwrap();
    assert_ne!(
        future.sid, other_sid,
        "an offset from the future: a fresh socket"
    );
    let after = b.io.recovery_stats("/").unwrap();
    assert_eq!(after.recovered, failed.recovered, "nothing recovered");

    // The victim moves to B for real: recovered, its session was never given away.
    assert_eq!(next_s(&mut victim, WAIT).await, Some(3));
    let auth = victim.recovery_auth().expect("pid and offset");
    let victim_sid = victim.sid.clone();
    let persisted = a.io.recovery_stats("/").unwrap().sessions_persisted;
    victim.drop_transport();
    wait_until("A to keep the victim's session", || {
        a.io.recovery_stats("/").unwrap().sessions_persisted > persisted
    })
    .await;
    a.io.to("secret").emit("s", &4).await.unwrap();
    let mut back = SioClient::connected(b.addr, "/", Some(auth), WAIT)
        .await
        .unwrap();
    assert_eq!(back.sid, victim_sid, "same socket id");
    assert_eq!(
        next_s(&mut back, WAIT).await,
        Some(4),
        "the missed broadcast, replayed"
    );
    // Its pid again, now that it is connected to B itself: refused on B and on A.
    for (name, to) in [("B", b.addr), ("A", a.addr)] {
        let again = SioClient::connected(to, "/", Some(stolen.clone()), WAIT)
            .await
            .unwrap();
        assert_ne!(
            again.sid, back.sid,
            "a reused pid on {name}: a fresh socket"
        );
    }
    b.io.to("secret").emit("s", &5).await.unwrap();
    assert_eq!(
        next_s(&mut back, WAIT).await,
        Some(5),
        "still served after the attempts"
    );
    drop(thief);
}

/// A node whose Redis connections stall (a network pause) while the others write far more
/// than `MAXLEN` keeps: when it resumes, the entries after the last one it handled were
/// trimmed. Its reader counts the gap (no reconnect happened: it is found by the check made
/// with every read), delivers nothing twice and goes on with what the stream holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_stalled_past_the_trimming_counts_the_gap() {
    use sockeye_testkit::{Direction, Fault, FaultProxy};
    if !redis_available(SHARED_URL).await {
        return;
    }
    let port = spare_port();
    let dir: PathBuf = std::env::temp_dir().join(unique("streams-trim"));
    std::fs::create_dir_all(&dir).unwrap();
    let _redis = start_redis(port, &dir).await;
    // Small stream nodes, so that `MAXLEN ~ 10` trims within tens of entries.
    let mut admin = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("stream-node-max-entries")
        .arg(5)
        .query_async::<()>(&mut admin)
        .await
        .unwrap();
    let proxy = FaultProxy::start(([127, 0, 0, 1], port).into())
        .await
        .unwrap();
    let prefix = unique("streams-trim");
    let direct = format!("redis://127.0.0.1:{port}");
    let proxied = format!("redis://{}", proxy.addr());
    let a = node(private_config(&direct, &prefix).max_len(10)).await;
    // B's reader must not time out during the stall (block 5 s + the command timeout).
    let b = node(
        private_config(&proxied, &prefix)
            .max_len(10)
            .block_time(Duration::from_secs(5)),
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let on_b = record_ticks(
        SioClient::connected(b.addr, "/", None, WAIT).await.unwrap(),
        stop.clone(),
    );
    for i in 0..5 {
        a.io.emit("tick", &i).await.unwrap();
    }
    wait_until("the first ticks on B", || last_of(&on_b) == 4).await;

    proxy.set(Direction::Both, Fault::Pause);
    let paused = tokio::time::Instant::now();
    for i in 5..125 {
        a.io.emit("tick", &i).await.unwrap();
    }
    let len: usize = redis::cmd("XLEN")
        .arg(format!("{prefix}-stream"))
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(len < 40, "the stream was trimmed to {len} entries");
    let paused = paused.elapsed();
    proxy.heal();
    wait_until("the last tick on B", || last_of(&on_b) == 124).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);

    let got = on_b.lock().unwrap().clone();
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "each tick once, in order: {got:?}"
    );
    let missed = 125 - got.len();
    assert!(missed >= 80, "B missed the trimmed ticks: got {got:?}");
    let (sa, sb) = (a.adapter.stats(), b.adapter.stats());
    assert_eq!(sb.stream_gaps, 1, "B counted the gap: {sb:?}");
    // (A pause over 5 s would make B's subscriber reconnect after a failed ping.)
    assert_eq!(
        sb.reconnects, 0,
        "found without a reconnect (paused {paused:?}): {sb:?}"
    );
    assert_eq!(sa.stream_gaps, 0, "A read everything: {sa:?}");
    eprintln!(
        "stalled reader: 125 ticks, B got {} (missed {missed} trimmed), gaps B {}, paused {paused:?}",
        got.len(),
        sb.stream_gaps
    );
    let _ = std::fs::remove_dir_all(&dir);
}
