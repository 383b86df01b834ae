//! The model-checking harness that both the fuzz targets (`fuzz/`) and the seeded test
//! (`tests/schedules.rs`) run: bytes in, one checked run out.
//!
//! The bytes choose a scenario: how many children and what each does (ready at once or
//! after k polls; `Ok`, `Err` or a panic; woken during its own poll, later by reference or
//! by value, or from another thread; woken spuriously; woken again after it finished), the
//! input shape (`Vec`, `SmallVec` inline or spilled, array, `gather_iter`), the mode
//! (settle all, fail fast, as completed left part-way), the layers (limit, deadline,
//! catch_panics), and the schedule: which pending wake fires next, when the deadline
//! fires, whether the gather is polled without a wake, when the caller drops it. Bytes run
//! out as zeros, so every input is a valid scenario.
//!
//! Each run is checked against a model:
//!
//! - every outcome is what its child did (its value, its error, its panic), or `TimedOut`
//!   for a child that never finished, and only after the deadline fired; settle-all and
//!   fail-fast's successes are in input order, as-completed yields each child once;
//! - no child is polled after it finished or panicked (the child asserts it);
//! - under `limit(k)`, at most k children have started and not finished (the child
//!   asserts it on its first poll);
//! - every child and every output is dropped exactly once, wherever the caller stops;
//! - no lost wake: the gather is polled only after its waker was woken (or spuriously, by
//!   choice), and a gather left pending with no wake to come fails the run; it finishes
//!   within a bounded number of polls;
//! - fail-fast has dropped every child by the time it returns;
//! - without catch_panics, a child's panic reaches the caller, and the poisoned gather
//!   still drops everything once.
#![allow(dead_code, unreachable_pub)] // the fuzz targets and the tests use different parts

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::task::{Context, Poll, Wake, Waker};
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Vec,
    SmallVec,
    Array,
    Iter,
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
}

/// The length of an `Array` scenario.
const ARRAY_LEN: usize = 5;

impl Scenario {
    pub fn decode(c: &mut Choices<'_>) -> Self {
        let shape = match c.below(4) {
            0 => Shape::Vec,
            1 => Shape::SmallVec,
            2 => Shape::Array,
            _ => Shape::Iter,
        };
        let n = match shape {
            Shape::Array => ARRAY_LEN,
            // Now and then more children than one poll's budget.
            _ if c.one_in(32) => 129 + c.below(80),
            _ => c.below(13),
        };
        let mode = match c.below(3) {
            0 => Mode::SettleAll,
            1 => Mode::FailFast,
            _ => Mode::AsCompleted {
                take: c.below(n + 2).min(n),
            },
        };
        let limit = (shape != Shape::Array && c.one_in(3)).then(|| 1 + c.below(4));
        let deadline = c.one_in(3);
        let catch_panics = c.one_in(3);
        let cancel_after = c.one_in(6).then(|| c.below(8));
        // Without catch_panics a panic poisons the whole gather: in one scenario of 8.
        let may_panic = catch_panics || c.one_in(8);
        let plans = (0..n)
            .map(|_| Plan {
                pending_polls: c.below(4) as u32,
                fails: c.one_in(4),
                panics: may_panic && c.one_in(6),
                style: match c.below(4) {
                    0 => WakeStyle::DuringPoll,
                    1 => WakeStyle::ByRef,
                    2 => WakeStyle::ByValue,
                    _ => WakeStyle::OtherThread,
                },
                spurious: c.one_in(8),
                stray: c.one_in(8),
            })
            .collect();
        Scenario {
            plans,
            shape,
            mode,
            limit,
            deadline,
            catch_panics,
            cancel_after,
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
    /// A child's panic reached the caller (no catch_panics).
    Poisoned,
}

/// What a child did, as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Running,
    Ok,
    Err,
    Panicked,
}

/// Everything one run shares.
#[derive(Default)]
struct World {
    fates: Vec<Option<Fate>>,
    child_drops: Vec<u32>,
    output_drops: Vec<u32>,
    outputs_made: Vec<bool>,
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
}

type Shared = Rc<RefCell<World>>;

/// The payload of a child's panic.
#[derive(Debug)]
struct ChildPanic(usize);

/// An output that counts its drops.
pub struct Token {
    id: usize,
    world: Shared,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({})", self.id)
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.world.borrow_mut().output_drops[self.id] += 1;
    }
}

