//! Options: transports, upgrades, upgrade timeout, cookie, admission hook, path, timings.

use crate::common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use sockeye_engine::{CloseReason, CookieConfig, EngineConfig, SameSite, Transport, Transports};
use tokio_tungstenite::tungstenite::Message as Ws;

#[tokio::test]
async fn polling_only_refuses_websocket() {
    let server = serve(fast_config().transports(Transports::PollingOnly).build()).await;
    let client = http();
    let (_, body) = get(&client, &server.url("EIO=4&transport=polling")).await;
    assert!(body.contains(r#""upgrades":[]"#), "{body}");
    let err = tokio_tungstenite::connect_async(server.ws_url("EIO=4&transport=websocket")).await;
    assert!(err.is_err());
    let sid = handshake(&server, &client).await;
    let err = tokio_tungstenite::connect_async(
        server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}")),
    )
    .await;
    assert!(err.is_err());
}

#[tokio::test]
async fn websocket_only_refuses_polling() {
    let server = serve(fast_config().transports(Transports::WebsocketOnly).build()).await;
    let client = http();
    let (status, body) = get(&client, &server.url("EIO=4&transport=polling")).await;
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"code":0,"message":"Transport unknown"}"#)
    );
    let (mut ws, sid) = ws_session(&server).await;
    assert_eq!(
        server.engine.session(&sid).unwrap().transport(),
        Transport::Websocket
    );
    ws.send(Ws::text("4hi")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "4hi");
}

#[tokio::test]
async fn upgrades_can_be_disabled() {
    let server = serve(fast_config().allow_upgrades(false).build()).await;
    let client = http();
    let (_, body) = get(&client, &server.url("EIO=4&transport=polling")).await;
    assert!(body.contains(r#""upgrades":[]"#), "{body}");
    let sid = handshake(&server, &client).await;
    let err = tokio_tungstenite::connect_async(
        server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}")),
    )
    .await;
    assert!(err.is_err());
    // Direct WebSocket sessions still work.
    ws_session(&server).await;
}

#[tokio::test]
async fn an_upgrade_that_never_probes_times_out_and_polling_goes_on() {
    let server = serve(
        fast_config()
            .upgrade_timeout(Duration::from_millis(200))
            .ping_interval(Duration::from_secs(20))
            .build(),
    )
    .await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let mut ws = ws_connect(&server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}"))).await;
    wait_ws_close(&mut ws).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    assert_eq!(post(&client, &q, "4still polling").await.0, 200);
    assert_eq!(get(&client, &q).await, (200, "4still polling".into()));
    // And a new upgrade attempt is allowed.
    let mut ws = ws_connect(&server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}"))).await;
    ws.send(Ws::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "3probe");
}

#[tokio::test]
async fn an_upgrade_with_a_wrong_packet_is_abandoned() {
    let server = serve(fast_config().ping_interval(Duration::from_secs(20)).build()).await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let mut ws = ws_connect(&server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}"))).await;
    ws.send(Ws::text("5")).await.unwrap(); // UPGRADE before the probe
    wait_ws_close(&mut ws).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    assert_eq!(post(&client, &q, "4ok").await.0, 200);
    assert_eq!(get(&client, &q).await, (200, "4ok".into()));
}

#[tokio::test]
async fn cookie_is_set_on_both_handshakes() {
    let cookie = CookieConfig {
        name: "sticky".into(),
        same_site: Some(SameSite::Strict),
        ..CookieConfig::default()
    };
    let server = serve(fast_config().cookie(cookie).build()).await;
    let res = http()
        .get(server.url("EIO=4&transport=polling"))
        .send()
        .await
        .unwrap();
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let body = res.text().await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&body[1..]).unwrap();
    assert_eq!(
        set,
        format!(
            "sticky={}; Path=/; HttpOnly; SameSite=Strict",
            json["sid"].as_str().unwrap()
        )
    );
    let (_, res) = tokio_tungstenite::connect_async(server.ws_url("EIO=4&transport=websocket"))
        .await
        .unwrap();
    assert!(
        res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("sticky=")
    );
}

#[tokio::test]
async fn no_cookie_by_default() {
    let server = serve(fast_config().build()).await;
    let res = http()
        .get(server.url("EIO=4&transport=polling"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn allow_request_refuses_both_transports() {
    let server = serve(
        fast_config()
            .allow_request(|parts| {
                parts
                    .headers
                    .get("origin")
                    .is_some_and(|o| o == "https://good.example")
            })
            .build(),
    )
    .await;
    let client = http();
    let res = client
        .get(server.url("EIO=4&transport=polling"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let res = client
        .get(server.url("EIO=4&transport=polling"))
        .header("origin", "https://good.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = server
        .ws_url("EIO=4&transport=websocket")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 403);
        }
        other => panic!("expected 403, got {other:?}"),
    }
    assert_eq!(
        server.rec.opened.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test]
async fn custom_path_and_timings_are_announced() {
    let config = EngineConfig::builder()
        .path("/custom")
        .ping_interval(Duration::from_millis(1234))
        .ping_timeout(Duration::from_millis(567))
        .max_payload(4321)
        .build();
    let server = serve(config).await;
    assert_eq!(server.engine.config().path(), "/custom/");
    let (status, body) = get(&http(), &server.url("EIO=4&transport=polling")).await;
    assert_eq!(status, 200);
    assert!(
        body.ends_with(
            r#""upgrades":["websocket"],"pingInterval":1234,"pingTimeout":567,"maxPayload":4321}"#
        ),
        "{body}"
    );
    // Other paths are not the engine's.
    let res = http()
        .get(format!(
            "http://{}/engine.io/?EIO=4&transport=polling",
            server.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
}

#[tokio::test]
async fn session_reports_request_and_remote_address() {
    let server = serve(fast_config().build()).await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let session = server.engine.session(&sid).unwrap();
    assert_eq!(
        session.remote_addr().unwrap().ip(),
        std::net::Ipv4Addr::LOCALHOST
    );
    assert_eq!(
        session.request().uri.query(),
        Some("EIO=4&transport=polling")
    );
    assert_eq!(session.transport(), Transport::Polling);
    session.close(CloseReason::ServerClose);
    assert_eq!(server.rec.wait_close(&sid).await, CloseReason::ServerClose);
}

#[tokio::test]
async fn server_close_reaches_a_polling_client_as_close_packet() {
    let server = serve(fast_config().ping_interval(Duration::from_secs(20)).build()).await;
    let client = http();
    let sid = handshake(&server, &client).await;
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    let session = server.engine.session(&sid).unwrap();
    session.send(sockeye_engine::Frame::message("bye")).unwrap();
    session.close(CloseReason::ServerClose);
    assert_eq!(get(&client, &q).await, (200, "4bye\x1e1".into()));
    assert_eq!(get(&client, &q).await.0, 400);
    assert_eq!(server.rec.closes(), vec![(sid, CloseReason::ServerClose)]);
}

#[tokio::test]
async fn content_types_match_the_reference_server() {
    let server = serve(fast_config().build()).await;
    let client = http();
    let res = client
        .get(server.url("EIO=4&transport=polling"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/plain; charset=UTF-8");
    let body = res.text().await.unwrap();
    let sid = serde_json::from_str::<serde_json::Value>(&body[1..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = server.url(&format!("EIO=4&transport=polling&sid={sid}"));
    let res = client.post(&q).body("4x").send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/html");
    let res = client.get(&q).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/plain; charset=UTF-8");
    let res = client
        .get(server.url("EIO=4&transport=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "application/json");
}
