//! The admin example: a small app (namespace `/` with a `rooms` event) instrumented for the
//! official Socket.IO Admin UI, whose built files it serves at `/admin-ui/` from the copy
//! `npm ci` installed (nothing is fetched at run time).
//!
//! Settings from the environment:
//! - `ADMIN_USER` / `ADMIN_PASSWORD` (default `admin` / `admin`): the UI's login; the server
//!   keeps only a bcrypt hash of the password (`ADMIN_PASSWORD_HASH` gives one directly).
//! - `ADMIN_MODE` `development` (default) or `production`; `ADMIN_READONLY=1`.
//! - `SERVER_ID`: this node's name in the UI (default: the host name).
//! - `ADMIN_UI_DIR`: the UI's built files (default: this example's
//!   `node_modules/@socket.io/admin-ui/ui/dist`).
//! - `REDIS_URL` (+ `REDIS_KEY`): several processes form one cluster.
//!
//! `/metrics` serves the server's metrics in the Prometheus text format
//! (`metrics-exporter-prometheus` as the `metrics` recorder).

use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::Value;
use sockeye::admin::{AdminAuth, AdminMode, AdminOptions};
use sockeye::prelude::*;
use sockeye_redis::{RedisAdapterFactory, RedisConfig};
use tower_http::services::ServeDir;

/// Why the example cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
    /// The UI's files are not there.
    #[error(
        "the Admin UI's files are missing at {0}: run `npm ci` in examples/admin (or set ADMIN_UI_DIR)"
    )]
    MissingUi(PathBuf),
    /// Redis.
    #[error("the Redis adapter cannot start: {0}")]
    Redis(String),
    /// The metrics recorder.
    #[error("the Prometheus recorder cannot be installed: {0}")]
    Metrics(String),
    /// Serving failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Where `npm ci` puts the UI's built files.
pub fn default_ui_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules/@socket.io/admin-ui/ui/dist")
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The admin options the environment asks for.
pub fn options_from_env() -> Result<AdminOptions, SetupError> {
    let user = env("ADMIN_USER").unwrap_or_else(|| "admin".into());
    let hash = match env("ADMIN_PASSWORD_HASH") {
        Some(hash) => hash,
        None => {
            let password = env("ADMIN_PASSWORD").unwrap_or_else(|| "admin".into());
            bcrypt::hash(password, bcrypt::DEFAULT_COST)
                .map_err(|e| SetupError::Config(format!("cannot hash the password: {e}")))?
        }
    };
    let auth = AdminAuth::basic(user, hash).map_err(|e| SetupError::Config(e.to_string()))?;
    let mode = match env("ADMIN_MODE").as_deref() {
        None | Some("development") => AdminMode::Development,
        Some("production") => AdminMode::Production,
        Some(other) => {
            return Err(SetupError::Config(format!(
                "ADMIN_MODE={other:?}: development or production"
            )));
        }
    };
    let mut options = AdminOptions::new(auth)
        .mode(mode)
        .readonly(env("ADMIN_READONLY").as_deref() == Some("1"));
    if let Some(id) = env("SERVER_ID") {
        options = options.server_id(id);
    }
    Ok(options)
}

/// Serves the app, the admin namespace and the UI on `listener`.
pub async fn serve(listener: tokio::net::TcpListener) -> Result<(), SetupError> {
    let ui_dir = env("ADMIN_UI_DIR").map_or_else(default_ui_dir, PathBuf::from);
    if !ui_dir.join("index.html").is_file() {
        return Err(SetupError::MissingUi(ui_dir));
    }
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| SetupError::Metrics(e.to_string()))?;
    let mut builder = SocketIo::builder()
        .instrument(options_from_env()?)
        .metrics(true);
    if let Some(url) = env("REDIS_URL") {
        let key = env("REDIS_KEY").unwrap_or_else(|| "socket.io".into());
        let redis = RedisAdapterFactory::connect(RedisConfig::new(url).key(key))
            .await
            .map_err(|e| SetupError::Redis(e.to_string()))?;
        if !redis.ready(Duration::from_secs(10)).await {
            return Err(SetupError::Redis(
                "subscriptions not ready within 10 s".into(),
            ));
        }
        builder = builder.adapter(redis);
    }
    let (layer, io) = builder.build_layer();
    io.ns("/", async |socket: SocketRef| {
        // What the client calls itself shows in the UI as the socket's data.
        let name = socket
            .auth()
            .and_then(|auth| auth.get("name"))
            .and_then(Value::as_str);
        if let Some(name) = name {
            socket.save_session(serde_json::json!({ "name": name }));
        }
    })
    .on("rooms", async |socket: SocketRef| Json(socket.rooms()));
    let app = Router::new()
        .route("/", get(|| async { Redirect::temporary("/admin-ui/") }))
        .route(
            "/metrics",
            get(move || std::future::ready(prometheus.render())),
        )
        .nest_service("/admin-ui", ServeDir::new(ui_dir))
        .layer(layer);
    // The peer address: the UI shows it, and failed logins are slowed per address.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(())
}
