//! Per-child wakers (feature `alloc`): each child gets a waker of its own, all of them in
//! one heap block with an atomic ready set (`raw/block.rs`); a wake queues only its child,
//! and a pass polls only the queued children (and the ones never polled yet), so a wake
//! costs O(1) whatever the number of children.
//!
//! `Vec` gathers keep their children in that same block (`OwnWakers`, in
//! `input/vec.rs`); spilled `SmallVec`s and `gather_iter`s use a block of wakers alone
//! ([`Wakers`]), and inline ones sweep ([`Adaptive`]).

use core::mem::ManuallyDrop;
use core::ops::Range;
use core::pin::Pin;
use core::task::{Context, Waker};

use super::limit::{Limit, Window};
use super::readiness::{Readiness, Visit, BUDGET};
use super::slots::Slots;
use super::sweep::Sweep;
use crate::raw::block::Block;

/// Up to this many children, a gather with no limit starts by sweeping them with its own
/// waker rather than give each a waker of its own.
///
/// A per-child waker costs a handful of atomic operations per wake, whatever the number of
/// children; a sweep costs a poll of every running child per wake of any of them. For a
/// few children the sweep is cheaper (and `futures::join_all` sweeps up to 30 too); past
/// that, the polls of children that did not wake add up.
pub(crate) const SWEEP_UP_TO: usize = 30;

// A tentative sweep runs within the budget (see `Tentative::pass`).
const _: () = assert!(SWEEP_UP_TO <= BUDGET);

/// The part of a pass's budget kept for children never polled while any wait: woken
/// children that keep waking themselves take at most the rest, so new ones still start.
pub(crate) const FRESH_SHARE: usize = BUDGET / 4;

/// A sweep that gives way to per-child wakers once it wastes polls: for a gather of a few
/// children on the heap, where per-child wakers cost no new allocation.
///
/// A sweep pays off when most children it polls have something to do (they are ready, or
/// woke themselves); it wastes polls when children wake one at a time (each wake polls
/// every running child). So after every pass but the first, the engine says how many
/// children were running and how many of them finished; a pass in which fewer than one in
/// [`WASTE`] finished says the children wake one by one, and the gather switches. (A pass
/// that a child stopped part-way, to be yielded or to fail fast, is not judged.)
///
/// The switch loses no wake: the children hold the gather's own waker, and the first
/// per-child pass polls every child still running (none of them was ever given a waker of
/// its own, so all of them count as never polled), handing each its own waker. A child
/// that wakes the gather's waker after that causes one spurious poll of the gather.
#[derive(Debug, Default)]
pub struct Tentative {
    sweep: Sweep,
    /// Whether a pass has run (the first pass polls every child, with nothing to judge).
    swept: bool,
}

/// See [`Tentative`]: a pass in which fewer than one in this many polled children finish
/// switches to per-child wakers.
const WASTE: usize = 8;

