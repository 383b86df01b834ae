//! Readiness: which children a pass polls, and with which waker.
//!
//! [`Sweep`] is the allocation-free strategy: every child still running is polled with the
//! gather's own waker, because a waker must outlive the future and so cannot point into a
//! gather that is not on the heap. A wake of any child therefore costs a sweep over every
//! slot. Per-child wakers (one allocation, an atomic ready set, O(1) work per wake) are the
//! strategy for heap inputs and slot in behind the same `pass`.

use core::task::Context;

/// The most children one poll of a gather polls before it yields to its executor.
///
/// Over budget, the gather wakes itself and returns `Pending`, so that one large gather of
/// ready children does not starve the other tasks of a single-threaded executor. The
/// figure matches tokio's cooperative budget per task poll.
pub(crate) const BUDGET: usize = 128;

/// What a pass did with one slot, as the engine tells the readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visit {
    /// The slot had nothing to poll (its child already finished).
    Skipped,
    /// The child was polled.
    Polled,
    /// The child was polled and nothing is left to do: end the pass now.
    Stop,
}

/// How a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PassEnd {
    /// Every slot was visited once.
    Swept,
    /// The budget ran out first; the gather's waker has been woken to resume.
    OverBudget,
    /// The engine asked to stop.
    Stopped,
}

/// Polls every running child in turn, resuming where the last poll left off.
#[derive(Debug)]
pub(crate) struct Sweep {
    /// The slot the next pass starts at.
    cursor: usize,
}

impl Sweep {
    pub(crate) fn new() -> Self {
        Sweep { cursor: 0 }
    }

    /// Visits each of `len` slots at most once, starting at the cursor and wrapping
    /// around, polling at most [`BUDGET`] children.
    #[inline]
    pub(crate) fn pass(
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
