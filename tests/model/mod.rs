//! The model-checking harness that both the fuzz targets (`fuzz/`) and the seeded test
//! (`tests/schedules.rs`) run: bytes in, one checked run out.
//!
//! The bytes choose a scenario: how many children and what each does (ready at once or
//! after k polls; `Ok`, `Err` or a panic; woken during its own poll, later by reference or
//! by value, or from another thread; woken spuriously; woken again after it finished), the
//! input shape (`Vec` swept or with per-child wakers, `SmallVec` inline or spilled, array, `gather_iter`), the mode
//! (settle all, fail fast, as completed left part-way), the layers (limit, deadline,
//! catch_panics, graceful), and the schedule: which pending wake fires next, when the
//! deadline (and the grace timer) fires, whether the gather is polled without a wake, when
//! the caller drops it. Bytes run out as zeros, so every input is a valid scenario.
//!
//! In one scenario of three (read last, so that a zero byte leaves every older input a
//! plain scenario) the gather is [`graceful`](gather::Gather::graceful) ([`Grace`]; a
//! `Group` through `settle_all()`, which makes it a gather): its children borrow the
//! `StopSignal`, and each one [`Heed`]s it or not: it ignores it, finishes at once when it
//! sees it (with a stopped error, `Ok` or a real error), or takes a few polls to clean up
//! first; some wait for it alone (they never finish otherwise), through `raised()` or
//! `is_raised()`, and some fail with a stopped error of their own before any stop. The stop
//! begins at the first failure or at the deadline; the grace timer `grace()` makes fires
//! when the schedule says (like the deadline), or is ready at once. The layer goes last, as
//! documented, or (with both other layers) first, under them.
//!
//! In two scenarios of five, user code also panics somewhere else than in a child's poll
//! (the [`PanicPlan`]; at most one per scenario, so that no two drops panic in one
//! unwinding): the `Drop` of one child (while it runs: cut off by the deadline, dropped by
//! fail-fast or by the caller, or after its poll panicked; or right after it returned
//! `Ready`), the `Drop` of one output, the deadline's timer (on its k-th poll, or in its
//! `Drop`), or the caller's waker (its k-th `clone`, `wake`/`wake_by_ref` or `drop` made
//! from one place: inside a child's poll, inside the gather's own poll, in the caller's
//! drop, in the environment's wake or drop of a waker, or on a waking thread; the call is
//! counted before it panics, and it panics once); in a third of the graceful scenarios
//! that have none of those, `grace()` or the grace timer (its k-th poll, or its `Drop`).
//! The decoder fits the rest of such a scenario to its panic (a timer for the timer's, an
//! array for a child's clone of the waker, a deadline and a child that never finishes for
//! the grace timer's, ...), so that each can happen. Every panic's payload is a
//! [`ModelPanic`]; the run reports where each one ended up ([`PanicEvent`], the seeded
//! test's coverage keys), and what the graceful stop did ([`StopEvent`], more keys).
//!
//! Each run is checked against a model (with the crate's panic contract):
//!
//! - every outcome is what its child did (its value, its error, its panic), or `TimedOut`
//!   for a child that never finished, and only after the deadline fired; settle-all and
//!   fail-fast's successes are in input order, as-completed yields each child once; a
//!   `Vec` gather's successes (`into_result`, fail-fast) are exactly sized;
//! - no child is polled after it finished or panicked (the child asserts it);
//! - under `limit(k)`, at most k children have started and not finished (the child
//!   asserts it on its first poll);
//! - every child and every output is dropped exactly once, wherever the caller stops and
//!   whatever panicked;
//! - no lost wake: the gather is polled only after its waker was woken (or spuriously, by
//!   choice), and a gather left pending with no wake to come fails the run; it finishes
//!   within a bounded number of polls;
//! - the caller's waker is not kept alive: once a gather with per-child wakers is gone
//!   (and no thread is waking), it has dropped the caller's waker, though its children's
//!   wakers live on; once the run is over, every clone of it has been dropped;
//! - fail-fast has dropped every child by the time it returns;
//! - under a deadline, the poll that sees the timer fire has dropped every child still
//!   running (checked after that poll, and when a `TimedOut` is seen: as-completed's
//!   first one too);
//! - under catch_panics, a panic in a child's poll (its own, or the caller's waker's when
//!   the child calls it) and a panic in the drop of a child that has just finished
//!   become that child's `Err(Panicked)` with that panic's payload; the child has been
//!   dropped by the time the caller sees it, and a finished child's output has been
//!   dropped (never handed out); a panic in the drop of a child whose poll panicked is
//!   swallowed;
//! - every other panic reaches the caller, exactly where the contract sends it: out of
//!   the poll (a child's drop when the deadline cuts it off or fail-fast drops it after
//!   an error, an output fail-fast drops, the timer's poll, the waker called by the gather
//!   itself or by its timer; without catch_panics, the child's poll and finished drop
//!   too), out of the caller's drop (a child, an output, the timer or the waker dropped
//!   with the gather, the stream or the outputs), or out of the wake or drop that reached
//!   the waker from outside any poll (the test's, or a thread's); no panic is lost, none
//!   comes out anywhere else, and the model makes every panic there is (a panic of any
//!   other payload, even one caught, fails the run);
//! - a gather that a panic came out of is poisoned: polling it again panics with the
//!   poisoned message, and runs no user code;
//! - no drop that is to panic runs while another panic unwinds (that would abort);
//! - dropping a gather (or a stream) drops every child it made, there and then.
//!
//! And under the graceful layer ([`Stop`] in the world):
//!
//! - the stop begins in the poll where the first child fails (an `Err`, a stopped error, a
//!   caught panic), in every mode, or where the deadline's timer fires; then `grace()` runs
//!   (once, after the signal was raised: no child sees the signal before), and the
//!   deadline's timer is not polled again;
//! - under `limit(k)`, no child starts once the stop began, nor in a place that a child
//!   left when it finished at or after the first failure: the children waiting for a place
//!   are never polled (a `gather_iter` makes them only to cut them off);
//! - the grace timer is first polled in a later poll than the one that began the stop,
//!   once every child still running has seen the signal, at most once per poll, and only
//!   while a started child still runs; no child is polled once it has fired;
//! - every child the gather cuts off that was running saw the signal (was polled after the
//!   raise) first; the children cut off count as `Stopped` after a failure, `TimedOut` after
//!   the deadline, and the ones that finished in the grace period keep their own outcome;
//! - settle-all's `stopped()` and `failures()` split the errors by `is_stopped`; fail-fast
//!   returns `Ok` only if every child succeeded, else exactly the errors that are not
//!   stopped ones (or, if there are none, every stopped one); as-completed hands the
//!   cut-off children out last, one per item, in input order;
//! - a panic in `grace()` or in the grace timer's poll comes out of the poll (the gather is
//!   poisoned), one in its drop out of the caller's drop.
#![allow(dead_code, unreachable_pub)] // the fuzz targets and the tests use different parts

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Wake, Waker};
use std::thread::JoinHandle;

use futures_core::Stream;
use gather::{gather, gather_iter, CompoundError, ErrorStore, Gathered, Panicked, SliceOutcomes};
use gather::{StopError, StopSignal, Stopped, TimedOut};
use smallvec::SmallVec;

/// The bytes a scenario is read from; zeros once they run out.
pub struct Choices<'a> {
    bytes: &'a [u8],
}

impl<'a> Choices<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Choices { bytes }
    }

    fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((first, rest)) => {
                self.bytes = rest;
                *first
            }
            None => 0,
        }
    }

    /// A number in `0..n` (`0` when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        let wide = u16::from_le_bytes([self.byte(), self.byte()]);
        usize::from(wide) % n
    }

    /// True about once in `n`.
    fn one_in(&mut self, n: u8) -> bool {
        self.byte() % n == n - 1
    }
}

/// Bytes from a seed (xorshift64*), for the seeded test.
pub fn bytes_from_seed(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// How a pending child arranges to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeStyle {
    /// `wake_by_ref` during its own poll.
    DuringPoll,
    /// Keeps a clone; the environment wakes it by reference later.
    ByRef,
    /// Keeps a clone; the environment wakes it by value later.
    ByValue,
    /// Keeps a clone; the environment sends it to a thread that wakes it.
    OtherThread,
}

/// What one child does.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Polls that return `Pending` before it finishes.
    pub pending_polls: u32,
    pub fails: bool,
    /// Panics instead of finishing.
    pub panics: bool,
    pub style: WakeStyle,
    /// Wakes itself on every poll, whatever it returns.
    pub spurious: bool,
    /// Keeps its waker and has the environment wake it after it finished.
    pub stray: bool,
    /// Never finishes, and arranges no wake: only a deadline (or fail-fast, or the
    /// caller, or the stop signal it heeds) ends it. Only under a deadline.
    pub hangs: bool,
    /// What it does when it sees the stop signal (graceful scenarios only).
    pub heed: Heed,
    /// Checks the signal by polling `raised()` (which registers no waker), not with
    /// `is_raised()`.
    pub awaits: bool,
    /// Its error, if it fails, is a stopped one (made from `Stopped`) though no stop was
    /// asked for (graceful scenarios only).
    pub stopped_error: bool,
}

/// What a child does once it sees the stop signal raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heed {
    /// Goes on as planned.
    Ignores,
    /// Returns `Pending` for `cleanup` polls (from the one that saw the signal), each with
    /// a wake arranged as planned, then finishes `with`.
    Stops { cleanup: u32, with: Finish },
}

/// How a child finishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    Ok,
    /// A real error.
    Err,
    /// An error made from `Stopped`: it stopped on request.
    Stopped,
}

/// A graceful scenario's layer and grace timer (see [`Gather::graceful`]).
///
/// [`Gather::graceful`]: gather::Gather::graceful
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grace {
    /// The grace timer is ready at its first poll: the shortest grace.
    pub instant: bool,
    /// With a deadline and catch_panics, the graceful layer goes first, under them (the
    /// documented order is last; not for a `Group`, whose layers come before its gather).
    pub first: bool,
    /// While wakes remain, the grace timer fires about once in this many steps.
    pub patience: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A `Vec` with `per_child_wakers()`.
    Vec,
    /// A `Vec` as is: swept with the gather's own waker up to 30 children.
    FewVec,
    SmallVec,
    Array,
    Iter,
    /// A `Group`: the first child pushed before the first poll, each other one pushed
    /// through a `Handle` by the child before it, at the start of that child's first poll
    /// (the `TaskGroup.create_task` case).
    Group,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    SettleAll,
    FailFast,
    /// Takes this many items (at most the number of children), then drops the stream.
    AsCompleted {
        take: usize,
    },
}

/// A call of the caller's waker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WakerCall {
    Clone,
    /// `wake` or `wake_by_ref`.
    Wake,
    Drop,
}

/// Where user code runs when it panics: on which side of the gather's API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Site {
    /// Inside a child's poll (the child, or the caller's waker the child calls).
    ChildPoll,
    /// Inside a poll of the gather, outside any child's poll.
    GatherPoll,
    /// Inside the caller's drop of the gather, the stream, or outputs.
    CallerDrop,
    /// The test itself, outside any poll: waking a waker a child left behind, or
    /// dropping it.
    Environment,
    /// A thread the environment sent a waker to.
    OtherThread,
}

/// The one panic of a scenario besides its children's polls (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PanicPlan {
    /// The `Drop` of child `child` panics: after it returned `Ready` (`finished`), or while
    /// it has not (it is still running, never started, or panicked in its poll).
    ChildDrop { child: usize, finished: bool },
    /// The `Drop` of the output of child `child` panics.
    OutputDrop { child: usize },
    /// The timer panics on its `k`-th poll (from 0).
    TimerPoll { k: u32 },
    /// The timer's `Drop` panics.
    TimerDrop,
    /// The caller's waker panics on the `k`-th (from 0) `call` made at `site`.
    Waker {
        call: WakerCall,
        site: Site,
        k: usize,
    },
    /// `grace()`, the closure that makes the grace timer, panics.
    Grace,
    /// The grace timer panics on its `k`-th poll (from 0).
    GraceTimerPoll { k: u32 },
    /// The grace timer's `Drop` panics.
    GraceTimerDrop,
}

