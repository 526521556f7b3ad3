//! Origin allow-list on every transport (CORS alone leaves WebSockets open to any site), and
//! the CORS misconfiguration `*` + credentials refused by the composed tower-http layer.

use crate::common;

use common::*;
use sockeye_testkit::ws::handshake as raw_ws;

const GOOD: &str = "https://app.example";
const EVIL: &str = "https://evil.example";

async fn status_with_origin(url: &str, origin: Option<&str>) -> (u16, String) {
    let mut req = http().get(url);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Pass: with `allowed_origins([GOOD])`, a foreign `Origin` gets 403 code 4 on the polling
/// handshake, the WebSocket handshake, and a WebSocket upgrade of an open session; the listed
/// origin (any case, trailing slash) and requests without `Origin` are served.
#[tokio::test]
async fn foreign_origins_are_refused_on_polling_and_websocket() {
    let server = serve(fast_config().allowed_origins([GOOD, "*"]).build()).await;
    let polling = server.url("EIO=4&transport=polling");
    let (status, body) = status_with_origin(&polling, Some(EVIL)).await;
    assert_eq!(
        (status, body.as_str()),
        (403, r#"{"code":4,"message":"Forbidden"}"#)
    );
    assert_eq!(status_with_origin(&polling, Some(GOOD)).await.0, 200);
    assert_eq!(
        status_with_origin(&polling, Some("HTTPS://APP.EXAMPLE/"))
            .await
            .0,
        200
    );
    assert_eq!(status_with_origin(&polling, None).await.0, 200);

    let path = format!(
        "{}?EIO=4&transport=websocket",
        server.engine.config().path()
    );
    let (_, head) = raw_ws(server.addr, &path, &[&format!("Origin: {EVIL}")])
        .await
        .unwrap();
    assert!(
        head.starts_with("HTTP/1.1 403"),
        "foreign WebSocket handshake: {head}"
    );
    let (_, head) = raw_ws(server.addr, &path, &[&format!("Origin: {GOOD}")])
        .await
        .unwrap();
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "listed WebSocket handshake: {head}"
    );

    // An upgrade of a session opened from the listed origin, attempted from another site.
    let sid = handshake(&server, &http()).await;
    let upgrade = format!("{path}&sid={sid}");
    let sessions = server.engine.session_count();
    let (_, head) = raw_ws(server.addr, &upgrade, &[&format!("Origin: {EVIL}")])
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 403"), "foreign upgrade: {head}");
    let (_, head) = raw_ws(server.addr, &path, &[&format!("Origin: {EVIL}")])
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert_eq!(
        server.engine.session_count(),
        sessions,
        "a refusal opened a session"
    );
}

/// Pass: without the option nothing is checked (the default, as the reference server).
#[tokio::test]
async fn no_allow_list_by_default() {
    let server = serve(fast_config().build()).await;
    let polling = server.url("EIO=4&transport=polling");
    assert_eq!(status_with_origin(&polling, Some(EVIL)).await.0, 200);
}

/// Pass: the CORS layer the docs tell users to compose refuses `*` together with credentials
/// (at startup: it is not reachable from the network), so cookies are never offered to every
/// site.
#[test]
fn cors_wildcard_with_credentials_is_refused() {
    use tower_http::cors::{Any, CorsLayer};
    // tower-http panics, on purpose: not a data-path panic for the suite's panic watch.
    let built = sockeye_testkit::panics::expected(|| {
        std::panic::catch_unwind(|| {
            let layer = CorsLayer::new().allow_origin(Any).allow_credentials(true);
            tower::Layer::layer(
                &layer,
                tower::service_fn(|_: http::Request<()>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(()))
                }),
            )
        })
    });
    assert!(built.is_err(), "tower-http accepted `*` with credentials");
}
