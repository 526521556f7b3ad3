//! The JetStream half: the log stream (recovery offsets, replay) and the session bucket.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt as _;
use sockeye::adapter::PersistedSession;

use crate::config::JetStreamConfig;
use crate::error::NatsError;
use crate::wire;

/// The stream and the bucket of one node.
pub(crate) struct Js {
    pub(crate) config: JetStreamConfig,
    client: async_nats::Client,
    context: jetstream::Context,
    stream: stream::Stream,
    /// Sessions: a stream keeping the last message of each subject `<prefix>.session.<pid>`
    /// for `session_ttl`, the layout of a JetStream key-value bucket, used through the stream
    /// API (async-nats 0.45's bucket API cannot create a bucket on a 2.9 server).
    sessions: stream::Stream,
    session_subject: String,
}

impl Js {
    pub(crate) async fn setup(
        client: &async_nats::Client,
        prefix: &str,
        config: &JetStreamConfig,
    ) -> Result<Js, NatsError> {
        let context = jetstream::new(client.clone());
        let stream = context
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{prefix}.log.>")],
                max_age: config.max_age,
                max_messages: config.max_messages,
                discard: stream::DiscardPolicy::Old,
                ..Default::default()
            })
            .await
            .map_err(|e| NatsError::JetStream {
                what: "stream",
                message: e.to_string(),
            })?;
        check_subjects(&stream, "stream", &format!("{prefix}.log.>"))?;
        let sessions = context
            .get_or_create_stream(stream::Config {
                name: config.bucket.clone(),
                subjects: vec![format!("{prefix}.session.*")],
                max_age: config.session_ttl,
                max_messages_per_subject: 1,
                discard: stream::DiscardPolicy::Old,
                ..Default::default()
            })
            .await
            .map_err(|e| NatsError::JetStream {
                what: "session bucket",
                message: e.to_string(),
            })?;
        check_subjects(&sessions, "session bucket", &format!("{prefix}.session.*"))?;
        Ok(Js {
            config: config.clone(),
            client: client.clone(),
            context,
            stream,
            sessions,
            session_subject: format!("{prefix}.session."),
        })
    }

    /// Appends an entry to the log and waits for the server to store it.
    pub(crate) async fn append(&self, subject: &str, payload: Vec<u8>) -> Result<u64, String> {
        // Fails at once during an outage instead of waiting for an acknowledgement that
        // cannot come.
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err("the connection to NATS is down".to_owned());
        }
        let ack = self
            .context
            .publish(subject.to_owned(), payload.into())
            .await
            .map_err(|e| format!("JetStream refused the entry: {e}"))?;
        ack.await
            .map(|a| a.sequence)
            .map_err(|e| format!("JetStream did not confirm the entry: {e}"))
    }

    /// An ordered reader of the log entries on `subject` appended from now on.
    pub(crate) async fn reader(&self, subject: &str) -> Result<consumer::pull::Ordered, String> {
        let consumer = self
            .stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: subject.to_owned(),
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        consumer.messages().await.map_err(|e| e.to_string())
    }

    /// The entries on `subject` after `offset`, oldest first, with their sequence; `None` when
    /// `offset` is not an entry of the stream (forged, from the future, or trimmed: entries
    /// after it may be gone too).
    pub(crate) async fn entries_after(
        &self,
        subject: &str,
        offset: u64,
    ) -> Result<Option<Vec<(u64, bytes::Bytes)>>, String> {
        let info = self.stream.get_info().await.map_err(|e| e.to_string())?;
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        if offset == 0 || offset < first || offset > last {
            return Ok(None);
        }
        if self.stream.get_raw_message(offset).await.is_err() {
            return Ok(None);
        }
        if offset == last {
            return Ok(Some(Vec::new()));
        }
        let mut consumer: consumer::PullConsumer = self
            .stream
            .create_consumer(consumer::pull::Config {
                filter_subject: subject.to_owned(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: offset + 1,
                },
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let name = consumer.cached_info().name.clone();
        let result = async {
            let pending = consumer
                .info()
                .await
                .map_err(|e| e.to_string())?
                .num_pending;
            let mut out = Vec::new();
            if pending == 0 {
                return Ok(Some(out));
            }
            let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let next = tokio::time::timeout_at(deadline, messages.next())
                    .await
                    .map_err(|_| "the replay read timed out".to_owned())?;
                let Some(message) = next else {
                    return Err("the replay read ended early".to_owned());
                };
                let message = message.map_err(|e| e.to_string())?;
                let (seq, left) = {
                    let info = message.info().map_err(|e| e.to_string())?;
                    (info.stream_sequence, info.pending)
                };
                if seq > last {
                    return Ok(Some(out));
                }
                out.push((seq, message.payload.clone()));
                if out.len() > self.config.max_replay {
                    return Ok(None);
                }
                if left == 0 || seq == last {
                    return Ok(Some(out));
                }
            }
        }
        .await;
        let _ = self.stream.delete_consumer(&name).await;
        result
    }

    fn key(&self, pid: &str) -> String {
        format!("{}{pid}", self.session_subject)
    }

    pub(crate) async fn put_session(
        &self,
        session: &PersistedSession,
        expires_ms: u64,
        live_on: Option<&str>,
    ) -> Result<(), String> {
        let value = wire::encode_session(session, expires_ms, live_on)?;
        self.append(&self.key(&session.pid), value).await.map(drop)
    }

    /// The stored session of `pid` and its sequence in the bucket.
    pub(crate) async fn get_session(
        &self,
        pid: &str,
    ) -> Result<Option<(bytes::Bytes, u64)>, String> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        match self
            .sessions
            .get_last_raw_message_by_subject(self.key(pid).as_str())
            .await
        {
            Ok(message) => Ok(Some((message.payload, message.sequence))),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Deletes the session stored at `sequence`: true when this call took it (the server
    /// deletes a message once; a second taker's delete fails).
    pub(crate) async fn delete_session_at(&self, sequence: u64) -> Result<bool, String> {
        match self.sessions.delete_message(sequence).await {
            Ok(deleted) => Ok(deleted),
            Err(e) => {
                tracing::debug!(error = %e, "session taken by another node meanwhile");
                Ok(false)
            }
        }
    }

    pub(crate) async fn delete_session(&self, pid: &str) -> Result<(), String> {
        match self.get_session(pid).await? {
            Some((_, sequence)) => self.delete_session_at(sequence).await.map(drop),
            None => Ok(()),
        }
    }
}

/// An existing stream of the configured name must take the subjects this node writes.
fn check_subjects(
    stream: &stream::Stream,
    what: &'static str,
    subject: &str,
) -> Result<(), NatsError> {
    let config = &stream.cached_info().config;
    if config.subjects.iter().any(|s| s == subject) {
        Ok(())
    } else {
        Err(NatsError::JetStream {
            what,
            message: format!(
                "stream {} exists with subjects {:?}, not {subject} (another prefix's, or the stream and the bucket share a name)",
                config.name, config.subjects
            ),
        })
    }
}