/// One whole scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub plans: Vec<Plan>,
    pub shape: Shape,
    pub mode: Mode,
    pub limit: Option<usize>,
    pub deadline: bool,
    pub catch_panics: bool,
    /// Drop the gather after this many polls, if it is still pending then.
    pub cancel_after: Option<usize>,
    pub panic: Option<PanicPlan>,
    /// The graceful layer, if any.
    pub graceful: Option<Grace>,
}

/// The length of an `Array` scenario.
const ARRAY_LEN: usize = 5;

/// The kinds of [`PanicPlan`], as the decoder picks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PanicKind {
    ChildDropRunning(Unfinished),
    ChildDropFinished,
    OutputDrop,
    TimerPoll,
    TimerDrop,
    Waker(WakerCall, Site),
}

/// How a child whose drop panics before it finished comes to be dropped, most likely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unfinished {
    /// It panics in its poll too: under catch_panics the gather drops it at once (and
    /// swallows the drop's panic), without it the caller drops the poisoned gather.
    PollPanics,
    /// It never finishes: the deadline cuts it off (or fail-fast, or the caller).
    Hangs,
    /// It takes its time, and the caller gives up.
    Cancelled,
    /// It takes its time (fail-fast drops it after a sibling's error, say).
    Slow,
}

impl Scenario {
    pub fn decode(c: &mut Choices<'_>) -> Self {
        use {Site as S, WakerCall as W};
        // Read first, so that a leading zero byte leaves the rest of an older input (from
        // before panic plans) meaning what it meant.
        let kind = (c.byte() % 5 >= 3).then(|| match c.below(30) {
            0 | 1 => PanicKind::ChildDropRunning(Unfinished::PollPanics),
            2 | 3 => PanicKind::ChildDropRunning(Unfinished::Hangs),
            4 => PanicKind::ChildDropRunning(Unfinished::Cancelled),
            5 => PanicKind::ChildDropRunning(Unfinished::Slow),
            6..=8 => PanicKind::ChildDropFinished,
            9 | 10 => PanicKind::OutputDrop,
            11 | 12 => PanicKind::TimerPoll,
            13 => PanicKind::TimerDrop,
            14 | 15 => PanicKind::Waker(W::Clone, S::ChildPoll),
            16 => PanicKind::Waker(W::Clone, S::GatherPoll),
            17 | 18 => PanicKind::Waker(W::Wake, S::ChildPoll),
            19 | 20 => PanicKind::Waker(W::Wake, S::GatherPoll),
            21 | 22 => PanicKind::Waker(W::Wake, S::Environment),
            23 | 24 => PanicKind::Waker(W::Wake, S::OtherThread),
            25 | 26 => PanicKind::Waker(W::Drop, S::GatherPoll),
            27 => PanicKind::Waker(W::Drop, S::CallerDrop),
            // A waking thread drops the caller's waker only when it releases the last
            // reference to the wakers of a gather that is gone: rare.
            _ if c.one_in(4) => PanicKind::Waker(W::Drop, S::OtherThread),
            _ => PanicKind::Waker(W::Drop, S::Environment),
        });
        let waker = match kind {
            Some(PanicKind::Waker(call, site)) => Some((call, site)),
            _ => None,
        };
        // Where the waker is called decides the scenarios that make the call: the gather
        // wakes itself only when a poll runs out of budget (more children than that, all
        // pending at first, so no array); only a gather with per-child wakers keeps the
        // waker, to drop it with itself (no array); a child clones the waker itself, and
        // the environment drops the clones it was given, only where children share the
        // gather's waker (an array, or a small `SmallVec` without a limit); threads wake
        // only the children that send them.
        let over_budget = waker == Some((W::Wake, S::GatherPoll));
        let per_child = over_budget || waker == Some((W::Drop, S::CallerDrop));
        let shared_waker = matches!(
            waker,
            Some((W::Clone, S::ChildPoll) | (W::Drop, S::Environment))
        );
        let shape = match c.below(6) {
            0 if shared_waker => Shape::Array,
            0 => Shape::Vec,
            1 => Shape::SmallVec,
            2 if per_child => Shape::Vec,
            2 => Shape::Array,
            3 if per_child => Shape::Vec,
            3 => Shape::FewVec,
            // A group gives every child a waker of its own.
            5 if shared_waker => Shape::Array,
            5 => Shape::Group,
            _ => Shape::Iter,
        };
        let n = match shape {
            Shape::Array => ARRAY_LEN,
            _ if shared_waker => c.below(5),
            // Now and then more children than one poll's budget.
            _ if over_budget || c.one_in(32) => 129 + c.below(80),
            _ => c.below(13),
        };
        let mode = match c.below(3) {
            0 => Mode::SettleAll,
            1 => Mode::FailFast,
            _ => Mode::AsCompleted {
                take: c.below(n + 2).min(n),
            },
        };
        let limit = (shape != Shape::Array && !shared_waker && c.one_in(3)).then(|| 1 + c.below(4));
        // A timer's panic needs a timer, and so does a child that never finishes. The
        // gather drops the waker in its poll when the timer replaces the clone it keeps (or
        // a new poll loop the one it registered), and clones it for the timer at each of
        // its polls (or once to register it, for per-child wakers).
        let deadline = c.one_in(3)
            || matches!(
                kind,
                Some(
                    PanicKind::TimerPoll
                        | PanicKind::TimerDrop
                        | PanicKind::ChildDropRunning(Unfinished::Hangs)
                        | PanicKind::Waker(W::Drop | W::Clone, S::GatherPoll)
                )
            );
        // Panics that catch_panics catches come with it in half of their scenarios.
        let catchable = matches!(
            kind,
            Some(
                PanicKind::ChildDropRunning(Unfinished::PollPanics)
                    | PanicKind::ChildDropFinished
                    | PanicKind::Waker(_, S::ChildPoll)
            )
        );
        let catch_panics = c.one_in(3) || (catchable && c.one_in(4));
        let cancel_after = match kind {
            Some(PanicKind::ChildDropRunning(Unfinished::Cancelled)) => Some(c.below(4)),
            _ => c.one_in(6).then(|| c.below(8)),
        };
        // Without catch_panics a panic poisons the whole gather: in one scenario of 8.
        let may_panic = catch_panics || c.one_in(8);
        // The wake style that makes the waker's call: children that send their waker to a
        // thread, that leave it to the environment, or that keep a clone (which the
        // environment drops after waking it by reference).
        let favoured = match waker {
            Some((W::Wake, S::OtherThread)) => WakeStyle::OtherThread,
            Some((W::Wake, S::Environment)) => WakeStyle::ByValue,
            Some((W::Clone, S::ChildPoll) | (W::Drop, S::Environment)) => WakeStyle::ByRef,
            _ => WakeStyle::DuringPoll,
        };
        let mut plans: Vec<Plan> = (0..n)
            .map(|_| Plan {
                pending_polls: c.below(4) as u32,
                fails: c.one_in(4),
                panics: may_panic && c.one_in(6),
                style: match c.below(4) {
                    0 => favoured,
                    1 => WakeStyle::ByRef,
                    2 => WakeStyle::ByValue,
                    _ => WakeStyle::OtherThread,
                },
                spurious: c.one_in(8),
                stray: c.one_in(8),
                hangs: false,
                heed: Heed::Ignores,
                awaits: false,
                stopped_error: false,
            })
            .collect();
        if over_budget {
            for plan in &mut plans {
                plan.pending_polls = plan.pending_polls.max(1);
            }
        }
        let child = (kind.is_some() && n > 0).then(|| c.below(n));
        let mut panic = kind.and_then(|kind| match (kind, child) {
            (PanicKind::ChildDropRunning(how), Some(child)) => {
                let plan = &mut plans[child];
                match how {
                    Unfinished::PollPanics => {
                        plan.panics = true;
                        plan.pending_polls = 0;
                    }
                    Unfinished::Hangs => plan.hangs = true,
                    Unfinished::Cancelled | Unfinished::Slow => plan.pending_polls = 3,
                }
                Some(PanicPlan::ChildDrop {
                    child,
                    finished: false,
                })
            }
            (PanicKind::ChildDropFinished, Some(child)) => {
                plans[child].panics = false;
                Some(PanicPlan::ChildDrop {
                    child,
                    finished: true,
                })
            }
            (PanicKind::OutputDrop, Some(child)) => {
                plans[child].panics = false;
                // Half of them early, and a sibling fails: fail-fast then drops them; the
                // others fail in half of their scenarios (a fail-fast error holds them).
                if c.one_in(2) {
                    plans[child].pending_polls = 0;
                    if n > 1 {
                        plans[(child + 1) % n].fails = true;
                    }
                } else {
                    plans[child].fails = c.one_in(2);
                }
                Some(PanicPlan::OutputDrop { child })
            }
            (PanicKind::ChildDropRunning(_), None)
            | (PanicKind::ChildDropFinished | PanicKind::OutputDrop, None) => None,
            (PanicKind::TimerPoll, _) => Some(PanicPlan::TimerPoll {
                k: c.below(2) as u32,
            }),
            (PanicKind::TimerDrop, _) => Some(PanicPlan::TimerDrop),
            (PanicKind::Waker(call, site), _) => Some(PanicPlan::Waker {
                call,
                site,
                // A gather drops the waker it keeps once, with itself; threads wake few.
                k: match site {
                    S::CallerDrop | S::OtherThread => 0,
                    _ => c.below(2),
                },
            }),
        });
        // Read last: a zero byte here leaves an older input the plain scenario it was.
        let graceful = c.one_in(3).then(|| Grace {
            instant: c.one_in(4),
            first: c.one_in(2),
            patience: [2, 4, 16][c.below(3)],
        });
        let mut deadline = deadline;
        if graceful.is_some() {
            for plan in &mut plans {
                plan.heed = match c.below(8) {
                    0..=2 => Heed::Ignores,
                    3 => Heed::Stops {
                        cleanup: 0,
                        with: Finish::Stopped,
                    },
                    4 => Heed::Stops {
                        cleanup: 0,
                        with: Finish::Ok,
                    },
                    5 => Heed::Stops {
                        cleanup: 0,
                        with: Finish::Err,
                    },
                    _ => Heed::Stops {
                        cleanup: 1 + c.below(3) as u32,
                        with: [Finish::Stopped, Finish::Ok, Finish::Err][c.below(3)],
                    },
                };
                plan.awaits = c.one_in(2);
                plan.stopped_error = plan.fails && c.one_in(3);
                // Only a deadline is sure to begin the stop that ends a child that waits
                // for it alone.
                plan.hangs |= deadline && c.one_in(6);
                // More children than one poll's budget all run when the stop begins: the
                // poll after it cannot reach them all.
                if n > 128 {
                    plan.pending_polls = plan.pending_polls.max(1);
                }
            }
            // The grace timer's panics (and `grace()`'s) need a stop: the deadline begins
            // it if no child fails. A child that ignores the signal and never finishes
            // keeps the grace timer polled until it fires.
            if panic.is_none() && c.one_in(3) {
                deadline = true;
                panic = Some(match c.below(5) {
                    0 | 1 => PanicPlan::Grace,
                    2 | 3 => PanicPlan::GraceTimerPoll {
                        k: c.below(2) as u32,
                    },
                    _ => PanicPlan::GraceTimerDrop,
                });
                if let Some(plan) = plans.first_mut() {
                    plan.heed = Heed::Ignores;
                    plan.hangs = true;
                }
            }
        }
        Scenario {
            plans,
            shape,
            mode,
            limit,
            deadline,
            catch_panics,
            cancel_after,
            panic,
            graceful,
        }
    }
}

/// How a run ended, for the seeded test's coverage check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ending {
    /// The gather (or the stream, as far as it was taken) completed.
    Completed,
    /// The caller dropped it while pending.
    Cancelled,
    /// A panic came out of a poll (a child's without catch_panics, or any the contract
    /// sends to the caller).
    Poisoned,
}

