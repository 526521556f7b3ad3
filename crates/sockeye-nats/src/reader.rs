//! The task that reads one namespace's subjects (and its JetStream log) and sends heartbeats.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;

use crate::adapter::{NatsAdapter, Source, Subjects};
use crate::node::Node;
use crate::wire::kind;

/// What one subscription delivered.
enum Incoming {
    Core(Source, async_nats::Message),
    Alive(async_nats::Message),
}

async fn subscribe(
    node: &Node,
    subjects: &Subjects,
) -> Result<
    futures_util::stream::SelectAll<futures_util::stream::BoxStream<'static, Incoming>>,
    String,
> {
    let mut all = futures_util::stream::SelectAll::new();
    for (subject, source) in [
        (&subjects.broadcast, Some(Source::Broadcast)),
        (&subjects.request, Some(Source::Request)),
        (&subjects.response, Some(Source::Response)),
        (&subjects.alive, None),
    ] {
        let sub = node
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|e| format!("cannot subscribe to {subject}: {e}"))?;
        all.push(match source {
            Some(source) => sub.map(move |m| Incoming::Core(source, m)).boxed(),
            None => sub.map(Incoming::Alive).boxed(),
        });
    }
    Ok(all)
}

/// A round trip to the server: once it answers, it has processed the subscriptions sent
/// before (no subscriber on the subject, so it answers "no responders" at once).
async fn round_trip(node: &Node) {
    let subject = format!("{}._ready.{}", node.config.prefix, node.uid);
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        node.client.request(subject, bytes::Bytes::new()),
    )
    .await;
}

pub(crate) async fn run(adapter: Weak<NatsAdapter>, node: Arc<Node>) {
    let Some(subjects) = adapter.upgrade().map(|a| a.subjects.clone()) else {
        return;
    };
    let mut incoming = loop {
        match subscribe(&node, &subjects).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "retrying in 500 ms");
                tokio::time::sleep(Duration::from_millis(500)).await;
                if adapter.strong_count() == 0 {
                    return;
                }
            }
        }
    };
    let mut log = match &node.js {
        Some(js) => loop {
            match js.reader(&subjects.log).await {
                Ok(reader) => break Some(reader),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the JetStream log; retrying in 500 ms");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if adapter.strong_count() == 0 {
                        return;
                    }
                }
            }
        },
        None => None,
    };
    round_trip(&node).await;
    {
        let Some(a) = adapter.upgrade() else { return };
        a.set_ready();
        a.heartbeat(kind::INITIAL_HEARTBEAT).await;
    }
    let mut beat = tokio::time::interval(node.config.heartbeat_interval);
    beat.tick().await;
    loop {
        tokio::select! {
            next = incoming.next() => {
                let Some(next) = next else {
                    tracing::warn!(ns = %subjects.request, "subscriptions ended (connection closed)");
                    return;
                };
                let Some(a) = adapter.upgrade() else { return };
                match next {
                    Incoming::Core(source, message) => a.on_payload(source, &message.payload).await,
                    Incoming::Alive(message) => {
                        if let Some(reply) = message.reply {
                            let answer: &'static [u8] = if a.holds(&message.payload) { b"1" } else { b"0" };
                            let _ = node.client.publish(reply, bytes::Bytes::from_static(answer)).await;
                        }
                    }
                }
            }
            entry = async {
                match log.as_mut() {
                    Some(log) => log.next().await,
                    None => std::future::pending().await,
                }
            } => {
                let Some(a) = adapter.upgrade() else { return };
                match entry {
                    Some(Ok(message)) => match message.info() {
                        Ok(info) => {
                            let seq = info.stream_sequence;
                            a.on_payload(Source::Log(seq), &message.payload).await;
                        }
                        Err(e) => tracing::warn!(error = %e, "JetStream entry without metadata"),
                    },
                    Some(Err(e)) => {
                        // The ordered reader recreates itself after the entry it last read.
                        tracing::warn!(error = %e, "JetStream log read failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    None => {
                        tracing::warn!("JetStream log reader ended; reopening");
                        if let Some(js) = &node.js {
                            log = js.reader(&subjects.log).await.ok();
                        }
                    }
                }
            }
            _ = beat.tick() => {
                let Some(a) = adapter.upgrade() else { return };
                a.heartbeat(kind::HEARTBEAT).await;
            }
        }
    }
}
