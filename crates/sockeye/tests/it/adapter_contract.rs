//! The adapter contract suite (`sockeye-testkit`) on the embedded in-memory adapter.

async fn memory() -> sockeye_testkit::contract::Single {
    sockeye_testkit::contract::Single
}

sockeye_testkit::adapter_contract!(memory);