/// What panicked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum What {
    /// A child's poll (the existing `Plan::panics`).
    ChildPoll,
    /// A child's `Drop`, before it returned `Ready`.
    ChildDropRunning,
    /// A child's `Drop`, after it returned `Ready`.
    ChildDropFinished,
    /// An output's (`Token`'s) `Drop`.
    OutputDrop,
    TimerPoll,
    TimerDrop,
    WakerClone,
    WakerWake,
    WakerDrop,
    /// `grace()`, which makes the grace timer.
    Grace,
    GraceTimerPoll,
    GraceTimerDrop,
}

/// Where a panic ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reached {
    /// catch_panics made it a child's `Err(Panicked)`.
    Caught,
    /// catch_panics swallowed it (the drop of a child whose poll panicked).
    Swallowed,
    /// It came out of a poll of the gather (which is then poisoned).
    Poll,
    /// It came out of the caller's drop.
    CallerDrop,
    /// It came out of the environment's wake or drop of a waker.
    Environment,
    /// It came out of a waking thread (its `join`).
    OtherThread,
}

/// The payload of every panic the scenario makes (the quiet hook recognises it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelPanic {
    /// Its place in the run's ledger.
    seq: usize,
    what: What,
    site: Site,
    /// The child it belongs to: the one that panicked, or whose poll the waker panicked in.
    child: Option<usize>,
}

/// One panic of a run and where it ended up, for the seeded test's coverage check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PanicEvent {
    pub what: What,
    pub site: Site,
    pub reached: Reached,
    /// Why a running child was dropped inside a poll: `"deadline"`, `"fail fast"` or
    /// `"grace over"`.
    pub cause: Option<&'static str>,
}

impl fmt::Display for PanicEvent {
    /// `ChildDropRunning in GatherPoll -> Poll (deadline)`: the seeded test's coverage key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} in {:?} -> {:?}",
            self.what, self.site, self.reached
        )?;
        match self.cause {
            Some(cause) => write!(f, " ({cause})"),
            None => Ok(()),
        }
    }
}

/// What happened in a graceful stop, for the seeded test's coverage check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StopEvent {
    /// The stop began at a child's `Err`.
    AtError,
    /// The stop began at a child's stopped error (no stop was under way).
    AtStoppedError,
    /// The stop began at a child's panic, caught by catch_panics.
    AtCaughtPanic,
    /// The stop began at the deadline.
    AtDeadline,
    /// The grace timer fired while started children still ran: they were cut off.
    GraceTimerFired,
    /// The grace timer was ready at its first poll.
    InstantGrace,
    /// Every started child finished in the grace period (the grace timer never fired).
    AllFinished,
    /// The caller dropped the gather (or the stream) in the grace period.
    DroppedInGrace,
    /// A child that ignores the signal saw it, then finished on its own.
    IgnoredThenFinished,
    /// A child that ignores the signal saw it, and was cut off.
    IgnoredThenCutOff,
    /// A child finished at once when it saw the signal: with a stopped error, `Ok`, or a
    /// real error.
    StoppedOnRequest,
    SucceededOnRequest,
    FailedOnRequest,
    /// A child cleaned up for some polls after it saw the signal, then finished.
    CleanedUp,
    /// A child was cut off while it cleaned up.
    CutOffCleaningUp,
    /// A child that waited for the signal alone (it never finishes otherwise) finished
    /// when it saw it: `raised()` needs no waker.
    WaitedForTheSignal,
    /// A child failed in the grace period (a failure that begins no stop).
    FailedInGrace,
    /// A child waiting for a place under a limit never started, and was cut off.
    NeverStarted,
}

impl StopEvent {
    /// Every event, for the seeded test's coverage check.
    pub const ALL: [StopEvent; 18] = {
        use StopEvent as E;
        [
            E::AtError,
            E::AtStoppedError,
            E::AtCaughtPanic,
            E::AtDeadline,
            E::GraceTimerFired,
            E::InstantGrace,
            E::AllFinished,
            E::DroppedInGrace,
            E::IgnoredThenFinished,
            E::IgnoredThenCutOff,
            E::StoppedOnRequest,
            E::SucceededOnRequest,
            E::FailedOnRequest,
            E::CleanedUp,
            E::CutOffCleaningUp,
            E::WaitedForTheSignal,
            E::FailedInGrace,
            E::NeverStarted,
        ]
    };
}

/// What one run did.
#[derive(Clone, Debug)]
pub struct Report {
    pub ending: Ending,
    /// Every panic of the run, in the order they were raised.
    pub panics: Vec<PanicEvent>,
    /// What happened in the graceful stop, if one began (in order, once each).
    pub stop: Vec<StopEvent>,
}

/// One raised panic, and where it ended up so far.
#[derive(Clone, Copy, Debug)]
struct Raised {
    panic: ModelPanic,
    reached: Option<Reached>,
    cause: Option<&'static str>,
}

/// Every panic a run raised, from any thread.
#[derive(Default)]
struct Ledger {
    raised: Mutex<Vec<Raised>>,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, Vec<Raised>> {
        self.raised.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a panic about to be raised here, and returns its payload.
    fn raise(&self, what: What, child: Option<usize>) -> ModelPanic {
        let (site, polled) = current_site();
        let mut raised = self.lock();
        let panic = ModelPanic {
            seq: raised.len(),
            what,
            site,
            child: child.or(polled),
        };
        raised.push(Raised {
            panic,
            reached: None,
            cause: None,
        });
        panic
    }

    /// Records where panic `seq` ended up; once.
    fn reach(&self, panic: ModelPanic, reached: Reached, cause: Option<&'static str>) {
        let mut raised = self.lock();
        let entry = &mut raised[panic.seq];
        assert_eq!(
            entry.panic, panic,
            "a panic payload the ledger does not know"
        );
        assert!(
            entry.reached.is_none() || entry.reached == Some(reached),
            "{panic:?} reached the caller twice: {:?}, then {reached:?}",
            entry.reached
        );
        entry.reached = Some(reached);
        entry.cause = cause;
    }
}

thread_local! {
    /// Where this thread runs now, and the child being polled, if any.
    static SITE: Cell<(Site, Option<usize>)> = const { Cell::new((Site::Environment, None)) };
    /// Set while the harness polls a poisoned gather to see it panic.
    static EXPECT_POISON: Cell<bool> = const { Cell::new(false) };
    /// How many panics the quiet hook did not expect on this thread (caught or not).
    static UNEXPECTED: Cell<usize> = const { Cell::new(0) };
}

/// The site this thread runs at.
fn current_site() -> (Site, Option<usize>) {
    SITE.with(Cell::get)
}

/// Restores the site it replaced when dropped (unwinding too).
struct AtSite((Site, Option<usize>));

impl Drop for AtSite {
    fn drop(&mut self) {
        SITE.with(|site| site.set(self.0));
    }
}

fn at_site(site: Site, child: Option<usize>) -> AtSite {
    AtSite(SITE.with(|current| current.replace((site, child))))
}

/// What a child did, as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Running,
    Ok,
    Err,
    /// It finished with a stopped error (made from `Stopped`).
    Stopped,
    /// Its poll panicked (`ChildPoll`, or the waker it called), or its drop right after it
    /// finished did (`ChildDropFinished`).
    Panicked(What),
}

impl Fate {
    /// Whether it failed: any error (a stopped one too), any panic.
    fn failed(self) -> bool {
        matches!(self, Fate::Err | Fate::Stopped | Fate::Panicked(_))
    }
}

/// Why a graceful stop began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopCause {
    /// A child failed: the children cut off count as `Stopped`.
    Failure,
    /// The deadline's timer fired: they count as `TimedOut`.
    Deadline,
}

/// A graceful stop, from the moment `grace()` ran.
#[derive(Clone, Copy, Debug)]
struct Stop {
    cause: StopCause,
    /// The poll of the gather that began it.
    poll: usize,
}

/// Everything one run shares.
#[derive(Default)]
struct World {
    fates: Vec<Option<Fate>>,
    child_drops: Vec<u32>,
    output_drops: Vec<u32>,
    outputs_made: Vec<bool>,
    /// Which children exist (were made): all of them from the start, but for
    /// `gather_iter`, which makes each only when it may start.
    made: Vec<bool>,
    /// The poll of the gather in which each child was made.
    made_in: Vec<usize>,
    /// How many children exist now (made, not yet dropped).
    alive: usize,
    limit: Option<usize>,
    /// Wakes the environment will fire, one per step.
    pending_wakes: Vec<(Waker, WakeStyle)>,
    /// Wakers kept to fire after their child finished.
    strays: Vec<Waker>,
    /// Threads waking a waker right now.
    in_flight: Vec<JoinHandle<()>>,
    deadline_armed: bool,
    deadline_fired: bool,
    timer_waker: Option<Waker>,
    timer_polls: u32,
    /// Whether the timer has returned `Ready`.
    timer_ready: bool,
    /// The output whose drop panics.
    output_panics: Option<usize>,
    /// The timer's poll that panics.
    timer_poll_panics: Option<u32>,
    timer_drop_panics: bool,
    ledger: Arc<Ledger>,
    /// Drops that were to panic but ran while a panic unwound (it would have aborted).
    unwinding_drops: Vec<String>,
    /// A `Group` scenario's: pushes child `id + 1` (if any), called by child `id` at the
    /// start of its first poll.
    chain: Option<Rc<dyn Fn(usize)>>,
    /// The polls of the gather so far, over every `drive`: the clock of the checks below.
    polls: usize,
    /// What broke the model where a panic must not come out (in a drop, or in a poll that
    /// catch_panics guards): checked after every poll and at the end of the run.
    broken: Vec<String>,
    /// The first child to fail, and the poll it failed in.
    first_failure: Option<(usize, usize)>,
    /// Under a limit, the first child to fail, and how many children had a place then
    /// (the first ones, in input order).
    admitted: Option<(usize, usize)>,
    /// The poll in which the deadline's timer returned `Ready`.
    timer_ready_at: Option<usize>,

    // A graceful scenario's.
    graceful: bool,
    /// The signal every child borrows (and checks, in graceful scenarios).
    signal: Rc<StopSignal>,
    /// Once `grace()` ran.
    stop: Option<Stop>,
    grace_calls: u32,
    /// The grace timer is ready from the start.
    instant_grace: bool,
    /// Whether the environment fired the grace timer (or it was instant).
    grace_fired: bool,
    /// Whether the grace timer has returned `Ready`.
    grace_ready: bool,
    grace_waker: Option<Waker>,
    grace_polls: u32,
    /// The poll of the gather in which the grace timer was last polled.
    grace_polled_at: Option<usize>,
    grace_panics: bool,
    grace_poll_panics: Option<u32>,
    grace_drop_panics: bool,
    /// The grace period is over: the grace timer fired, or the gather cut a child off.
    grace_over: bool,
    /// Each child: polled while the signal was raised.
    saw_signal: Vec<bool>,
    /// Each child: began to clean up, as it heeds the signal.
    cleaning: Vec<bool>,
    /// Each child: finished as it heeds the signal.
    heeded: Vec<bool>,
    /// Each child: cut off (dropped unfinished by the gather, the stop under way).
    cut_off: Vec<bool>,
    dropped_in_grace: bool,
    failed_in_grace: bool,
}

impl World {
    /// Raises panic `what` from a drop, unless a panic is unwinding already: a second panic
    /// would abort the process. Then records it for the end of the run to report.
    fn panic_in_drop(mut this: std::cell::RefMut<'_, Self>, what: What, child: Option<usize>) {
        if std::thread::panicking() {
            let note = format!("{what:?} of {child:?} while a panic unwound");
            this.unwinding_drops.push(note);
            return;
        }
        let payload = this.ledger.raise(what, child);
        drop(this);
        panic::panic_any(payload);
    }

