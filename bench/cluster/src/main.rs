//! Cluster broadcast bench driver (`bench/cluster.sh` starts the servers and calls it).
//!
//! Connects `-n` receivers round-robin over the Socket.IO nodes at `--ports` (WebSocket,
//! Socket.IO v5 on `/`), and one sender to the first node. The sender emits the bench app's
//! `broadcast` event (payload: sequence number and send time, padded to `--size` characters)
//! ack-paced with `--window` emits in flight, or with `--rate R` at R broadcasts per second on
//! a fixed schedule (open loop: every server does the same work per second); every node re-emits it to its own sockets and
//! through its adapter to the other nodes' sockets. After `--warmup` seconds it counts the
//! broadcasts sent during `--duration` seconds and waits up to `--drain` seconds for every
//! receiver to get them.
//!
//! Reported (one JSON line on stdout, appended to `--out`): deliveries (broadcasts sent in the
//! window × receivers that got them, the sender's own copy not counted), deliveries per second
//! (over window start → last delivery, never less than the window), **deliveries per second of
//! total server CPU** (the CPU time of every process in `--pids`, read from `/proc/<pid>/stat`
//! from window start to the end of the drain), send → receive latency of each delivery
//! (p50/p90/p99/p99.9/max), losses and duplicates, and as noise indicators the CPU of the
//! broker (`--broker-pid`: one PID, or several whose CPU is summed, e.g. the PostgreSQL backends
//! serving the nodes), of this process, and of everything else on the machine.

mod conn;
mod proc_stat;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::conn::Conn;
use crate::proc_stat::{Snapshot, Usage};

const USAGE: &str = "usage: cluster-bench --ports P1,P2,P3 --pids PID1,PID2,PID3 [--broker-pid PID[,PID…]] \
[-n 1000] [--window 1 | --rate R] [--size 64] [--warmup 1] [--duration 5] [--drain 10] \
[--connect-concurrency 64] [--label NAME] [--adapter NAME] [--out FILE]";

/// The command line.
#[derive(Debug, Clone)]
struct Params {
    ports: Vec<u16>,
    pids: Vec<String>,
    /// The broker's processes (their CPU is summed).
    broker_pids: Option<Vec<String>>,
    n: usize,
    window: usize,
    /// Broadcasts per second on a fixed schedule (not ack-paced) when set.
    rate: Option<f64>,
    size: usize,
    warmup: f64,
    duration: f64,
    drain: f64,
    concurrency: usize,
    label: String,
    adapter: String,
    out: Option<String>,
}

/// A bad command line.
#[derive(Debug, thiserror::Error)]
#[error("{0}\n{USAGE}")]
struct ArgError(String);

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Params, ArgError> {
    let mut p = Params {
        ports: Vec::new(),
        pids: Vec::new(),
        broker_pids: None,
        n: 1000,
        window: 1,
        rate: None,
        size: 64,
        warmup: 1.0,
        duration: 5.0,
        drain: 10.0,
        concurrency: 64,
        label: "server".into(),
        adapter: "unknown".into(),
        out: None,
    };
    fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, ArgError> {
        v.parse()
            .map_err(|_| ArgError(format!("{flag} {v:?} is not a number")))
    }
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| ArgError(format!("{flag} needs a value")))?;
        match flag.as_str() {
            "--ports" => {
                p.ports = value
                    .split(',')
                    .map(|v| num("--ports", v))
                    .collect::<Result<_, _>>()?;
            }
            "--pids" => p.pids = value.split(',').map(str::to_owned).collect(),
            "--broker-pid" => {
                let pids: Vec<String> = value
                    .split(',')
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .collect();
                if let Some(bad) = pids.iter().find(|v| v.parse::<u32>().is_err()) {
                    return Err(ArgError(format!(
                        "--broker-pid {bad:?} is not a process id"
                    )));
                }
                p.broker_pids = (!pids.is_empty()).then_some(pids);
            }
            "-n" => p.n = num("-n", &value)?,
            "--window" => p.window = num("--window", &value)?,
            "--rate" => {
                let rate: f64 = num("--rate", &value)?;
                if !(rate > 0.0 && rate <= 100_000.0) {
                    return Err(ArgError(format!("--rate {value} is not in (0, 100000]")));
                }
                p.rate = Some(rate);
            }
            "--size" => p.size = num("--size", &value)?,
            "--warmup" => p.warmup = num("--warmup", &value)?,
            "--duration" => p.duration = num("--duration", &value)?,
            "--drain" => p.drain = num("--drain", &value)?,
            "--connect-concurrency" => p.concurrency = num("--connect-concurrency", &value)?,
            "--label" => p.label = value,
            "--adapter" => p.adapter = value,
            "--out" => p.out = Some(value),
            other => return Err(ArgError(format!("unknown option {other}"))),
        }
    }
    if p.ports.is_empty() {
        return Err(ArgError("--ports is required".into()));
    }
    if p.window == 0 || p.n == 0 || p.concurrency == 0 {
        return Err(ArgError(
            "-n, --window and --connect-concurrency must be > 0".into(),
        ));
    }
    if !(p.duration > 0.0 && p.warmup >= 0.0 && p.drain >= 0.0) {
        return Err(ArgError(
            "--duration must be > 0, --warmup and --drain >= 0".into(),
        ));
    }
    Ok(p)
}

