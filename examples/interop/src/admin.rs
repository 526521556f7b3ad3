//! The admin mode of `shared/interop-app.md` §5: the official Admin UI's protocol on `/admin`
//! (`INTEROP_ADMIN=user:password`, `INTEROP_ADMIN_MODE`, `INTEROP_ADMIN_READONLY=1`) and the
//! UI's own files at `INTEROP_ADMIN_UI` (from `INTEROP_ADMIN_UI_DIR`, by default the copy
//! `npm ci` puts in `examples/admin/node_modules`).

use std::convert::Infallible;
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use sockeye::SocketIoBuilder;
use sockeye::admin::{AdminAuth, AdminMode, AdminOptions};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Turns the admin on when `INTEROP_ADMIN` asks for it; an invalid setting is an error.
pub fn configure(builder: SocketIoBuilder) -> Result<SocketIoBuilder, String> {
    let Some(account) = env("INTEROP_ADMIN") else {
        return Ok(builder);
    };
    let Some((user, password)) = account.split_once(':') else {
        return Err("INTEROP_ADMIN must be user:password".into());
    };
    // The lowest bcrypt cost: a test account, checked at every UI login.
    let hash = bcrypt::hash(password, 4).map_err(|e| format!("cannot hash the password: {e}"))?;
    let auth = AdminAuth::basic(user, hash).map_err(|e| e.to_string())?;
    let mode = match env("INTEROP_ADMIN_MODE").as_deref() {
        None | Some("development") => AdminMode::Development,
        Some("production") => AdminMode::Production,
        Some(other) => {
            return Err(format!(
                "INTEROP_ADMIN_MODE={other:?}: development or production"
            ));
        }
    };
    let options = AdminOptions::new(auth)
        .mode(mode)
        .readonly(env("INTEROP_ADMIN_READONLY").as_deref() == Some("1"));
    Ok(builder.instrument(options))
}

/// What answers requests outside the Socket.IO path: the UI's files under a prefix, or 404.
#[derive(Clone, Debug)]
pub struct UiFiles {
    served: Option<(String, PathBuf)>,
}

impl UiFiles {
    /// From `INTEROP_ADMIN_UI` (the URL prefix, e.g. `/admin-ui/`) and `INTEROP_ADMIN_UI_DIR`.
    pub fn from_env() -> UiFiles {
        let served = env("INTEROP_ADMIN_UI").map(|prefix| {
            let prefix = format!("/{}/", prefix.trim_matches('/'));
            let dir = env("INTEROP_ADMIN_UI_DIR").map_or_else(
                || {
                    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("../admin/node_modules/@socket.io/admin-ui/ui/dist")
                },
                PathBuf::from,
            );
            (prefix, dir)
        });
        UiFiles { served }
    }

    async fn answer(served: Option<(String, PathBuf)>, path: String) -> Response<Full<Bytes>> {
        let file = served.and_then(|(prefix, dir)| {
            let rest = path
                .strip_prefix(&prefix)
                .or_else(|| (path == prefix.trim_end_matches('/')).then_some(""))?;
            let rest = if rest.is_empty() { "index.html" } else { rest };
            // Only plain names: no `..`, no absolute path, nothing outside the directory.
            let relative = Path::new(rest);
            relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
                .then(|| dir.join(relative))
        });
        let Some(file) = file else {
            return status(StatusCode::NOT_FOUND);
        };
        match tokio::fs::read(&file).await {
            Ok(body) => {
                let mut response = Response::new(Full::new(Bytes::from(body)));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    content_type(&file).parse().expect("constant"),
                );
                response
            }
            Err(_) => status(StatusCode::NOT_FOUND),
        }
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "application/javascript",
        Some("css") => "text/css",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json" | "map") => "application/json",
        _ => "application/octet-stream",
    }
}

impl<B> tower_service::Service<Request<B>> for UiFiles {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let served = self.served.clone();
        let path = req.uri().path().to_owned();
        Box::pin(async move { Ok(UiFiles::answer(served, path).await) })
    }
}