    /// Child `id` is now `fate`: a failure is noted for the stop it begins.
    fn set_fate(&mut self, id: usize, fate: Fate) {
        if fate.failed() {
            if self.first_failure.is_none() {
                self.first_failure = Some((id, self.polls));
                let others = self.fates.iter().enumerate().filter(|&(i, _)| i != id);
                let finished = others
                    .filter(|(_, fate)| !matches!(fate, None | Some(Fate::Running)))
                    .count();
                self.admitted = self.limit.map(|limit| (id, limit + finished));
            }
            if self.stop.is_some() && fate != Fate::Stopped {
                self.failed_in_grace = true;
            }
        }
        self.fates[id] = Some(fate);
    }

    /// Notes that the model is broken; the harness fails the run after this poll.
    fn broken(&mut self, what: String) {
        self.broken.push(what);
    }

    /// Whether a child that started is still running (made, not finished, not dropped).
    fn running(&self, id: usize) -> bool {
        self.fates[id] == Some(Fate::Running) && self.child_drops[id] == 0
    }
}

type Shared = Rc<RefCell<World>>;

/// An output that counts its drops.
pub struct Token {
    id: usize,
    world: Shared,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", self.id)
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        let mut world = self.world.borrow_mut();
        world.output_drops[self.id] += 1;
        if world.output_panics == Some(self.id) {
            World::panic_in_drop(world, What::OutputDrop, Some(self.id));
        }
    }
}

/// The error every child shares.
#[derive(Debug)]
pub enum Fail {
    Child(Token),
    /// A stopped error: a child's own (`Some`, with its output), or one the gather made
    /// from `Stopped` for a child it cut off after a failure (`None`).
    Stopped(Option<Token>),
    TimedOut(usize),
    /// The index the gather reported, and the payload (if it is one of the model's).
    Panicked(usize, Option<ModelPanic>),
}

impl From<TimedOut> for Fail {
    fn from(timed_out: TimedOut) -> Self {
        Fail::TimedOut(timed_out.index)
    }
}

impl From<Stopped> for Fail {
    fn from(_: Stopped) -> Self {
        Fail::Stopped(None)
    }
}

impl StopError for Fail {
    fn is_stopped(&self) -> bool {
        matches!(self, Fail::Stopped(_))
    }
}

impl From<Panicked> for Fail {
    fn from(panicked: Panicked) -> Self {
        let payload = panicked.payload.downcast_ref::<ModelPanic>().copied();
        Fail::Panicked(panicked.index, payload)
    }
}

type Outcome = Result<Token, Fail>;

struct Child {
    id: usize,
    plan: Plan,
    polls_left: u32,
    /// The polls of cleaning up left, once it has seen the signal (as it heeds it).
    cleanup_left: Option<u32>,
    /// Its drop panics: after it returned `Ready` (`Some(true)`), or before (`Some(false)`).
    drop_panics: Option<bool>,
    signal: Rc<StopSignal>,
    world: Shared,
}

impl Child {
    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        let (id, plan) = (self.id, self.plan);
        let shared = self.world.clone();
        let mut world = shared.borrow_mut();
        if world.grace_over {
            world.broken(format!("child {id} polled after the grace period ended"));
        }
        match world.fates[id] {
            None => {
                world.fates[id] = Some(Fate::Running);
                if let Some(limit) = world.limit {
                    let running = (0..world.fates.len())
                        .filter(|&i| {
                            world.fates[i] == Some(Fate::Running) && world.child_drops[i] == 0
                        })
                        .count();
                    assert!(
                        running <= limit,
                        "{running} children running under limit({limit})"
                    );
                    // Once the stop began, no child starts; nor, from the first failure
                    // on, does one in a place that a child finishing then left.
                    if world.graceful && world.stop.is_some() {
                        world.broken(format!(
                            "child {id} started under limit({limit}) after the stop began"
                        ));
                    } else if let (true, Some((failed, admitted))) =
                        (world.graceful, world.admitted)
                    {
                        if id >= admitted {
                            world.broken(format!(
                                "child {id} started under limit({limit}) after child {failed} \
                                 failed, when only {admitted} children had a place"
                            ));
                        }
                    }
                }
            }
            Some(Fate::Running) => {}
            Some(fate) => panic!("child {id} polled after it finished ({fate:?})"),
        }
        let raised = if plan.awaits {
            // `raised()` registers no waker: the gather polls every child after the raise.
            let mut raised = self.signal.raised();
            Pin::new(&mut raised).poll(cx).is_ready()
        } else {
            self.signal.is_raised()
        };
        if raised {
            if world.stop.is_none() {
                world.broken(format!("child {id} saw the signal before grace() ran"));
            }
            world.saw_signal[id] = true;
            if let Heed::Stops { cleanup, with } = plan.heed {
                world.cleaning[id] = true;
                let left = self.cleanup_left.get_or_insert(cleanup);
                if *left > 0 {
                    *left -= 1;
                    return self.wait(&mut world, cx);
                }
                world.heeded[id] = true;
                if plan.stray {
                    world.strays.push(cx.waker().clone());
                }
                return self.finish(world, with);
            }
        }
        if plan.hangs {
            return Poll::Pending;
        }
        if plan.spurious {
            cx.waker().wake_by_ref();
        }
        if self.polls_left > 0 {
            self.polls_left -= 1;
            return self.wait(&mut world, cx);
        }
        if plan.stray {
            world.strays.push(cx.waker().clone());
        }
        if plan.panics {
            world.set_fate(id, Fate::Panicked(What::ChildPoll));
            let payload = world.ledger.raise(What::ChildPoll, Some(id));
            drop(world);
            panic::panic_any(payload);
        }
        let finish = match (plan.fails, plan.stopped_error) {
            (false, _) => Finish::Ok,
            (true, false) => Finish::Err,
            (true, true) => Finish::Stopped,
        };
        self.finish(world, finish)
    }

    /// Returns `Pending`, with a wake arranged in the planned style.
    fn wait(&self, world: &mut World, cx: &mut Context<'_>) -> Poll<Outcome> {
        match self.plan.style {
            WakeStyle::DuringPoll => cx.waker().wake_by_ref(),
            style => world.pending_wakes.push((cx.waker().clone(), style)),
        }
        Poll::Pending
    }

    /// Finishes as `finish` says, with a token as its output (or in its error).
    fn finish(&self, mut world: std::cell::RefMut<'_, World>, finish: Finish) -> Poll<Outcome> {
        let id = self.id;
        world.set_fate(
            id,
            match finish {
                Finish::Ok => Fate::Ok,
                Finish::Err => Fate::Err,
                Finish::Stopped => Fate::Stopped,
            },
        );
        world.outputs_made[id] = true;
        let token = Token {
            id,
            world: self.world.clone(),
        };
        Poll::Ready(match finish {
            Finish::Ok => Ok(token),
            Finish::Err => Err(Fail::Child(token)),
            Finish::Stopped => Err(Fail::Stopped(Some(token))),
        })
    }
}

impl Future for Child {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.get_mut();
        let _site = at_site(Site::ChildPoll, Some(this.id));
        // A group's child pushes the next one first thing, from inside its poll (the push
        // wakes the caller's waker, which may panic: a panic of this poll, as any other).
        let chain = {
            let world = this.world.borrow();
            world
                .chain
                .clone()
                .filter(|_| world.fates[this.id].is_none())
        };
        let poll = || {
            if let Some(chain) = chain {
                chain(this.id);
            }
            this.poll_inner(cx)
        };
        match panic::catch_unwind(AssertUnwindSafe(poll)) {
            Ok(poll) => poll,
            Err(payload) => {
                // The caller's waker panicked in this poll: the child panicked.
                if let Some(p) = payload.downcast_ref::<ModelPanic>() {
                    if matches!(p.what, What::WakerClone | What::WakerWake) {
                        let mut world = this.world.borrow_mut();
                        world.set_fate(this.id, Fate::Panicked(p.what));
                    }
                }
                panic::resume_unwind(payload)
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let mut world = self.world.borrow_mut();
        world.child_drops[self.id] += 1;
        world.alive -= 1;
        let id = self.id;
        let fate = world.fates[id];
        let finished = matches!(fate, Some(Fate::Ok | Fate::Err | Fate::Stopped));
        if world.stop.is_some() && matches!(fate, None | Some(Fate::Running)) {
            if current_site().0 == Site::CallerDrop {
                world.dropped_in_grace |= !world.grace_over;
            } else {
                // The gather cuts it off: the grace period is over.
                world.cut_off[id] = true;
                world.grace_over = true;
                if fate == Some(Fate::Running) && !world.saw_signal[id] {
                    world.broken(format!("child {id} cut off before it saw the signal"));
                }
            }
        }
        if self.drop_panics == Some(finished) {
            let what = if finished {
                // Under catch_panics, this is the child's outcome.
                world.set_fate(id, Fate::Panicked(What::ChildDropFinished));
                What::ChildDropFinished
            } else {
                What::ChildDropRunning
            };
            World::panic_in_drop(world, what, Some(self.id));
        }
    }
}

/// The deadline's timer: ready once the environment fired it.
struct Timer(Shared);

impl Future for Timer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut world = self.0.borrow_mut();
        if world.graceful && (world.stop.is_some() || world.first_failure.is_some()) {
            world.broken("the deadline's timer polled after a failure or a stop".into());
        }
        let poll = world.timer_polls;
        world.timer_polls += 1;
        if world.timer_poll_panics == Some(poll) {
            let payload = world.ledger.raise(What::TimerPoll, None);
            drop(world);
            panic::panic_any(payload);
        }
        if world.deadline_fired {
            world.timer_ready = true;
            world.timer_ready_at = Some(world.polls);
            return Poll::Ready(());
        }
        let waker = cx.waker().clone();
        let old = world.timer_waker.replace(waker);
        drop(world);
        drop(old);
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        let world = self.0.borrow_mut();
        if world.timer_drop_panics {
            World::panic_in_drop(world, What::TimerDrop, None);
        }
    }
}

/// `grace()`, given to `graceful`: checks that the stop may begin now (the signal raised,
/// in the poll of a failure or of the deadline), notes it, and makes the grace timer.
fn grace(world: &Shared) -> impl FnOnce() -> GraceTimer {
    let world = world.clone();
    move || {
        let mut w = world.borrow_mut();
        w.grace_calls += 1;
        if w.grace_calls > 1 {
            w.broken("grace() ran twice".into());
        }
        if !w.signal.is_raised() {
            w.broken("grace() ran before the signal was raised".into());
        }
        let now = w.polls;
        let cause = match (w.timer_ready_at, w.first_failure) {
            (Some(at), _) if at == now => StopCause::Deadline,
            (_, Some((_, at))) if at == now => StopCause::Failure,
            _ => {
                let note =
                    format!("grace() ran in poll {now} with no failure and no deadline in it");
                w.broken(note);
                StopCause::Failure
            }
        };
        w.stop = Some(Stop { cause, poll: now });
        w.grace_fired |= w.instant_grace;
        if w.grace_panics {
            let payload = w.ledger.raise(What::Grace, None);
            drop(w);
            panic::panic_any(payload);
        }
        drop(w);
        GraceTimer(world)
    }
}

/// The grace timer: ready once the environment fired it (or at once, for an instant
/// grace).
struct GraceTimer(Shared);

