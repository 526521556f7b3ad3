//! The ceiling for sockeye's echo figures: tokio-tungstenite and nothing else.
//!
//! `raw-ws [PORT]` (default 4005) listens on 127.0.0.1. Per WebSocket it sends an Engine.IO
//! open packet, answers a namespace CONNECT (`40`) and turns each `echo` event into its ack by
//! rewriting the frame's header bytes: no JSON parsing, no session table, no timers, no
//! queues between tasks. Whatever a real Socket.IO server adds on top shows as the gap between
//! its figures and these. Only the sio-bench `echo` and `binary` scenarios are served, over
//! WebSocket (no polling, no broadcast, no pings).

use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 4005,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("usage: raw-ws [PORT] ({e})");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = connection(tcp).await {
                eprintln!("connection ended: {e}");
            }
        });
    }
}

async fn connection(tcp: TcpStream) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    tcp.set_nodelay(true)?;
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    ws.send(Message::text(format!(
        "0{{\"sid\":\"raw{id}\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":10000000}}"
    )))
    .await?;
    // A binary echo's ack header, sent once its attachment has arrived.
    let mut binary_ack: Option<String> = None;
    while let Some(frame) = ws.next().await {
        let reply = match frame? {
            Message::Text(text) => match answer(&text, id) {
                Answer::Now(reply) => Some(Message::Text(reply.into())),
                Answer::AfterAttachment(header) => {
                    binary_ack = Some(header);
                    None
                }
                Answer::Nothing => None,
            },
            Message::Binary(bytes) => match binary_ack.take() {
                Some(header) => {
                    ws.feed(Message::text(header)).await?;
                    Some(Message::Binary(bytes))
                }
                None => None,
            },
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
        };
        if let Some(reply) = reply {
            ws.send(reply).await?;
        }
    }
    Ok(())
}

enum Answer {
    Now(String),
    AfterAttachment(String),
    Nothing,
}

/// `40` → `40{"sid":..}`; `42<id>["echo",<args>]` → `43<id>[<args>]`;
/// `451-<id>["echo",<args>]` → `461-<id>[<args>]` once the attachment is in.
fn answer(text: &Utf8Bytes, conn: u64) -> Answer {
    let text = text.as_str();
    if text == "40" || text.starts_with("40{") {
        return Answer::Now(format!("40{{\"sid\":\"s{conn}\"}}"));
    }
    let (binary, rest) = if let Some(rest) = text.strip_prefix("451-") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("42") {
        (false, rest)
    } else {
        return Answer::Nothing;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (ack, body) = rest.split_at(digits);
    let Some(args) = body.strip_prefix("[\"echo\"") else {
        return Answer::Nothing;
    };
    let args = args.strip_prefix(',').unwrap_or(args);
    if binary {
        Answer::AfterAttachment(format!("461-{ack}[{args}"))
    } else {
        Answer::Now(format!("43{ack}[{args}"))
    }
}