/// One `broadcast` packet as a receiver got it.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    seq: u64,
    /// Microseconds since the run's time base.
    arrival_us: u64,
    latency_us: u64,
}

/// What a receiver saw.
#[derive(Debug, Default)]
struct Received {
    deliveries: Vec<Delivery>,
    /// `broadcast` packets that did not carry a sequence number and a send time.
    malformed: u64,
    /// Why the connection ended before the run did.
    error: Option<String>,
}

/// `42["broadcast","<seq>:<t_us>:xxx…"]` → (seq, t_us).
fn parse_broadcast(packet: &str) -> Option<(u64, u64)> {
    let rest = packet.strip_prefix("42[\"broadcast\",\"")?;
    let mut parts = rest.splitn(3, ':');
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((seq, sent))
}

/// `43<id>[...]` → id.
fn parse_ack(packet: &str) -> Option<u64> {
    let rest = packet.strip_prefix("43")?;
    let end = rest.find('[')?;
    rest[..end].parse().ok()
}

fn micros_since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_micros()).unwrap_or(u64::MAX)
}

async fn receive(
    mut conn: Conn,
    base: Instant,
    last_seq: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Received {
    let mut got = Received::default();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            packet = conn.next_packet() => match packet {
                Ok(text) => {
                    if let Some((seq, sent)) = parse_broadcast(&text) {
                        let now = micros_since(base);
                        got.deliveries.push(Delivery {
                            seq,
                            arrival_us: now,
                            latency_us: now.saturating_sub(sent),
                        });
                        last_seq.fetch_max(seq + 1, Ordering::Relaxed);
                    } else if text.starts_with("42[\"broadcast\"") {
                        got.malformed += 1;
                    }
                }
                Err(e) => {
                    got.error = Some(e.to_string());
                    break;
                }
            }
        }
    }
    conn.close().await;
    got
}

/// What the sender did.
#[derive(Debug, Default)]
struct Sent {
    /// First sequence number sent in the window.
    first: u64,
    /// One past the last sequence number sent in the window.
    end: u64,
    /// Sent in total (warm-up included).
    total: u64,
    /// Acks still missing when the sender stopped.
    unacked: u64,
    error: Option<String>,
}

fn payload(seq: u64, sent_us: u64, size: usize) -> String {
    let mut data = format!("{seq}:{sent_us}:");
    while data.len() < size {
        data.push('x');
    }
    format!("42{seq}[\"broadcast\",\"{data}\"]")
}

