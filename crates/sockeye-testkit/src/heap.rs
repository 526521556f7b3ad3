//! A counting global allocator for test binaries: the system allocator, counting the live
//! bytes and blocks of the threads that asked for it ([`count_this_thread`]). A test binary
//! installs it with
//! `#[global_allocator] static ALLOC: sockeye_testkit::heap::Counting = sockeye_testkit::heap::Counting;`.
//!
//! The counters are per thread, so a test that runs its server and clients on one thread (a
//! current-thread runtime) measures exactly what they keep, even while other tests of the same
//! binary run beside it (as under `cargo test`). A block allocated on a counted thread and
//! freed on another is not subtracted: the figures can only err on the high side.
// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting for the threads that asked.
#[derive(Debug)]
pub struct Counting;

thread_local! {
    // Const-initialised `Cell`s without destructors: reading or writing them never allocates,
    // so the allocator may use them.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
    static LIVE_BLOCKS: Cell<isize> = const { Cell::new(0) };
}

fn count(bytes: isize, blocks: isize) {
    // `try_with`: during thread teardown the slots may be gone; nothing is counted then.
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        let _ = LIVE_BYTES.try_with(|b| b.set(b.get() + bytes));
        let _ = LIVE_BLOCKS.try_with(|b| b.set(b.get() + blocks));
    }
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize, 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize, 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize, 0);
        }
        p
    }
}

/// Counts, from now on, what this thread allocates and frees.
pub fn count_this_thread() {
    COUNTED.with(|c| c.set(true));
}

/// The live bytes and blocks counted on this thread so far.
pub fn live() -> (isize, isize) {
    (LIVE_BYTES.with(Cell::get), LIVE_BLOCKS.with(Cell::get))
}
