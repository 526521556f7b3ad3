//! Answers to server-side events (JS `serverSideEmit` with ack) go back over Redis: the
//! [`sockeye::ServerAck`] this node hands to the handler publishes on the response channel.

use std::sync::Weak;

use serde_json::json;

use crate::broker::{Broker, Outgoing};
use crate::error::LocalOutcome;
use crate::wire::{self, kind};

/// The answer slot for request `request_id`, answered on `channel` (the sender's response
/// channel). Holds the broker weakly: answering after the adapter closed fails instead of
/// keeping the connection alive.
pub(crate) fn ack(
    broker: Weak<Broker>,
    ns: String,
    channel: String,
    request_id: String,
) -> sockeye::ServerAck {
    sockeye::ServerAck::new(move |data| {
        let Some(broker) = broker.upgrade() else {
            return Err(sockeye::AdapterError::new(
                "the Redis adapter is closed; the answer was not sent",
            ));
        };
        broker
            .publish(Outgoing {
                channel,
                payload: wire::encode_json(vec![
                    ("type", json!(kind::SERVER_SIDE_EMIT)),
                    ("requestId", json!(request_id)),
                    ("data", data),
                ])
                .into(),
                what: "SERVER_SIDE_EMIT response",
                queued: crate::metrics::Stamp::now(),
            })
            .map_err(|(msg, reason)| msg.refused(reason, &ns, LocalOutcome::NotDone))
    })
}