async fn send(
    mut conn: Conn,
    base: Instant,
    window_start: Instant,
    window_end: Instant,
    drain_end: Instant,
    p: Params,
) -> Sent {
    if let Some(rate) = p.rate {
        return send_at_rate(
            conn,
            base,
            window_start,
            window_end,
            drain_end,
            rate,
            p.size,
        )
        .await;
    }
    let mut sent = Sent::default();
    let mut first = None;
    let mut end = None;
    let mut in_flight = 0usize;
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        if now >= window_end && end.is_none() {
            end = Some(seq);
        }
        while end.is_none() && in_flight < p.window {
            if first.is_none() && Instant::now() >= window_start {
                first = Some(seq);
            }
            if let Err(e) = conn.send(payload(seq, micros_since(base), p.size)).await {
                sent.error = Some(e.to_string());
                break;
            }
            seq += 1;
            in_flight += 1;
        }
        if sent.error.is_some() || (end.is_some() && in_flight == 0) || now >= drain_end {
            break;
        }
        let until = if end.is_none() { window_end } else { drain_end };
        match tokio::time::timeout_at(until.into(), conn.next_packet()).await {
            Err(_) => {}
            Ok(Ok(text)) => {
                if parse_ack(&text).is_some() {
                    in_flight = in_flight.saturating_sub(1);
                }
            }
            Ok(Err(e)) => {
                sent.error = Some(e.to_string());
                break;
            }
        }
    }
    let end = end.unwrap_or(seq);
    sent.first = first.unwrap_or(end);
    sent.end = end;
    sent.total = seq;
    sent.unacked = u64::try_from(in_flight).unwrap_or(u64::MAX);
    conn.close().await;
    sent
}

