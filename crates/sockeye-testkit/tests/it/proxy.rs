//! The proxy itself: each fault does what its documentation says, against a loopback echo.

use std::time::Duration;

use sockeye_testkit::{Direction, Fault, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

const WAIT: Duration = Duration::from_secs(10);

async fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).await.unwrap();
    let mut back = vec![0; msg.len()];
    timeout(WAIT, s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    back
}

#[tokio::test]
async fn pass_pause_delay_blackhole_throttle() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut s, b"hello").await, b"hello");

    proxy.set(Direction::Both, Fault::Pause);
    s.write_all(b"paused").await.unwrap();
    let mut buf = [0u8; 6];
    assert!(
        timeout(Duration::from_millis(300), s.read_exact(&mut buf))
            .await
            .is_err(),
        "nothing crosses a paused proxy"
    );
    proxy.heal();
    timeout(WAIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"paused", "paused bytes are delivered on resume");

    proxy.set(Direction::Up, Fault::Delay(Duration::from_millis(300)));
    let t = Instant::now();
    assert_eq!(round_trip(&mut s, b"late").await, b"late");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );

    proxy.set(Direction::Down, Fault::Blackhole);
    proxy.set(Direction::Up, Fault::Pass);
    s.write_all(b"lost").await.unwrap();
    let mut lost = [0u8; 4];
    assert!(
        timeout(Duration::from_millis(300), s.read_exact(&mut lost))
            .await
            .is_err()
    );
    proxy.heal();
    assert_eq!(
        round_trip(&mut s, b"after").await,
        b"after",
        "blackholed bytes are gone"
    );

    proxy.set(
        Direction::Down,
        Fault::Throttle {
            bytes_per_sec: 20_000,
        },
    );
    let t = Instant::now();
    let big = vec![7u8; 10_000];
    assert_eq!(round_trip(&mut s, &big).await, big);
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "10 kB at 20 kB/s took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn half_close_and_reset() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut s, b"x").await, b"x");
    assert_eq!(proxy.open_connections(), 1);
    proxy.half_close(Direction::Down);
    let mut buf = [0u8; 1];
    let n = timeout(WAIT, s.read(&mut buf)).await.unwrap().unwrap();
    assert_eq!(
        n, 0,
        "the client reads end of stream after a downstream half-close"
    );

    let mut s2 = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut s2, b"y").await, b"y");
    proxy.reset_all();
    let err = timeout(WAIT, s2.read(&mut buf)).await.unwrap();
    assert!(
        matches!(&err, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "a reset connection reads ECONNRESET, got {err:?}"
    );

    proxy.refuse_new(true);
    let mut s3 = TcpStream::connect(proxy.addr()).await.unwrap();
    let r = timeout(WAIT, s3.read(&mut buf)).await.unwrap();
    assert!(matches!(r, Err(_) | Ok(0)), "refused connection got {r:?}");
    assert_eq!(proxy.accepted(), 3);
}
