//! The adapter contract suite on JetStream mode: two nodes, each check on a stream, bucket
//! and prefix of its own; sessions are recovered across nodes (`recovers_across_nodes`).
use crate::common::Nats;

async fn jetstream() -> Nats {
    Nats::new("js", true)
}

sockeye_testkit::adapter_contract!(jetstream);