impl Tentative {
    /// One sweep pass.
    #[inline]
    pub(crate) fn pass<const YIELDS: bool, S: Slots + ?Sized>(
        &mut self,
        slots: Pin<&mut S>,
        len: usize,
        cx: &mut Context<'_>,
        visit: impl FnMut(Pin<&mut S>, usize, &mut Context<'_>) -> Visit,
    ) {
        // At most `SWEEP_UP_TO` children, within the budget: a driver that never yields
        // needs neither the cursor nor the budget, so its pass is one plain run with no
        // resumable path beside it (which would cost every poll of a small gather the
        // setting up of its state).
        debug_assert!(len <= SWEEP_UP_TO);
        if !YIELDS {
            S::visit_all(slots, cx, visit);
            return;
        }
        self.sweep.pass::<YIELDS>(slots, len, cx, visit);
    }

    /// After a pass that ran to its end (see [`Readiness::after_pass`]): whether the
    /// gather should use per-child wakers from the next pass on.
    #[inline]
    pub(crate) fn wasteful(&mut self, running: usize, finished: usize) -> bool {
        let first = !self.swept;
        self.swept = true;
        !first && finished * WASTE < running
    }
}

/// The ready set a per-child pass reads: one heap block of wakers ([`Block`]), or the
/// blocks of a growing set ([`Chunks`](super::chunked::Chunks)). Slots are numbered from 0
/// in the order children came in.
pub(crate) trait Queue {
    /// Makes `waker` the one that child wakes wake.
    fn register(&self, waker: &Waker);
    /// Takes the children woken since the last call; the ones woken later wait for the
    /// next.
    fn collect_woken(&mut self);
    /// The next woken child to poll; its wake is consumed, so a wake from now on queues it
    /// again.
    fn next_woken(&mut self) -> Option<usize>;
    /// The children never polled, in the order they came in.
    fn never_polled(&self) -> Range<usize>;
    /// Records that the children before `end` have been polled at least once.
    fn polled_up_to(&mut self, end: usize);
    /// The next child to poll, and whether it was never polled: woken ones first, then
    /// (if `may_start`) the next never polled.
    fn next(&mut self, may_start: bool) -> Option<(usize, bool)> {
        if let Some(slot) = self.next_woken() {
            return Some((slot, false));
        }
        let never = self.never_polled();
        if never.is_empty() || !may_start {
            return None;
        }
        self.polled_up_to(never.start + 1);
        Some((never.start, true))
    }
    /// The next child never polled, if any; it counts as polled from now on.
    fn next_fresh(&mut self) -> Option<usize> {
        let never = self.never_polled();
        if never.is_empty() {
            return None;
        }
        self.polled_up_to(never.start + 1);
        Some(never.start)
    }

    /// Whether woken children are left to poll, or (if `may_start`) never-polled ones.
    fn has_left(&self, may_start: bool) -> bool;
    /// Child `slot`'s waker, borrowed from the queue.
    fn waker(&self, slot: usize) -> ManuallyDrop<Waker>;
}

impl<P> Queue for Block<P> {
    #[inline]
    fn register(&self, waker: &Waker) {
        Block::register(self, waker);
    }

    #[inline]
    fn collect_woken(&mut self) {
        Block::collect_woken(self);
    }

    #[inline]
    fn next_woken(&mut self) -> Option<usize> {
        Block::next_woken(self)
    }

    #[inline]
    fn never_polled(&self) -> Range<usize> {
        Block::never_polled(self)
    }

    #[inline]
    fn polled_up_to(&mut self, end: usize) {
        Block::polled_up_to(self, end);
    }

    #[inline]
    fn next(&mut self, may_start: bool) -> Option<(usize, bool)> {
        Block::next(self, may_start)
    }

    #[inline]
    fn has_left(&self, may_start: bool) -> bool {
        Block::has_left(self, may_start)
    }