/// Open loop: broadcast `seq` is due `seq / rate` seconds after the warm-up starts, whatever
/// the acks do (they are read, and counted when missing at the end).
async fn send_at_rate(
    mut conn: Conn,
    base: Instant,
    window_start: Instant,
    window_end: Instant,
    drain_end: Instant,
    rate: f64,
    size: usize,
) -> Sent {
    let start = Instant::now();
    let mut sent = Sent::default();
    let mut first = None;
    let mut in_flight = 0u64;
    let mut seq = 0u64;
    loop {
        let due = start + Duration::from_secs_f64(seq as f64 / rate);
        let sending = due < window_end;
        if !sending && (in_flight == 0 || Instant::now() >= drain_end) {
            break;
        }
        let wake = if sending { due } else { drain_end };
        tokio::select! {
            biased;
            packet = conn.next_packet() => match packet {
                Ok(text) => {
                    if parse_ack(&text).is_some() {
                        in_flight = in_flight.saturating_sub(1);
                    }
                }
                Err(e) => {
                    sent.error = Some(e.to_string());
                    break;
                }
            },
            () = tokio::time::sleep_until(wake.into()) => {
                if sending {
                    if first.is_none() && due >= window_start {
                        first = Some(seq);
                    }
                    if let Err(e) = conn.send(payload(seq, micros_since(base), size)).await {
                        sent.error = Some(e.to_string());
                        break;
                    }
                    seq += 1;
                    in_flight += 1;
                }
            }
        }
    }
    sent.first = first.unwrap_or(seq);
    sent.end = seq;
    sent.total = seq;
    sent.unacked = in_flight;
    conn.close().await;
    sent
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank: the smallest value with at least a q share of the values at or below it.
    #[allow(clippy::cast_possible_truncation)]
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

async fn run(p: Params) -> Result<serde_json::Value, String> {
    let ticks = proc_stat::clock_ticks();
    let base = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);

    // Receivers, round-robin over the nodes, each reading as soon as it is connected.
    let gate = Arc::new(Semaphore::new(p.concurrency));
    let mut connecting = Vec::with_capacity(p.n);
    for i in 0..p.n {
        let port = p.ports[i % p.ports.len()];
        let gate = gate.clone();
        connecting.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            Conn::connect(port).await
        }));
    }
    let connect_started = Instant::now();
    let mut receivers: Vec<(Arc<AtomicU64>, JoinHandle<Received>)> = Vec::with_capacity(p.n);
    let mut connect_errors = Vec::new();
    for handle in connecting {
        match handle.await {
            Ok(Ok(conn)) => {
                let last = Arc::new(AtomicU64::new(0));
                let task = tokio::spawn(receive(conn, base, last.clone(), stop_rx.clone()));
                receivers.push((last, task));
            }
            Ok(Err(e)) => connect_errors.push(e.to_string()),
            Err(e) => connect_errors.push(e.to_string()),
        }
    }
    let connect_s = connect_started.elapsed().as_secs_f64();
    if !connect_errors.is_empty() {
        let _ = stop_tx.send(true);
        return Err(format!(
            "{} of {} receivers failed to connect, first: {}",
            connect_errors.len(),
            p.n,
            connect_errors[0]
        ));
    }
    let sender = Conn::connect(p.ports[0])
        .await
        .map_err(|e| format!("sender: {e}"))?;
    // Let the last joins settle on every node before the first broadcast.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let start = Instant::now();
    let window_start = start + Duration::from_secs_f64(p.warmup);
    let window_end = window_start + Duration::from_secs_f64(p.duration);
    let drain_end = window_end + Duration::from_secs_f64(p.drain);
    let sending = tokio::spawn(send(
        sender,
        base,
        window_start,
        window_end,
        drain_end,
        p.clone(),
    ));
    tokio::time::sleep_until(window_start.into()).await;
    let cpu_start = Snapshot::take(&p.pids, p.broker_pids.as_deref());
    let sent = sending.await.map_err(|e| format!("sender task: {e}"))?;
    // Drain: until every receiver has the last broadcast of the window, or the deadline.
    while Instant::now() < drain_end
        && sent.end > sent.first
        && receivers
            .iter()
            .any(|(last, _)| last.load(Ordering::Relaxed) < sent.end)
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let cpu_end = Snapshot::take(&p.pids, p.broker_pids.as_deref());
    let _ = stop_tx.send(true);

    // Count what arrived of the window's broadcasts.
    let window_len = usize::try_from(sent.end - sent.first).unwrap_or(usize::MAX);
    let mut latencies = Vec::with_capacity(window_len.saturating_mul(p.n));
    let mut duplicates = 0u64;
    let mut malformed = 0u64;
    let mut receiver_errors = Vec::new();
    let mut last_arrival_us = 0u64;
    let mut incomplete = 0usize;
    for (_, task) in receivers {
        let got = task.await.map_err(|e| format!("receiver task: {e}"))?;
        malformed += got.malformed;
        if let Some(e) = got.error {
            receiver_errors.push(e);
        }
        let mut seen = vec![false; window_len];
        for d in &got.deliveries {
            if d.seq < sent.first || d.seq >= sent.end {
                continue;
            }
            let slot = usize::try_from(d.seq - sent.first).unwrap_or(usize::MAX);
            match seen.get_mut(slot) {
                Some(s) if *s => duplicates += 1,
                Some(s) => {
                    *s = true;
                    latencies.push(d.latency_us);
                    last_arrival_us = last_arrival_us.max(d.arrival_us);
                }
                None => {}
            }
        }
        if seen.iter().any(|s| !s) {
            incomplete += 1;
        }
    }
    latencies.sort_unstable();
    let delivered = latencies.len() as f64;
    let expected = window_len as f64 * p.n as f64;
    let window_start_us = u64::try_from(window_start.duration_since(base).as_micros()).unwrap_or(0);
    let span_s = (last_arrival_us.saturating_sub(window_start_us) as f64 / 1e6).max(p.duration);
    let usage = Usage::between(&cpu_start, &cpu_end, ticks);
    let wall = usage.wall.as_secs_f64();
    let server_cpu: f64 = usage.servers.iter().sum();
    let pct = |cpu: f64| round1(100.0 * cpu / wall);
    let mean = if latencies.is_empty() {
        0.0
    } else {
        latencies.iter().sum::<u64>() as f64 / delivered
    };
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut errors = serde_json::Map::new();
    for e in receiver_errors.iter().chain(sent.error.iter()) {
        let count = errors.entry(e.clone()).or_insert(json!(0));
        *count = json!(count.as_u64().unwrap_or(0) + 1);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    Ok(json!({
        "tool": "cluster-bench",
        "ts": ts,
        "scenario": "cluster-broadcast",
        "label": p.label,
        "adapter": p.adapter,
        "params": {
            "nodes": p.ports.len(), "n": p.n, "size": p.size,
            "mode": if p.rate.is_some() { "open" } else { "ack-paced" },
            "window": if p.rate.is_some() { None } else { Some(p.window) },
            "rate": p.rate, "warmup_s": p.warmup, "duration_s": p.duration, "drain_s": p.drain,
        },
        "metrics": {
            "receivers": p.n,
            "connect_s": (connect_s * 100.0).round() / 100.0,
            "sent_in_window": sent.end - sent.first,
            "sent_total": sent.total,
            "unacked": sent.unacked,
            "sent_per_s": round1((sent.end - sent.first) as f64 / p.duration),
            "expected": expected,
            "delivered": delivered,
            "delivered_pct": if expected > 0.0 { (delivered / expected * 1e4).round() / 1e2 } else { 0.0 },
            "receivers_incomplete": incomplete,
            "duplicates": duplicates,
            "malformed": malformed,
            "span_s": (span_s * 1e3).round() / 1e3,
            "deliveries_per_s": round1(delivered / span_s),
            "deliveries_per_server_cpu_s": if server_cpu > 0.0 { round1(delivered / server_cpu) } else { 0.0 },
            "latency": {
                "count": latencies.len(),
                "mean_us": round1(mean),
                "p50_us": percentile(&latencies, 0.50),
                "p90_us": percentile(&latencies, 0.90),
                "p99_us": percentile(&latencies, 0.99),
                "p999_us": percentile(&latencies, 0.999),
                "max_us": latencies.last().copied().unwrap_or(0),
            },
        },
        "server": {
            "pids": p.pids,
            "cpu_s": (server_cpu * 100.0).round() / 100.0,
            "cpu_pct": pct(server_cpu),
            "per_node_cpu_pct": usage.servers.iter().map(|c| pct(*c)).collect::<Vec<_>>(),
            "cpu_wall_s": (wall * 1e3).round() / 1e3,
        },
        "broker": { "cpu_pct": usage.broker.map(pct) },
        "client": { "cpu_pct": pct(usage.client), "others_cpu_pct": pct(usage.others) },
        "machine": { "loadavg": load.split_whitespace().take(3).collect::<Vec<_>>().join(" ") },
        "errors": errors,
    }))
}

