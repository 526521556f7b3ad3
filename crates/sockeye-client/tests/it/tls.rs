//! The client over TLS (feature `tls`): our server behind tokio-rustls with a certificate issued
//! at test time by a private CA (rcgen), reached over `wss` and `https` polling.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::WAIT;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use sockeye::SocketIo;
use sockeye_client::{Client, ConnectionError, SocketIoError, Transport};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A private CA and a server certificate for 127.0.0.1 and localhost signed by it.
struct Pki {
    ca_pem: String,
    server: rustls::ServerConfig,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server,
    }
}

/// Our server with `common::echo_and_ask` on `/`, over TLS only.
async fn serve_tls(server: rustls::ServerConfig) -> SocketAddr {
    let io = SocketIo::builder().build();
    let _ = common::echo_and_ask(&io, "/");
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(io.service());
            tokio::spawn(async move {
                // A client that refuses our certificate ends the handshake: nothing to serve.
                let Ok(tls) = tokio::time::timeout(WAIT, acceptor.accept(tcp)).await else {
                    return;
                };
                let Ok(tls) = tls else { return };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn wss_and_https_polling_trust_a_private_ca() {
    let pki = pki();
    let addr = serve_tls(pki.server).await;
    for (url, transports, expected) in [
        (
            format!("wss://{addr}"),
            vec![Transport::Websocket],
            Transport::Websocket,
        ),
        (
            format!("https://{addr}"),
            vec![Transport::Polling],
            Transport::Polling,
        ),
        // Polling first, then the upgrade to wss on the same TLS settings; by host name.
        (
            format!("https://localhost:{}", addr.port()),
            vec![Transport::Polling, Transport::Websocket],
            Transport::Websocket,
        ),
    ] {
        let client = Client::builder(&url)
            .transports(transports.clone())
            .tls_root_certificate(pki.ca_pem.clone())
            .tls_builtin_roots(false)
            .reconnection(false)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{url} {transports:?}: {e}"));
        let reply = client
            .call("echo", &json!({"over": url}), WAIT)
            .await
            .unwrap();
        assert_eq!(reply.first::<Value>().unwrap(), json!({"over": url}));
        let deadline = tokio::time::Instant::now() + WAIT;
        while client.transport() != Some(expected) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{url}: still on {:?}, expected {expected:?}",
                client.transport()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        client.disconnect().await;
    }
}

#[tokio::test]
async fn a_server_certificate_from_an_unknown_ca_is_refused() {
    let trusted = pki();
    let other = pki();
    let addr = serve_tls(other.server).await;
    for transports in [vec![Transport::Websocket], vec![Transport::Polling]] {
        let result = Client::builder(format!("https://{addr}"))
            .transports(transports.clone())
            .tls_root_certificate(trusted.ca_pem.clone())
            .reconnection(false)
            .request_timeout(Duration::from_secs(10))
            .connect()
            .await;
        match result {
            Err(SocketIoError::Connection(ConnectionError::Transport(msg))) => {
                // reqwest hides the rustls cause behind "error sending request"; tungstenite
                // names it.
                if transports == [Transport::Websocket] {
                    assert!(msg.to_lowercase().contains("certificate"), "{msg}");
                }
            }
            Err(e) => panic!("{transports:?}: unexpected error {e}"),
            Ok(_) => panic!("{transports:?}: connected to a server no trusted CA vouches for"),
        }
    }
}

#[tokio::test]
async fn a_bad_root_certificate_fails_connect_with_an_option_error() {
    let result = Client::builder("https://127.0.0.1:9")
        .tls_root_certificate("no certificate here")
        .reconnection(false)
        .connect()
        .await;
    match result {
        Err(SocketIoError::Connection(ConnectionError::InvalidOption(msg))) => {
            assert!(msg.contains("tls_root_certificate"), "{msg}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected without a usable root"),
    }
}
