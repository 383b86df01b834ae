//! A waker slot that one registrant (the gather) fills and any thread may wake.

use core::task::Waker;

use super::sync::{AtomicUsize, Ordering, UnsafeCell};

/// A waker slot that one registrant (the gather) fills and any thread may wake, without
/// locks: safe to wake from an interrupt handler on a single core.
///
/// Only the registrant writes the slot, holding `REGISTERING`; wakers only read it,
/// holding `WAKING`, and wake the stored waker by reference, so it stays registered: a
/// gather polled by the same task again and again registers once, and its children's wakes
/// cost no clone of the task's waker. The registrant may read the slot at any time (no
/// one else writes it).
///
/// A wake that finds another under way sets `AGAIN` and leaves; the one under way wakes
/// once more before it lets go. So no wake is lost, and no thread waits for another: a
/// gather that keeps its waker is not polled again and again while a waker is preempted
/// half-way (which a single-core system with priorities could turn into a livelock). A
/// new waker that comes while a wake is under way cannot be stored then (the gather moved
/// to another task, or a growing set's first block gets the waker of the set's mask: rare
/// events): [`register`](Self::register) wakes it itself and says so, for the registrant
/// to try again; [`register_or_leave`](Self::register_or_leave) only says so. The
/// registrant that goes (`clear`) while a wake is under way sets
/// `CLEAR` instead of waiting: the wake under way drops the waker before it lets go.
///
/// If the waker panics in a wake, that wake (and one asked of it meanwhile) did not reach
/// the task: it is `OWED`, and the next wake pays it ([`is_owed`](Self::is_owed) tells
/// the block to wake even where an earlier push would stand for it). It is not retried
/// during the unwind, where a second panic would abort the process.
pub(crate) struct AtomicWaker {
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

const IDLE: usize = 0;
const REGISTERING: usize = 1;
const WAKING: usize = 2;
const AGAIN: usize = 4;
/// The registrant has gone while a wake was under way: that wake drops the waker.
const CLEAR: usize = 8;
/// A wake panicked in the waker: the task may not have heard of it, so the next wake must
/// reach the waker whatever else it would skip ([`AtomicWaker::is_owed`]).
const OWED: usize = 16;

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
    ///
    /// Returns whether `waker` is now the one stored. It is not if a wake was reading the
    /// slot: then the slot keeps the waker it had, and `waker` is woken instead, for the
    /// wake that came; a registrant that registers at every poll tries again at the next,
    /// one that registers once must try again itself.
    #[inline]
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        self.register_waking(waker, true)
    }

    /// As [`register`](Self::register), but if a wake under way keeps `waker` out, it is
    /// not woken: the wake under way reaches the waker stored, and the registrant, which
    /// knows what that one wakes, sees to the rest (woken `waker` each time, a registrant
    /// that polls again at once would be polled again and again while that wake is
    /// preempted). A wake that came while `waker` was being stored is passed on to it.
    pub(crate) fn register_or_leave(&self, waker: &Waker) -> bool {
        self.register_waking(waker, false)
    }

    /// [`register`](Self::register), waking `waker` when a wake under way keeps it out
    /// only if `if_kept_out`.
    #[inline]
    fn register_waking(&self, waker: &Waker, if_kept_out: bool) -> bool {
        if self.holds(waker) {
            // A wake under way right now wakes this same waker, and once more for any
            // wake that comes while it runs (`AGAIN`): nothing to do.
            return true;
        }
        let (stored, woken) = self.store(Some(waker.clone()));
        if woken && (stored || if_kept_out) {
            waker.wake_by_ref();
        }
        stored
    }

    /// Whether the stored waker wakes the same task as `waker`. For the registrant.
    #[inline]
    pub(crate) fn holds(&self, waker: &Waker) -> bool {
        self.waker.with(|slot| {
            // SAFETY: only the registrant (us) writes the slot, so reading it is no race.
            unsafe { &*slot }
                .as_ref()
                .is_some_and(|w| w.will_wake(waker))
        })
    }

    /// Drops the stored waker, so that wakers kept by children do not keep the gather's
    /// task alive. Called once, when the gather goes; nothing registers after it.
    ///
    /// If a wake is under way (it holds `WAKING` and reads the slot), the waker cannot be
    /// taken now: `CLEAR` hands the drop to that wake, which empties the slot before it
    /// lets go. So the waker is gone once both are done, whichever finishes first.
    pub(crate) fn clear(&self) {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            // Only the registrant (us) takes `REGISTERING`.
            debug_assert!(current & (REGISTERING | CLEAR) == 0);
            let next = if current & WAKING != 0 {
                // A wake is under way: it drops the waker when it is done.
                current | CLEAR
            } else {
                // Free (a wake owed no longer matters: the gather is gone).
                REGISTERING
            };
            match self
                .state
                .compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if next == REGISTERING => break,
                Ok(_) => return,
                Err(changed) => current = changed,
            }
        }
        let old = self.waker.with_mut(|slot| {
            // SAFETY: `REGISTERING` excludes wakers from the slot until we let go below.
            unsafe { (*slot).take() }
        });
        // A wake that came meanwhile set `WAKING` and left; with the gather gone, there is
        // nothing to pass on.
        self.state.swap(IDLE, Ordering::AcqRel);
        drop(old);
    }

    /// Drops the stored waker, as [`clear`](Self::clear), without synchronizing: for a
    /// registrant that knows no wake is under way and none can come.
    ///
    /// # Safety
    ///
    /// No other thread accesses this slot from now on, and every access made by another
    /// thread so far happens before this call.
    pub(crate) unsafe fn clear_alone(&self) {
        let old = self.waker.with_mut(|slot| {
            // SAFETY: the caller guarantees that no other access can race with this one.
            unsafe { (*slot).take() }
        });
        drop(old);
    }

    /// Whether a wake of the waker panicked and no wake has reached it since: then a child's
    /// wake must reach it even where it would otherwise count on an earlier one.
    #[inline]
    pub(crate) fn is_owed(&self) -> bool {
        self.state.load(Ordering::Acquire) & OWED != 0
    }

    /// Stores `new` in the slot. Returns whether it did, and whether a wake came meanwhile
    /// that the registrant must pass on itself: one that found the slot being written, or
    /// (then `new` is not stored, and the registrant must try again) one that is reading
    /// the slot now.
    #[cold]
    fn store(&self, new: Option<Waker>) -> (bool, bool) {
        // Free, perhaps with a wake owed: the registrant is inside a poll of the gather
        // now, which reads every child queued so far, so that wake is paid.
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current & (WAKING | REGISTERING) != 0 {
                return (false, true);
            }
            match self.state.compare_exchange(
                current,
                REGISTERING,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(changed) => current = changed,
            }
        }
        let old = self.waker.with_mut(|slot| {
            // SAFETY: `REGISTERING` excludes wakers from the slot until we clear it.
            unsafe { core::mem::replace(&mut *slot, new) }
        });
        let woken = self
            .state
            .compare_exchange(REGISTERING, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_err();
        if woken {
            // The wake set `WAKING` and left: clear both bits.
            self.state.swap(IDLE, Ordering::AcqRel);
        }
        drop(old);
        (true, woken)
    }

    /// Drops the waker of a registrant that went while this thread held `WAKING` (it set
    /// `CLEAR`), and lets go.
    fn drop_cleared(&self) {
        let old = self.waker.with_mut(|slot| {
            // SAFETY: `WAKING` excludes every other access to the slot: other wakes only set
            // bits, and the registrant has gone.
            unsafe { (*slot).take() }
        });
        self.state.swap(IDLE, Ordering::AcqRel);
        drop(old);
    }

    /// Wakes the stored waker, by reference.
    #[inline]
    pub(crate) fn wake(&self) {
        // No load first: the first attempt guesses the state free, as it nearly always
        // is; a wrong guess fails the exchange, which returns the state (with the acquire
        // the load had), at the cost of a read-modify-write where the load was a read
        // (a wake under way elsewhere, or one owed: rare). With the loads here and below,
        // `external_wake` of 1,024-65,536 children was 2-6 % slower (scratch harness).
        let mut state = IDLE;
        loop {
            // Free: take `WAKING`. A registration under way: set `WAKING` for it to see
            // (it wakes its waker itself). A wake under way: ask it for one more, by a
            // write even if one more was asked for already (the state stays the same): a
            // read-modify-write reads the latest state, and the wake under way, whose
            // letting go is a later read-modify-write, then sees the `AGAIN` after our
            // push, and repeats. A plain read (or a failed exchange) may see a state that
            // wake has already let go of, and the wake would be lost.
            let next = if state & WAKING == 0 {
                state | WAKING
            } else {
                state | AGAIN
            };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(current) => state = current,
            }
        }
        if state & (REGISTERING | WAKING) != 0 {
            return;
        }
        /// Lets go of `WAKING` if the waker panics (see `drop`).
        struct Release<'a>(&'a AtomicWaker);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                // Only if the waker panicked: the wake did not reach the task, so it is owed
                // to the next wake (as is one asked for meanwhile, with `AGAIN`). If the
                // gather went meanwhile, its waker is ours to drop, as below.
                let state = &self.0.state;
                let mut current = state.load(Ordering::Acquire);
                loop {
                    if current & CLEAR != 0 {
                        self.0.drop_cleared();
                        return;
                    }
                    let next = (current & !(WAKING | AGAIN)) | OWED;
                    match state.compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire)
                    {
                        Ok(_) => return,
                        Err(changed) => current = changed,
                    }
                }
            }
        }
        let release = Release(self);
        // What we hold: `WAKING`, with the bits others set meanwhile.
        let mut state = state | WAKING;
        loop {
            if state & CLEAR != 0 {
                // The gather has gone while we held the slot: its waker is ours to drop.
                core::mem::forget(release);
                self.drop_cleared();
                return;
            }
            self.waker.with(|slot| {
                // SAFETY: `WAKING` (set from `IDLE`) excludes the registrant's writes until
                // it is cleared below, or by `release` if the waker panics.
                if let Some(waker) = unsafe { &*slot } {
                    waker.wake_by_ref();
                }
            });
            // While we hold `WAKING`, the state is `WAKING`, with `AGAIN` if a wake asked
            // for one more, `CLEAR` if the gather went meanwhile, and `OWED` if a wake was
            // owed (paid now). Let go, unless there is more to do: then take the `AGAIN`
            // and go round. Acquire (the exchange's, failed or not): whatever an asker did
            // before asking (its child's push) happens before the wake we are about to
            // repeat. The first attempt guesses the state as we took it: no bit set by
            // others since.
            let mut current = state;
            let more = loop {
                let more = current & (AGAIN | CLEAR) != 0;
                let next = if more {
                    current & !(AGAIN | OWED)
                } else {
                    IDLE
                };
                match self.state.compare_exchange(
                    current,
                    next,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break more,
                    Err(changed) => current = changed,
                }
            };
            if !more {
                break;
            }
            state = current & !(AGAIN | OWED);
        }
        core::mem::forget(release);
    }
}
