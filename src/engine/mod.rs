//! The engine: the one poll loop every mode runs, and what it runs over.
//!
//! - `slot.rs`, `slots.rs`: one child's state, and the storage traits every input shape
//!   implements (in `input/`);
//! - `readiness.rs`: which children a pass polls; `sweep.rs`: the sweep with the gather's
//!   waker; `per_child.rs`: per-child wakers (`alloc`); `limit.rs`: the limit window;
//! - this file: [`Engine`], the loop.
//!
//! It may use `raw` (storage and wakers), `layer/mod.rs` (the layer trait it polls
//! through) and `results` (output shapes); never the `Gather` future, the modes or the
//! inputs.
//!
//! [`Engine::poll`] asks the readiness which children to poll, polls each at most once,
//! counts the ones that finish and tells the mode's driver about each of them; once the
//! deadline (if any) has fired, it cuts off the children still running instead. The
//! drivers (settle-all in `Gather`, fail-fast in `FailFast`, as-completed in
//! `AsCompleted`) are a few lines around it.

use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::layer::{Cause, Layer};
use crate::raw::for_each_to_the_end;
use crate::raw::slot::Step;
use readiness::{Readiness, Visit};
use slots::Slots;

#[cfg(feature = "alloc")]
pub(crate) mod chunked;
pub(crate) mod limit;
#[cfg(feature = "alloc")]
pub(crate) mod per_child;
pub(crate) mod readiness;
pub(crate) mod slots;
pub(crate) mod sweep;

/// Where a gather is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Never polled: modes may still be chosen.
    Fresh,
    /// Polled, children still pending.
    Waiting,
    /// Inside a poll. Seen at the start of a poll only if a panic came out of the last
    /// one (a child's, the timer's, the executor's waker's, or a drop's): the gather is
    /// poisoned.
    Polling,
    /// Finished; its output was handed back.
    Done,
}

/// What the driver wants after a child finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Keep going.
    Continue,
    /// Stop the pass now and complete: the children not polled yet in it are not polled.
    /// (After the deadline, the driver still hears of every child cut off.)
    Complete,
    /// Stop the pass now and hand this child to the driver; later passes go on.
    Yield,
}

/// How a pass that did not leave the gather pending ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Every child finished, or the driver asked to complete: the gather is done.
    Complete,
    /// The child in this slot finished and the driver asked for it ([`After::Yield`]).
    Yielded(usize),
}

/// What a pass tells the poll under a graceful layer (see [`Engine::pass`]).
#[derive(Debug, Clone, Copy, Default)]
struct News {
    /// A child failed (no stop was under way).
    failed: bool,
    /// How many children it polled.
    polled: usize,
}

/// Bookkeeping shared by every mode: how many children are still running, the phase, and
/// the readiness that picks which children to poll.
pub(crate) struct Engine<R> {
    /// How many children have finished (or, as completed, been yielded). The total is
    /// the storage's: read at each poll, so a storage may grow between polls.
    finished: usize,
    phase: Phase,
    readiness: R,
}

impl<R> Engine<R> {
    pub(crate) fn new(readiness: R) -> Self {
        Engine {
            finished: 0,
            phase: Phase::Fresh,
            readiness,
        }
    }

