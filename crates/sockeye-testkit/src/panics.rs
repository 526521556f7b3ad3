//! Panics on the server's data path, counted: the hostile-input tests assert none happened.
//!
//! The engine catches a panic in its handler and closes the session (`HandlerPanic`), and tokio
//! catches a panic in a spawned task: either way the offending connection ends and a bystander
//! is still served, so a test that checks only those two things passes when decoding panicked.
//! [`PanicWatch`] closes that gap. The first watch installs a process-wide panic hook (chained to
//! the previous one, so the message is still printed) that counts every panic raised outside
//! test code; a watch fails its test when the count moved since the watch began.
//!
//! "Outside test code" is decided by the panic's location: a panic located in a `tests/`
//! directory or in this crate is the test's own (an assertion that failed, or a handler the
//! test makes panic on purpose, as the handler-panic tests do) and is not counted; a panic in a
//! crate's `src/` or in a dependency is. `unwrap`, `expect` and indexing report their caller's
//! location, so a test's own `unwrap` stays the test's.
//!
//! The counter is process-wide, which is exact under `cargo nextest` (one process per test).
//! Under `cargo test` tests share the process: a data-path panic in a test running beside a
//! watched one fails both, never neither, and there is no such panic in a passing suite.

use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

static COUNT: AtomicUsize = AtomicUsize::new(0);
static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

thread_local! {
    // Set while `expected` runs its closure on this thread.
    static EXPECTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, whose panics (on this thread) are the test's intent and are not counted: a test
/// that checks a dependency refuses a configuration by panicking, under `catch_unwind`.
pub fn expected<R>(f: impl FnOnce() -> R) -> R {
    install();
    EXPECTED.with(|e| e.set(true));
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            EXPECTED.with(|e| e.set(false));
        }
    }
    let _reset = Reset;
    f()
}

/// True when the panic was raised by test code (see the module docs).
fn raised_by_a_test(info: &PanicHookInfo<'_>) -> bool {
    let Some(location) = info.location() else {
        return false;
    };
    let file = location.file().replace('\\', "/");
    file.starts_with("tests/") || file.contains("/tests/") || file.contains("sockeye-testkit/")
}

fn install() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let expected = EXPECTED.try_with(std::cell::Cell::get).unwrap_or(false);
            if !expected && !raised_by_a_test(info) {
                COUNT.fetch_add(1, Ordering::SeqCst);
                let what = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let thread = std::thread::current().name().unwrap_or("?").to_owned();
                if let Ok(mut seen) = SEEN.lock() {
                    seen.push(format!("{at} (thread {thread}): {what}"));
                }
            }
            previous(info);
        }));
    });
}

/// Counts panics outside test code from its creation on; [`PanicWatch::assert_none`] (and its
/// drop, unless the test already failed) fails the test if there was one.
#[derive(Debug)]
pub struct PanicWatch {
    start: usize,
}

impl PanicWatch {
    /// Installs the hook (once per process) and starts counting.
    pub fn start() -> PanicWatch {
        install();
        PanicWatch {
            start: COUNT.load(Ordering::SeqCst),
        }
    }

    /// How many panics outside test code happened since the watch began.
    pub fn count(&self) -> usize {
        COUNT.load(Ordering::SeqCst).saturating_sub(self.start)
    }

    /// Fails the test if anything outside test code panicked since the watch began.
    #[track_caller]
    pub fn assert_none(&self) {
        let n = self.count();
        if n > 0 {
            let seen = SEEN.lock().map(|s| s.join("\n  ")).unwrap_or_default();
            panic!("{n} panic(s) outside test code (a hostile input reached a panic):\n  {seen}");
        }
    }
}

impl Drop for PanicWatch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_none();
        }
    }
}
