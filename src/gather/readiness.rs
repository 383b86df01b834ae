//! Readiness: which children a pass polls, and with which waker.
//!
//! - [`Sweep`] polls every child still running with the gather's own waker. It needs no
//!   allocation, which is why arrays and tuples use it (and everything, without `alloc`):
//!   a waker must outlive the future, so it cannot point into a gather that is not on the
//!   heap. A wake of any child costs a sweep over every slot.
//! - Per-child wakers (`alloc`): each child gets a waker of its own, all sharing one heap
//!   block with an atomic ready set; a wake queues only its child, and a pass polls only
//!   the queued children, so a wake costs O(1) whatever the number of children. `Vec`
//!   inputs keep their children in that block ([`OwnWakers`](super::raw::heap::OwnWakers));
//!   `SmallVec` inputs that spilled to the heap use a block of wakers alone ([`Wakers`]).
//!
//! Every strategy runs the same pass shape: at most [`BUDGET`] child polls, each child at
//! most once, then `Pending` with a self-wake if work is left.

use core::pin::Pin;
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
    /// The child was polled and is still pending.
    Pending,
    /// The child was polled and finished.
    Finished,
    /// The child was polled and finished, and the gather completes after this pass: poll
    /// the children already running, start no new one.
    Closing,
    /// The child was polled and finished, and the pass must end now.
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

/// A strategy for choosing the children of `S` that a pass polls.
pub trait Readiness<S: ?Sized> {
    /// Visits children that may make progress, each at most once, at most [`BUDGET`] of
    /// them, giving each the context to poll it with.
    fn pass(
        &mut self,
        slots: Pin<&mut S>,
        len: usize,
        cx: &mut Context<'_>,
        visit: impl FnMut(Pin<&mut S>, usize, &mut Context<'_>) -> Visit,
    ) -> PassEnd;
}

/// Polls every running child in turn, resuming where the last poll left off.
#[derive(Debug, Default)]
pub struct Sweep {
    /// The slot the next pass starts at. (`u32`, with the engine's other fields, keeps a
    /// gather over an array at its slots plus two words; no array has 2^32 futures.)
    cursor: u32,
}

impl<S: ?Sized> Readiness<S> for Sweep {
    #[inline]
    fn pass(
        &mut self,
        mut slots: Pin<&mut S>,
        len: usize,
        cx: &mut Context<'_>,
        mut visit: impl FnMut(Pin<&mut S>, usize, &mut Context<'_>) -> Visit,
    ) -> PassEnd {
        // From the cursor to the end, then from the start to the cursor: plain ranges, so
        // that the index needs no wrapping and no bounds check on the way. The cursor is
        // at 0 unless an earlier pass ran out of budget: that case gets a loop of its own.
        let start = (self.cursor as usize).min(len);
        let mut budget = BUDGET;
        let mut sweep = |range: core::ops::Range<usize>| {
            for index in range {
                if budget == 0 {
                    self.cursor = index as u32;
                    cx.waker().wake_by_ref();
                    return Some(PassEnd::OverBudget);
                }
                match visit(slots.as_mut(), index, cx) {
                    Visit::Skipped => {}
                    Visit::Pending | Visit::Finished | Visit::Closing => budget -= 1,
                    Visit::Stop => {
                        self.cursor = if index + 1 == len {
                            0
                        } else {
                            index as u32 + 1
                        };
                        return Some(PassEnd::Stopped);
                    }
                }
            }
            None
        };
        let end = if start == 0 {
            sweep(0..len)
        } else {
            sweep(start..len).or_else(|| sweep(0..start))
        };
        end.unwrap_or(PassEnd::Swept)
    }
}

#[cfg(feature = "alloc")]
pub(crate) use per_child::{per_child_pass, Wakers, Window};

#[cfg(feature = "alloc")]
mod per_child {
    use core::pin::Pin;
    use core::task::Context;

    use super::{PassEnd, Readiness, Visit, BUDGET};
    use crate::gather::raw::block::Block;

    /// How many children a per-child-waker gather runs at once ([`Gather::limit`]), and
    /// how many it runs now.
    ///
    /// [`Gather::limit`]: crate::Gather::limit
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Window {
        limit: usize,
        active: usize,
    }

    impl Default for Window {
        fn default() -> Self {
            Window {
                limit: usize::MAX,
                active: 0,
            }
        }
    }

    impl Window {
        pub(crate) fn set_limit(&mut self, limit: usize) {
            self.limit = limit;
        }

        fn limited(&self) -> bool {
            self.limit != usize::MAX
        }
    }

