//! The client through real networks, against the official Node `socket.io` server
//! (tests/client/server.js): an HTTP proxy started on loopback (sockeye-testkit's
//! `HttpProxy`, with Basic credentials), a load balancer's stickiness cookie that must hold
//! across polling requests and the upgrade, and permessage-deflate with the Node `ws` server.

use crate::common;

use std::time::Duration;

use common::{NodeServer, WAIT};
use serde_json::{Value, json};
use sockeye_client::{
    Args, Client, ClientBuilder, ConnectionError, DeflateConfig, SocketIoError, Transport,
};
use sockeye_testkit::{Direction, FaultProxy, HttpProxy};

const SHORT: Duration = Duration::from_secs(5);
const CREDS: (&str, &str) = ("alice", "s3cr:et");

async fn whoami(client: &Client) -> Value {
    client
        .call_args("whoami", Args::empty(), SHORT)
        .await
        .unwrap()
        .first()
        .unwrap()
}

/// Connects, waits for the expected transport, and checks an echo.
async fn connect_and_echo(builder: ClientBuilder, expect: Transport) -> Client {
    let client = tokio::time::timeout(WAIT, builder.connect())
        .await
        .expect("connect timed out")
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while client.transport() != Some(expect) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached {expect:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reply = client
        .call("echo", &json!({"via": "proxy"}), SHORT)
        .await
        .unwrap();
    assert_eq!(reply.first::<Value>().unwrap(), json!({"via": "proxy"}));
    assert_eq!(whoami(&client).await["transport"], expect.as_str());
    client
}

#[tokio::test]
async fn every_transport_goes_through_an_explicit_proxy_with_credentials() {
    let server = NodeServer::start();
    let origin = format!("127.0.0.1:{}", server.port);
    for (transports, expect) in [
        (vec![Transport::Polling], Transport::Polling),
        (vec![Transport::Websocket], Transport::Websocket),
        (
            vec![Transport::Polling, Transport::Websocket],
            Transport::Websocket,
        ),
    ] {
        let proxy = HttpProxy::start(Some(CREDS)).await.unwrap();
        let builder = Client::builder(server.url())
            .proxy(proxy.url(Some(CREDS)))
            .transports(transports.clone());
        let client = connect_and_echo(builder, expect).await;
        client.disconnect().await;
        let requests = proxy.requests();
        assert!(
            requests.iter().all(|r| r.authorized),
            "{transports:?}: {requests:?}"
        );
        let tunnels = requests
            .iter()
            .filter(|r| r.method == "CONNECT" && r.target == origin)
            .count();
        let forwarded = requests
            .iter()
            .filter(|r| {
                r.method != "CONNECT"
                    && r.target.starts_with(&format!(
                        "http://{origin}/socket.io/?EIO=4&transport=polling"
                    ))
            })
            .count();
        if transports.contains(&Transport::Websocket) {
            assert!(
                tunnels >= 1,
                "{transports:?}: no CONNECT tunnel: {requests:?}"
            );
        } else {
            assert_eq!(tunnels, 0, "{requests:?}");
        }
        if transports.contains(&Transport::Polling) {
            // The handshake and at least one more poll.
            assert!(forwarded >= 2, "{transports:?}: {requests:?}");
        } else {
            assert_eq!(forwarded, 0, "{requests:?}");
        }
    }
}

#[tokio::test]
async fn wrong_proxy_credentials_fail_the_connect_with_407() {
    let server = NodeServer::start();
    let proxy = HttpProxy::start(Some(CREDS)).await.unwrap();
    for transports in [vec![Transport::Websocket], vec![Transport::Polling]] {
        let result = Client::builder(server.url())
            .proxy(proxy.url(Some(("alice", "wrong"))))
            .transports(transports.clone())
            .reconnection(false)
            .connect()
            .await;
        match result {
            Err(SocketIoError::Connection(ConnectionError::Status { status: 407, .. })) => {}
            other => panic!("{transports:?}: expected a 407, got {:?}", other.err()),
        }
    }
    assert!(proxy.requests().iter().all(|r| !r.authorized));
}

#[tokio::test]
async fn a_sticky_session_cookie_holds_across_polling_and_the_upgrade() {
    let server = NodeServer::start_with_env(&[("SIO_STICKY", "1")]);
    // The server refuses every request of a session that lacks the cookie its first answer
    // set: polling after the handshake and the upgrade only work because the jar sends it.
    let client = connect_and_echo(Client::builder(server.url()), Transport::Websocket).await;
    client.disconnect().await;
    // Without the jar the second request lands "on another node" and is refused.
    let result = Client::builder(server.url())
        .cookies(false)
        .transports([Transport::Polling])
        .reconnection(false)
        .connect()
        .await;
    assert!(result.is_err(), "connected without the stickiness cookie");
}

#[tokio::test]
async fn permessage_deflate_with_the_node_server_saves_bytes() {
    let server = NodeServer::start_with_env(&[("SIO_DEFLATE", "1")]);
    let big = "sockeye ".repeat(4096);
    let mut sent = Vec::new();
    for deflate in [true, false] {
        let tap = FaultProxy::start(([127, 0, 0, 1], server.port).into())
            .await
            .unwrap();
        let config = deflate.then(|| DeflateConfig {
            threshold: 0,
            ..DeflateConfig::default()
        });
        let client = connect_and_echo(
            Client::builder(format!("http://{}", tap.addr()))
                .transports([Transport::Websocket])
                .ws_deflate(config),
            Transport::Websocket,
        )
        .await;
        let reply = client.call("echo", &json!(big), SHORT).await.unwrap();
        assert_eq!(reply.first::<String>().unwrap(), big);
        let seen = whoami(&client).await;
        let extensions = seen["extensions"].as_str().unwrap_or_default();
        assert_eq!(extensions.contains("permessage-deflate"), deflate, "{seen}");
        client.disconnect().await;
        sent.push((tap.bytes(Direction::Up), tap.bytes(Direction::Down)));
    }
    let ((up_on, down_on), (up_off, down_off)) = (sent[0], sent[1]);
    // 32 KiB each way without compression; a few hundred bytes with it.
    assert!(up_off > 32_000 && down_off > 32_000, "{sent:?}");
    assert!(up_on * 10 < up_off && down_on * 10 < down_off, "{sent:?}");
}
