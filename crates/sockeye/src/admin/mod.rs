//! Support for the official Socket.IO Admin UI (`@socket.io/admin-ui` 0.5), crate feature
//! `admin`: [`SocketIoBuilder::instrument`](crate::SocketIoBuilder::instrument).
//!
//! The server opens the admin namespace (default `/admin`) and speaks the UI's protocol on
//! it: `session` and `config` on connect, `server_stats` every interval, and in development
//! mode `all_sockets` and the live events (`socket_connected`, `socket_updated`,
//! `socket_disconnected`, `room_joined`, `room_left`, `event_received`, `event_sent`); it
//! runs the UI's commands (`emit`, `join`, `leave`, `_disconnect`) cluster-wide through the
//! adapter. Every admin event is a broadcast on the admin namespace, so it reaches the admins
//! connected to any node, and each node reports its own stats under its own server id.
//!
//! The data path is observed through hooks that are absent when this is not configured.

mod auth;
mod commands;
mod observer;
mod serialize;
mod stats;

use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sockeye_protocol::socketio::Str;

pub use auth::AdminAuth;

use crate::error::ConnectionRefusedError;
use crate::io::{ServerCore, SocketIo};
use crate::packet::Args;
use crate::reply::Json;
use crate::socket::SocketRef;
use auth::{Accepted, Authenticator};
use commands::Command;
use observer::{Notice, Observer};

/// A misconfigured admin.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The stored password is not a bcrypt hash.
    #[error("the admin password must be a bcrypt hash ($2b$...): {0}")]
    InvalidHash(String),
}

/// What the admins are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminMode {
    /// Everything: the socket list and every connect, disconnect, room change and event, as
    /// they happen. Each of them is queued for the admins (bounded; dropped when full).
    #[default]
    Development,
    /// `config` and `server_stats` only: per-second counters of connections, closes,
    /// packets and bytes, and per-namespace socket counts. Nothing per event.
    Production,
}

/// Settings of the Admin UI support, for [`crate::SocketIoBuilder::instrument`].
#[derive(Debug, Clone)]
pub struct AdminOptions {
    pub(crate) auth: AdminAuth,
    pub(crate) namespace: String,
    pub(crate) mode: AdminMode,
    pub(crate) readonly: bool,
    pub(crate) server_id: Option<String>,
    pub(crate) stats_interval: Duration,
    pub(crate) max_emit_bytes: usize,
}

impl AdminOptions {
    /// The defaults of the official server with `auth`: namespace `/admin`, development
    /// mode, commands allowed, server id the host name, stats every 2 s.
    pub fn new(auth: AdminAuth) -> AdminOptions {
        AdminOptions {
            auth,
            namespace: "/admin".into(),
            mode: AdminMode::Development,
            readonly: false,
            server_id: None,
            stats_interval: Duration::from_secs(2),
            max_emit_bytes: 64 * 1024,
        }
    }

    /// The admin namespace (default `/admin`; a leading `/` is added if missing).
    pub fn namespace(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.namespace = if name.starts_with('/') {
            name
        } else {
            format!("/{name}")
        };
        self
    }

    /// Development (default) or production mode.
    pub fn mode(mut self, mode: AdminMode) -> Self {
        self.mode = mode;
        self
    }

    /// Read-only: the UI gets no write feature and the commands do nothing (an ack, when
    /// asked for, says so). Default false.
    pub fn readonly(mut self, readonly: bool) -> Self {
        self.readonly = readonly;
        self
    }

    /// This node's name in the UI (default: the host name). Give each node of a cluster its
    /// own: the UI keys servers by it.
    pub fn server_id(mut self, id: impl Into<String>) -> Self {
        self.server_id = Some(id.into());
        self
    }

    /// How often `server_stats` is sent (default 2 s, as the official server; at least
    /// 100 ms). The UI marks a server unhealthy after 10 s without stats.
    pub fn stats_interval(mut self, interval: Duration) -> Self {
        self.stats_interval = interval.max(Duration::from_millis(100));
        self
    }

    /// Largest `emit` command accepted, in bytes of its JSON arguments (default 64 KiB).
    pub fn max_emit_bytes(mut self, bytes: usize) -> Self {
        self.max_emit_bytes = bytes;
        self
    }
}

/// The admin support of one server.
pub(crate) struct Admin {
    options: AdminOptions,
    namespace: Str,
    server_id: String,
    hostname: String,
    started: Instant,
    auth: Authenticator,
    pub(crate) observer: Arc<Observer>,
    notices: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Notice>>>,
    server: OnceLock<Weak<ServerCore>>,
    tasks_started: std::sync::atomic::AtomicBool,
}

