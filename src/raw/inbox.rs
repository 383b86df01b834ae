//! The inbox of a growing set: futures pushed through handles (from inside its children,
//! or from wherever a handle went), waiting for the set's next poll to take them in.
//!
//! A spin lock guards a `Vec` of futures and the count of pushes, so that a push gets its
//! index (its place in push order) at once and the set takes futures in that order. The
//! lock is held only to push onto or swap out the `Vec`: no user code runs under it (a
//! `Vec` push may allocate, and an allocation failure aborts). Each push then wakes the
//! set's task, through the waker slot the set registers at each poll.
//!
//! Once closed (the set has completed or gone), pushes are refused: the future goes back
//! to the caller, so that nothing pushed is silently dropped unrun.

use alloc::vec::Vec;
use core::mem;
use core::task::Waker;

use super::atomic_waker::AtomicWaker;
use super::sync::{AtomicBool, Ordering, UnsafeCell};

/// What the lock guards.
struct State<F> {
    /// Pushed and not taken in yet, in push order.
    queue: Vec<F>,
    /// How many futures were pushed in all: the index of the next.
    pushed: usize,
    /// Whether pushes are refused.
    closed: bool,
}

impl<F> State<F> {
    fn enqueue(&mut self, future: F) -> usize {
        self.queue.push(future);
        self.pushed += 1;
        self.pushed - 1
    }
}

/// Futures pushed from anywhere, for one consumer (the set) to take in.
pub(crate) struct Inbox<F> {
    locked: AtomicBool,
    state: UnsafeCell<State<F>>,
    /// The set's task: woken by each push.
    waker: AtomicWaker,
}

// SAFETY: the state is reached only under the lock, one thread at a time, so sharing the
// inbox moves `F`s between threads and nothing more: it is `Send` and `Sync` when `F` is
// `Send` (as `Mutex<Vec<F>>` is).
unsafe impl<F: Send> Send for Inbox<F> {}
// SAFETY: as for `Send`.
unsafe impl<F: Send> Sync for Inbox<F> {}

impl<F> Inbox<F> {
    /// An open inbox; its first push gets index `pushed`.
    pub(crate) fn new(pushed: usize) -> Self {
        Inbox {
            locked: AtomicBool::new(false),
            state: UnsafeCell::new(State {
                queue: Vec::new(),
                pushed,
                closed: false,
            }),
            waker: AtomicWaker::new(),
        }
    }

    /// Runs `f` on the state under the lock. `f` must not call user code.
    fn locked<R>(&self, f: impl FnOnce(&mut State<F>) -> R) -> R {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            super::sync::spin_loop();
        }
        struct Unlock<'a>(&'a AtomicBool);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _unlock = Unlock(&self.locked);
        // SAFETY: we hold the lock (acquired above, released by `_unlock` after `f`), so no
        // other reference to the state exists while `f` runs.
        self.state.with_mut(|state| f(unsafe { &mut *state }))
    }

    /// Pushes `future` through a handle; its index, or the future back if the inbox is
    /// closed. Wakes the consumer.
    pub(crate) fn push(&self, future: F) -> Result<usize, F> {
        let pushed = self.locked(|state| {
            if state.closed {
                return Err(future);
            }
            Ok(state.enqueue(future))
        })?;
        // After the lock: the executor's waker is user code.
        self.waker.wake();
        Ok(pushed)
    }

    /// The consumer's own push, between its polls: its index, and every future waiting
    /// (this one last), in push order. Accepted even when closed (the consumer runs
    /// again); wakes nobody.
    pub(crate) fn push_own(&self, future: F) -> (usize, Vec<F>) {
        self.locked(|state| (state.enqueue(future), mem::take(&mut state.queue)))
    }

    /// Takes every future pushed so far, in push order, and makes `waker` the one the
    /// next pushes wake (registered first, so that a push after the take wakes it).
    /// Consumer only.
    pub(crate) fn take(&self, waker: &Waker) -> Vec<F> {
        self.waker.register(waker);
        self.locked(|state| mem::take(&mut state.queue))
    }

    /// Whether nothing waits in the inbox. Runs no user code.
    pub(crate) fn is_empty(&self) -> bool {
        self.locked(|state| state.queue.is_empty())
    }

    /// Closes the inbox if nothing waits in it: then no push is accepted any more, and
    /// `true`. Consumer only.
    pub(crate) fn close_if_empty(&self) -> bool {
        self.locked(|state| {
            state.closed |= state.queue.is_empty();
            state.closed
        })
    }

    /// Refuses pushes from now on, leaving what waits in place (for [`close`](Self::close)
    /// to hand over). Consumer only.
    pub(crate) fn refuse(&self) {
        self.locked(|state| state.closed = true);
    }

    /// Closes the inbox for good; returns what waited in it (for the consumer to drop,
    /// outside the lock). Lets go of the consumer's waker. Consumer only, once.
    pub(crate) fn close(&self) -> Vec<F> {
        let left = self.locked(|state| {
            state.closed = true;
            mem::take(&mut state.queue)
        });
        self.waker.clear();
        left
    }
}