    /// The pass of every per-child-waker strategy: `queue(target)` is the block whose
    /// wakers the children hold; `visit(target, i, cx)` polls child `i` with its own waker.
    /// A child not started yet starts only while `window` has room.
    #[inline]
    pub(crate) fn per_child_pass<T, P>(
        target: &mut T,
        queue: impl Fn(&mut T) -> &mut Block<P>,
        window: &mut Window,
        cx: &mut Context<'_>,
        mut visit: impl FnMut(&mut T, usize, &mut Context<'_>) -> Visit,
    ) -> PassEnd {
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
    fn poll_one<T, P>(
        target: &mut T,
        queue: &impl Fn(&mut T) -> &mut Block<P>,
        index: usize,
        visit: &mut impl FnMut(&mut T, usize, &mut Context<'_>) -> Visit,
    ) -> Visit {
        let waker = queue(target).waker(index);
        visit(target, index, &mut Context::from_waker(&waker))
    }

    /// The loop of [`per_child_pass`] without a limit: the woken children, then a plain
    /// run over the children never polled, as far as the budget goes.
    #[inline(always)]
    fn unlimited_pass<T, P>(
        target: &mut T,
        queue: &impl Fn(&mut T) -> &mut Block<P>,
        cx: &mut Context<'_>,
        visit: &mut impl FnMut(&mut T, usize, &mut Context<'_>) -> Visit,
    ) -> PassEnd {
        let mut polled = 0;
        while polled < BUDGET {
            let Some(index) = queue(target).next_woken() else {
                break;
            };
            match poll_one(target, queue, index, visit) {
                Visit::Skipped => {}
                Visit::Stop => return PassEnd::Stopped,
                Visit::Pending | Visit::Finished | Visit::Closing => polled += 1,
            }
        }
        // Children never polled are never queued, and a wake during this pass goes to the
        // next one, so no woken child can come before them any more. (Each is running, so
        // each visit is a poll.)
        let never = queue(target).never_polled();
        let end = never.end.min(never.start + (BUDGET - polled));
        for index in never.start..end {
            if poll_one(target, queue, index, visit) == Visit::Stop {
                queue(target).polled_up_to(index + 1);
                return PassEnd::Stopped;
            }
        }
        queue(target).polled_up_to(end);
        if queue(target).has_ready(true) {
            cx.waker().wake_by_ref();
            return PassEnd::OverBudget;
        }
        PassEnd::Swept
    }

    /// The loop of [`per_child_pass`] under a limit: a child not started yet starts only
    /// while the window has room.
    #[inline(always)]
    fn limited_pass<T, P>(
        target: &mut T,
        queue: &impl Fn(&mut T) -> &mut Block<P>,
        window: &mut Window,
        cx: &mut Context<'_>,
        visit: &mut impl FnMut(&mut T, usize, &mut Context<'_>) -> Visit,
    ) -> PassEnd {
        let mut active = window.active;
        let mut polled = 0;
        let mut closing = false;
        let end = loop {
            if polled == BUDGET {
                break None;
            }
            // The children not started yet wait for a place; once the gather is closing
            // (fail-fast saw an error), none of them gets one.
            let may_start = active < window.limit && !closing;
            let Some((index, fresh)) = queue(target).next(may_start) else {
                break Some(PassEnd::Swept);
            };
            active += usize::from(fresh);
            let visited = poll_one(target, queue, index, visit);
            let finished = match visited {
                Visit::Skipped => false,
                Visit::Pending => {
                    polled += 1;
                    false
                }
                Visit::Finished | Visit::Closing => {
                    polled += 1;
                    closing |= visited == Visit::Closing;
                    true
                }
                Visit::Stop => {
                    active -= 1;
                    break Some(PassEnd::Stopped);
                }
            };
            if finished {
                active -= 1;
            }
        };
        window.active = active;
        if let Some(end) = end {
            return end;
        }
        if queue(target).has_ready(active < window.limit) {
            cx.waker().wake_by_ref();
            return PassEnd::OverBudget;
        }
        PassEnd::Swept
    }

    /// Per-child wakers in a block of their own, allocated at the first poll.
    #[derive(Debug, Default)]
    pub struct Wakers {
        block: Option<Block<()>>,
        pub(crate) window: Window,
    }

    impl<S: ?Sized> Readiness<S> for Wakers {
        #[inline]
        fn pass(
            &mut self,
            slots: Pin<&mut S>,
            len: usize,
            cx: &mut Context<'_>,
            mut visit: impl FnMut(Pin<&mut S>, usize, &mut Context<'_>) -> Visit,
        ) -> PassEnd {
            let block = self.block.get_or_insert_with(|| Block::new(len, |_| ()));
            let mut target = (block, slots);
            per_child_pass(
                &mut target,
                |(block, _)| &mut **block,
                &mut self.window,
                cx,
                |(_, slots), index, cx| visit(slots.as_mut(), index, cx),
            )
        }
    }
}

/// Readiness that can cap how many children run at once: that of `Vec` and `SmallVec`
/// gathers ([`Gather::limit`](crate::Gather::limit)). Sealed.
pub trait Limit {
    #[doc(hidden)]
    fn set_limit(&mut self, limit: usize);
}

#[cfg(feature = "alloc")]
impl Limit for Wakers {
    fn set_limit(&mut self, limit: usize) {
        self.window.set_limit(limit);
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
impl Limit for Adaptive {
    /// A limit needs the per-child window, even for a gather small enough to sweep.
    fn set_limit(&mut self, limit: usize) {
        if let Adaptive::Sweep(_) = self {
            *self = Adaptive::Wakers(Wakers::default());
        }
        if let Adaptive::Wakers(wakers) = self {
            wakers.set_limit(limit);
        }
    }
}

#[cfg(feature = "alloc")]
impl<S: ?Sized> Readiness<S> for Adaptive {
    #[inline]
    fn pass(
        &mut self,
        slots: Pin<&mut S>,
        len: usize,
        cx: &mut Context<'_>,
        visit: impl FnMut(Pin<&mut S>, usize, &mut Context<'_>) -> Visit,
    ) -> PassEnd {
        match self {
            Adaptive::Sweep(sweep) => sweep.pass(slots, len, cx, visit),
            Adaptive::Wakers(wakers) => wakers.pass(slots, len, cx, visit),
        }
    }
}
