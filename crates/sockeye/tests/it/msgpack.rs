//! The msgpack parser end to end, client frames made with the protocol crate's own codec.

use crate::common;

use bytes::Bytes;
use common::{F, Ws, builder, serve};
use sockeye::{Args, Event, ParserKind, SocketRef};
use sockeye_engine::{Frame, Message};
use sockeye_protocol::socketio::{Decoder, Limits, Packet, PacketData};

fn encode(packet: &Packet) -> Vec<u8> {
    let frames = packet.encode(ParserKind::MsgPack).unwrap().into_vec();
    match frames.as_slice() {
        [Frame::Binary(b)] => b.to_vec(),
        other => panic!("msgpack packets are one binary frame: {other:?}"),
    }
}

async fn recv_packet(ws: &mut Ws) -> Packet {
    let mut decoder = Decoder::new(ParserKind::MsgPack, Limits::default());
    match ws.recv().await {
        F::B(b) => decoder
            .decode(Message::Binary(Bytes::from(b)))
            .unwrap()
            .unwrap(),
        other => panic!("expected a binary msgpack frame, got {other:?}"),
    }
}

#[tokio::test]
async fn connect_event_and_binary_ack_over_msgpack() {
    let io = builder().parser(ParserKind::MsgPack).build();
    io.ns("/", |_s: SocketRef| async {})
        .on("echo", |_s: SocketRef, e: Event| async move { e.args });
    let addr = serve(&io).await;
    let mut ws = Ws::open(addr).await;
    ws.send_bin(&encode(&Packet::connect("/", None))).await;
    let reply = recv_packet(&mut ws).await;
    assert!(
        matches!(reply.data, PacketData::Connect(Some(_))),
        "{reply:?}"
    );

    let mut args = Args::builder();
    args.push(&"hi").unwrap();
    args.push_binary(Bytes::from_static(&[1, 2, 3]));
    let event = Packet::event_with_ack("/", "echo", args.build(), 7);
    ws.send_bin(&encode(&event)).await;
    let ack = recv_packet(&mut ws).await;
    let PacketData::Ack { id, args } = ack.data else {
        panic!("expected an ack, got {ack:?}");
    };
    assert_eq!(id, 7);
    assert_eq!(args.first::<String>().unwrap(), "hi");
    assert_eq!(
        args.nth::<Bytes>(1).unwrap(),
        Bytes::from_static(&[1, 2, 3])
    );
}
