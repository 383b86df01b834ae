//! Readiness: which children a pass polls, and with which waker.
//!
//! - `Sweep` (`sweep.rs`) polls every child still running with the gather's own waker. It
//!   needs no allocation, which is why arrays, tuples and inline `SmallVec`s use it (and
//!   everything, without `alloc`): a waker must outlive the future, so it cannot point
//!   into a gather that is not on the heap. A wake of any child costs a sweep over every
//!   slot.
//! - Per-child wakers (`alloc`): each child gets a waker of its own, all sharing one heap
//!   block with an atomic ready set; a wake queues only its child, and a pass polls only
//!   the queued children, so a wake costs O(1) whatever the number of children. `Vec`
//!   inputs keep their children in that block (`OwnWakers`, in `input/vec.rs`);
//!   `SmallVec` inputs that spilled to the heap use a block of wakers alone (`Wakers`, in
//!   `per_child.rs`).
//! - Between the two, for a few children on the heap (up to `SWEEP_UP_TO`, no limit):
//!   `Tentative` (`per_child.rs`) sweeps until a pass shows that the children wake one by
//!   one ([`Readiness::after_pass`]), then the gather switches to per-child wakers.
//!
//! Every strategy runs the same pass shape: at most [`BUDGET`] child polls, each child at
//! most once, and a self-wake if work is left.

use core::pin::Pin;
use core::task::Context;

/// The most children one poll of a gather polls before it yields to its executor.
///
/// Over budget, the gather wakes itself and returns `Pending`, so that one large gather of
/// ready children does not starve the other tasks of a single-threaded executor. The
/// figure matches tokio's cooperative budget per task poll.
///
/// What the self-wake costs depends on the executor. tokio's multi-thread scheduler takes
/// a task woken during its own poll for one that yields: it goes to the back of the run
/// queue, and a sleeping worker is unparked (an `eventfd` write) to come and look for
/// work, which it mostly does not find. Measured with 100,000 children that each yield
/// ten times (2 workers): about 7 us of CPU per return, and process CPU 2.2x
/// `FuturesUnordered`'s (which, under tokio's deferred `yield_now`, polls every ready
/// child in one poll); with a budget of 512, 1.9x; of 2,048, 1.14x. The fairness the
/// budget buys is the design's; that cost is its price there.
pub(crate) const BUDGET: usize = 128;

/// What a pass did with one slot, as the engine tells the readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// The slot had nothing to poll (its child already finished).
    Skipped,
    /// The child was polled and is still pending.
    Pending,
    /// The child was polled and finished.
    Finished,
    /// The child was polled and finished, and the pass must end now.
    Stop,
}

/// A strategy for choosing the children of `S` that a pass polls.
///
/// Plumbing, not API: it shows in the bounds of public items, and only this crate
/// implements it (it is not exported, so users never name it).
pub trait Readiness<S: ?Sized> {
    /// Visits children that may make progress, each at most once, at most [`BUDGET`] of
    /// them, giving each the context to poll it with, until `visit` says
    /// [`Stop`](Visit::Stop). If it ends because the budget ran out with children left
    /// that may make progress, it wakes the gather's waker first, so that the gather is
    /// polled again for them.
    ///
    /// `YIELDS` says whether the driver may stop a pass part-way to hand a child out and
    /// expect the next pass to go on after it (as completed); a driver that does not stops
    /// a pass only to complete.
    fn pass<const YIELDS: bool>(
        &mut self,
        slots: Pin<&mut S>,
        len: usize,
        cx: &mut Context<'_>,
        visit: impl FnMut(Pin<&mut S>, usize, &mut Context<'_>) -> Visit,
    );

    /// Hears how a pass that ran to its end (no child asked to stop it) went: `running`
    /// children were running when it began, and `finished` of them finished in it. A
    /// strategy that adapts to how its children wake decides here.
    #[inline]
    fn after_pass(&mut self, running: usize, finished: usize) {
        let _ = (running, finished);
    }

    /// A graceful stop has begun (see `layer/graceful.rs`): no child that has not started
    /// (one waiting for a place under a limit) starts any more, and every child still
    /// running is to be polled again, to see the signal. The sweep polls every running
    /// child at each pass anyway: it wakes the gather for one more.
    #[inline]
    fn stop(&mut self, slots: Pin<&mut S>, cx: &mut Context<'_>) {
        let _ = slots;
        cx.waker().wake_by_ref();
    }

    /// How many of the `unfinished` children are running: all of them, but under a limit,
    /// where the rest wait for a place (and, once a stop began, never start).
    #[inline]
    fn running(&self, unfinished: usize) -> usize {
        unfinished
    }
}
