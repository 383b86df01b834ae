//! The model-checking harness that both the fuzz targets (`fuzz/`) and the seeded test
//! (`tests/schedules.rs`) run: bytes in, one checked run out.
//!
//! The bytes choose a scenario: how many children and what each does (ready at once or
//! after k polls; `Ok`, `Err` or a panic; woken during its own poll, later by reference or
//! by value, or from another thread; woken spuriously; woken again after it finished), the
//! input shape (`Vec` swept or with per-child wakers, `SmallVec` inline or spilled, array, `gather_iter`), the mode
//! (settle all, fail fast, as completed left part-way), the layers (limit, deadline,
//! catch_panics), and the schedule: which pending wake fires next, when the deadline
//! fires, whether the gather is polled without a wake, when the caller drops it. Bytes run
//! out as zeros, so every input is a valid scenario.
//!
//! In two scenarios of five, user code also panics somewhere else than in a child's poll
//! (the [`PanicPlan`]; at most one per scenario, so that no two drops panic in one
//! unwinding): the `Drop` of one child (while it runs: cut off by the deadline, dropped by
//! fail-fast or by the caller, or after its poll panicked; or right after it returned
//! `Ready`), the `Drop` of one output, the deadline's timer (on its k-th poll, or in its
//! `Drop`), or the caller's waker (its k-th `clone`, `wake`/`wake_by_ref` or `drop` made
//! from one place: inside a child's poll, inside the gather's own poll, in the caller's
//! drop, in the environment's wake or drop of a waker, or on a waking thread; the call is
//! counted before it panics, and it panics once). The decoder fits the rest of such a
//! scenario to its panic (a timer for the timer's, an array for a child's clone of the
//! waker, ...), so that each can happen. Every panic's payload is a [`ModelPanic`]; the
//! run reports where each one ended up ([`PanicEvent`], the seeded test's coverage keys).
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
//! - no drop that is to panic runs while another panic unwinds (that would abort).
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
use gather::TimedOut;
use gather::{gather, gather_iter, CompoundError, ErrorStore, Gathered, Panicked, SliceOutcomes};
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
    /// caller) ends it. Only under a deadline.
    pub hangs: bool,
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
            })
            .collect();
        if over_budget {
            for plan in &mut plans {
                plan.pending_polls = plan.pending_polls.max(1);
            }
        }
        let child = (kind.is_some() && n > 0).then(|| c.below(n));
        let panic = kind.and_then(|kind| match (kind, child) {
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
        Scenario {
            plans,
            shape,
            mode,
            limit,
            deadline,
            catch_panics,
            cancel_after,
            panic,
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
    /// Why a running child was dropped inside a poll: `"deadline"` or `"fail fast"`.
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

/// What one run did.
#[derive(Clone, Debug)]
pub struct Report {
    pub ending: Ending,
    /// Every panic of the run, in the order they were raised.
    pub panics: Vec<PanicEvent>,
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
    /// Its poll panicked (`ChildPoll`, or the waker it called), or its drop right after it
    /// finished did (`ChildDropFinished`).
    Panicked(What),
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
    TimedOut(usize),
    /// The index the gather reported, and the payload (if it is one of the model's).
    Panicked(usize, Option<ModelPanic>),
}

impl From<TimedOut> for Fail {
    fn from(timed_out: TimedOut) -> Self {
        Fail::TimedOut(timed_out.index)
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
    /// Its drop panics: after it returned `Ready` (`Some(true)`), or before (`Some(false)`).
    drop_panics: Option<bool>,
    world: Shared,
}

impl Child {
    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        let (id, plan) = (self.id, self.plan);
        let shared = self.world.clone();
        let mut world = shared.borrow_mut();
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
                }
            }
            Some(Fate::Running) => {}
            Some(fate) => panic!("child {id} polled after it finished ({fate:?})"),
        }
        if plan.hangs {
            return Poll::Pending;
        }
        if plan.spurious {
            cx.waker().wake_by_ref();
        }
        if self.polls_left > 0 {
            self.polls_left -= 1;
            match plan.style {
                WakeStyle::DuringPoll => cx.waker().wake_by_ref(),
                style => world.pending_wakes.push((cx.waker().clone(), style)),
            }
            return Poll::Pending;
        }
        if plan.stray {
            world.strays.push(cx.waker().clone());
        }
        if plan.panics {
            world.fates[id] = Some(Fate::Panicked(What::ChildPoll));
            let payload = world.ledger.raise(What::ChildPoll, Some(id));
            drop(world);
            panic::panic_any(payload);
        }
        world.fates[id] = Some(if plan.fails { Fate::Err } else { Fate::Ok });
        world.outputs_made[id] = true;
        let token = Token {
            id,
            world: self.world.clone(),
        };
        Poll::Ready(if plan.fails {
            Err(Fail::Child(token))
        } else {
            Ok(token)
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
                        this.world.borrow_mut().fates[this.id] = Some(Fate::Panicked(p.what));
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
        let finished = matches!(world.fates[self.id], Some(Fate::Ok | Fate::Err));
        if self.drop_panics == Some(finished) {
            let what = if finished {
                // Under catch_panics, this is the child's outcome.
                world.fates[self.id] = Some(Fate::Panicked(What::ChildDropFinished));
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
        let poll = world.timer_polls;
        world.timer_polls += 1;
        if world.timer_poll_panics == Some(poll) {
            let payload = world.ledger.raise(What::TimerPoll, None);
            drop(world);
            panic::panic_any(payload);
        }
        if world.deadline_fired {
            world.timer_ready = true;
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

/// Adds the scenario's deadline and catch_panics layers, then runs the mode.
macro_rules! run_layered {
    ($run:expr, $gather:expr) => {{
        let gather = $gather;
        let timer = Timer($run.world.clone());
        match ($run.scenario.deadline, $run.scenario.catch_panics) {
            (false, false) => run_mode!($run, gather),
            (false, true) => run_mode!($run, gather.catch_panics()),
            (true, false) => run_mode!($run, gather.deadline(timer)),
            (true, true) => run_mode!($run, gather.deadline(timer).catch_panics()),
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

/// A group's modes: awaited whole (settle-all, fail-fast), or read as a stream.
macro_rules! run_group_mode {
    ($run:expr, $group:expr) => {{
        let group = $group;
        match $run.scenario.mode {
            Mode::SettleAll => $run.settle_all(group.settle_all()),
            Mode::FailFast => $run.fail_fast(group.fail_fast()),
            Mode::AsCompleted { take } => $run.as_completed(group, take),
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
        ..World::default()
    }));
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
    Report { ending, panics }
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
    w.alive += 1;
    Child {
        id,
        plan,
        polls_left: plan.pending_polls,
        drop_panics: match panic {
            Some(PanicPlan::ChildDrop { child, finished }) if child == id => Some(finished),
            _ => None,
        },
        world: world.clone(),
    }
}

/// The successes of a `Vec` gather take no more room than they need.
fn check_exactly_sized<S: Any>(successes: &S) {
    if let Some(successes) = (successes as &dyn Any).downcast_ref::<Vec<Token>>() {
        assert_eq!(
            successes.capacity(),
            successes.len(),
            "a Vec gather's successes are not exactly sized"
        );
    }
}

/// One run in progress.
struct Run<'s, 'c, 'b> {
    scenario: &'s Scenario,
    world: &'s Shared,
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
    TimedOut(usize),
    Panicked(usize, What),
}

impl Run<'_, '_, '_> {
    /// What the model expects for child `index`, from what the child did.
    fn expected(&self, index: usize) -> Seen {
        let world = self.world.borrow();
        match world.fates[index] {
            Some(Fate::Ok) => Seen::Ok(index),
            Some(Fate::Err) => Seen::Err(index),
            Some(Fate::Panicked(what)) => Seen::Panicked(index, what),
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
        let alive: Vec<usize> = (0..world.fates.len())
            .filter(|&i| matches!(world.fates[i], None | Some(Fate::Running)))
            .filter(|&i| world.made[i] && world.child_drops[i] == 0)
            .collect();
        assert!(alive.is_empty(), "children {alive:?} still running {when}");
    }

    fn seen_error(&self, error: &Fail) -> Seen {
        match error {
            Fail::Child(token) => Seen::Err(token.id),
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

    fn seen(&self, outcome: &Outcome) -> Seen {
        match outcome {
            Ok(token) => Seen::Ok(token.id),
            Err(error) => self.seen_error(error),
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
                        let failed = world
                            .fates
                            .iter()
                            .any(|f| matches!(f, Some(Fate::Err | Fate::Panicked(_))));
                        cause = if world.timer_ready && what == What::ChildDropRunning {
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
                    What::ChildPoll => unreachable!("a child's poll panics in its poll"),
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
        let wakes = world.pending_wakes.len();
        if wakes == 0 && !deadline_ready {
            return false;
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
            let result = {
                let _site = at_site(Site::GatherPoll, None);
                panic::catch_unwind(AssertUnwindSafe(|| poll(&mut cx)))
            };
            let result = match result {
                Ok(poll) => poll,
                Err(payload) => {
                    self.surfaced(payload, Reached::Poll);
                    return Err(Ending::Poisoned);
                }
            };
            // The poll that sees the timer fire cuts off every child still running.
            if self.world.borrow().timer_ready {
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
        let (threads, strays, pending, timer) = {
            let mut w = self.world.borrow_mut();
            (
                std::mem::take(&mut w.in_flight),
                std::mem::take(&mut w.strays),
                std::mem::take(&mut w.pending_wakes),
                w.timer_waker.take(),
            )
        };
        for thread in threads {
            self.join(thread);
        }
        self.outside(Site::Environment, move || drop(timer));
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
        let w = self.world.borrow();
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
            made == world.made.len() || world.deadline_fired,
            "children {made}.. never made, yet no deadline stopped the input"
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
                self.caller_drop(gather);
                return ending;
            }
        };
        let n = self.made();
        assert_eq!(gathered.len(), n);
        {
            let mut errors = gathered.errors().peekable();
            let mut successes = gathered.successes();
            for index in 0..n {
                let seen = match errors.next_if(|(i, _)| *i == index) {
                    Some((_, error)) => self.seen_error(error),
                    None => Seen::Ok(successes.next().expect("a success per non-error").id),
                };
                assert_eq!(seen, self.expected(index), "child {index}");
            }
        }
        // Half of the callers take the result (the crate drops the other half, here in
        // the caller's call): a `Vec` gather's successes are exactly sized.
        if self.choices.one_in(2) {
            self.outside(Site::CallerDrop, move || {
                if let Ok(successes) = gathered.into_result() {
                    check_exactly_sized(&successes);
                }
            });
        } else {
            self.caller_drop(gathered);
        }
        self.caller_drop(gather);
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
                self.caller_drop(fail_fast);
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
                check_exactly_sized(&values);
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
                    let seen = self.seen_error(error);
                    assert_eq!(seen, self.expected(index), "error of child {index}");
                }
                self.caller_drop(error);
            }
        }
        self.caller_drop(fail_fast);
        Ending::Completed
    }

    fn as_completed<S>(&mut self, stream: S, take: usize) -> Ending
    where
        S: Stream<Item = (usize, Outcome)>,
    {
        let n = self.scenario.plans.len();
        let mut stream = Box::pin(stream);
        let mut yielded = vec![false; n];
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
            assert_eq!(self.seen(&outcome), self.expected(index), "child {index}");
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
        self.caller_drop(stream);
        ending
    }
}
