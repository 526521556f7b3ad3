//! Prometheus-style metrics through the `metrics` facade (crate feature `metrics`): the
//! application installs the recorder (e.g. `metrics-exporter-prometheus`), the server counts.
//! Turned on with [`crate::SocketIoBuilder::metrics`].

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use sockeye_engine::{CloseReason, Frame, Transport};

use crate::instrument::{Instrument, frame_len};
use crate::packet::Args;
use crate::reason::DisconnectReason;
use crate::socket::SocketRef;

/// The metrics, names and labels, as documented in `docs/admin.md`.
pub(crate) struct Metrics;

impl Instrument for Metrics {
    fn session_opened(&self, transport: Transport) {
        counter!("engineio_connections_total", "transport" => transport.as_str()).increment(1);
        gauge!("engineio_sessions").increment(1.0);
    }

    fn session_closed(&self, close: CloseReason, _reason: DisconnectReason) {
        gauge!("engineio_sessions").decrement(1.0);
        counter!("engineio_closes_total", "reason" => close_label(close)).increment(1);
    }

    fn message_in(&self, bytes: usize) {
        counter!("engineio_packets_in_total").increment(1);
        counter!("engineio_bytes_in_total").increment(bytes as u64);
    }

    fn frames_out(&self, frames: &[Frame]) {
        let bytes: usize = frames.iter().map(frame_len).sum();
        counter!("engineio_packets_out_total").increment(frames.len() as u64);
        counter!("engineio_bytes_out_total").increment(bytes as u64);
    }

    fn socket_connected(&self, socket: &SocketRef) {
        gauge!("socketio_sockets", "ns" => socket.ns().to_owned()).increment(1.0);
        counter!("socketio_connects_total", "ns" => socket.ns().to_owned()).increment(1);
    }

    fn socket_disconnected(&self, socket: &SocketRef, reason: DisconnectReason) {
        gauge!("socketio_sockets", "ns" => socket.ns().to_owned()).decrement(1.0);
        counter!(
            "socketio_disconnects_total",
            "ns" => socket.ns().to_owned(),
            "reason" => reason.as_str()
        )
        .increment(1);
    }

    fn event_received(&self, socket: &SocketRef, _event: &str, _args: &Args) {
        counter!("socketio_events_received_total", "ns" => socket.ns().to_owned()).increment(1);
    }

    fn event_sent(&self, socket: &SocketRef, _event: &str, _args: &Args) {
        counter!("socketio_events_sent_total", "ns" => socket.ns().to_owned()).increment(1);
    }

    fn handler_done(&self, socket: &SocketRef, elapsed: Duration) {
        histogram!("socketio_handler_duration_seconds", "ns" => socket.ns().to_owned())
            .record(elapsed.as_secs_f64());
    }

    fn ack_timeout(&self, ns: &str) {
        counter!("socketio_ack_timeouts_total", "ns" => ns.to_owned()).increment(1);
    }

    fn adapter_failed(&self, ns: &str, operation: &'static str) {
        counter!(
            "socketio_adapter_errors_total",
            "ns" => ns.to_owned(),
            "operation" => operation
        )
        .increment(1);
    }

    fn recovery(&self, ns: &str, outcome: &'static str) {
        counter!(
            "socketio_recoveries_total",
            "ns" => ns.to_owned(),
            "outcome" => outcome
        )
        .increment(1);
    }
}

/// The close reason as a label: `slow_reader` is the queue-full / slow-reader close.
fn close_label(close: CloseReason) -> &'static str {
    match close {
        CloseReason::TransportClose => "transport_close",
        CloseReason::TransportError => "transport_error",
        CloseReason::PingTimeout => "ping_timeout",
        CloseReason::ClientClose => "client_close",
        CloseReason::ServerClose => "server_close",
        CloseReason::ServerShutdown => "server_shutdown",
        CloseReason::PayloadTooLarge => "payload_too_large",
        CloseReason::ParseError => "parse_error",
        CloseReason::SlowReader => "slow_reader",
        _ => "other",
    }
}