    /// Whether the gather has handed back its output.
    pub(crate) fn is_terminated(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Lets a completed engine run again: its storage has grown since.
    #[cfg(feature = "alloc")]
    pub(crate) fn reopen(&mut self) {
        if self.phase == Phase::Done {
            self.phase = Phase::Waiting;
        }
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
    pub(crate) fn finished(&self) -> usize {
        self.finished
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

    /// Runs one poll of the gather: a pass over the children that may make progress; if
    /// it leaves children pending, one poll of the timer; once the timer has fired, the
    /// children still running are cut off.
    ///
    /// `finished(slots, i)` runs right after child `i` finishes (or is cut off), with its
    /// output in its slot, and says what to do next. Returns `Ready(Complete)` once every
    /// child has finished, or at the end of a pass in which `finished` asked to complete;
    /// `Ready(Yielded(i))` at once when `finished` asked to yield child `i`. `YIELDS` says
    /// whether `finished` may ask to yield at all (see [`Readiness::pass`]).
    ///
    /// On `Ready`, the gather is still inside the poll: the driver finishes its work (takes
    /// the outputs, drops the rest), then calls [`close`](Self::close). Whatever panics
    /// before that (a child, the timer, the executor's waker, a drop the driver makes)
    /// leaves the gather poisoned.
    ///
    /// # Panics
    ///
    /// Panics if the gather already completed, or if a panic came out of an earlier poll
    /// (the gather is poisoned).
    pub(crate) fn poll<const YIELDS: bool, S, L>(
        &mut self,
        mut slots: Pin<&mut S>,
        mut layers: Pin<&mut L>,
        cx: &mut Context<'_>,
        mut finished: impl FnMut(Pin<&mut S>, usize) -> After,
    ) -> Poll<Pass>
    where
        S: Slots + ?Sized,
        L: Layer<S>,
        R: Readiness<S>,
    {
        self.enter();
        let from = match layers.as_mut().cut_off_from().copied() {
            Some(from) => from,
            None => {
                let stopping = if L::GRACEFUL {
                    layers.as_mut().stopping()
                } else {
                    None
                };
                let mut news = News::default();
                let pass = self.pass::<YIELDS, S, L>(
                    slots.as_mut(),
                    cx,
                    &mut finished,
                    stopping,
                    &mut news,
                );
                // (Only if children are left to stop: a failing last child, handed out as
                // completed, raises nothing.)
                let stops = L::GRACEFUL
                    && news.failed
                    && pass != Poll::Ready(Pass::Complete)
                    && (slots.children() > self.finished || !slots.exhausted());
                if stops {
                    self.start_stop::<S, L>(slots.as_mut(), layers.as_mut(), cx, Cause::Failure);
                }
                if let Poll::Ready(pass) = pass {
                    return Poll::Ready(pass);
                }
                // Children that finished in this poll count as finished, whatever the timer.
                // (A stop that began in it waits for the pass that shows the children the
                // signal.)
                if stops || !self.timers_fired::<S, L>(slots.as_mut(), layers.as_mut(), cx, news) {
                    self.phase = Phase::Waiting;
                    return Poll::Pending;
                }
                0
            }
        };
        let cause = if L::GRACEFUL {
            layers.as_mut().stopping().unwrap_or(Cause::Deadline)
        } else {
            Cause::Deadline
        };
        let (pass, next) = if from == 0 {
            self.cut_off_all::<S, L>(slots, cause, cx, &mut finished)
        } else {
            self.next_cut_off::<S, L>(slots, from, cause, cx, &mut finished)
        };
        if let Some(from) = layers.cut_off_from() {
            *from = next;
        }
        Poll::Ready(pass)
    }

    /// After a pass that left children pending: whether the children still running are
    /// to be cut off now. Without a graceful layer, when the deadline fires (then no more
    /// children are taken in). With one, when the grace period is over: the deadline's
    /// firing (or, in the pass, a failure) began a stop, and the children still running
    /// have all finished since, or the grace timer has fired.
    #[inline]
    fn timers_fired<S, L>(
        &mut self,
        mut slots: Pin<&mut S>,
        mut layers: Pin<&mut L>,
        cx: &mut Context<'_>,
        news: News,
    ) -> bool
    where
        S: Slots + ?Sized,
        L: Layer<S>,
        R: Readiness<S>,
    {
        if !L::GRACEFUL {
            if !layers.poll_timer(cx) {
                return false;
            }
            slots.stop_intake();
            return true;
        }
        if layers.as_mut().stopping().is_none() {
            if !layers.as_mut().poll_timer(cx) {
                return false;
            }
            // The grace period begins with a pass that shows every child still running
            // the signal (the stop wakes the gather for it); the grace timer is polled
            // after that pass.
            self.start_stop::<S, L>(slots.as_mut(), layers.as_mut(), cx, Cause::Deadline);
            return false;
        }
        let unfinished = slots.children() - self.finished;
        if self.readiness.running(unfinished) > 0 {
            // Not before every child running at the raise has been polled since (over the
            // budget, that takes a few polls): each is to see the signal.
            if !layers.as_mut().shown(news.polled) {
                cx.waker().wake_by_ref();
                return false;
            }
            if !layers.as_mut().poll_grace(cx) {
                return false;
            }
        }
        layers.end_grace();
        true
    }

    /// Begins a graceful stop for `cause`: no more children are taken in or started, the
    /// signal is raised, and every child still running is polled again (by the next
    /// pass, which the readiness wakes the gather for) to see it, before the grace timer
    /// is first polled.
    #[cold]
    fn start_stop<S, L>(
        &mut self,
        slots: Pin<&mut S>,
        mut layers: Pin<&mut L>,
        cx: &mut Context<'_>,
        cause: Cause,
    ) where
        S: Slots + ?Sized,
        L: Layer<S>,
        R: Readiness<S>,
    {
        let mut slots = slots;
        slots.as_mut().stop_intake();
        let unfinished = slots.children() - self.finished;
        layers
            .as_mut()
            .start_stop(cause, self.readiness.running(unfinished));
        self.readiness.stop(slots, cx);
    }

    /// Ends the poll that returned `Ready(pass)`, once the driver is done with it.
    pub(crate) fn close(&mut self, pass: Pass) {
        debug_assert_eq!(self.phase, Phase::Polling);
        self.phase = match pass {
            Pass::Complete => Phase::Done,
            Pass::Yielded(_) => Phase::Waiting,
        };
    }

    /// The timer has just fired: cuts off every child still running, now. The driver
    /// hears of each in input order until it asks to yield one; the rest are handed to it
    /// by [`next_cut_off`](Self::next_cut_off), one per poll. A lazy input's children
    /// not taken in yet are then taken in and cut off, one by one (see
    /// [`drain`](Self::drain)). Returns the pass, and where the next poll goes on: the
    /// place in input order of the slot after the one yielded (past the slots: drain).
    #[cold]
    #[inline(never)]
    fn cut_off_all<S, L>(
        &mut self,
        mut slots: Pin<&mut S>,
        cause: Cause,
        cx: &mut Context<'_>,
        finished: &mut impl FnMut(Pin<&mut S>, usize) -> After,
    ) -> (Pass, usize)
    where
        S: Slots + ?Sized,
        L: Layer<S>,
    {
        let mut yielded = None;
        let len = slots.len();
        // Every child goes in this poll, even if one's drop panics: the rest are cut off
        // while that panic unwinds (the gather is then poisoned).
        for_each_to_the_end(0..len, |place| {
            let slot = slots.in_input_order(place);
            let cut_off = L::cut_off(slots.as_mut(), slot, cause);
            if cut_off && yielded.is_none() {
                self.finished += 1;
                if finished(slots.as_mut(), slot) == After::Yield {
                    yielded = Some((slot, place));
                }
            }
        });
        match yielded {
            Some((slot, place)) => (Pass::Yielded(slot), place + 1),
            None => self.drain::<S, L>(slots, cause, cx, true, finished),
        }
    }

    /// Hands the next cut-off child, from place `from` in input order on, to a driver
    /// that yields. Such a driver takes each output as it yields it, so an output still in
    /// its slot is a cut-off child's.
    #[cold]
    #[inline(never)]
    fn next_cut_off<S, L>(
        &mut self,
        mut slots: Pin<&mut S>,
        from: usize,
        cause: Cause,
        cx: &mut Context<'_>,
        finished: &mut impl FnMut(Pin<&mut S>, usize) -> After,
    ) -> (Pass, usize)
    where
        S: Slots + ?Sized,
        L: Layer<S>,
    {
        for place in from..slots.len() {
            let slot = slots.in_input_order(place);
            if !slots.has_output(slot) {
                continue;
            }
            self.finished += 1;
            if finished(slots.as_mut(), slot) == After::Yield {
                return (Pass::Yielded(slot), place + 1);
            }
        }
        self.drain::<S, L>(slots, cause, cx, false, finished)
    }

    /// After the deadline, the children a lazy input still holds: each is taken in and
    /// cut off at once (made, and dropped unpolled), so that it too counts as timed out,
    /// until the input ends (a stream: until it has no item ready). `heard` says whether
    /// the driver has heard of every output still in a slot (it does not take them).
    fn drain<S, L>(
        &mut self,
        mut slots: Pin<&mut S>,
        cause: Cause,
        cx: &mut Context<'_>,
        heard: bool,
        finished: &mut impl FnMut(Pin<&mut S>, usize) -> After,
    ) -> (Pass, usize)
    where
        S: Slots + ?Sized,
        L: Layer<S>,
    {
        let past = slots.len();
        if S::GROWS {
            while let Some(slot) = slots.as_mut().take_in_to_cut_off(cx, heard) {
                if L::cut_off(slots.as_mut(), slot, cause) {
                    self.finished += 1;
                    if finished(slots.as_mut(), slot) == After::Yield {
                        return (Pass::Yielded(slot), past);
                    }
                }
            }
        }
        debug_assert_eq!(
            self.finished,
            slots.children(),
            "gather: children left after the deadline"
        );
        (Pass::Complete, past)
    }

    /// Runs one pass over the children that may make progress, each polled through the
    /// layers `L` (which may catch a panic). `Pending` when children are left to wait for.
    ///
    /// Under a graceful layer, `stopping` says whether a stop has begun; if not,
    /// `news.failed` is set when a child fails (the caller begins the stop), and a driver's
    /// [`After::Complete`] does not end the pass: the gather completes once the stop is
    /// over.
    fn pass<const YIELDS: bool, S, L>(
        &mut self,
        mut slots: Pin<&mut S>,
        cx: &mut Context<'_>,
        finished: &mut impl FnMut(Pin<&mut S>, usize) -> After,
        stopping: Option<Cause>,
        news: &mut News,
    ) -> Poll<Pass>
    where
        S: Slots + ?Sized,
        L: Layer<S>,
        R: Readiness<S>,
    {
        // Counted in a local and written back after the pass, so that the loop keeps it in
        // a register. (If a child panics out of the pass, the gather is poisoned and the
        // count is never used again.) A storage that grows (a lazy input) may take
        // children in during the pass: whether it is done is asked once the pass is over.
        if S::GROWS {
            slots.as_mut().take_in_pushed(cx);
        }
        let len = slots.len();
        let running = slots.children() - self.finished;
        let mut remaining = running;
        // Once a graceful stop is under way, a storage that grows completes only when the
        // grace is over: the children it still holds are then cut off, each with an
        // outcome (see `drain`).
        let may_complete = !(L::GRACEFUL && S::GROWS && stopping.is_some());
        let mut complete =
            may_complete && remaining == 0 && (!S::GROWS || slots.as_mut().ends_intake());
        // Whether a child failed (graceful: the stop begins), and ended the pass.
        let (mut failure, mut stopped_by_failure) = (false, false);
        // How many children were polled (counted under a graceful layer only).
        let mut polled = 0;
        let mut yielded = None;
        self.readiness.pass::<YIELDS>(
            slots.as_mut(),
            len,
            cx,
            #[inline(always)]
            |mut slots, i, cx| match L::poll_child(slots.as_mut(), i, cx) {
                Step::NotRunning => Visit::Skipped,
                Step::Pending => {
                    polled += usize::from(L::GRACEFUL);
                    Visit::Pending
                }
                Step::Finished => {
                    polled += usize::from(L::GRACEFUL);
                    let fails = L::GRACEFUL && stopping.is_none() && L::failed(&slots, i);
                    failure |= fails;
                    // (Below zero for a storage that took children in during the pass.)
                    remaining = remaining.wrapping_sub(1);
                    match finished(slots, i) {
                        After::Yield => {
                            yielded = Some(i);
                            Visit::Stop
                        }
                        After::Complete if !L::GRACEFUL => {
                            complete = true;
                            Visit::Stop
                        }
                        // A failure under a graceful layer ends the pass: no other child
                        // is polled, or starts, before the stop begins.
                        After::Continue | After::Complete
                            if fails && (S::GROWS || remaining > 0) =>
                        {
                            stopped_by_failure = true;
                            Visit::Stop
                        }
                        After::Continue | After::Complete if S::GROWS || remaining > 0 => {
                            Visit::Finished
                        }
                        After::Complete | After::Continue => {
                            complete = true;
                            Visit::Stop
                        }
                    }
                }
            },
        );
        let done = running.wrapping_sub(remaining);
        self.finished = if S::GROWS {
            self.finished + done
        } else {
            // (The same, in fewer instructions: every child was running or finished.)
            len - remaining
        };

        *news = News {
            failed: failure,
            polled,
        };
        if let Some(index) = yielded {
            return Poll::Ready(Pass::Yielded(index));
        }
        if complete
            || (may_complete
                && S::GROWS
                && self.finished == slots.children()
                && slots.as_mut().ends_intake())
        {
            return Poll::Ready(Pass::Complete);
        }
        if stopped_by_failure {
            // A pass the failure ended part-way says nothing of how the children wake.
            return Poll::Pending;
        }
        self.readiness.after_pass(running, done);
        // Every pending child was polled and holds our waker; or the budget ran out and
        // the readiness woke us to come back for the rest.
        Poll::Pending
    }
}

impl<R> fmt::Debug for Engine<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("finished", &self.finished)
            .field("phase", &self.phase)
            .finish()
    }
}
