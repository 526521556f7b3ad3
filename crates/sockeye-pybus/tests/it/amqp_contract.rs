//! The adapter contract suite on the python-socketio bus over AMQP (as `AsyncAioPikaManager`):
//! two sockeye nodes on the RabbitMQ at 127.0.0.1:5672, each check on an exchange of its own.
use crate::adapter_contract::PyBus;

async fn pybus_amqp() -> PyBus {
    PyBus::new("amqp://guest:guest@127.0.0.1:5672/%2f")
}

sockeye_testkit::adapter_contract!(pybus_amqp);