impl Future for GraceTimer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut world = self.0.borrow_mut();
        let now = world.polls;
        if !matches!(world.stop, Some(stop) if stop.poll < now) {
            world.broken(format!(
                "the grace timer polled in poll {now}, which began the stop"
            ));
        }
        if world.grace_polled_at == Some(now) || world.grace_ready {
            world.broken(format!(
                "the grace timer polled twice in poll {now}, or once ready"
            ));
        }
        world.grace_polled_at = Some(now);
        let n = world.fates.len();
        let unseen: Vec<usize> = (0..n)
            .filter(|&i| world.running(i) && !world.saw_signal[i])
            .collect();
        if !unseen.is_empty() {
            world.broken(format!(
                "the grace timer polled before children {unseen:?} saw the signal"
            ));
        }
        // Without a limit, a child never polled yet counts as started (it waits for the
        // budget, not for a place).
        let unpolled =
            |i: usize| world.made[i] && world.fates[i].is_none() && world.child_drops[i] == 0;
        let started = (0..n).any(|i| world.running(i) || (world.limit.is_none() && unpolled(i)));
        if !started {
            world.broken("the grace timer polled with no started child left".into());
        }
        let poll = world.grace_polls;
        world.grace_polls += 1;
        if world.grace_poll_panics == Some(poll) {
            let payload = world.ledger.raise(What::GraceTimerPoll, None);
            drop(world);
            panic::panic_any(payload);
        }
        if world.grace_fired {
            world.grace_ready = true;
            world.grace_over = true;
            return Poll::Ready(());
        }
        let waker = cx.waker().clone();
        let old = world.grace_waker.replace(waker);
        drop(world);
        drop(old);
        Poll::Pending
    }
}

impl Drop for GraceTimer {
    fn drop(&mut self) {
        let world = self.0.borrow_mut();
        if world.grace_drop_panics {
            World::panic_in_drop(world, What::GraceTimerDrop, None);
        }
    }
}

/// A plain waker that counts its wakes (for the poisoned poll: no trap).
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The caller's waker panics once, on the k-th call of one kind at one site.
struct WakerTrap {
    plan: Option<(WakerCall, Site, usize)>,
    /// The calls of that kind at that site so far.
    calls: AtomicUsize,
    fired: AtomicBool,
    ledger: Arc<Ledger>,
}

impl WakerTrap {
    /// Called by every call of the caller's waker, after the call did its part (counted
    /// the wake, released the reference), or before a clone takes one.
    fn call(&self, call: WakerCall) {
        let Some((trap_call, site, k)) = self.plan else {
            return;
        };
        if call != trap_call
            || current_site().0 != site
            // A drop while a panic unwinds: never a second panic.
            || std::thread::panicking()
            || self.fired.load(Ordering::SeqCst)
            || self.calls.fetch_add(1, Ordering::SeqCst) < k
            || self.fired.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let what = match call {
            WakerCall::Clone => What::WakerClone,
            WakerCall::Wake => What::WakerWake,
            WakerCall::Drop => What::WakerDrop,
        };
        panic::panic_any(self.ledger.raise(what, None));
    }
}

/// The caller's (executor's) waker, one per `drive`: counts its wakes, from any thread.
struct Parent {
    wakes: AtomicUsize,
    trap: Arc<WakerTrap>,
}

/// The caller's waker: `data` is one reference of an `Arc<Parent>`.
const PARENT_VTABLE: RawWakerVTable =
    RawWakerVTable::new(parent_clone, parent_wake, parent_wake_by_ref, parent_drop);

unsafe fn parent_clone(data: *const ()) -> RawWaker {
    let parent = data.cast::<Parent>();
    // SAFETY: the waker being cloned holds a reference, so the `Parent` is alive.
    unsafe { &*parent }.trap.call(WakerCall::Clone); // before taking a reference: no leak
                                                     // SAFETY: as above; the new waker owns the reference taken here.
    unsafe { Arc::increment_strong_count(parent) };
    RawWaker::new(data, &PARENT_VTABLE)
}

unsafe fn parent_wake(data: *const ()) {
    // SAFETY: the waker owns this reference, which waking by value consumes.
    let parent = unsafe { Arc::from_raw(data.cast::<Parent>()) };
    parent.wakes.fetch_add(1, Ordering::SeqCst);
    let trap = parent.trap.clone();
    drop(parent);
    trap.call(WakerCall::Wake);
}

unsafe fn parent_wake_by_ref(data: *const ()) {
    // SAFETY: the waker holds a reference, so the `Parent` is alive.
    let parent = unsafe { &*data.cast::<Parent>() };
    parent.wakes.fetch_add(1, Ordering::SeqCst);
    parent.trap.call(WakerCall::Wake);
}

unsafe fn parent_drop(data: *const ()) {
    // SAFETY: the waker owns this reference, which dropping it releases.
    let parent = unsafe { Arc::from_raw(data.cast::<Parent>()) };
    let trap = parent.trap.clone();
    drop(parent);
    trap.call(WakerCall::Drop);
}

/// The executor's own handle on its waker: dropping it releases its reference without a
/// call to the trap (the executor's own drop is not user code under test).
struct Executor {
    parent: Arc<Parent>,
    waker: ManuallyDrop<Waker>,
}

impl Executor {
    fn new(trap: &Arc<WakerTrap>) -> Self {
        let parent = Arc::new(Parent {
            wakes: AtomicUsize::new(0),
            trap: trap.clone(),
        });
        let data = Arc::into_raw(parent.clone()).cast::<()>();
        // SAFETY: `data` is one reference of an `Arc<Parent>`, as `PARENT_VTABLE` expects.
        let waker = unsafe { Waker::from_raw(RawWaker::new(data, &PARENT_VTABLE)) };
        Executor {
            parent,
            waker: ManuallyDrop::new(waker),
        }
    }

    fn wakes(&self) -> usize {
        self.parent.wakes.load(Ordering::SeqCst)
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        // SAFETY: `waker` owns one reference of `parent` (taken in `new`) and is never used
        // again: this releases it instead of the waker's `drop`.
        unsafe { Arc::decrement_strong_count(Arc::as_ptr(&self.parent)) };
    }
}

/// Runs a layered gather in the scenario's mode.
macro_rules! run_mode {
    ($run:expr, $gather:expr) => {{
        let gather = $gather;
        match $run.scenario.mode {
            Mode::SettleAll => $run.settle_all(gather),
            Mode::FailFast => $run.fail_fast(gather.fail_fast()),
            Mode::AsCompleted { take } => $run.as_completed(gather.as_completed(), take),
        }
    }};
}

/// Adds the scenario's graceful layer, if any, then runs the mode.
macro_rules! run_graceful {
    ($run:expr, $gather:expr) => {{
        let gather = $gather;
        match $run.scenario.graceful {
            None => run_mode!($run, gather),
            Some(_) => run_mode!($run, gather.graceful($run.signal, grace($run.world))),
        }
    }};
}

/// Adds the scenario's deadline and catch_panics layers, then the graceful one (or, with
/// both and [`Grace::first`], the graceful layer first, under them), then runs the mode.
macro_rules! run_layered {
    ($run:expr, $gather:expr) => {{
        let gather = $gather;
        let timer = Timer($run.world.clone());
        let first = matches!($run.scenario.graceful, Some(Grace { first: true, .. }));
        match ($run.scenario.deadline, $run.scenario.catch_panics) {
            (false, false) => run_graceful!($run, gather),
            (false, true) => run_graceful!($run, gather.catch_panics()),
            (true, false) => run_graceful!($run, gather.deadline(timer)),
            (true, true) if first => run_mode!(
                $run,
                gather
                    .graceful($run.signal, grace($run.world))
                    .deadline(timer)
                    .catch_panics()
            ),
            (true, true) => run_graceful!($run, gather.deadline(timer).catch_panics()),
        }
    }};
}

/// Adds the scenario's limit (inputs that take one), then the other layers.
macro_rules! run_limited {
    ($run:expr, $gather:expr) => {{
        let gather = $gather;
        let gather = match $run.scenario.limit {
            Some(k) => gather.limit(k),
            None => gather,
        };
        run_layered!($run, gather)
    }};
}

/// A group's modes: awaited whole (settle-all, fail-fast), or read as a stream. A graceful
/// group is made a gather first (`settle_all()`), which takes the layer, then the mode.
macro_rules! run_group_mode {
    ($run:expr, $group:expr) => {{
        let group = $group;
        match ($run.scenario.mode, $run.scenario.graceful) {
            (_, Some(_)) => run_mode!(
                $run,
                group.settle_all().graceful($run.signal, grace($run.world))
            ),
            (Mode::SettleAll, None) => $run.settle_all(group.settle_all()),
            (Mode::FailFast, None) => $run.fail_fast(group.fail_fast()),
            (Mode::AsCompleted { take }, None) => $run.as_completed(group, take),
        }
    }};
}

/// A group's deadline and catch_panics layers (its limit comes with its making).
macro_rules! run_group {
    ($run:expr, $group:expr) => {{
        let group = $group;
        let timer = Timer($run.world.clone());
        match ($run.scenario.deadline, $run.scenario.catch_panics) {
            (false, false) => run_group_mode!($run, group),
            (false, true) => run_group_mode!($run, group.catch_panics()),
            (true, false) => run_group_mode!($run, group.deadline(timer)),
            (true, true) => run_group_mode!($run, group.deadline(timer).catch_panics()),
        }
    }};
}

/// What a poisoned gather panics with when polled again.
const POISONED: &str = "polled after one of its futures panicked";

/// A panic's message, if its payload is a string.
fn message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// Silences the expected panics: the model's own (their payload is a [`ModelPanic`]) and
/// the poisoned gather's while the harness expects it; every other panic goes to the hook
/// that was there (in a fuzz target, the one that aborts).
fn quiet_model_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let expected = info.payload().is::<ModelPanic>()
                || (EXPECT_POISON.with(Cell::get)
                    && message(info.payload()).is_some_and(|m| m.contains(POISONED)));
            if !expected {
                UNEXPECTED.with(|count| count.set(count.get() + 1));
                previous(info);
            }
        }));
    });
}

/// Runs one scenario read from `bytes` and checks it against the model. Panics (with the
/// scenario) on any difference.
pub fn run(bytes: &[u8]) -> (Scenario, Report) {
    let mut choices = Choices::new(bytes);
    let scenario = Scenario::decode(&mut choices);
    let report = run_scenario(&scenario, &mut choices);
    (scenario, report)
}

/// The modes, to pin one (a fuzz target per mode).
#[derive(Clone, Copy, Debug)]
pub enum ModeKind {
    SettleAll,
    FailFast,
    AsCompleted,
}

/// As [`run`], in the given mode whatever the bytes say.
pub fn run_in(mode: ModeKind, bytes: &[u8]) -> (Scenario, Report) {
    let mut choices = Choices::new(bytes);
    let mut scenario = Scenario::decode(&mut choices);
    let n = scenario.plans.len();
    scenario.mode = match mode {
        ModeKind::SettleAll => Mode::SettleAll,
        ModeKind::FailFast => Mode::FailFast,
        ModeKind::AsCompleted => match scenario.mode {
            Mode::AsCompleted { take } => Mode::AsCompleted { take },
            _ => Mode::AsCompleted {
                take: choices.below(n + 2).min(n),
            },
        },
    };
    let report = run_scenario(&scenario, &mut choices);
    (scenario, report)
}

/// As [`run`], with a `Group` whatever the bytes say (a waker panic that only children
/// sharing the gather's waker can raise is left out: a group's children have wakers of
/// their own).
pub fn run_group(bytes: &[u8]) -> (Scenario, Report) {
    let mut choices = Choices::new(bytes);
    let mut scenario = Scenario::decode(&mut choices);
    scenario.shape = Shape::Group;
    if let Some(
        PanicPlan::Waker {
            call: WakerCall::Clone,
            site: Site::ChildPoll,
            ..
        }
        | PanicPlan::Waker {
            call: WakerCall::Drop,
            site: Site::Environment,
            ..
        },
    ) = scenario.panic
    {
        scenario.panic = None;
    }
    let report = run_scenario(&scenario, &mut choices);
    (scenario, report)
}

