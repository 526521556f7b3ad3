//! CPU time of processes and of the whole machine, from `/proc`.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on Linux unless the
/// kernel was configured otherwise).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// User + system CPU ticks of process `pid` (all its threads), or `None` if it is gone.
pub fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Busy ticks of the whole machine (all CPUs): everything in `/proc/stat`'s `cpu` line but
/// idle and iowait.
pub fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy = values
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4);
    Some(busy.map(|(_, v)| v).sum())
}

/// CPU ticks of each watched process, of this process and of the machine, at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Per server process, in the order given.
    pub servers: Vec<u64>,
    /// The broker (all its watched processes together), when watched.
    pub broker: Option<u64>,
    /// This process (the load generator).
    pub client: u64,
    /// The whole machine.
    pub machine: u64,
    /// When it was taken.
    pub at: std::time::Instant,
}

impl Snapshot {
    /// Reads every counter now; a process that is gone reads as 0.
    pub fn take(servers: &[String], broker: Option<&[String]>) -> Snapshot {
        Snapshot {
            servers: servers
                .iter()
                .map(|p| process_ticks(p).unwrap_or(0))
                .collect(),
            broker: broker.map(|pids| pids.iter().map(|p| process_ticks(p).unwrap_or(0)).sum()),
            client: process_ticks("self").unwrap_or(0),
            machine: machine_busy_ticks().unwrap_or(0),
            at: std::time::Instant::now(),
        }
    }
}

/// CPU used between two snapshots, in seconds.
#[derive(Debug, Clone)]
pub struct Usage {
    /// Per server process.
    pub servers: Vec<f64>,
    /// The broker, when watched.
    pub broker: Option<f64>,
    /// This process.
    pub client: f64,
    /// Everything else on the machine (other builds, other benches).
    pub others: f64,
    /// Wall time between the snapshots.
    pub wall: Duration,
}

impl Usage {
    /// The CPU used from `a` to `b`, with `ticks` per second.
    pub fn between(a: &Snapshot, b: &Snapshot, ticks: u64) -> Usage {
        let secs = |from: u64, to: u64| to.saturating_sub(from) as f64 / ticks as f64;
        let servers: Vec<f64> = a
            .servers
            .iter()
            .zip(&b.servers)
            .map(|(x, y)| secs(*x, *y))
            .collect();
        let broker = a.broker.zip(b.broker).map(|(x, y)| secs(x, y));
        let client = secs(a.client, b.client);
        let machine = secs(a.machine, b.machine);
        let ours = servers.iter().sum::<f64>() + broker.unwrap_or(0.0) + client;
        Usage {
            servers,
            broker,
            client,
            others: (machine - ours).max(0.0),
            wall: b.at.duration_since(a.at),
        }
    }
}