fn main() -> std::process::ExitCode {
    let params = match parse_args(std::env::args().skip(1)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cluster-bench: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cluster-bench: cannot start the tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let out = params.out.clone();
    match runtime.block_on(run(params)) {
        Ok(line) => {
            let text = line.to_string();
            println!("{text}");
            if let Some(path) = out {
                let written = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| writeln!(f, "{text}"));
                if let Err(e) = written {
                    eprintln!("cluster-bench: cannot append to {path}: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cluster-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_through_the_parsers() {
        let packet = payload(42, 1_234_567, 64);
        assert!(packet.starts_with("4242[\"broadcast\",\""));
        assert_eq!(parse_ack("4342[]"), Some(42));
        // A receiver gets the same arguments without the ack id.
        let received = packet.replacen("4242[", "42[", 1);
        assert_eq!(parse_broadcast(&received), Some((42, 1_234_567)));
        let data_len = received.len() - "42[\"broadcast\",\"\"]".len();
        assert_eq!(data_len, 64);
        assert_eq!(parse_broadcast("42[\"broadcast\",\"nope\"]"), None);
        assert_eq!(parse_ack("42[\"broadcast\"]"), None);
    }

    #[test]
    fn percentiles_are_ranks() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.99), 0.0);
    }

    #[test]
    fn arguments_are_checked() {
        let args = |s: &str| {
            s.split(' ')
                .map(str::to_owned)
                .collect::<Vec<_>>()
                .into_iter()
        };
        let p = parse_args(args("--ports 1,2,3 --pids 4,5,6 --window 16")).ok();
        assert_eq!(p.as_ref().map(|p| p.ports.clone()), Some(vec![1, 2, 3]));
        assert_eq!(p.map(|p| p.window), Some(16));
        assert!(parse_args(args("--pids 1")).is_err());
        assert!(parse_args(args("--ports 1 --window 0")).is_err());
        assert!(parse_args(args("--ports x")).is_err());
        let p = parse_args(args("--ports 1 --broker-pid 7,8,9")).ok();
        assert_eq!(
            p.and_then(|p| p.broker_pids),
            Some(vec!["7".to_owned(), "8".to_owned(), "9".to_owned()])
        );
        assert!(parse_args(args("--ports 1 --broker-pid 7,x")).is_err());
    }
}
