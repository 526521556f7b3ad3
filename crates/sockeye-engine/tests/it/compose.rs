//! The engine composed with other tower services: on an axum `Router` beside normal routes,
//! on bare hyper in front of another service, and under `tower-http` CORS and compression.

use crate::common;

use std::convert::Infallible;
use std::sync::Arc;

use common::*;
use futures_util::SinkExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use sockeye_engine::Engine;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as Ws;
use tower::{Layer, ServiceBuilder};

fn engine() -> (Engine<Echo>, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    (
        Engine::new(Echo { rec: rec.clone() }, fast_config().build()),
        rec,
    )
}

/// Serves any tower service on hyper with upgrades; returns the address.
async fn serve_service<S, B>(service: S) -> std::net::SocketAddr
where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tcp.set_nodelay(true).unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn on_an_axum_router_beside_normal_routes() {
    let (engine, rec) = engine();
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "healthy" }))
        .route("/engine.io-admin", axum::routing::get(|| async { "admin" }))
        .layer(engine.layer());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = http();
    assert_eq!(
        get(&client, &format!("http://{addr}/health")).await,
        (200, "healthy".into())
    );
    // A path sharing the engine's prefix is not captured.
    assert_eq!(
        get(&client, &format!("http://{addr}/engine.io-admin")).await,
        (200, "admin".into())
    );
    assert_eq!(get(&client, &format!("http://{addr}/missing")).await.0, 404);
    // Polling, then WebSocket, through the router.
    let (status, body) = get(
        &client,
        &format!("http://{addr}/engine.io/?EIO=4&transport=polling"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sid = serde_json::from_str::<serde_json::Value>(&body[1..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = format!("http://{addr}/engine.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(post(&client, &q, "4via axum").await.0, 200);
    assert_eq!(get(&client, &q).await, (200, "4via axum".into()));
    let mut ws = ws_connect(&format!("ws://{addr}/engine.io/?EIO=4&transport=websocket")).await;
    next_text(&mut ws).await;
    ws.send(Ws::text("4ws via axum")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4ws via axum");
    assert_eq!(rec.opened.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn on_bare_hyper_in_front_of_another_service() {
    let (engine, _) = engine();
    let inner = tower::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
        let body = http_body_util::Full::new(bytes::Bytes::from(format!(
            "inner saw {}",
            req.uri().path()
        )));
        Ok::<_, Infallible>(http::Response::new(body))
    });
    let addr = serve_service(engine.layer().layer(inner)).await;
    let client = http();
    assert_eq!(
        get(&client, &format!("http://{addr}/other")).await,
        (200, "inner saw /other".into())
    );
    let (status, body) = get(
        &client,
        &format!("http://{addr}/engine.io/?EIO=4&transport=polling"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.starts_with("0{\"sid\""), "{body}");
    let mut ws = ws_connect(&format!("ws://{addr}/engine.io/?EIO=4&transport=websocket")).await;
    assert!(next_text(&mut ws).await.starts_with('0'));
}

#[tokio::test]
async fn standalone_service_answers_404_elsewhere() {
    let server = serve(fast_config().build()).await;
    let (status, _) = get(&http(), &format!("http://{}/index.html", server.addr)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn cors_from_tower_http() {
    let (engine, _) = engine();
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin("https://app.example".parse::<http::HeaderValue>().unwrap())
        .allow_methods([http::Method::GET, http::Method::POST])
        .allow_credentials(true);
    let addr = serve_service(ServiceBuilder::new().layer(cors).service(engine.service())).await;
    let client = http();
    let url = format!("http://{addr}/engine.io/?EIO=4&transport=polling");
    let res = client
        .get(&url)
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    let preflight = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 200);
    assert!(
        preflight.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    // Another origin gets no grant for itself (the fixed allow-origin does not match it).
    let res = client
        .get(&url)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_ne!(
        res.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("https://evil.example")
    );
}

#[tokio::test]
async fn compression_from_tower_http() {
    let (engine, _) = engine();
    let addr = serve_service(
        ServiceBuilder::new()
            .layer(tower_http::compression::CompressionLayer::new())
            .service(engine.service()),
    )
    .await;
    let plain = reqwest::Client::builder().no_gzip().build().unwrap();
    let gzip = http();
    let (_, body) = get(
        &gzip,
        &format!("http://{addr}/engine.io/?EIO=4&transport=polling"),
    )
    .await;
    let sid = serde_json::from_str::<serde_json::Value>(&body[1..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = format!("http://{addr}/engine.io/?EIO=4&transport=polling&sid={sid}");
    let big = format!("4{}", "compressible ".repeat(500));
    assert_eq!(post(&gzip, &q, big.clone()).await.0, 200);
    let res = plain
        .get(&q)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let wire = res.bytes().await.unwrap();
    assert!(
        wire.len() < big.len() / 4,
        "{} bytes on the wire",
        wire.len()
    );
    // And the compressed payload decodes to the echo.
    assert_eq!(post(&gzip, &q, big.clone()).await.0, 200);
    assert_eq!(get(&gzip, &q).await, (200, big));
}
