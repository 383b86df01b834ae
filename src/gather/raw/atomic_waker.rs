//! A waker slot that one registrant (the gather) fills and any thread may wake.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::task::Waker;

/// A waker slot that one registrant (the gather) fills and any thread may wake, without
/// locks: safe to wake from an interrupt handler on a single core.
///
/// Only the registrant writes the slot, holding `REGISTERING`; wakers only read it,
/// holding `WAKING`, and wake the stored waker by reference, so it stays registered: a
/// gather polled by the same task again and again registers once, and its children's wakes
/// cost no clone of the task's waker. The registrant may read the slot at any time (no
/// one else writes it).
pub(crate) struct AtomicWaker {
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

const IDLE: usize = 0;
const REGISTERING: usize = 1;
const WAKING: usize = 2;

// SAFETY: the slot is written only by the registrant holding `REGISTERING`, while no waker
// reads it (a waker holds `WAKING`, which excludes `REGISTERING`); `Waker` is
// `Send + Sync`.
unsafe impl Send for AtomicWaker {}
// SAFETY: as for `Send`.
unsafe impl Sync for AtomicWaker {}

impl AtomicWaker {
    pub(crate) fn new() -> Self {
        AtomicWaker {
            state: AtomicUsize::new(IDLE),
            waker: UnsafeCell::new(None),
        }
    }

    /// Makes `waker` the one to wake. One registrant: the gather, through `&mut` access.
    #[inline]
    pub(crate) fn register(&self, waker: &Waker) {
        // SAFETY: only the registrant (us) writes the slot, so reading it is no race.
        let current = unsafe { &*self.waker.get() };
        if current.as_ref().is_some_and(|w| w.will_wake(waker)) {
            // Already registered. But a wake may be reading the slot right now: a waker
            // that pushed its child just after our last look at the ready set, and found
            // the wake under way, left it to that one, which may already have woken us.
            // Be polled once more rather than miss it. (Acquire: it pairs with the
            // release of that wake, through the `state` read-modify-write chain.)
            if self.state.load(Ordering::Acquire) != IDLE {
                waker.wake_by_ref();
            }
            return;
        }
        if self.store(Some(waker.clone())) {
            waker.wake_by_ref();
        }
    }

    /// Drops the stored waker, unless a wake is under way (then the block's last reference
    /// drops it). Called when the gather goes, so that wakers kept by children do not keep
    /// the gather's task alive.
    pub(crate) fn clear(&self) {
        self.store(None);
    }

    /// Stores `new` in the slot. Returns whether a wake came meanwhile that the registrant
    /// must pass on itself: one that found the slot being written, or (then `new` is not
    /// stored, and the next registration tries again) one that is reading the slot now.
    #[cold]
    fn store(&self, new: Option<Waker>) -> bool {
        if self
            .state
            .compare_exchange(IDLE, REGISTERING, Ordering::Acquire, Ordering::Acquire)
            .is_err()
        {
            return true;
        }
        // SAFETY: `REGISTERING` excludes wakers from the slot until we clear it.
        let old = unsafe { core::mem::replace(&mut *self.waker.get(), new) };
        let woken = self
            .state
            .compare_exchange(REGISTERING, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_err();
        if woken {
            // The wake set `WAKING` and left: clear both bits.
            self.state.swap(IDLE, Ordering::AcqRel);
        }
        drop(old);
        woken
    }

    /// Wakes the stored waker, by reference.
    #[inline]
    pub(crate) fn wake(&self) {
        if self.state.fetch_or(WAKING, Ordering::AcqRel) != IDLE {
            // A registration is under way (it will see `WAKING` and wake its waker), or
            // another waker is waking the same waker right now.
            return;
        }
        struct Release<'a>(&'a AtomicUsize);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.fetch_and(!WAKING, Ordering::Release);
            }
        }
        let _release = Release(&self.state);
        // SAFETY: `WAKING` (set from `IDLE`) excludes the registrant's writes until
        // `_release` clears it, even if the waker panics.
        if let Some(waker) = unsafe { &*self.waker.get() } {
            waker.wake_by_ref();
        }
    }
}