impl Admin {
    /// The admin support and the observer to put on the data path.
    pub(crate) fn new(options: AdminOptions) -> Arc<Admin> {
        let namespace = Str::from(options.namespace.as_str());
        let (observer, notices) =
            Observer::new(namespace.clone(), options.mode == AdminMode::Development);
        let hostname = hostname();
        Arc::new(Admin {
            server_id: options
                .server_id
                .clone()
                .unwrap_or_else(|| hostname.clone()),
            hostname,
            namespace,
            started: Instant::now(),
            auth: Authenticator::new(options.auth.clone()),
            observer: Arc::new(observer),
            notices: std::sync::Mutex::new(notices),
            server: OnceLock::new(),
            tasks_started: std::sync::atomic::AtomicBool::new(false),
            options,
        })
    }

    fn io(&self) -> Option<SocketIo> {
        self.server.get()?.upgrade()?.handle()
    }

    fn development(&self) -> bool {
        self.options.mode == AdminMode::Development
    }

    /// The features the UI enables (the official server's list and rules).
    fn features(&self) -> Vec<&'static str> {
        let mut features = if self.options.readonly {
            Vec::new()
        } else {
            vec![
                "EMIT",
                "JOIN",
                "LEAVE",
                "DISCONNECT",
                "MJOIN",
                "MLEAVE",
                "MDISCONNECT",
            ]
        };
        features.push("AGGREGATED_EVENTS");
        if self.development() {
            features.push("ALL_EVENTS");
        }
        features
    }

    /// Starts the stats and notice tasks once, on the current runtime.
    fn start_tasks(self: &Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self
            .tasks_started
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let weak = Arc::downgrade(self);
        rt.spawn(stats::run(weak.clone()));
        if let Some(notices) = crate::sync::lock(&self.notices).take() {
            rt.spawn(forward_notices(weak, notices));
        }
    }

    async fn on_connect(self: Arc<Self>, socket: SocketRef) -> Result<(), ConnectionRefusedError> {
        let from = socket.remote_addr().map(|addr| addr.ip());
        let Some(accepted) = self.auth.check(socket.auth(), from).await else {
            tracing::info!(address = ?from, ns = %self.namespace.as_str(), "admin login refused");
            // The exact message the UI reacts to by showing its login form again.
            return Err(ConnectionRefusedError::new("invalid credentials"));
        };
        self.start_tasks();
        if let Accepted::NewSession(id) = accepted {
            let _ = socket.emit("session", &id);
        }
        let _ = socket.emit("config", &json!({ "supportedFeatures": self.features() }));
        if self.development()
            && let Some(io) = self.io()
        {
            // Gathered cluster-wide after the connect, so a slow node does not hold the
            // admin's CONNECT reply.
            let socket = socket.clone();
            tokio::spawn(async move {
                let sockets = stats::all_sockets(&io).await;
                let _ = socket.emit("all_sockets", &sockets);
            });
        }
        Ok(())
    }

    async fn on_command(self: Arc<Self>, command: Command, args: Args) -> Json<Value> {
        if self.options.readonly {
            return Json(json!({ "error": "the admin namespace is read-only" }));
        }
        let Some(io) = self.io() else {
            return Json(json!({ "error": "the server is closing" }));
        };
        match commands::run(&io, command, &args, self.options.max_emit_bytes).await {
            Ok(()) => Json(json!({ "ok": true })),
            Err(error) => {
                tracing::debug!(command = command.event(), %error, "admin command refused");
                Json(json!({ "error": error }))
            }
        }
    }
}

/// Sends the development-mode notices to the admins, in order, until the server is gone.
async fn forward_notices(admin: Weak<Admin>, mut notices: tokio::sync::mpsc::Receiver<Notice>) {
    while let Some(notice) = notices.recv().await {
        let Some((io, ns)) = admin
            .upgrade()
            .and_then(|a| Some((a.io()?, a.namespace.clone())))
        else {
            return;
        };
        let (event, args) = notice.into_event();
        let Ok(args) = Args::from_values(args) else {
            continue;
        };
        let Ok(operator) = io.of(ns.as_str()) else {
            continue;
        };
        if let Err(e) = operator.emit_args(event, args).await {
            tracing::debug!(event, error = %e, "admin event not sent");
        }
    }
}

/// Sets up the admin namespace on a freshly built server.
pub(crate) fn install(io: &SocketIo, core: &Arc<ServerCore>, admin: Arc<Admin>) {
    let _ = admin.server.set(Arc::downgrade(core));
    let connect = {
        let admin = admin.clone();
        move |socket: SocketRef| {
            let admin = admin.clone();
            async move { admin.on_connect(socket).await }
        }
    };
    let mut handle = io.ns(admin.namespace.as_str(), connect);
    for command in Command::ALL {
        let admin = admin.clone();
        handle = handle.on(command.event(), move |args: Args| {
            let admin = admin.clone();
            async move { admin.on_command(command, args).await }
        });
    }
    // Without a runtime here, the tasks start with the first admin.
    admin.start_tasks();
}

/// The host name, as the UI shows it.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