/// Runs `scenario` with the schedule read from `choices`.
pub fn run_scenario(scenario: &Scenario, choices: &mut Choices<'_>) -> Report {
    quiet_model_panics();
    let unexpected = UNEXPECTED.with(Cell::get);
    let n = scenario.plans.len();
    let ledger = Arc::new(Ledger::default());
    let plan = scenario.panic;
    let world: Shared = Rc::new(RefCell::new(World {
        fates: vec![None; n],
        child_drops: vec![0; n],
        output_drops: vec![0; n],
        outputs_made: vec![false; n],
        made: vec![false; n],
        made_in: vec![0; n],
        alive: 0,
        limit: scenario.limit,
        deadline_armed: scenario.deadline,
        output_panics: match plan {
            Some(PanicPlan::OutputDrop { child }) => Some(child),
            _ => None,
        },
        timer_poll_panics: match plan {
            Some(PanicPlan::TimerPoll { k }) => Some(k),
            _ => None,
        },
        timer_drop_panics: plan == Some(PanicPlan::TimerDrop),
        ledger: ledger.clone(),
        graceful: scenario.graceful.is_some(),
        instant_grace: scenario.graceful.is_some_and(|grace| grace.instant),
        grace_panics: plan == Some(PanicPlan::Grace),
        grace_poll_panics: match plan {
            Some(PanicPlan::GraceTimerPoll { k }) => Some(k),
            _ => None,
        },
        grace_drop_panics: plan == Some(PanicPlan::GraceTimerDrop),
        saw_signal: vec![false; n],
        cleaning: vec![false; n],
        heeded: vec![false; n],
        cut_off: vec![false; n],
        ..World::default()
    }));
    let signal = world.borrow().signal.clone();
    let trap = Arc::new(WakerTrap {
        plan: match plan {
            Some(PanicPlan::Waker { call, site, k }) => Some((call, site, k)),
            _ => None,
        },
        calls: AtomicUsize::new(0),
        fired: AtomicBool::new(false),
        ledger: ledger.clone(),
    });
    let children = scenario
        .plans
        .iter()
        .enumerate()
        .map(|(id, &plan)| make_child(&world, scenario.shape, scenario.panic, id, plan));
    let mut run = Run {
        scenario,
        world: &world,
        signal: &signal,
        ledger,
        trap,
        executors: Vec::new(),
        unexpected,
        choices,
    };
    let ending = match scenario.shape {
        Shape::Vec => run_limited!(run, gather(children.collect::<Vec<_>>()).per_child_wakers()),
        Shape::FewVec => run_limited!(run, gather(children.collect::<Vec<_>>())),
        Shape::SmallVec => run_limited!(run, gather(children.collect::<SmallVec<[Child; 4]>>())),
        Shape::Iter => run_limited!(run, gather_iter(children)),
        Shape::Group => {
            let mut group = match scenario.limit {
                Some(k) => gather::Group::new().limit(k),
                None => gather::Group::new(),
            };
            let handle = group.handle();
            let (plans, panic, shared) = (scenario.plans.clone(), scenario.panic, world.clone());
            // Child `id` pushes child `id + 1`: made now, in input order.
            let chain: Rc<dyn Fn(usize)> = Rc::new(move |id| {
                if let Some(&plan) = plans.get(id + 1) {
                    let child = make_child(&shared, Shape::Group, panic, id + 1, plan);
                    let pushed = handle.push(child);
                    assert_eq!(pushed.ok(), Some(id + 1), "pushed while the group runs");
                }
            });
            let mut children = children;
            if let Some(first) = children.next() {
                world.borrow_mut().chain = Some(chain);
                group.push(first);
            }
            run_group!(run, group)
        }
        Shape::Array => {
            let array: [Child; ARRAY_LEN] = children.collect::<Vec<_>>().try_into().ok().unwrap();
            run_layered!(run, gather(array))
        }
    };
    let panics = run.finish();
    let stop = run.stop_events(ending);
    Report {
        ending,
        panics,
        stop,
    }
}

/// Makes child `id` (it exists from now on).
fn make_child(
    world: &Shared,
    shape: Shape,
    panic: Option<PanicPlan>,
    id: usize,
    plan: Plan,
) -> Child {
    let mut w = world.borrow_mut();
    // Under `limit(k)`, at most k children exist at once (a child is dropped as soon as it
    // finishes): `gather_iter` makes each only when it may start.
    if let (Shape::Iter, Some(limit)) = (shape, w.limit) {
        let alive = w.alive;
        assert!(
            alive < limit,
            "child {id} made while {alive} exist under limit({limit})"
        );
    }
    w.made[id] = true;
    w.made_in[id] = w.polls;
    w.alive += 1;
    Child {
        id,
        plan,
        polls_left: plan.pending_polls,
        cleanup_left: None,
        signal: w.signal.clone(),
        drop_panics: match panic {
            Some(PanicPlan::ChildDrop { child, finished }) if child == id => Some(finished),
            _ => None,
        },
        world: world.clone(),
    }
}

/// The successes of a `Vec` gather take at most twice the room they need (as a `Vec`
/// grown by doubling may: they keep the results' buffer while they fill half of it).
fn check_snugly_sized<S: Any>(successes: &S) {
    if let Some(successes) = (successes as &dyn Any).downcast_ref::<Vec<Token>>() {
        assert!(
            successes.capacity() <= 2 * successes.len(),
            "a Vec gather's successes take {} places for {}",
            successes.capacity(),
            successes.len()
        );
    }
}

/// One run in progress.
struct Run<'s, 'c, 'b> {
    scenario: &'s Scenario,
    world: &'s Shared,
    /// The signal a graceful gather raises (the world's).
    signal: &'s StopSignal,
    ledger: Arc<Ledger>,
    trap: Arc<WakerTrap>,
    /// The caller's waker of every `drive`, to check at the end that none is kept alive.
    executors: Vec<Arc<Parent>>,
    /// The thread's count of unexpected panics when the run began.
    unexpected: usize,
    choices: &'c mut Choices<'b>,
}

/// What the caller saw of one child.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Ok(usize),
    Err(usize),
    /// Its own stopped error.
    Stopped(usize),
    /// A `Stopped` the gather made: cut off after a failure.
    StoppedCutOff(usize),
    TimedOut(usize),
    Panicked(usize, What),
}

impl Seen {
    /// An outcome of a child cut off.
    fn cut_off(&self) -> bool {
        matches!(self, Seen::StoppedCutOff(_) | Seen::TimedOut(_))
    }

    /// An error that is a stopped one.
    fn stopped(&self) -> bool {
        matches!(self, Seen::Stopped(_) | Seen::StoppedCutOff(_))
    }
}

