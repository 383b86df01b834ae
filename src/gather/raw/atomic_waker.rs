//! A waker slot that one registrant (the gather) fills and any thread may wake.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::task::Waker;

/// A waker slot that one registrant (the gather) fills and any thread may wake, without
/// locks: safe to wake from an interrupt handler on a single core.
///
/// `state` is `IDLE`, or holds `REGISTERING` while the registrant writes the slot and/or
/// `WAKING` while a waker takes it. Whoever sets a bit owns the slot until it clears it.
pub(crate) struct AtomicWaker {
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

const IDLE: usize = 0;
const REGISTERING: usize = 1;
const WAKING: usize = 2;

// SAFETY: the slot is only accessed by whoever owns it through `state` (see the type
// docs), and `Waker` is `Send + Sync`.
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

    /// Stores `waker` (cloning only when it would wake another task). One registrant at a
    /// time: the gather, through `&mut` access to its poll.
    pub(crate) fn register(&self, waker: &Waker) {
        match self
            .state
            .compare_exchange(IDLE, REGISTERING, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => {
                // SAFETY: `REGISTERING` gives us the slot: wakers that come now only set
                // `WAKING` and leave the slot to us.
                unsafe {
                    let slot = &mut *self.waker.get();
                    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                        *slot = Some(waker.clone());
                    }
                }
                if let Err(state) = self.state.compare_exchange(
                    REGISTERING,
                    IDLE,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    // A wake came while we held the slot: do it on its behalf.
                    debug_assert_eq!(state, REGISTERING | WAKING);
                    // SAFETY: we still own the slot (our bit is set).
                    let taken = unsafe { (*self.waker.get()).take() };
                    self.state.swap(IDLE, Ordering::AcqRel);
                    if let Some(waker) = taken {
                        waker.wake();
                    }
                }
            }
            Err(WAKING) => {
                // A waker is taking the old waker right now; make sure ours hears of it.
                waker.wake_by_ref();
            }
            Err(_) => {
                // Another registration at once: impossible with one registrant. Waking is
                // the safe answer.
                waker.wake_by_ref();
            }
        }
    }

    /// Takes the stored waker and wakes it.
    pub(crate) fn wake(&self) {
        if self.state.fetch_or(WAKING, Ordering::AcqRel) == IDLE {
            // SAFETY: we set `WAKING` from `IDLE`: the slot is ours until we clear it.
            let taken = unsafe { (*self.waker.get()).take() };
            self.state.fetch_and(!WAKING, Ordering::Release);
            if let Some(waker) = taken {
                waker.wake();
            }
        }
        // Otherwise a registration is under way (it will see `WAKING` and wake), or
        // another waker is taking the waker right now.
    }
}
