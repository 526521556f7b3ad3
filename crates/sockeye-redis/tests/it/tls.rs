//! `rediss://`: two nodes through a TLS-only `redis-server` with a private CA.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::{SHARED_URL, WAIT, config, node, redis_available, unique_key};
use sockeye::Args;
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_talk_over_tls() {
    if !redis_available(SHARED_URL).await {
        return;
    }
    let dir = std::env::temp_dir().join(unique_key("tls"));
    std::fs::create_dir_all(&dir).unwrap();
    // A private CA and a server certificate it signed (a self-signed leaf is refused).
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=sockeye-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "srv.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            "cert.pem",
            "-extfile",
            "ext.cnf",
        ],
    ];
    for args in steps {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .stderr(Stdio::null())
            .status()
            .await
            .expect("cannot run openssl");
        assert!(status.success(), "openssl {args:?} failed");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _redis = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            "cert.pem",
            "--tls-key-file",
            "key.pem",
            "--tls-ca-cert-file",
            "cert.pem",
        ])
        .args([
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot run redis-server");
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let url = format!("rediss://127.0.0.1:{port}");
    let key = unique_key("tls");
    let deadline = tokio::time::Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "TLS redis-server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let a = node(config(&url, &key).tls_root_cert(ca.clone()), "a").await;
    let _b = node(config(&url, &key).tls_root_cert(ca), "b").await;
    assert_eq!(a.redis.server_count("/").await.unwrap(), 2);
    let answers = a
        .redis
        .server_side_emit_with_ack(
            "/",
            "ping-servers",
            Args::from_value(&1).unwrap(),
            Duration::from_secs(5),
        )
        .await
        .unwrap()
        .collect_all()
        .await;
    assert_eq!(answers.len(), 1);
    assert_eq!(
        answers[0].1.as_ref().unwrap().first::<String>().unwrap(),
        "b"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
