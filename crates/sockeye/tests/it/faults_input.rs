//! Hostile input that targets limits and timers rather than the parser: attachments that never
//! complete, the payload that kills the Node server when echoed, WebSocket fragment floods,
//! and a compression offer.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{F, WAIT, Ws, builder, serve};
use sockeye::{Event, SocketIo, SocketRef};
use sockeye_testkit::panics::PanicWatch;
use sockeye_testkit::ws::{client_frame, handshake, opcode, read_frame};
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, timeout};

/// `/` with an `echo` handler answering the client's own arguments (ack) and re-emitting them
/// (event): the pattern that sends a client's payload back through the encoder.
async fn echo_server(io: SocketIo) -> SocketAddr {
    io.ns("/", |_s: SocketRef| async {})
        .on("echo", |socket: SocketRef, event: Event| async move {
            socket.emit_args("echo-back", event.args.clone()).unwrap();
            event.args
        });
    serve(&io).await
}

/// Pass: a binary packet whose second attachment never comes closes the session once
/// `attachment_timeout` has passed (not before), while a complete one is echoed.
#[tokio::test]
async fn attachments_never_completed_close_the_session_after_the_timer() {
    let _watch = PanicWatch::start();
    let addr = echo_server(
        builder()
            .attachment_timeout(Duration::from_millis(400))
            .build(),
    )
    .await;
    let (mut ok, _) = Ws::open_connected(addr).await;
    ok.send(r#"452-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    ok.send_bin(b"one").await;
    ok.send_bin(b"two").await;
    assert_eq!(
        ok.recv().await,
        F::T(
            r#"452-["echo-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
                .into()
        )
    );

    let (mut ws, _) = Ws::open_connected(addr).await;
    let started = Instant::now();
    ws.send(r#"452-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    ws.send_bin(b"only one").await;
    ws.expect_closed().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350),
        "closed after {took:?}, before the timer"
    );
}

/// The payload of reliability.md §0 that kills socket.io 4.8.4 when echoed: 100 000 nested
/// arrays (200 KB). Pass: the sender's session is closed (`ParseError`: nesting over
/// `Limits::max_depth`), the server lives, a bystander is still echoed; a payload nested
/// just under the limit is echoed back intact by the ack and by an event.
#[tokio::test]
async fn node_killer_deep_array_is_refused_and_shallower_nesting_is_echoed() {
    let _watch = PanicWatch::start();
    let addr = echo_server(builder().build()).await;
    let (mut bystander, _) = Ws::open_connected(addr).await;
    let (mut attacker, _) = Ws::open_connected(addr).await;
    let levels = 100_000;
    let deep = format!(
        r#"421["echo",{}{}]"#,
        "[".repeat(levels),
        "]".repeat(levels)
    );
    assert!(deep.len() > 200_000);
    attacker.send(&deep).await;
    attacker.expect_closed().await;

    // 30 nested arrays inside the event array (31 levels) is within the default 32.
    let nested = format!("{}1{}", "[".repeat(30), "]".repeat(30));
    bystander.send(&format!(r#"427["echo",{nested}]"#)).await;
    let mut got = vec![bystander.recv_text().await, bystander.recv_text().await];
    got.sort();
    assert_eq!(
        got,
        vec![
            format!(r#"42["echo-back",{nested}]"#),
            format!("437[{nested}]")
        ]
    );
}

/// Opens a raw WebSocket session and connects `/`.
async fn raw_session(addr: SocketAddr, extra: &[&str]) -> (tokio::net::TcpStream, String) {
    let (mut tcp, head) = handshake(addr, "/socket.io/?EIO=4&transport=websocket", extra)
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (_, _, open) = read_frame(&mut tcp, 4096).await.unwrap();
    assert!(open.starts_with(b"0{"));
    (tcp, head)
}

/// Reads frames until a close frame; returns its code (`None` if the connection just ended).
async fn close_code(tcp: &mut tokio::net::TcpStream) -> Option<u16> {
    loop {
        match timeout(WAIT, read_frame(tcp, 1 << 20))
            .await
            .expect("no close in time")
        {
            Ok((_, opcode::CLOSE, payload)) => {
                return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// Pass: one message made of 1-byte fragments (the ws CVE-2026-48779 flood) is cut once the
/// sum of fragments passes `max_payload` (close 1009), so its memory is bounded by the one
/// limit; fewer fragments under the limit make a normal message.
#[tokio::test]
async fn websocket_fragment_flood_is_bounded_by_max_payload() {
    let _watch = PanicWatch::start();
    let max = 4_000;
    let io = builder().engine(|e| e.max_payload(max)).build();
    let addr = echo_server(io).await;

    let (mut tcp, _) = raw_session(addr, &[]).await;
    tcp.write_all(&client_frame(true, opcode::TEXT, b"40"))
        .await
        .unwrap();
    let (_, _, ok) = read_frame(&mut tcp, 4096).await.unwrap();
    assert!(ok.starts_with(b"40{"));
    // A fragmented event under the limit is reassembled and handled.
    let event = br#"42["echo","fragmented"]"#;
    for (i, byte) in event.iter().enumerate() {
        let (fin, op) = (
            i + 1 == event.len(),
            if i == 0 {
                opcode::TEXT
            } else {
                opcode::CONTINUATION
            },
        );
        tcp.write_all(&client_frame(fin, op, &[*byte]))
            .await
            .unwrap();
    }
    let (_, _, back) = read_frame(&mut tcp, 4096).await.unwrap();
    assert_eq!(back, br#"42["echo-back","fragmented"]"#);

    // The flood: a fragment more than the limit allows, never FIN.
    let mut flood = client_frame(false, opcode::TEXT, b"4");
    for _ in 0..max {
        flood.extend_from_slice(&client_frame(false, opcode::CONTINUATION, b"x"));
    }
    // The server may close mid-write: a failed write is fine, the close code is the check.
    let _ = tcp.write_all(&flood).await;
    assert_eq!(close_code(&mut tcp).await, Some(1009));
}

/// Pass: a permessage-deflate offer is not accepted (no extension in the 101), so there is no
/// inflated size to bound: every message is counted as sent on the wire.
#[tokio::test]
async fn compression_offer_is_declined() {
    let _watch = PanicWatch::start();
    let addr = echo_server(builder().build()).await;
    let (_tcp, head) = raw_session(
        addr,
        &["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"],
    )
    .await;
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "compression negotiated: {head}"
    );
}
