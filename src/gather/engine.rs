//! The one poll loop every mode runs.
//!
//! [`Engine::poll_pass`] asks the readiness which children to poll, polls each at most
//! once, counts the ones that finish and tells the mode's driver about each of them. The
//! drivers (settle-all in `Gather`, fail-fast in `FailFast`) are a few lines around it.

use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::readiness::{PassEnd, Readiness, Visit};
use super::slot::Step;
use super::slots::Slots;

/// Where a gather is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Never polled: modes may still be chosen.
    Fresh,
    /// Polled, children still pending.
    Waiting,
    /// Inside a poll. Seen at the start of a poll only if a child panicked out of the last
    /// one: the gather is poisoned.
    Polling,
    /// Finished; its output was handed back.
    Done,
}

/// What the driver wants after a child finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Keep going.
    Continue,
    /// Finish this pass (each child still polled at most once), then complete.
    Complete,
    /// Stop the pass now and hand this child to the driver; later passes go on.
    Yield,
}

/// How a pass that did not leave the gather pending ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Every child finished, or the driver asked to complete: the gather is done.
    Complete,
    /// Child `index` finished and the driver asked for it ([`After::Yield`]).
    Yielded(usize),
}

/// Bookkeeping shared by every mode: how many children are still running, the phase, and
/// the readiness that picks which children to poll.
pub(crate) struct Engine<R> {
    remaining: usize,
    phase: Phase,
    readiness: R,
}

impl<R> Engine<R> {
    pub(crate) fn new(len: usize, readiness: R) -> Self {
        Engine {
            remaining: len,
            phase: Phase::Fresh,
            readiness,
        }
    }

    /// Whether the gather has handed back its output.
    pub(crate) fn is_terminated(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether the gather has never been polled.
    pub(crate) fn is_fresh(&self) -> bool {
        self.phase == Phase::Fresh
    }

    /// The readiness, to configure before the first poll.
    pub(crate) fn readiness_mut(&mut self) -> &mut R {
        &mut self.readiness
    }

    /// How many children have not finished yet.
    pub(crate) fn remaining(&self) -> usize {
        self.remaining
    }

    /// Checks that the gather may be polled, and marks it as inside a poll.
    fn enter(&mut self) {
        match self.phase {
            Phase::Done => panic!("`Gather` polled after completion"),
            Phase::Polling => panic!("`Gather` polled after one of its futures panicked"),
            Phase::Fresh | Phase::Waiting => {}
        }
        self.phase = Phase::Polling;
    }

    /// Cuts off the children still running, once the deadline has passed: `next(slots)`
    /// names the next child and whether it was still running (and is now cut off), in
    /// input order. `finished` is told of each cut-off child as of any finished one.
    pub(crate) fn expire_pass<S: Slots + ?Sized>(
        &mut self,
        mut slots: Pin<&mut S>,
        mut next: impl FnMut(Pin<&mut S>) -> Option<(usize, bool)>,
        mut finished: impl FnMut(Pin<&mut S>, usize) -> After,
    ) -> Pass {
        self.enter();
        while let Some((index, cut_off)) = next(slots.as_mut()) {
            if !cut_off {
                continue;
            }
            self.remaining -= 1;
            if finished(slots.as_mut(), index) == After::Yield {
                self.phase = Phase::Waiting;
                return Pass::Yielded(index);
            }
        }
        debug_assert_eq!(
            self.remaining, 0,
            "gather: children left after the deadline"
        );
        self.phase = Phase::Done;
        Pass::Complete
    }

    /// Runs one pass over the children that may make progress.
    ///
    /// `poll_child(slots, i, cx)` polls child `i` (its layers may catch a panic).
    /// `finished(slots, i)` runs right after child `i` finishes, with its output in its
    /// slot, and says what to do next. Returns `Ready(Complete)` once every child has
    /// finished, or at the end of a pass in which `finished` asked to complete (the engine
    /// is then terminated); `Ready(Yielded(i))` at once when `finished` asked to yield
    /// child `i`.
    ///
    /// # Panics
    ///
    /// Panics if the gather already completed, or if a child panicked during an earlier
    /// poll (the gather is poisoned).
    pub(crate) fn poll_pass<S: Slots + ?Sized>(
        &mut self,
        mut slots: Pin<&mut S>,
        cx: &mut Context<'_>,
        mut poll_child: impl FnMut(Pin<&mut S>, usize, &mut Context<'_>) -> Step,
        mut finished: impl FnMut(Pin<&mut S>, usize) -> After,
    ) -> Poll<Pass>
    where
        R: Readiness<S>,
    {
        self.enter();
        // Counted in a local and written back after the pass, so that the loop keeps it in
        // a register. (If a child panics out of the pass, the gather is poisoned and the
        // count is never used again.)
        let mut remaining = self.remaining;
        let mut complete = remaining == 0;
        let mut yielded = None;
        let len = slots.len();
        let end = self.readiness.pass(
            slots.as_mut(),
            len,
            cx,
            |mut slots, i, cx| match poll_child(slots.as_mut(), i, cx) {
                Step::Idle => Visit::Skipped,
                Step::Pending => Visit::Pending,
                Step::Finished => {
                    remaining -= 1;
                    match finished(slots, i) {
                        After::Yield => {
                            yielded = Some(i);
                            return Visit::Stop;
                        }
                        After::Complete => complete = true,
                        After::Continue => {}
                    }
                    if remaining == 0 {
                        complete = true;
                        Visit::Stop
                    } else if complete {
                        Visit::Closing
                    } else {
                        Visit::Finished
                    }
                }
            },
        );
        self.remaining = remaining;

        if let Some(index) = yielded {
            self.phase = Phase::Waiting;
            return Poll::Ready(Pass::Yielded(index));
        }
        if complete {
            self.phase = Phase::Done;
            return Poll::Ready(Pass::Complete);
        }
        self.phase = Phase::Waiting;
        match end {
            // Every pending child was polled and holds our waker; or the budget ran out and
            // the readiness woke us to come back for the rest.
            PassEnd::Swept | PassEnd::OverBudget => Poll::Pending,
            PassEnd::Stopped => unreachable!("gather: pass stopped with children left"),
        }
    }
}

impl<R> fmt::Debug for Engine<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("remaining", &self.remaining)
            .field("phase", &self.phase)
            .finish()
    }
}
