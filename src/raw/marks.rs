//! The mask a growing set's blocks of wakers mark when they have children woken, and the
//! wakers that mark it: one per block, all in the mask's own allocation.
//!
//! Each block of per-child wakers wakes a waker of its own (its "gather's waker"): waker
//! `k` sets bit `k` of the mask and wakes the set's task. Made as an `Arc` each, they
//! cost an allocation per block (5 of the 19 allocations of a group of 1,024). Here a
//! waker is a pointer to byte `k` of an array in the mask, which holds `k`: the byte
//! tells the waker its bit, and where the mask starts, so it needs no memory of its own;
//! it owns a strong reference to the mask, as an `Arc<Marks>` would.

use alloc::sync::Arc;
use core::mem::offset_of;
use core::task::{RawWaker, RawWakerVTable, Waker};

use super::atomic_waker::AtomicWaker;
use super::sync::{AtomicUsize, Ordering};

/// Bits there are: one waker per bit.
const BITS: usize = usize::BITS as usize;

/// The mask of blocks with children woken, and the task their wakes wake.
pub(crate) struct Marks {
    /// Bit `k`: block `k` has children on its ready set (set by its wake, cleared by the
    /// pass that reads it).
    pub(crate) woken: AtomicUsize,
    /// The set's task.
    pub(crate) task: AtomicWaker,
    /// Byte `k` holds `k`, and waker `k` points at it. Never written after `new`.
    ids: [u8; BITS],
}

impl Marks {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Marks {
            woken: AtomicUsize::new(0),
            task: AtomicWaker::new(),
            // (`BITS` is at most 128: each index fits in a byte.)
            ids: core::array::from_fn(|k| k as u8),
        })
    }

    /// The waker that sets bit `k` and wakes the task; it holds a strong reference to
    /// the mask.
    ///
    /// # Panics
    ///
    /// If `k` is not below `usize::BITS`.
    pub(crate) fn waker(self: &Arc<Self>, k: usize) -> Waker {
        assert!(k < BITS, "gather: too many blocks of wakers");
        let marks = Arc::into_raw(Arc::clone(self));
        // SAFETY: `offset_of!(Marks, ids) + k` is the offset of byte `k` of `ids`, inside
        // the `Marks` that `marks` points at (`k < BITS`, the array's length).
        let id = unsafe { marks.cast::<u8>().add(offset_of!(Marks, ids) + k) };
        // SAFETY: the vtable's functions uphold `RawWaker`'s contract for this data: it
        // points at byte `k` of a live `Marks` in an `Arc`, and owns one strong reference
        // to it (taken just above), which `drop_waker` (or `wake`) gives back.
        unsafe { Waker::from_raw(RawWaker::new(id.cast(), &VTABLE)) }
    }
}

const VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

// A waker may be sent to and used from any thread, and it shares the mask: what `Waker`
// asks of its data, which the type system no longer checks once it is a raw pointer.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Marks>();
};

/// The mask a waker's data points into, and the waker's bit.
///
/// # Safety
///
/// `data` comes from [`Marks::waker`] (or `clone`) and the waker it belongs to is live, so
/// the `Marks` is (the waker owns a strong reference).
unsafe fn marks_of(data: *const ()) -> (*const Marks, usize) {
    let id = data.cast::<u8>();
    // SAFETY: `data` points at byte `k` of `ids` of a live `Marks` (the function's
    // contract), which holds `k` and is never written after `new`; so `k` bytes back is
    // byte 0 of `ids`, and `offset_of!(Marks, ids)` bytes further back the `Marks` itself,
    // all inside its allocation. The pointer keeps the provenance `Arc::into_raw` gave.
    unsafe {
        let k = usize::from(*id);
        let marks = id.sub(k + offset_of!(Marks, ids)).cast::<Marks>();
        (marks, k)
    }
}

/// # Safety
///
/// As for [`marks_of`]; the waker being cloned holds a reference, so the mask is live.
unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: the function's contract; `marks` is the pointer `Arc::into_raw` made (the same
    // address and provenance), whose `Arc` is live: one more strong reference, owned by
    // the new waker. (An overflow of the count aborts, as for any `Arc`.)
    unsafe {
        let (marks, _) = marks_of(data);
        Arc::increment_strong_count(marks);
    }
    RawWaker::new(data, &VTABLE)
}