/// The error every child shares.
#[derive(Debug)]
pub enum Fail {
    Child(Token),
    TimedOut(usize),
    /// The index the gather reported, and the one the payload carries.
    Panicked(usize, Option<usize>),
}

impl From<TimedOut> for Fail {
    fn from(timed_out: TimedOut) -> Self {
        Fail::TimedOut(timed_out.index)
    }
}

impl From<Panicked> for Fail {
    fn from(panicked: Panicked) -> Self {
        let payload = panicked.payload.downcast_ref::<ChildPanic>().map(|p| p.0);
        Fail::Panicked(panicked.index, payload)
    }
}

type Outcome = Result<Token, Fail>;

struct Child {
    id: usize,
    plan: Plan,
    polls_left: u32,
    world: Shared,
}

impl Future for Child {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
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
            world.fates[id] = Some(Fate::Panicked);
            drop(world);
            panic::panic_any(ChildPanic(id));
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

impl Drop for Child {
    fn drop(&mut self) {
        self.world.borrow_mut().child_drops[self.id] += 1;
    }
}

/// The deadline's timer: ready once the environment fired it.
struct Timer(Shared);

impl Future for Timer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut world = self.0.borrow_mut();
        if world.deadline_fired {
            return Poll::Ready(());
        }
        world.timer_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The caller's waker: counts its wakes, from any thread.
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

/// Silences the expected panics of children (their payload is `ChildPanic`); every other
/// panic goes to the hook that was there (in a fuzz target, the one that aborts).
fn quiet_child_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<ChildPanic>() {
                previous(info);
            }
        }));
    });
}

/// Runs one scenario read from `bytes` and checks it against the model. Panics (with the
/// scenario) on any difference.
pub fn run(bytes: &[u8]) -> (Scenario, Ending) {
    let mut choices = Choices::new(bytes);
    let scenario = Scenario::decode(&mut choices);
    let ending = run_scenario(&scenario, &mut choices);
    (scenario, ending)
}

/// The modes, to pin one (a fuzz target per mode).
#[derive(Clone, Copy, Debug)]
pub enum ModeKind {
    SettleAll,
    FailFast,
    AsCompleted,
}

/// As [`run`], in the given mode whatever the bytes say.
pub fn run_in(mode: ModeKind, bytes: &[u8]) -> (Scenario, Ending) {
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
    let ending = run_scenario(&scenario, &mut choices);
    (scenario, ending)
}

/// Runs `scenario` with the schedule read from `choices`.
pub fn run_scenario(scenario: &Scenario, choices: &mut Choices<'_>) -> Ending {
    quiet_child_panics();
    let n = scenario.plans.len();
    let world: Shared = Rc::new(RefCell::new(World {
        fates: vec![None; n],
        child_drops: vec![0; n],
        output_drops: vec![0; n],
        outputs_made: vec![false; n],
        limit: scenario.limit,
        deadline_armed: scenario.deadline,
        ..World::default()
    }));
    let children = scenario.plans.iter().enumerate().map(|(id, &plan)| Child {
        id,
        plan,
        polls_left: plan.pending_polls,
        world: world.clone(),
    });
    let mut run = Run {
        scenario,
        world: &world,
        choices,
    };
    let ending = match scenario.shape {
        Shape::Vec => run_limited!(run, gather(children.collect::<Vec<_>>())),
        Shape::SmallVec => run_limited!(run, gather(children.collect::<SmallVec<[Child; 4]>>())),
        Shape::Iter => run_limited!(run, gather_iter(children)),
        Shape::Array => {
            let array: [Child; ARRAY_LEN] = children.collect::<Vec<_>>().try_into().ok().unwrap();
            run_layered!(run, gather(array))
        }
    };
    // Let every waking thread finish, then fire the strays: the gather is gone, its
    // wakers must stay harmless.
    let (threads, strays) = {
        let mut w = world.borrow_mut();
        (
            std::mem::take(&mut w.in_flight),
            std::mem::take(&mut w.strays),
        )
    };
    for thread in threads {
        thread.join().expect("a waking thread panicked");
    }
    for stray in strays {
        stray.wake();
    }
    let pending = std::mem::take(&mut world.borrow_mut().pending_wakes);
    for (waker, _) in pending {
        waker.wake();
    }
    let w = world.borrow();
    for id in 0..n {
        assert_eq!(
            w.child_drops[id], 1,
            "child {id} dropped {} times",
            w.child_drops[id]
        );
        let expected = u32::from(w.outputs_made[id]);
        assert_eq!(w.output_drops[id], expected, "output {id} drops");
    }
    ending
}

