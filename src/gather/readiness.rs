//! Readiness: which children a pass polls, and with which waker.
//!
//! - [`Sweep`] polls every child still running with the gather's own waker. It needs no
//!   allocation, which is why arrays and tuples use it (and everything, without `alloc`):
//!   a waker must outlive the future, so it cannot point into a gather that is not on the
//!   heap. A wake of any child costs a sweep over every slot.
//! - [`Wakers`] gives each child a waker of its own, all sharing one allocation, and keeps
//!   an atomic ready set: a wake queues only its child, and a pass polls only the queued
//!   children, so a wake costs O(1) whatever the number of children. `Vec` inputs use it,
//!   and `SmallVec` inputs once they spill to the heap.

use core::task::Context;

/// The most children one poll of a gather polls before it yields to its executor.
///
/// Over budget, the gather wakes itself and returns `Pending`, so that one large gather of
/// ready children does not starve the other tasks of a single-threaded executor. The
/// figure matches tokio's cooperative budget per task poll.
pub(crate) const BUDGET: usize = 128;

/// What a pass did with one slot, as the engine tells the readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// The slot had nothing to poll (its child already finished).
    Skipped,
    /// The child was polled.
    Polled,
    /// The child was polled and nothing is left to do: end the pass now.
    Stop,
}

/// How a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassEnd {
    /// Every child that could make progress was polled; the rest hold a waker.
    Swept,
    /// The budget ran out first; the gather's waker has been woken to resume.
    OverBudget,
    /// The engine asked to stop.
    Stopped,
}

/// A strategy for choosing the children a pass polls.
pub trait Readiness {
    /// Visits children that may make progress, each at most once, at most [`BUDGET`] of
    /// them, giving each the context to poll it with.
    fn pass(
        &mut self,
        len: usize,
        cx: &mut Context<'_>,
        visit: impl FnMut(usize, &mut Context<'_>) -> Visit,
    ) -> PassEnd;
}

/// Polls every running child in turn, resuming where the last poll left off.
#[derive(Debug, Default)]
pub struct Sweep {
    /// The slot the next pass starts at.
    cursor: usize,
}

impl Readiness for Sweep {
    #[inline]
    fn pass(
        &mut self,
        len: usize,
        cx: &mut Context<'_>,
        mut visit: impl FnMut(usize, &mut Context<'_>) -> Visit,
    ) -> PassEnd {
        let mut polled = 0;
        for _ in 0..len {
            if polled == BUDGET {
                cx.waker().wake_by_ref();
                return PassEnd::OverBudget;
            }
            let index = self.cursor;
            self.cursor = if index + 1 == len { 0 } else { index + 1 };
            match visit(index, cx) {
                Visit::Skipped => {}
                Visit::Polled => polled += 1,
                Visit::Stop => return PassEnd::Stopped,
            }
        }
        PassEnd::Swept
    }
}

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub(crate) use per_child::Wakers;

/// Without atomics there are no shared wakers: heap inputs sweep too.
#[cfg(all(feature = "alloc", not(target_has_atomic = "ptr")))]
pub type Wakers = Sweep;

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
mod per_child {
    use core::task::Context;

    use super::{PassEnd, Readiness, Visit, BUDGET};
    use crate::gather::raw::wakers::ReadySet;

    /// Per-child wakers and a ready set, allocated at the first poll.
    #[derive(Debug, Default)]
    pub struct Wakers {
        set: Option<ReadySet>,
    }

    impl Readiness for Wakers {
        #[inline]
        fn pass(
            &mut self,
            len: usize,
            cx: &mut Context<'_>,
            mut visit: impl FnMut(usize, &mut Context<'_>) -> Visit,
        ) -> PassEnd {
            let set = self.set.get_or_insert_with(|| ReadySet::new(len));
            // Register before reading the ready set: a wake after that point wakes us.
            set.register(cx.waker());
            // Only the children woken before this pass: one woken during it (by itself,
            // say) waits for the next pass, so each child is polled at most once here.
            set.collect_woken();
            let mut polled = 0;
            while polled < BUDGET {
                let Some(index) = set.next() else {
                    return PassEnd::Swept;
                };
                let waker = set.waker(index);
                match visit(index, &mut Context::from_waker(&waker)) {
                    Visit::Skipped => {}
                    Visit::Polled => polled += 1,
                    Visit::Stop => return PassEnd::Stopped,
                }
            }
            if set.has_ready() {
                cx.waker().wake_by_ref();
                return PassEnd::OverBudget;
            }
            PassEnd::Swept
        }
    }
}

/// Sweeps while a `SmallVec` is inline (no allocation), uses per-child wakers once it has
/// spilled to the heap.
#[cfg(feature = "alloc")]
#[derive(Debug)]
pub enum Adaptive {
    /// Inline storage.
    Sweep(Sweep),
    /// Spilled storage.
    Wakers(Wakers),
}

#[cfg(feature = "alloc")]
impl Readiness for Adaptive {
    fn pass(
        &mut self,
        len: usize,
        cx: &mut Context<'_>,
        visit: impl FnMut(usize, &mut Context<'_>) -> Visit,
    ) -> PassEnd {
        match self {
            Adaptive::Sweep(sweep) => sweep.pass(len, cx, visit),
            Adaptive::Wakers(wakers) => wakers.pass(len, cx, visit),
        }
    }
}
