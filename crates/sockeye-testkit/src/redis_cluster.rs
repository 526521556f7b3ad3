//! A throwaway Redis Cluster for tests: `masters` `redis-server` processes (Redis 7 or later)
//! on free loopback ports, joined by `redis-cli --cluster create` with no replicas. Dropping
//! the handle kills the processes (by their PID, through their `Child`) and removes their
//! directory.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Redis Cluster; killed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    ports: Vec<u16>,
    children: Vec<Child>,
    dir: PathBuf,
}

/// A port `p` where both `p` and its cluster bus port `p + 10000` are free now.
fn free_port_pair() -> Option<u16> {
    for _ in 0..200 {
        let probe = TcpListener::bind("127.0.0.1:0").ok()?;
        let port = probe.local_addr().ok()?.port();
        drop(probe);
        if port > 55_000 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Some(port);
        }
    }
    None
}

fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl RedisCluster {
    /// Starts `masters` (at least 3) nodes and creates the cluster; waits until every node
    /// reports `cluster_state:ok`. An error says what is missing or failed.
    pub fn start(masters: usize) -> Result<RedisCluster, String> {
        let masters = masters.max(3);
        let dir = std::env::temp_dir().join(format!(
            "sockeye-redis-cluster-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut cluster = RedisCluster {
            ports: Vec::new(),
            children: Vec::new(),
            dir,
        };
        for _ in 0..masters {
            let port = free_port_pair().ok_or("no free loopback port pair")?;
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &format!("nodes-{port}.conf"),
                    "--dir",
                    &cluster.dir.to_string_lossy(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    format!("cannot run redis-server (Redis 7 or later is needed): {e}")
                })?;
            cluster.children.push(child);
            cluster.ports.push(port);
        }
        for &port in &cluster.ports {
            cluster.wait(
                port,
                Duration::from_secs(10),
                |out| out.contains("PONG"),
                &["PING"],
            )?;
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(nodes.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = Command::new("redis-cli")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run redis-cli: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        for &port in &cluster.ports {
            cluster.wait(
                port,
                Duration::from_secs(20),
                |out| out.contains("cluster_state:ok"),
                &["CLUSTER", "INFO"],
            )?;
        }
        Ok(cluster)
    }

    fn wait(
        &self,
        port: u16,
        limit: Duration,
        done: impl Fn(&str) -> bool,
        args: &[&str],
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if cli(port, args).is_some_and(|out| done(&out)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the Redis node on port {port} did not answer {args:?} as expected in {limit:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The nodes' ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// `redis://127.0.0.1:<port>` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The URL of the first node (enough to learn the cluster's layout).
    pub fn url(&self) -> String {
        format!(
            "redis://127.0.0.1:{}",
            self.ports.first().copied().unwrap_or(0)
        )
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a cluster of `masters` nodes for a test; `None` (with a message) when Redis is not
/// installed, which fails the test under `CI=true`.
pub fn redis_cluster_or_skip(masters: usize) -> Option<RedisCluster> {
    match RedisCluster::start(masters) {
        Ok(c) => Some(c),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "a Redis Cluster is needed (CI=true): {e}"
            );
            eprintln!("SKIPPED: no Redis Cluster: {e} (set CI=true to make this a failure)");
            None
        }
    }
}