/// One run in progress.
struct Run<'s, 'c, 'b> {
    scenario: &'s Scenario,
    world: &'s Shared,
    choices: &'c mut Choices<'b>,
}

/// What the caller saw of one child.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Ok(usize),
    Err(usize),
    TimedOut(usize),
    Panicked(usize),
}

impl Run<'_, '_, '_> {
    /// What the model expects for child `index`, from what the child did.
    fn expected(&self, index: usize) -> Seen {
        let world = self.world.borrow();
        match world.fates[index] {
            Some(Fate::Ok) => Seen::Ok(index),
            Some(Fate::Err) => Seen::Err(index),
            Some(Fate::Panicked) => Seen::Panicked(index),
            None | Some(Fate::Running) => {
                assert!(
                    world.deadline_fired,
                    "child {index} unfinished, yet no deadline cut it off"
                );
                Seen::TimedOut(index)
            }
        }
    }

    fn seen_error(error: &Fail) -> Seen {
        match error {
            Fail::Child(token) => Seen::Err(token.id),
            Fail::TimedOut(index) => Seen::TimedOut(*index),
            Fail::Panicked(index, payload) => {
                assert_eq!(Some(*index), *payload, "panic reported at the wrong index");
                Seen::Panicked(*index)
            }
        }
    }

    fn seen(outcome: &Outcome) -> Seen {
        match outcome {
            Ok(token) => Seen::Ok(token.id),
            Err(error) => Self::seen_error(error),
        }
    }

    /// Fires one environment event: a pending wake (chosen by the bytes), the deadline,
    /// now and then a stray wake. Returns false when nothing was left to fire.
    fn fire_one(&mut self) -> bool {
        let mut world = self.world.borrow_mut();
        if !world.strays.is_empty() && self.choices.one_in(2) {
            let stray = world.strays.pop().unwrap();
            drop(world);
            stray.wake();
            world = self.world.borrow_mut();
        }
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
                timer.wake();
            }
            return true;
        }
        let at = self.choices.below(wakes);
        let (waker, style) = world.pending_wakes.swap_remove(at);
        match style {
            WakeStyle::ByValue => {
                drop(world);
                waker.wake();
            }
            WakeStyle::OtherThread => {
                world
                    .in_flight
                    .push(std::thread::spawn(move || waker.wake()));
            }
            WakeStyle::ByRef | WakeStyle::DuringPoll => {
                drop(world);
                waker.wake_by_ref();
            }
        }
        true
    }

    /// Drives `poll` until it is ready, the caller gives up (`cancel`), or a child's panic
    /// comes out. Polls after a wake of the caller's waker, or (by choice) spuriously.
    fn drive<T>(
        &mut self,
        cancel_after: Option<usize>,
        mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Result<T, Ending> {
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
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
            let before = counter.0.load(Ordering::SeqCst);
            match panic::catch_unwind(AssertUnwindSafe(|| poll(&mut cx))) {
                Ok(Poll::Ready(out)) => return Ok(out),
                Ok(Poll::Pending) => {}
                Err(payload) => return Err(self.poisoned(payload)),
            }
            spurious = !spurious && self.choices.one_in(16);
            if spurious {
                continue;
            }
            while counter.0.load(Ordering::SeqCst) == before {
                let thread = self.world.borrow_mut().in_flight.pop();
                if let Some(thread) = thread {
                    thread.join().expect("a waking thread panicked");
                    continue;
                }
                assert!(
                    self.fire_one(),
                    "lost wake: the gather is pending, was not woken, and no wake is to come"
                );
            }
        }
    }

    fn poisoned(&self, payload: Box<dyn Any + Send>) -> Ending {
        let Some(ChildPanic(id)) = payload.downcast_ref::<ChildPanic>() else {
            panic::resume_unwind(payload)
        };
        assert!(
            !self.scenario.catch_panics,
            "child {id}'s panic escaped catch_panics"
        );
        assert!(self.scenario.plans[*id].panics);
        Ending::Poisoned
    }

    fn settle_all<G, O>(&mut self, gather: G) -> Ending
    where
        G: Future<Output = Gathered<O>>,
        O: SliceOutcomes<Success = Token, Error = Fail>,
    {
        let mut gather = Box::pin(gather);
        let gathered = match self.drive(self.scenario.cancel_after, |cx| gather.as_mut().poll(cx)) {
            Ok(gathered) => gathered,
            Err(ending) => return ending,
        };
        let n = self.scenario.plans.len();
        assert_eq!(gathered.len(), n);
        let mut errors = gathered.errors().peekable();
        let mut successes = gathered.successes();
        for index in 0..n {
            let seen = match errors.next_if(|(i, _)| *i == index) {
                Some((_, error)) => Self::seen_error(error),
                None => Seen::Ok(successes.next().expect("a success per non-error").id),
            };
            assert_eq!(seen, self.expected(index), "child {index}");
        }
        Ending::Completed
    }

    fn fail_fast<G, S, St>(&mut self, fail_fast: G) -> Ending
    where
        G: Future<Output = Result<S, CompoundError<Fail, St>>>,
        S: IntoIterator<Item = Token>,
        St: ErrorStore<Fail>,
    {
        let mut fail_fast = Box::pin(fail_fast);
        let result = match self.drive(self.scenario.cancel_after, |cx| fail_fast.as_mut().poll(cx))
        {
            Ok(result) => result,
            Err(ending) => return ending,
        };
        {
            let world = self.world.borrow();
            let alive: Vec<usize> = (0..world.child_drops.len())
                .filter(|&i| world.child_drops[i] == 0)
                .collect();
            assert!(
                alive.is_empty(),
                "children {alive:?} alive after fail_fast returned"
            );
        }
        match result {
            Ok(values) => {
                let ids: Vec<usize> = values.into_iter().map(|token| token.id).collect();
                let n = self.scenario.plans.len();
                assert_eq!(ids, (0..n).collect::<Vec<_>>(), "successes in input order");
                for index in 0..n {
                    assert_eq!(self.expected(index), Seen::Ok(index), "Ok despite an error");
                }
            }
            Err(error) => {
                assert!(error.len() > 0, "an empty CompoundError");
                for (index, error) in error.iter() {
                    let seen = Self::seen_error(error);
                    assert_eq!(seen, self.expected(index), "error of child {index}");
                }
            }
        }
        Ending::Completed
    }

    fn as_completed<S>(&mut self, stream: S, take: usize) -> Ending
    where
        S: Stream<Item = (usize, Outcome)>,
    {
        let n = self.scenario.plans.len();
        let mut stream = Box::pin(stream);
        let mut yielded = vec![false; n];
        for taken in 0..=take {
            let item = match self.drive(None, |cx| stream.as_mut().poll_next(cx)) {
                Ok(item) => item,
                Err(ending) => return ending,
            };
            let Some((index, outcome)) = item else {
                assert_eq!(taken, n, "the stream ended after {taken} of {n} children");
                return Ending::Completed;
            };
            assert!(taken < n, "more items than children");
            assert!(!yielded[index], "child {index} yielded twice");
            yielded[index] = true;
            assert_eq!(Self::seen(&outcome), self.expected(index), "child {index}");
            let left = n - taken - 1;
            assert_eq!(stream.size_hint(), (left, Some(left)));
            if taken + 1 == take && take < n {
                return Ending::Cancelled; // dropped part-way
            }
        }
        Ending::Completed
    }
}
