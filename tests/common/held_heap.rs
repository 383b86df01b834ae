//! A counting allocator, per thread: how many bytes the thread holds, and the most it held
//! since a measure began. A test binary that measures the heap a structure keeps includes
//! this file (`#[path]`); it becomes that binary's global allocator. (Per thread: the test
//! harness allocates on other threads.)
#![allow(dead_code)] // each binary uses what it measures

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: thread-local storage may be gone while a thread exits.
        let _ = HELD.try_with(|held| {
            held.set(held.get() + layout.size());
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(held.get())));
        });
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = HELD.try_with(|held| held.set(held.get().saturating_sub(layout.size())));
        // SAFETY: allocated by `System` above with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many bytes this thread holds now (allocated and not yet freed by it).
pub(crate) fn held() -> usize {
    HELD.with(Cell::get)
}

/// The most heap `f` held at once, over what was held before it, in bytes.
pub(crate) fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = held();
    PEAK.with(|peak| peak.set(before));
    let value = f();
    (value, PEAK.with(Cell::get) - before)
}
