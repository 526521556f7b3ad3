//! The test binary's global allocator: `sockeye_testkit::heap::Counting`, which counts the
//! live bytes and blocks of the threads that asked for it ([`count_this_thread`]).
//!
//! The counters are per thread, so a test that runs its server on one thread (a
//! current-thread runtime) measures exactly what it keeps, even while other tests of the same
//! binary run beside it (as under `cargo test`).

pub use sockeye_testkit::heap::{count_this_thread, live};

#[global_allocator]
static ALLOC: sockeye_testkit::heap::Counting = sockeye_testkit::heap::Counting;
