//! Integration tests of the python-socketio bus, on the Redis at 127.0.0.1:6379.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod adapter_contract;
#[cfg(feature = "amqp")]
mod amqp_contract;
#[cfg(feature = "amqp")]
mod amqp_outage;
mod bad_input;
mod faults;
mod mixed;
mod outage;
mod python_origin;
