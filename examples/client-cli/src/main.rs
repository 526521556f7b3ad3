//! `client-cli URL [NAMESPACE...] [--websocket|--polling]`
//!
//! Connects to a Socket.IO server, prints every event as `[namespace] event [args]`, and sends
//! what is typed on stdin, one event per line:
//!
//! ```text
//! hello {"a":1}          emit "hello" with one argument on the first namespace
//! /chat hello "x"        emit on /chat
//! ?echo 42               emit with an ack and print the reply (5 s timeout)
//! ```
//!
//! An empty line or end of input disconnects. Logs go to stderr (`RUST_LOG=debug` for more).

use std::time::Duration;

use serde_json::Value;
use sockeye_client::{Args, Client, Event, Transport};
use tokio::io::{AsyncBufReadExt as _, BufReader};

const USAGE: &str = "usage: client-cli URL [NAMESPACE...] [--websocket|--polling]";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let mut url = None;
    let mut namespaces = Vec::new();
    let mut transports = vec![Transport::Polling, Transport::Websocket];
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--websocket" => transports = vec![Transport::Websocket],
            "--polling" => transports = vec![Transport::Polling],
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ if url.is_none() => url = Some(arg),
            _ => namespaces.push(arg),
        }
    }
    let url = url.ok_or_else(|| USAGE.to_owned())?;
    if namespaces.is_empty() {
        namespaces.push("/".to_owned());
    }
    let default_ns = namespaces
        .first()
        .cloned()
        .unwrap_or_else(|| "/".to_owned());
    let client = Client::builder(url)
        .namespaces(namespaces)
        .transports(transports)
        .on_any(|event: Event| async move {
            println!(
                "[{}] {} {}",
                event.namespace(),
                event.name(),
                show(event.args())
            );
        })
        .on_connect(|ns| async move { println!("* connected to {ns}") })
        .on_disconnect(|ns, reason| async move { println!("* {ns} disconnected: {reason:?}") })
        .on_connect_error(|ns, error| async move { println!("* {ns}: {error}") })
        .connect()
        .await
        .map_err(|e| e.to_string())?;

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line.map_err(|e| format!("reading stdin: {e}"))?,
            () = client.closed() => {
                println!("* connection closed");
                return Ok(());
            }
        };
        let Some(line) = line.filter(|l| !l.trim().is_empty()) else {
            break;
        };
        if let Err(message) = send(&client, &default_ns, line.trim()).await {
            println!("! {message}");
        }
    }
    client.disconnect().await;
    Ok(())
}

/// Parses `[/ns] [?]event [json]` and emits it.
async fn send(client: &Client, default_ns: &str, line: &str) -> Result<(), String> {
    let (ns, rest) = match line.strip_prefix('/') {
        Some(_) => line.split_once(' ').unwrap_or((line, "")),
        None => (default_ns, line),
    };
    let rest = rest.trim_start();
    let (event, data) = rest.split_once(' ').unwrap_or((rest, ""));
    let (event, wants_ack) = match event.strip_prefix('?') {
        Some(event) => (event, true),
        None => (event, false),
    };
    if event.is_empty() {
        return Err("no event name".to_owned());
    }
    let args = if data.trim().is_empty() {
        Args::empty()
    } else {
        let value: Value =
            serde_json::from_str(data).map_err(|e| format!("the data is not JSON: {e}"))?;
        Args::from_value(&value).map_err(|e| e.to_string())?
    };
    let namespace = client.of(ns);
    if wants_ack {
        let reply = namespace
            .call_args(event, args, Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        println!("< ack {}", show(&reply));
    } else {
        namespace
            .emit_args(event, args)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The arguments as JSON, or a summary when they hold binary data.
fn show(args: &Args) -> String {
    match args.deserialize::<Vec<Value>>() {
        Ok(values) => Value::Array(values).to_string(),
        Err(_) => format!(
            "<{} arguments, {} binary attachments>",
            args.len(),
            args.attachments().len()
        ),
    }
}