/// # Safety
///
/// As for [`clone`]; the waker owns a reference, which this consumes.
unsafe fn wake(data: *const ()) {
    /// Gives the waker's reference back even if the task's waker panics.
    struct Release(*const ());
    impl Drop for Release {
        fn drop(&mut self) {
            // SAFETY: the reference `wake` owns, given back exactly once, here.
            unsafe { drop_waker(self.0) }
        }
    }
    let _release = Release(data);
    // SAFETY: the function's contract; the reference is given back after.
    unsafe { wake_by_ref(data) };
}

/// # Safety
///
/// As for [`clone`].
unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: the function's contract: the mask is live while the waker is.
    let (marks, k) = unsafe { marks_of(data) };
    // SAFETY: as above; only shared access (atomics).
    let marks = unsafe { &*marks };
    // Marked after the block's push onto its ready set (the block pushes, then wakes us):
    // a pass that sees the bit reads the push.
    marks.woken.fetch_or(1 << k, Ordering::AcqRel);
    marks.task.wake();
}

/// # Safety
///
/// As for [`clone`]; the waker owns a reference, which this gives back.
unsafe fn drop_waker(data: *const ()) {
    // SAFETY: the function's contract; `marks` is the pointer `Arc::into_raw` made, and the
    // waker's strong reference is given back exactly once. If it was the last, the mask
    // is dropped (with the task's waker, whose drop may panic: `Arc` then frees the memory
    // as it unwinds, or, in an older `std`, leaks it; safe either way).
    unsafe {
        let (marks, _) = marks_of(data);
        Arc::decrement_strong_count(marks);
    }
}

#[cfg(test)]
mod tests {
    use super::{Marks, BITS};
    use crate::raw::sync::Ordering;
    use alloc::sync::Arc;

    #[test]
    fn each_waker_marks_its_own_bit_and_holds_the_mask() {
        let marks = Marks::new();
        let wakers: alloc::vec::Vec<_> = (0..BITS).map(|k| marks.waker(k)).collect();
        assert_eq!(Arc::strong_count(&marks), 1 + BITS);
        for k in [0, 1, 7, BITS - 1] {
            wakers[k].wake_by_ref();
            assert_eq!(marks.woken.swap(0, Ordering::AcqRel), 1 << k);
        }
        let clone = wakers[5].clone();
        assert_eq!(Arc::strong_count(&marks), 2 + BITS);
        clone.wake();
        assert_eq!(marks.woken.load(Ordering::Acquire), 1 << 5);
        assert_eq!(Arc::strong_count(&marks), 1 + BITS);
        drop(wakers);
        assert_eq!(Arc::strong_count(&marks), 1);
    }

    /// An executor whose waker panics on a wake while `panic` holds.
    struct Executor {
        panic: core::sync::atomic::AtomicBool,
    }

    impl alloc::task::Wake for Executor {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref()
        }
        fn wake_by_ref(self: &Arc<Self>) {
            if self.panic.load(Ordering::SeqCst) {
                panic!("the executor's wake panics");
            }
        }
    }

    /// `wake` by value (the blocks wake by reference, so no test of a group reaches it)
    /// gives its reference back when the task's waker panics, also as the last one: the
    /// mask, with the task's waker, is then dropped as the panic unwinds.
    #[test]
    fn a_wake_by_value_gives_its_reference_back_when_the_tasks_waker_panics() {
        extern crate std;
        use core::panic::AssertUnwindSafe;
        use std::panic::catch_unwind;
        let executor = Arc::new(Executor {
            panic: core::sync::atomic::AtomicBool::new(true),
        });
        let marks = Marks::new();
        marks
            .task
            .register(&core::task::Waker::from(executor.clone()));
        assert_eq!(Arc::strong_count(&executor), 2);
        let first = marks.waker(1);
        let last = marks.waker(BITS - 1).clone();
        assert!(catch_unwind(AssertUnwindSafe(|| first.wake())).is_err());
        assert_eq!(Arc::strong_count(&marks), 2);
        assert_eq!(marks.woken.load(Ordering::SeqCst), 1 << 1);
        drop(marks); // `last` holds the last reference
        assert!(catch_unwind(AssertUnwindSafe(|| last.wake())).is_err());
        assert_eq!(
            Arc::strong_count(&executor),
            1,
            "the mask went, and the task's waker with it"
        );
    }
}