    #[inline]
    fn waker(&self, slot: usize) -> ManuallyDrop<Waker> {
        Block::waker(self, slot)
    }
}

/// The pass of every per-child-waker strategy: `queue(target)` is the block whose
/// wakers the children hold; `visit(target, i, cx)` polls child `i` with its own waker.
/// A child not started yet starts only while `window` has room.
#[inline]
pub(crate) fn per_child_pass<T, Q: Queue>(
    target: &mut T,
    queue: impl Fn(&mut T) -> &mut Q,
    window: &mut Window,
    cx: &mut Context<'_>,
    mut visit: impl FnMut(&mut T, usize, &mut Context<'_>) -> Visit,
) {
    // Register before reading the ready set: a wake after that point wakes us.
    queue(target).register(cx.waker());
    // Only the children woken before this pass: one woken during it (by itself, say)
    // waits for the next pass, so each child is polled at most once here.
    queue(target).collect_woken();
    // Without a limit (the usual case) there is nothing to count: a loop of its own
    // keeps the window out of it.
    if window.limited() {
        limited_pass(target, &queue, window, cx, &mut visit)
    } else {
        unlimited_pass(target, &queue, cx, &mut visit)
    }
}

/// Polls child `index` with its own waker.
#[inline(always)]
fn poll_one<T, Q: Queue>(
    target: &mut T,
    queue: &impl Fn(&mut T) -> &mut Q,
    index: usize,
    visit: &mut impl FnMut(&mut T, usize, &mut Context<'_>) -> Visit,
) -> Visit {
    let waker = queue(target).waker(index);
    visit(target, index, &mut Context::from_waker(&waker))
}

/// The loop of [`per_child_pass`] without a limit: the woken children, then a plain run
/// over the children never polled, as far as the budget goes.
#[inline(always)]
fn unlimited_pass<T, Q: Queue>(
    target: &mut T,
    queue: &impl Fn(&mut T) -> &mut Q,
    cx: &mut Context<'_>,
    visit: &mut impl FnMut(&mut T, usize, &mut Context<'_>) -> Visit,
) {
    // Woken children first, but not the whole budget while children wait for their first
    // poll: children that keep waking themselves must not keep new ones from starting.
    // (Asked only when the woken have taken the rest: a pass rarely gets that far.)
    let mut polled = 0;
    while polled < BUDGET {
        if polled == BUDGET - FRESH_SHARE && !queue(target).never_polled().is_empty() {
            break;
        }
        let Some(index) = queue(target).next_woken() else {
            break;
        };
        match poll_one(target, queue, index, visit) {
            Visit::Skipped => {}
            Visit::Stop => return,
            Visit::Pending | Visit::Finished => polled += 1,
        }
    }
    // Children never polled are never queued, and a wake during this pass goes to the
    // next one, so no woken child can come before them any more. (After a switch from the
    // sweep, the range holds finished children too: they are skipped, and count against
    // the budget, which a gather of at most 30 children cannot run out of.)
    let never = queue(target).never_polled();
    let end = never.end.min(never.start + (BUDGET - polled));
    for index in never.start..end {
        if poll_one(target, queue, index, visit) == Visit::Stop {
            queue(target).polled_up_to(index + 1);
            return;
        }
    }
    queue(target).polled_up_to(end);
    if queue(target).has_left(true) {
        cx.waker().wake_by_ref();
    }
}

/// The loop of [`per_child_pass`] under a limit: a child not started yet starts only
/// while the window has room.
#[inline(always)]
fn limited_pass<T, Q: Queue>(
    target: &mut T,
    queue: &impl Fn(&mut T) -> &mut Q,
    window: &mut Window,
    cx: &mut Context<'_>,
    visit: &mut impl FnMut(&mut T, usize, &mut Context<'_>) -> Visit,
) {
    let mut active = window.active();
    let mut polled = 0;
    // As without a limit: the woken come first, but leave a share of the budget to the
    // children not started yet (when there is room for them).
    let woken_budget = BUDGET - FRESH_SHARE.min(queue(target).never_polled().len());
    // Whether the pass ended with children left that may make progress.
    let over_budget = loop {
        if polled == BUDGET {
            break true;
        }
        // The children not started yet wait for a place.
        let may_start = active < window.limit();
        let next = if polled >= woken_budget && may_start {
            match queue(target).next_fresh() {
                Some(index) => Some((index, true)),
                None => queue(target).next(false),
            }
        } else {
            queue(target).next(may_start)
        };
        let Some((index, fresh)) = next else {
            break false;
        };
        active += usize::from(fresh);
        match poll_one(target, queue, index, visit) {
            Visit::Skipped => {}
            Visit::Pending => polled += 1,
            Visit::Finished => {
                polled += 1;
                active -= 1;
            }
            Visit::Stop => {
                active -= 1;
                break false;
            }
        }
    };
    window.set_active(active);
    if over_budget && queue(target).has_left(active < window.limit()) {
        cx.waker().wake_by_ref();
    }
}

/// A graceful stop, for a per-child readiness: the children waiting for a place never
/// start, and every child polled so far that is still `running` is woken, as is the
/// gather (children never polled are polled by the next pass anyway): a scan of the
/// slots polled, and a wake per child stopped.
pub(crate) fn stop_per_child<Q: Queue>(
    queue: &Q,
    window: &mut Window,
    cx: &mut Context<'_>,
    running: impl Fn(usize) -> bool,
) {
    window.stop_starting();
    for slot in (0..queue.never_polled().start).filter(|&slot| running(slot)) {
        queue.waker(slot).wake_by_ref();
    }
    cx.waker().wake_by_ref();
}

/// Per-child wakers in a block of their own, allocated at the first poll.
#[derive(Debug, Default)]
pub struct Wakers {
    block: Option<Block<()>>,
    window: Window,
}

impl<S: Slots + ?Sized> Readiness<S> for Wakers {
    #[inline]
    fn pass<const YIELDS: bool>(
        &mut self,
        slots: Pin<&mut S>,
        len: usize,
        cx: &mut Context<'_>,
        mut visit: impl FnMut(Pin<&mut S>, usize, &mut Context<'_>) -> Visit,
    ) {
        let block = self.block.get_or_insert_with(|| Block::new(len, |_| ()));
        let mut target = (block, slots);
        per_child_pass(
            &mut target,
            |(block, _)| &mut **block,
            &mut self.window,
            cx,
            |(_, slots), index, cx| visit(slots.as_mut(), index, cx),
        );
    }

    fn stop(&mut self, slots: Pin<&mut S>, cx: &mut Context<'_>) {
        match &self.block {
            Some(block) => stop_per_child(block, &mut self.window, cx, |i| slots.is_running(i)),
            None => cx.waker().wake_by_ref(),
        }
    }

    #[inline]
    fn running(&self, unfinished: usize) -> usize {
        self.window.running(unfinished)
    }
}

impl Limit for Wakers {
    fn set_limit(&mut self, limit: usize) {
        self.window.set_limit(limit);
    }

    fn use_per_child_wakers(&mut self) {}
}

/// Sweeps while a `SmallVec` is inline (no allocation); tentatively while it has spilled
/// to the heap with few children; uses per-child wakers once it has spilled with many,
/// once the tentative sweep wastes polls, or when asked to.
#[derive(Debug)]
pub enum Adaptive {
    /// Inline storage.
    Sweep(Sweep),
    /// Spilled storage, few children.
    Tentative(Tentative),
    /// Spilled storage, many children (or a limit, or asked for).
    Wakers(Wakers),
}

impl Limit for Adaptive {
    /// A limit needs the per-child window, even for a gather small enough to sweep.
    fn set_limit(&mut self, limit: usize) {
        self.use_per_child_wakers();
        if let Adaptive::Wakers(wakers) = self {
            wakers.set_limit(limit);
        }
    }

    fn use_per_child_wakers(&mut self) {
        if let Adaptive::Sweep(_) | Adaptive::Tentative(_) = self {
            *self = Adaptive::Wakers(Wakers::default());
        }
    }
}

impl<S: Slots + ?Sized> Readiness<S> for Adaptive {
    #[inline]
    fn pass<const YIELDS: bool>(
        &mut self,
        slots: Pin<&mut S>,
        len: usize,
        cx: &mut Context<'_>,
        visit: impl FnMut(Pin<&mut S>, usize, &mut Context<'_>) -> Visit,
    ) {
        match self {
            Adaptive::Sweep(sweep) => sweep.pass::<YIELDS>(slots, len, cx, visit),
            Adaptive::Tentative(sweep) => sweep.pass::<YIELDS, _>(slots, len, cx, visit),
            Adaptive::Wakers(wakers) => wakers.pass::<YIELDS>(slots, len, cx, visit),
        }
    }

    fn stop(&mut self, slots: Pin<&mut S>, cx: &mut Context<'_>) {
        match self {
            Adaptive::Wakers(wakers) => wakers.stop(slots, cx),
            Adaptive::Sweep(_) | Adaptive::Tentative(_) => cx.waker().wake_by_ref(),
        }
    }

    #[inline]
    fn running(&self, unfinished: usize) -> usize {
        match self {
            Adaptive::Wakers(wakers) => Readiness::<S>::running(wakers, unfinished),
            Adaptive::Sweep(_) | Adaptive::Tentative(_) => unfinished,
        }
    }

    #[inline]
    fn after_pass(&mut self, running: usize, finished: usize) {
        if let Adaptive::Tentative(sweep) = self {
            if sweep.wasteful(running, finished) {
                // The block of wakers is made at the next pass, which polls every child
                // still running with its own waker.
                *self = Adaptive::Wakers(Wakers::default());
            }
        }
    }
}
