//! Hostile or broken input: the offending connection is closed as `parse error` (or the packet
//! ignored where the JavaScript server ignores it), nothing panics (`PanicWatch`: a panic caught
//! by the engine would also close the connection, as `transport error`), and other clients are
//! untouched.

use crate::common;

use std::net::SocketAddr;

use common::{Reasons, Ws, builder, serve};
use sockeye::{DisconnectReason, Event, SocketRef};
use sockeye_testkit::panics::PanicWatch;

async fn server() -> SocketAddr {
    server_with_reasons().await.0
}

async fn server_with_reasons() -> (SocketAddr, Reasons) {
    let io = builder().build();
    let reasons = Reasons::default();
    reasons.record(io.ns("/", |_s: SocketRef| async {})).on(
        "message",
        |socket: SocketRef, event: Event| async move {
            socket.emit_args("message-back", event.args).unwrap();
        },
    );
    io.ns("/custom", |_s: SocketRef| async {});
    (serve(&io).await, reasons)
}

/// A connected client that must keep working after someone else misbehaved.
async fn bystander(addr: SocketAddr) -> Ws {
    Ws::open_connected(addr).await.0
}

async fn still_works(ws: &mut Ws) {
    ws.send(r#"42["message","still here"]"#).await;
    ws.expect(r#"42["message-back","still here"]"#).await;
}

/// Connects to `/`, sends `frames`, and asserts the server closes the connection as
/// `parse error` without panicking while a bystander keeps being served.
async fn assert_closes(text: &[&str], binary: &[&[u8]]) {
    let watch = PanicWatch::start();
    let (addr, reasons) = server_with_reasons().await;
    let mut other = bystander(addr).await;
    let (mut ws, sid) = Ws::open_connected(addr).await;
    for t in text {
        ws.send(t).await;
    }
    for b in binary {
        ws.send_bin(b).await;
    }
    ws.expect_closed().await;
    assert_eq!(reasons.of(&sid).await, DisconnectReason::ParseError);
    still_works(&mut other).await;
    watch.assert_none();
}

#[tokio::test]
async fn unknown_packet_type_closes() {
    assert_closes(&["47[\"message\"]"], &[]).await;
}

#[tokio::test]
async fn not_a_packet_closes() {
    assert_closes(&["4abc"], &[]).await;
}

#[tokio::test]
async fn invalid_json_closes() {
    assert_closes(&[r#"42["message","#], &[]).await;
}

#[tokio::test]
async fn payload_not_an_array_closes() {
    assert_closes(&["42{}"], &[]).await;
}

#[tokio::test]
async fn event_without_name_closes() {
    assert_closes(&["42[]"], &[]).await;
}

#[tokio::test]
async fn non_string_event_name_closes() {
    assert_closes(&[r#"42[1,"x"]"#], &[]).await;
}

#[tokio::test]
async fn bad_ack_id_closes() {
    assert_closes(&[r#"42abc["message"]"#], &[]).await;
}

#[tokio::test]
async fn overflowing_ack_id_closes() {
    assert_closes(&[r#"4299999999999999999999999999["message",1]"#], &[]).await;
}

#[tokio::test]
async fn placeholder_beyond_attachment_count_closes() {
    assert_closes(
        &[r#"451-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#],
        &[&[1]],
    )
    .await;
}

#[tokio::test]
async fn too_many_declared_attachments_closes() {
    assert_closes(&[r#"4599-["message",{"_placeholder":true,"num":0}]"#], &[]).await;
}

#[tokio::test]
async fn binary_frame_without_binary_packet_closes() {
    assert_closes(&[], &[&[1, 2, 3]]).await;
}

#[tokio::test]
async fn text_frame_while_attachments_are_expected_closes() {
    assert_closes(
        &[
            r#"451-["message",{"_placeholder":true,"num":0}]"#,
            r#"42["message","x"]"#,
        ],
        &[],
    )
    .await;
}

#[tokio::test]
async fn deeply_nested_payload_closes_without_crashing() {
    let deep = format!(r#"42["message",{}1{}]"#, "[".repeat(5000), "]".repeat(5000));
    assert_closes(&[&deep], &[]).await;
}

#[tokio::test]
async fn second_connect_to_the_same_namespace_closes() {
    assert_closes(&["40"], &[]).await;
}

#[tokio::test]
async fn connect_error_from_a_client_closes() {
    assert_closes(&[r#"44{"message":"nope"}"#], &[]).await;
}

#[tokio::test]
async fn event_for_a_namespace_never_connected_closes() {
    assert_closes(&[r#"42/custom,["message","nobody"]"#], &[]).await;
}

#[tokio::test]
async fn ack_for_a_namespace_never_connected_closes() {
    assert_closes(&["43/custom,1[1]"], &[]).await;
}

#[tokio::test]
async fn disconnect_for_a_namespace_never_connected_closes() {
    assert_closes(&["41/custom,"], &[]).await;
}

#[tokio::test]
async fn packets_for_a_namespace_the_client_left_are_ignored() {
    let watch = PanicWatch::start();
    let addr = server().await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send("40/custom,").await;
    ws.expect_connect("/custom").await;
    ws.send("41/custom,").await;
    // These may have crossed a server-side DISCONNECT: ignored, attachments still consumed.
    ws.send(r#"42/custom,["message","late"]"#).await;
    ws.send(
        r#"452-/custom,["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    )
    .await;
    ws.send_bin(&[1]).await;
    ws.send_bin(&[2]).await;
    ws.send("43/custom,1[1]").await;
    ws.send("41/custom,").await;
    still_works(&mut ws).await;
    watch.assert_none();
}

#[tokio::test]
async fn unknown_or_late_ack_is_ignored() {
    let watch = PanicWatch::start();
    let addr = server().await;
    let (mut ws, _) = Ws::open_connected(addr).await;
    ws.send("43999[1]").await;
    still_works(&mut ws).await;
    watch.assert_none();
}