impl Run<'_, '_, '_> {
    /// What the model expects for child `index`, from what the child did.
    fn expected(&self, index: usize) -> Seen {
        let world = self.world.borrow();
        match world.fates[index] {
            Some(Fate::Ok) => Seen::Ok(index),
            Some(Fate::Err) => Seen::Err(index),
            Some(Fate::Stopped) => Seen::Stopped(index),
            Some(Fate::Panicked(what)) => Seen::Panicked(index, what),
            None | Some(Fate::Running) if world.graceful => match world.stop {
                Some(stop) if stop.cause == StopCause::Failure => Seen::StoppedCutOff(index),
                Some(_) => Seen::TimedOut(index),
                None => panic!("child {index} unfinished, yet no stop began"),
            },
            None | Some(Fate::Running) => {
                assert!(
                    world.deadline_fired,
                    "child {index} unfinished, yet no deadline cut it off"
                );
                Seen::TimedOut(index)
            }
        }
    }

    /// Every child that never finished has been dropped: checked when a `TimedOut` is seen.
    fn check_cut_off(&self, when: &str) {
        let world = self.world.borrow();
        // A group's children pushed from the poll that froze its inbox on (the deadline
        // fired, or the stop began, at its end) wait there, never started: as completed,
        // each is cut off when its turn comes to be handed out, as a lazy input's children
        // are made only then.
        let frozen = match world.stop {
            Some(stop) => Some(stop.poll),
            None => world.timer_ready_at,
        };
        let waits = |i: usize| {
            self.scenario.shape == Shape::Group
                && matches!(self.scenario.mode, Mode::AsCompleted { .. })
                && world.fates[i].is_none()
                && frozen.is_some_and(|frozen| world.made_in[i] >= frozen)
        };
        let alive: Vec<usize> = (0..world.fates.len())
            .filter(|&i| matches!(world.fates[i], None | Some(Fate::Running)))
            .filter(|&i| world.made[i] && world.child_drops[i] == 0 && !waits(i))
            .collect();
        assert!(alive.is_empty(), "children {alive:?} still running {when}");
    }

    /// What the caller saw of child `index` (where it saw it) from its error.
    fn seen_error(&self, index: usize, error: &Fail) -> Seen {
        match error {
            Fail::Child(token) => Seen::Err(token.id),
            Fail::Stopped(Some(token)) => Seen::Stopped(token.id),
            Fail::Stopped(None) => {
                self.check_cut_off("when a cut-off Stopped was seen");
                Seen::StoppedCutOff(index)
            }
            Fail::TimedOut(index) => {
                self.check_cut_off("when a TimedOut was seen");
                Seen::TimedOut(*index)
            }
            Fail::Panicked(index, payload) => {
                let Some(panic) = payload else {
                    panic!("child {index}'s Panicked carries a payload the model never raised")
                };
                assert_eq!(
                    panic.child,
                    Some(*index),
                    "panic reported at the wrong index"
                );
                let world = self.world.borrow();
                assert_eq!(
                    world.child_drops[*index], 1,
                    "child {index} not dropped at once after it panicked"
                );
                if panic.what == What::ChildDropFinished {
                    assert_eq!(
                        world.output_drops[*index], 1,
                        "the output of child {index}, whose drop panicked, not dropped at once"
                    );
                }
                drop(world);
                self.ledger.reach(*panic, Reached::Caught, None);
                Seen::Panicked(*index, panic.what)
            }
        }
    }

    fn seen(&self, index: usize, outcome: &Outcome) -> Seen {
        match outcome {
            Ok(token) => Seen::Ok(token.id),
            Err(error) => self.seen_error(index, error),
        }
    }

    /// A panic came out at `reached`: checks that the contract sends it there.
    fn surfaced(&self, payload: Box<dyn Any + Send>, reached: Reached) {
        let Some(&panic) = payload.downcast_ref::<ModelPanic>() else {
            panic::resume_unwind(payload)
        };
        let scenario = self.scenario;
        let world = self.world.borrow();
        let mut cause = None;
        let (what, site) = (panic.what, panic.site);
        match reached {
            Reached::Poll => {
                assert!(
                    matches!(site, Site::ChildPoll | Site::GatherPoll),
                    "{panic:?} came out of a poll"
                );
                match what {
                    What::ChildPoll | What::WakerClone | What::WakerWake
                        if site == Site::ChildPoll =>
                    {
                        assert!(!scenario.catch_panics, "{panic:?} escaped catch_panics");
                    }
                    What::ChildDropFinished => {
                        assert!(!scenario.catch_panics, "{panic:?} escaped catch_panics");
                    }
                    What::ChildDropRunning | What::OutputDrop => {
                        let id = panic.child.expect("a child's panic");
                        assert!(
                            !(scenario.catch_panics
                                && matches!(world.fates[id], Some(Fate::Panicked(_)))),
                            "{panic:?}: the drop of a child whose poll panicked was not \
                             swallowed by catch_panics"
                        );
                        let failed = world.fates.iter().any(|f| f.is_some_and(Fate::failed));
                        cause = if world.stop.is_some() && what == What::ChildDropRunning {
                            Some("grace over")
                        } else if world.timer_ready && what == What::ChildDropRunning {
                            Some("deadline")
                        } else {
                            assert!(
                                scenario.mode == Mode::FailFast && (failed || world.timer_ready),
                                "{panic:?}: dropped inside a poll, yet neither cut off by the \
                                 deadline nor dropped by fail-fast after an error"
                            );
                            Some("fail fast")
                        };
                    }
                    What::TimerDrop => {
                        assert!(world.timer_ready, "timer dropped before it fired");
                    }
                    What::TimerPoll | What::WakerClone | What::WakerWake | What::WakerDrop => {}
                    What::Grace | What::GraceTimerPoll => {
                        assert!(world.stop.is_some(), "{panic:?} before the stop began");
                    }
                    What::ChildPoll => unreachable!("a child's poll panics in its poll"),
                    What::GraceTimerDrop => panic!("{panic:?} came out of a poll"),
                }
            }
            Reached::CallerDrop => {
                assert_eq!(
                    site,
                    Site::CallerDrop,
                    "{panic:?} came out of the caller's drop"
                );
                match what {
                    What::ChildDropRunning => {
                        let id = panic.child.expect("a child's panic");
                        assert!(
                            !(scenario.catch_panics
                                && matches!(world.fates[id], Some(Fate::Panicked(_)))),
                            "{panic:?}: catch_panics did not drop child {id} at once after its \
                             poll panicked"
                        );
                    }
                    What::OutputDrop | What::TimerDrop | What::WakerDrop => {}
                    What::GraceTimerDrop => {
                        assert!(world.stop.is_some(), "{panic:?} before the stop began");
                    }
                    _ => panic!("{panic:?} came out of the caller's drop"),
                }
            }
            Reached::Environment | Reached::OtherThread => {
                let expected_site = if reached == Reached::Environment {
                    Site::Environment
                } else {
                    Site::OtherThread
                };
                assert!(
                    site == expected_site && matches!(what, What::WakerWake | What::WakerDrop),
                    "{panic:?} came out of a wake at {reached:?}"
                );
            }
            Reached::Caught | Reached::Swallowed => unreachable!(),
        }
        drop(world);
        self.ledger.reach(panic, reached, cause);
    }

    /// Runs `f` (a drop, or a wake) as the caller or the environment, at `site`: a panic
    /// out of it must be one the contract sends there.
    fn outside(&self, site: Site, f: impl FnOnce()) {
        let reached = match site {
            Site::CallerDrop => Reached::CallerDrop,
            Site::Environment => Reached::Environment,
            _ => unreachable!(),
        };
        let result = {
            let _site = at_site(site, None);
            panic::catch_unwind(AssertUnwindSafe(f))
        };
        if let Err(payload) = result {
            self.surfaced(payload, reached);
        }
    }

    /// The caller drops `value` (a gather, a stream, outputs).
    fn caller_drop<T>(&self, value: T) {
        self.outside(Site::CallerDrop, move || drop(value));
    }

    /// The caller drops the gather (or the stream): every child it made is gone then, even
    /// in the grace period, even if a drop panicked.
    fn drop_gather<T>(&self, gather: T) {
        self.caller_drop(gather);
        let alive = self.world.borrow().alive;
        assert_eq!(alive, 0, "{alive} children outlive the gather");
    }

    /// Joins a waking thread: a panic there must be the caller's waker's.
    fn join(&self, thread: JoinHandle<()>) {
        if let Err(payload) = thread.join() {
            self.surfaced(payload, Reached::OtherThread);
        }
    }

    /// Fires one environment event: a pending wake (chosen by the bytes), the deadline,
    /// now and then a stray wake. Returns false when nothing was left to fire.
    fn fire_one(&mut self) -> bool {
        let stray = {
            let mut world = self.world.borrow_mut();
            (!world.strays.is_empty() && self.choices.one_in(2)).then(|| world.strays.pop())
        };
        if let Some(Some(stray)) = stray {
            self.outside(Site::Environment, move || stray.wake());
        }
        let mut world = self.world.borrow_mut();
        let deadline_ready = world.deadline_armed && !world.deadline_fired;
        // Once `grace()` made it, the grace timer: picked as often as the scenario says
        // while other events remain.
        let grace_ready = world.stop.is_some() && !world.grace_fired;
        let wakes = world.pending_wakes.len();
        if wakes == 0 && !deadline_ready && !grace_ready {
            return false;
        }
        if grace_ready {
            let patience = self.scenario.graceful.map_or(1, |grace| grace.patience);
            if (wakes == 0 && !deadline_ready) || self.choices.one_in(patience) {
                world.grace_fired = true;
                let waker = world.grace_waker.take();
                drop(world);
                if let Some(waker) = waker {
                    self.outside(Site::Environment, move || waker.wake());
                }
                return true;
            }
        }
        // The deadline is one more candidate, picked rarely while wakes remain.
        if deadline_ready && (wakes == 0 || self.choices.one_in(16)) {
            world.deadline_fired = true;
            let timer = world.timer_waker.take();
            drop(world);
            if let Some(timer) = timer {
                self.outside(Site::Environment, move || timer.wake());
            }
            return true;
        }
        let at = self.choices.below(wakes);
        let (waker, style) = world.pending_wakes.swap_remove(at);
        match style {
            WakeStyle::ByValue => {
                drop(world);
                self.outside(Site::Environment, move || waker.wake());
            }
            WakeStyle::OtherThread => {
                world.in_flight.push(std::thread::spawn(move || {
                    let _site = at_site(Site::OtherThread, None);
                    waker.wake();
                }));
            }
            WakeStyle::ByRef | WakeStyle::DuringPoll => {
                drop(world);
                self.outside(Site::Environment, move || {
                    waker.wake_by_ref();
                    drop(waker);
                });
            }
        }
        true
    }

    /// Drives `poll` until it is ready, the caller gives up (`cancel`), or a panic comes
    /// out (checked: see [`surfaced`](Self::surfaced)). Polls after a wake of the caller's
    /// waker, or (by choice) spuriously.
    fn drive<T>(
        &mut self,
        cancel_after: Option<usize>,
        mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Result<T, Ending> {
        let executor = Executor::new(&self.trap);
        self.executors.push(executor.parent.clone());
        let mut cx = Context::from_waker(&executor.waker);
        // Every child needs at most 4 polls, wakes come one per poll at worst, the budget
        // splits a pass over at most 2 polls: far below this.
        let bound = 64 + 16 * self.scenario.plans.len();
        // Polls after a wake; a spurious poll (no wake) now and then, never two in a row.
        let (mut polls, mut woken_polls, mut spurious) = (0, 0, false);
        loop {
            if cancel_after == Some(polls) {
                return Err(Ending::Cancelled);
            }
            assert!(woken_polls < bound, "no progress after {woken_polls} polls");
            polls += 1;
            woken_polls += usize::from(!spurious);
            let before = executor.wakes();
            self.world.borrow_mut().polls += 1;
            let result = {
                let _site = at_site(Site::GatherPoll, None);
                panic::catch_unwind(AssertUnwindSafe(|| poll(&mut cx)))
            };
            let result = match result {
                Ok(poll) => poll,
                Err(payload) => {
                    self.surfaced(payload, Reached::Poll);
                    self.check_broken();
                    return Err(Ending::Poisoned);
                }
            };
            self.check_broken();
            if self.scenario.graceful.is_some() {
                self.check_stop(result.is_pending());
            } else if self.world.borrow().timer_ready {
                // The poll that sees the timer fire cuts off every child still running.
                self.check_cut_off("after the poll that saw the timer fire");
            }
            if let Poll::Ready(out) = result {
                return Ok(out);
            }
            spurious = !spurious && self.choices.one_in(16);
            if spurious {
                continue;
            }
            while executor.wakes() == before {
                let thread = self.world.borrow_mut().in_flight.pop();
                if let Some(thread) = thread {
                    self.join(thread);
                    continue;
                }
                assert!(
                    self.fire_one(),
                    "lost wake: the gather is pending, was not woken, and no wake is to come"
                );
            }
        }
    }

    /// Fails the run if the model broke where a panic could not say so (see
    /// [`World::broken`]).
    fn check_broken(&self) {
        let broken = std::mem::take(&mut self.world.borrow_mut().broken);
        assert!(broken.is_empty(), "{}", broken.join("; "));
    }

    /// After a poll of a graceful gather: a failure or the deadline in it that left the
    /// gather pending began the stop; the poll that saw the grace timer fire cut off every
    /// child still running.
    fn check_stop(&self, pending: bool) {
        let world = self.world.borrow();
        let now = world.polls;
        if world.stop.is_none() {
            if let (true, Some((id, at))) = (pending, world.first_failure) {
                assert_ne!(
                    at, now,
                    "child {id} failed in poll {now}, yet no stop began"
                );
            }
            assert_ne!(
                world.timer_ready_at,
                Some(now),
                "the deadline fired in poll {now}, yet no stop began"
            );
        }
        let grace_ready = world.grace_ready;
        drop(world);
        if grace_ready {
            self.check_cut_off("after the poll that saw the grace timer fire");
        }
    }

    /// Polls a gather that a panic came out of: it must panic with the poisoned message,
    /// and run no user code.
    fn check_poisoned<T>(&self, mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>) {
        let waker = Waker::from(Arc::new(Counter::default()));
        let mut cx = Context::from_waker(&waker);
        EXPECT_POISON.with(|expect| expect.set(true));
        let result = {
            let _site = at_site(Site::GatherPoll, None);
            panic::catch_unwind(AssertUnwindSafe(|| poll(&mut cx).is_ready()))
        };
        EXPECT_POISON.with(|expect| expect.set(false));
        let payload = match result {
            Ok(ready) => panic!("a poisoned gather polled again returned (ready: {ready})"),
            Err(payload) => payload,
        };
        if let Some(panic) = payload.downcast_ref::<ModelPanic>() {
            panic!("a poisoned gather polled again ran user code, which panicked: {panic:?}");
        }
        let message = message(&*payload);
        if !message.is_some_and(|m| m.contains(POISONED)) {
            eprintln!("a poisoned gather polled again panicked with {message:?}");
            panic::resume_unwind(payload);
        }
    }

    /// The end of a run: the environment lets every waking thread finish, fires the
    /// strays and the wakes left (the gather is gone, its wakers must stay harmless), drops
    /// the timer's waker; then every check of the whole run.
    fn finish(&mut self) -> Vec<PanicEvent> {
        // A group's chain holds the world and a handle: let go of both (the group is gone).
        let chain = self.world.borrow_mut().chain.take();
        drop(chain);
        let (threads, strays, pending, timer, grace) = {
            let mut w = self.world.borrow_mut();
            (
                std::mem::take(&mut w.in_flight),
                std::mem::take(&mut w.strays),
                std::mem::take(&mut w.pending_wakes),
                w.timer_waker.take(),
                w.grace_waker.take(),
            )
        };
        for thread in threads {
            self.join(thread);
        }
        self.outside(Site::Environment, move || drop(timer));
        self.outside(Site::Environment, move || drop(grace));
        // Children's wakers do not keep the caller's waker alive: once the gather is gone
        // (and no thread is waking), a gather with per-child wakers has dropped it, while
        // those wakers live on. (Elsewhere the children hold the caller's waker itself.)
        let scenario = self.scenario;
        let per_child = match scenario.shape {
            Shape::Vec | Shape::Group => true,
            // Inline or few (up to 30): swept with the caller's waker, unless limited.
            Shape::FewVec | Shape::SmallVec | Shape::Iter => {
                scenario.plans.len() > 30 || scenario.limit.is_some()
            }
            Shape::Array => false,
        };
        if per_child {
            for (i, parent) in self.executors.iter().enumerate() {
                assert_eq!(
                    Arc::strong_count(parent),
                    1,
                    "the caller's waker of poll loop {i} outlives the gather"
                );
            }
        }
        for stray in strays {
            self.outside(Site::Environment, move || stray.wake());
        }
        for (waker, style) in pending {
            self.outside(Site::Environment, move || match style {
                WakeStyle::ByRef | WakeStyle::DuringPoll => {
                    waker.wake_by_ref();
                    drop(waker);
                }
                WakeStyle::ByValue | WakeStyle::OtherThread => waker.wake(),
            });
        }
        self.check_broken();
        let w = self.world.borrow();
        assert_eq!(
            w.signal.is_raised(),
            w.stop.is_some(),
            "the signal raised, or grace() run ({} times), without the other",
            w.grace_calls
        );
        for id in 0..self.scenario.plans.len() {
            assert_eq!(
                w.child_drops[id],
                u32::from(w.made[id]),
                "child {id} (made: {}) dropped {} times",
                w.made[id],
                w.child_drops[id]
            );
            let expected = u32::from(w.outputs_made[id]);
            assert_eq!(w.output_drops[id], expected, "output {id} drops");
        }
        assert_eq!(
            UNEXPECTED.with(Cell::get),
            self.unexpected,
            "a panic the model did not make (even if caught)"
        );
        assert!(
            w.unwinding_drops.is_empty(),
            "drops that panic ran while a panic unwound (the process would abort): {:?}",
            w.unwinding_drops
        );
        for (i, parent) in self.executors.iter().enumerate() {
            assert_eq!(
                Arc::strong_count(parent),
                1,
                "the caller's waker of poll loop {i} is kept alive after the run"
            );
        }
        // Every panic went where the contract sends it: out to the caller (checked where
        // it came out), or into an outcome by catch_panics.
        let mut raised = self.ledger.lock();
        for entry in raised.iter_mut() {
            if entry.reached.is_some() {
                continue;
            }
            let panic = entry.panic;
            let fate = panic.child.and_then(|id| w.fates[id]);
            let in_poll = panic.site == Site::ChildPoll
                && matches!(
                    panic.what,
                    What::ChildPoll | What::WakerClone | What::WakerWake
                );
            entry.reached = Some(if in_poll || panic.what == What::ChildDropFinished {
                assert!(
                    self.scenario.catch_panics,
                    "{panic:?} never reached the caller"
                );
                Reached::Caught
            } else if panic.what == What::ChildDropRunning {
                assert!(
                    self.scenario.catch_panics
                        && matches!(
                            fate,
                            Some(Fate::Panicked(
                                What::ChildPoll | What::WakerClone | What::WakerWake
                            ))
                        ),
                    "{panic:?} never reached the caller"
                );
                Reached::Swallowed
            } else {
                panic!("{panic:?} never reached the caller")
            });
        }
        raised
            .iter()
            .map(|entry| PanicEvent {
                what: entry.panic.what,
                site: entry.panic.site,
                reached: entry.reached.expect("every panic accounted for"),
                cause: entry.cause,
            })
            .collect()
    }

    /// What happened in the graceful stop, if one began (see [`StopEvent`]).
    fn stop_events(&self, ending: Ending) -> Vec<StopEvent> {
        use StopEvent as E;
        let w = self.world.borrow();
        let Some(stop) = w.stop else {
            return Vec::new();
        };
        let mut events = std::collections::BTreeSet::new();
        events.insert(match stop.cause {
            StopCause::Deadline => E::AtDeadline,
            StopCause::Failure => match w.first_failure.and_then(|(id, _)| w.fates[id]) {
                Some(Fate::Stopped) => E::AtStoppedError,
                Some(Fate::Panicked(_)) => E::AtCaughtPanic,
                _ => E::AtError,
            },
        });
        if w.grace_ready {
            events.insert(E::GraceTimerFired);
            if w.instant_grace {
                events.insert(E::InstantGrace);
            }
        } else if ending == Ending::Completed {
            events.insert(E::AllFinished);
        }
        if w.dropped_in_grace {
            events.insert(E::DroppedInGrace);
        }
        if w.failed_in_grace {
            events.insert(E::FailedInGrace);
        }
        for (id, plan) in self.scenario.plans.iter().enumerate() {
            let (fate, cut_off) = (w.fates[id], w.cut_off[id]);
            match plan.heed {
                Heed::Ignores if w.saw_signal[id] && cut_off => {
                    events.insert(E::IgnoredThenCutOff);
                }
                Heed::Ignores if w.saw_signal[id] && fate != Some(Fate::Running) => {
                    events.insert(E::IgnoredThenFinished);
                }
                Heed::Stops { cleanup, with } if w.heeded[id] => {
                    if plan.hangs {
                        events.insert(E::WaitedForTheSignal);
                    }
                    events.insert(match (cleanup, with) {
                        (1.., _) => E::CleanedUp,
                        (0, Finish::Stopped) => E::StoppedOnRequest,
                        (0, Finish::Ok) => E::SucceededOnRequest,
                        (0, Finish::Err) => E::FailedOnRequest,
                    });
                }
                Heed::Stops { .. } if w.cleaning[id] && cut_off => {
                    events.insert(E::CutOffCleaningUp);
                }
                Heed::Ignores | Heed::Stops { .. } => {}
            }
            if cut_off && fate.is_none() && w.limit.is_some() {
                events.insert(E::NeverStarted);
            }
        }
        events.into_iter().collect()
    }

    /// How many children were made: the first `made()` of them (every one, unless a
    /// `gather_iter`'s deadline stopped it taking more in).
    fn made(&self) -> usize {
        let world = self.world.borrow();
        let made = world.made.iter().take_while(|&&made| made).count();
        assert!(
            world.made[made..].iter().all(|&made| !made),
            "children made out of input order"
        );
        assert!(
            made == world.made.len() || world.deadline_fired || world.stop.is_some(),
            "children {made}.. never made, yet no deadline or stop stopped the input"
        );
        made
    }

    fn settle_all<G, O>(&mut self, gather: G) -> Ending
    where
        G: Future<Output = Gathered<O>>,
        O: SliceOutcomes<Success = Token, Error = Fail>,
        O::Successes: 'static,
    {
        let mut gather = Box::pin(gather);
        let gathered = match self.drive(self.scenario.cancel_after, |cx| gather.as_mut().poll(cx)) {
            Ok(gathered) => gathered,
            Err(ending) => {
                if ending == Ending::Poisoned {
                    self.check_poisoned(|cx| gather.as_mut().poll(cx));
                }
                self.drop_gather(gather);
                return ending;
            }
        };
        let n = self.made();
        assert_eq!(gathered.len(), n);
        let failures = {
            let mut errors = gathered.errors().peekable();
            let mut successes = gathered.successes();
            for index in 0..n {
                let seen = match errors.next_if(|(i, _)| *i == index) {
                    Some((_, error)) => self.seen_error(index, error),
                    None => Seen::Ok(successes.next().expect("a success per non-error").id),
                };
                assert_eq!(seen, self.expected(index), "child {index}");
            }
            // The errors split by `is_stopped`: children that stopped, and failures.
            let (mut stopped, mut failures) = (Vec::new(), Vec::new());
            for index in 0..n {
                match self.expected(index) {
                    Seen::Ok(_) => {}
                    seen if seen.stopped() => stopped.push(index),
                    _ => failures.push(index),
                }
            }
            assert_eq!(gathered.stopped().collect::<Vec<_>>(), stopped, "stopped()");
            let failed = gathered.failures().map(|(index, _)| index);
            assert_eq!(failed.collect::<Vec<_>>(), failures, "failures()");
            failures
        };
        // Half of the callers take the result (the crate drops the other half, here in
        // the caller's call): a `Vec` gather's successes are exactly sized. Under the
        // graceful layer, half of those take the failures alone.
        if self.choices.one_in(2) {
            if self.scenario.graceful.is_some() && self.choices.one_in(2) {
                self.outside(Site::CallerDrop, move || {
                    let kept = gathered.into_failures();
                    let indices = kept.iter().flat_map(|error| error.iter().map(|(i, _)| i));
                    assert_eq!(indices.collect::<Vec<_>>(), failures, "into_failures()");
                });
            } else {
                self.outside(Site::CallerDrop, move || {
                    if let Ok(successes) = gathered.into_result() {
                        check_snugly_sized(&successes);
                    }
                });
            }
        } else {
            self.caller_drop(gathered);
        }
        self.drop_gather(gather);
        Ending::Completed
    }

    fn fail_fast<G, S, St>(&mut self, fail_fast: G) -> Ending
    where
        G: Future<Output = Result<S, CompoundError<Fail, St>>>,
        S: IntoIterator<Item = Token> + 'static,
        St: ErrorStore<Fail>,
    {
        let mut fail_fast = Box::pin(fail_fast);
        let result = match self.drive(self.scenario.cancel_after, |cx| fail_fast.as_mut().poll(cx))
        {
            Ok(result) => result,
            Err(ending) => {
                if ending == Ending::Poisoned {
                    self.check_poisoned(|cx| fail_fast.as_mut().poll(cx));
                }
                self.drop_gather(fail_fast);
                return ending;
            }
        };
        {
            let world = self.world.borrow();
            let alive: Vec<usize> = (0..world.child_drops.len())
                .filter(|&i| world.made[i] && world.child_drops[i] == 0)
                .collect();
            assert!(
                alive.is_empty(),
                "children {alive:?} alive after fail_fast returned"
            );
        }
        match result {
            Ok(values) => {
                check_snugly_sized(&values);
                let values: Vec<Token> = values.into_iter().collect();
                let ids: Vec<usize> = values.iter().map(|token| token.id).collect();
                let n = self.scenario.plans.len();
                assert_eq!(ids, (0..n).collect::<Vec<_>>(), "successes in input order");
                for index in 0..n {
                    assert_eq!(self.expected(index), Seen::Ok(index), "Ok despite an error");
                }
                self.caller_drop(values);
            }
            Err(error) => {
                assert!(error.len() > 0, "an empty CompoundError");
                for (index, error) in error.iter() {
                    let seen = self.seen_error(index, error);
                    assert_eq!(seen, self.expected(index), "error of child {index}");
                }
                if self.scenario.graceful.is_some() {
                    // Once the stop is over: the failures, or (if none) the stopped ones.
                    let n = self.made();
                    let errors: Vec<(usize, bool)> = (0..n)
                        .map(|index| (index, self.expected(index)))
                        .filter(|(_, seen)| !matches!(seen, Seen::Ok(_)))
                        .map(|(index, seen)| (index, seen.stopped()))
                        .collect();
                    let failures = errors.iter().filter(|(_, stopped)| !stopped);
                    let mut expected: Vec<usize> = failures.map(|&(index, _)| index).collect();
                    if expected.is_empty() {
                        expected = errors.iter().map(|&(index, _)| index).collect();
                    }
                    let mut reported: Vec<usize> = error.iter().map(|(index, _)| index).collect();
                    reported.sort_unstable();
                    assert_eq!(reported, expected, "the children fail-fast reports");
                }
                self.caller_drop(error);
            }
        }
        self.drop_gather(fail_fast);
        Ending::Completed
    }

    fn as_completed<S>(&mut self, stream: S, take: usize) -> Ending
    where
        S: Stream<Item = (usize, Outcome)>,
    {
        let n = self.scenario.plans.len();
        let mut stream = Box::pin(stream);
        let mut yielded = vec![false; n];
        // The last child cut off handed out: they come last, in input order.
        let mut cut_off: Option<usize> = None;
        let mut ending = Ending::Completed;
        for taken in 0..=take {
            let item = match self.drive(None, |cx| stream.as_mut().poll_next(cx)) {
                Ok(item) => item,
                Err(poisoned) => {
                    self.check_poisoned(|cx| stream.as_mut().poll_next(cx));
                    ending = poisoned;
                    break;
                }
            };
            let Some((index, outcome)) = item else {
                let made = self.made();
                assert_eq!(
                    taken, made,
                    "the stream ended after {taken} of {made} children"
                );
                break;
            };
            assert!(taken < n, "more items than children");
            assert!(!yielded[index], "child {index} yielded twice");
            yielded[index] = true;
            let seen = self.seen(index, &outcome);
            assert_eq!(seen, self.expected(index), "child {index}");
            if seen.cut_off() {
                if let Some(last) = cut_off {
                    assert!(
                        last < index,
                        "child {index} cut off, handed out after {last}"
                    );
                }
                cut_off = Some(index);
            } else if let Some(last) = cut_off {
                panic!("child {index} handed out after child {last}, which was cut off");
            }
            self.caller_drop(outcome);
            let left = n - taken - 1;
            if matches!(self.scenario.shape, Shape::Iter | Shape::Group) {
                // Children not made yet are not counted until the input has ended (or
                // the deadline stopped it).
                let (lower, upper) = stream.size_hint();
                assert!(lower <= left && upper.map_or(true, |upper| upper == lower));
            } else {
                assert_eq!(stream.size_hint(), (left, Some(left)));
            }
            if taken + 1 == take && take < n {
                ending = Ending::Cancelled; // dropped part-way
                break;
            }
        }
        self.drop_gather(stream);
        ending
    }
}
