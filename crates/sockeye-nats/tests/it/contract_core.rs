//! The adapter contract suite (`sockeye-testkit`) on core NATS: two nodes, each check under a
//! subject prefix of its own. No recovery (the suite then requires it to stay off).
use crate::common::Nats;

async fn core() -> Nats {
    Nats::new("core", false)
}

sockeye_testkit::adapter_contract!(core);
