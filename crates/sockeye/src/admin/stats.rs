//! `server_stats` every interval, the per-second aggregated events it carries, and the
//! cluster-wide socket list.

use std::collections::HashSet;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sockeye_engine::Transport;

use super::Admin;
use super::serialize;
use crate::io::SocketIo;

/// Aggregated events kept between two stats at most (a very long interval must not grow it
/// without bound): about 6 kinds per second for 10 minutes.
const BUFFER_MAX: usize = 3600;

/// Every second: reads the counters into per-second buckets and reports upgrades; every
/// stats interval: sends `server_stats`. Ends when the server is gone.
pub(crate) async fn run(admin: Weak<Admin>) {
    let Some(interval) = admin.upgrade().map(|a| a.options.stats_interval) else {
        return;
    };
    let mut ticker = tokio::time::interval(interval.min(Duration::from_secs(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buffer: Vec<Value> = Vec::new();
    let mut last_stats: Option<Instant> = None;
    loop {
        ticker.tick().await;
        let Some(admin) = admin.upgrade() else { return };
        let Some(io) = admin.io() else { return };
        harvest(&admin, &mut buffer);
        if admin.development() {
            report_upgrades(&admin, &io).await;
        }
        // A little slack: the ticks of a 1 s ticker drift by a few milliseconds.
        let due = last_stats.is_none_or(|at| at.elapsed() + Duration::from_millis(50) >= interval);
        if due {
            last_stats = Some(Instant::now());
            let stats = server_stats(&admin, &io, std::mem::take(&mut buffer));
            if let Ok(operator) = io.of(admin.namespace.as_str())
                && let Err(e) = operator.emit("server_stats", &stats).await
            {
                tracing::debug!(error = %e, "server_stats not sent");
            }
        }
    }
}

/// Moves the counters into the buffer as `{timestamp, type, subType?, count}` entries.
fn harvest(admin: &Admin, buffer: &mut Vec<Value>) {
    let counters = &admin.observer.counters;
    let timestamp = serialize::now_ms() / 1000 * 1000;
    let mut push = |kind: &str, sub: Option<&str>, count: u64| {
        if count == 0 || buffer.len() >= BUFFER_MAX {
            return;
        }
        let mut entry = json!({ "timestamp": timestamp, "type": kind, "count": count });
        if let Some(sub) = sub {
            entry["subType"] = json!(sub);
        }
        buffer.push(entry);
    };
    push(
        "rawConnection",
        None,
        counters.connections.swap(0, Ordering::Relaxed),
    );
    let closes = std::mem::take(&mut *crate::sync::lock(&counters.disconnections));
    for (reason, count) in closes {
        push("rawDisconnection", Some(reason), count);
    }
    push(
        "packetsIn",
        None,
        counters.packets_in.swap(0, Ordering::Relaxed),
    );
    push(
        "packetsOut",
        None,
        counters.packets_out.swap(0, Ordering::Relaxed),
    );
    push(
        "bytesIn",
        None,
        counters.bytes_in.swap(0, Ordering::Relaxed),
    );
    push(
        "bytesOut",
        None,
        counters.bytes_out.swap(0, Ordering::Relaxed),
    );
}

/// The `server_stats` payload of this node.
fn server_stats(admin: &Admin, io: &SocketIo, aggregated: Vec<Value>) -> Value {
    let mut polling = HashSet::new();
    let mut namespaces = Vec::new();
    for ns in io.local_namespaces() {
        let sockets = ns.sockets();
        for socket in &sockets {
            if socket.transport() == Transport::Polling {
                polling.insert(socket.client_id().to_owned());
            }
        }
        namespaces.push(json!({ "name": ns.name.as_str(), "socketsCount": sockets.len() }));
    }
    json!({
        "serverId": admin.server_id,
        "hostname": admin.hostname,
        "pid": std::process::id(),
        "uptime": admin.started.elapsed().as_secs_f64(),
        "clientsCount": io.engine().session_count(),
        "pollingClientsCount": polling.len(),
        "aggregatedEvents": aggregated,
        "namespaces": namespaces,
    })
}

/// Sends `socket_updated {transport: "websocket"}` for the sockets that left polling.
async fn report_upgrades(admin: &Admin, io: &SocketIo) {
    let upgraded: Vec<_> = {
        let mut polling = crate::sync::lock(&admin.observer.polling);
        let mut upgraded = Vec::new();
        polling.retain(|(ns, id)| match io.get_socket(ns.as_str(), id) {
            None => false,
            Some(socket) if socket.transport() == Transport::Websocket => {
                upgraded.push(socket);
                false
            }
            Some(_) => true,
        });
        upgraded
    };
    let Ok(operator) = io.of(admin.namespace.as_str()) else {
        return;
    };
    for socket in upgraded {
        let update =
            json!({ "id": socket.id().as_str(), "nsp": socket.ns(), "transport": "websocket" });
        if let Err(e) = operator.clone().emit("socket_updated", &update).await {
            tracing::debug!(error = %e, "socket_updated not sent");
        }
    }
}

/// Every socket of every namespace this node knows, on every node.
pub(crate) async fn all_sockets(io: &SocketIo) -> Vec<Value> {
    let mut out = Vec::new();
    for ns in io.local_namespaces() {
        let Ok(operator) = io.of(ns.name.as_str()) else {
            continue;
        };
        match operator.fetch_sockets().await {
            Ok(infos) => {
                for info in infos {
                    let local = info
                        .local
                        .then(|| io.get_socket(&info.ns, &info.id))
                        .flatten();
                    out.push(match local {
                        Some(socket) => serialize::local_socket(&socket),
                        None => serialize::remote_socket(&info),
                    });
                }
            }
            Err(e) => {
                tracing::warn!(ns = %ns.name.as_str(), error = %e, "admin socket list incomplete");
            }
        }
    }
    out
}
