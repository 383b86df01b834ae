//! The sweep: every running child polled in turn with the gather's own waker (see
//! `readiness.rs` for when each strategy is used).

use core::pin::Pin;
use core::task::Context;

use super::readiness::{Readiness, Visit, BUDGET};
use super::slots::Slots;

/// Polls every running child in turn, resuming where the last poll left off.
#[derive(Debug, Default)]
pub struct Sweep {
    /// The slot the next pass starts at. (`u32`, with the engine's other fields, keeps a
    /// gather over an array at its slots plus two words; no array has 2^32 futures.)
    cursor: u32,
}

impl<S: Slots + ?Sized> Readiness<S> for Sweep {
    #[inline]
    fn pass<const YIELDS: bool>(
        &mut self,
        slots: Pin<&mut S>,
        len: usize,
        cx: &mut Context<'_>,
        visit: impl FnMut(Pin<&mut S>, usize, &mut Context<'_>) -> Visit,
    ) {
        // The usual case: a gather within the budget never runs out of it, and its passes
        // start at 0 unless the last one stopped part-way to hand a child out (as
        // completed): one plain run, nothing to count. A driver that never yields only
        // stops a pass to complete, so it never needs the cursor: for it (and an array,
        // whose length is a constant) the code below is not even compiled.
        if len <= BUDGET && (!YIELDS || self.cursor == 0) {
            let stopped = S::visit_all(slots, cx, visit);
            if let (true, Some(index)) = (YIELDS, stopped) {
                self.stopped_at(index, len);
            }
            return;
        }
        self.resume(slots, len, cx, visit);
    }
}

impl Sweep {
    /// Where the pass after one that stopped at `index` starts.
    #[inline]
    fn stopped_at(&mut self, index: usize, len: usize) {
        self.cursor = if index + 1 == len {
            0
        } else {
            index as u32 + 1
        };
    }

    /// A pass from the cursor on, with a budget: over the budget, or after a pass that
    /// stopped part-way.
    #[inline]
    fn resume<S: ?Sized>(
        &mut self,
        mut slots: Pin<&mut S>,
        len: usize,
        cx: &mut Context<'_>,
        mut visit: impl FnMut(Pin<&mut S>, usize, &mut Context<'_>) -> Visit,
    ) {
        // From the cursor to the end, then from the start to the cursor: plain ranges, so
        // that the index needs no wrapping and no bounds check on the way.
        let start = (self.cursor as usize).min(len);
        let mut budget = BUDGET;
        // Returns whether the pass ended inside `range`.
        let mut sweep = |range: core::ops::Range<usize>| {
            for index in range {
                if budget == 0 {
                    self.cursor = index as u32;
                    cx.waker().wake_by_ref();
                    return true;
                }
                match visit(slots.as_mut(), index, cx) {
                    Visit::Skipped => {}
                    Visit::Pending | Visit::Finished => budget -= 1,
                    Visit::Stop => {
                        self.stopped_at(index, len);
                        return true;
                    }
                }
            }
            false
        };
        if start == 0 {
            sweep(0..len);
        } else if !sweep(start..len) {
            sweep(0..start);
        }
    }
}
