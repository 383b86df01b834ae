//! Lazy inputs (`gather_iter`, `gather_stream`) under random scenarios, and the cases a
//! review found: a `size_hint` that lies, endless inputs, deadlines between passes,
//! stale wakers of reused slots. Every child and output is dropped exactly once, at most
//! `n` exist under `limit(n)`, no wake is lost, and indices are input indices.
#![allow(dead_code, clippy::type_complexity)]
mod common;

use std::cell::{Cell, RefCell};
use std::future::{ready, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use common::{drive, poll_with, CountingWaker, Liar};
use futures::{stream, Stream, StreamExt};
use gather::{gather_iter, gather_stream, Panicked, TimedOut};

// ---------------------------------------------------------------------------------------
// A small deterministic random source.
// ---------------------------------------------------------------------------------------

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// `Some(value(self))` with a chance of `percent` in 100.
    fn maybe<T>(&mut self, percent: u64, value: impl FnOnce(&mut Self) -> T) -> Option<T> {
        self.chance(percent).then(|| value(self))
    }
}

// ---------------------------------------------------------------------------------------
// The world: what every child, output, source and timer does, and what was seen.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, Default)]
struct Plan {
    /// Self-waking polls before it is ready (ignored if `external`).
    pending: usize,
    /// Stays pending until the test releases it.
    external: bool,
    /// Keeps a clone of every waker it was given, woken by the test later (stale).
    stale: bool,
    /// Panics at this poll (1-based).
    panic_poll: Option<usize>,
    /// Its drop panics (when not already unwinding).
    panic_drop: bool,
    /// Its output's drop panics.
    panic_out_drop: bool,
    /// Finishes with `Err`.
    err: bool,
    /// Wakes every stale waker kept so far from inside its poll.
    wake_stale_in_poll: bool,
}

#[derive(Default)]
struct World {
    n: usize,
    plans: Vec<Plan>,
    epoch: Cell<u64>,
    alive: Cell<usize>,
    most: Cell<usize>,
    made: RefCell<Vec<usize>>,
    dropped: RefCell<Vec<usize>>,
    out_made: RefCell<Vec<usize>>,
    out_dropped: RefCell<Vec<usize>>,
    last_poll: RefCell<Vec<u64>>,
    finished: RefCell<Vec<bool>>,
    /// Children waiting for the test: (index, waker, release flag).
    stash: RefCell<Vec<(usize, Waker, Rc<Cell<bool>>)>>,
    stale: RefCell<Vec<Waker>>,
    violations: RefCell<Vec<String>>,
    next_calls: Cell<usize>,
}

impl World {
    fn new(plans: Vec<Plan>) -> Rc<World> {
        let n = plans.len();
        Rc::new(World {
            n,
            plans,
            made: RefCell::new(vec![0; n]),
            dropped: RefCell::new(vec![0; n]),
            out_made: RefCell::new(vec![0; n]),
            out_dropped: RefCell::new(vec![0; n]),
            last_poll: RefCell::new(vec![0; n]),
            finished: RefCell::new(vec![false; n]),
            ..World::default()
        })
    }

    fn violation(&self, s: String) {
        self.violations.borrow_mut().push(s);
    }

    fn child(self: &Rc<Self>, i: usize) -> Child {
        self.made.borrow_mut()[i] += 1;
        self.alive.set(self.alive.get() + 1);
        self.most.set(self.most.get().max(self.alive.get()));
        Child {
            i,
            plan: self.plans[i],
            polls: 0,
            world: self.clone(),
            released: Rc::new(Cell::new(false)),
            stashed: false,
        }
    }

    /// Checks every child and output made was dropped exactly once (after everything is
    /// gone).
    fn check_drops(&self) {
        for i in 0..self.n {
            let made = self.made.borrow()[i];
            let dropped = self.dropped.borrow()[i];
            if made > 1 {
                self.violation(format!("child {i} made {made} times"));
            }
            if dropped != made {
                self.violation(format!("child {i} made {made}, dropped {dropped}"));
            }
            let om = self.out_made.borrow()[i];
            let od = self.out_dropped.borrow()[i];
            if om != od {
                self.violation(format!("output {i} made {om}, dropped {od}"));
            }
        }
    }
}

#[derive(Debug)]
enum E {
    Child(usize),
    TimedOut(TimedOut),
    Panicked(usize),
}
impl From<TimedOut> for E {
    fn from(t: TimedOut) -> E {
        E::TimedOut(t)
    }
}
impl From<Panicked> for E {
    fn from(p: Panicked) -> E {
        E::Panicked(p.index)
    }
}

struct Out {
    i: usize,
    world: Rc<World>,
}
impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Out({})", self.i)
    }
}
impl Drop for Out {
    fn drop(&mut self) {
        self.world.out_dropped.borrow_mut()[self.i] += 1;
        if self.world.plans[self.i].panic_out_drop && !std::thread::panicking() {
            panic!("output {} drop", self.i);
        }
    }
}

struct Child {
    i: usize,
    plan: Plan,
    polls: usize,
    world: Rc<World>,
    released: Rc<Cell<bool>>,
    stashed: bool,
}

impl Future for Child {
    type Output = Result<Out, E>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let i = self.i;
        let w = self.world.clone();
        if w.finished.borrow()[i] {
            w.violation(format!("child {i} polled after it finished"));
        }
        let epoch = w.epoch.get();
        if w.last_poll.borrow()[i] == epoch {
            w.violation(format!("child {i} polled twice in gather poll {epoch}"));
        }
        w.last_poll.borrow_mut()[i] = epoch;
        self.polls += 1;
        if self.plan.panic_poll == Some(self.polls) {
            panic!("child {i} poll panic");
        }
        if self.plan.stale {
            w.stale.borrow_mut().push(cx.waker().clone());
        }
        if self.plan.wake_stale_in_poll {
            let stale: Vec<Waker> = w.stale.borrow().clone();
            for s in stale {
                s.wake_by_ref();
            }
        }
        let ready = if self.plan.external {
            self.released.get()
        } else {
            self.polls > self.plan.pending
        };
        if ready {
            w.finished.borrow_mut()[i] = true;
            if self.plan.err {
                return Poll::Ready(Err(E::Child(i)));
            }
            w.out_made.borrow_mut()[i] += 1;
            return Poll::Ready(Ok(Out {
                i,
                world: w.clone(),
            }));
        }
        if self.plan.external {
            if !self.stashed {
                self.stashed = true;
                w.stash
                    .borrow_mut()
                    .push((i, cx.waker().clone(), self.released.clone()));
            } else {
                // Update the stashed waker, as a reactor would.
                let mut stash = w.stash.borrow_mut();
                if let Some(e) = stash.iter_mut().find(|e| e.0 == i) {
                    e.1 = cx.waker().clone();
                }
            }
        } else {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.world.dropped.borrow_mut()[self.i] += 1;
        self.world.alive.set(self.world.alive.get() - 1);
        // It is gone: the test's stash no longer refers to a live child.
        self.world.stash.borrow_mut().retain(|e| e.0 != self.i);
        if self.plan.panic_drop && !std::thread::panicking() {
            panic!("child {} drop panic", self.i);
        }
    }
}

/// The source: an iterator over the children, that may panic at its k-th `next` and may
/// lie in its `size_hint`.
struct Src {
    world: Rc<World>,
    next: usize,
    panic_at_next: Option<usize>,
    hint: Option<(usize, Option<usize>)>,
    /// Stream only: every other `poll_next` is pending (self-waking or external).
    pending_every: Option<usize>,
    external_pending: bool,
    stream_polls: usize,
    stream_waker: Rc<RefCell<Option<Waker>>>,
    stream_release: Rc<Cell<bool>>,
}

impl Iterator for Src {
    type Item = Child;
    fn next(&mut self) -> Option<Child> {
        let calls = self.world.next_calls.get() + 1;
        self.world.next_calls.set(calls);
        if self.panic_at_next == Some(calls) {
            panic!("source panics at next #{calls}");
        }
        if self.next == self.world.n {
            return None;
        }
        self.next += 1;
        Some(self.world.child(self.next - 1))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.world.n - self.next;
        self.hint.unwrap_or((left, Some(left)))
    }
}

impl Stream for Src {
    type Item = Child;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Child>> {
        self.stream_polls += 1;
        if let Some(k) = self.pending_every {
            if self.stream_polls % k == 0 {
                if self.external_pending {
                    if !self.stream_release.get() {
                        *self.stream_waker.borrow_mut() = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                    self.stream_release.set(false);
                } else {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(Iterator::next(&mut *self))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        Iterator::size_hint(self)
    }
}

/// A timer the test fires.
struct Timer {
    fired: Rc<Cell<bool>>,
    waker: Rc<RefCell<Option<Waker>>>,
}
impl Future for Timer {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.fired.get() {
            return Poll::Ready(());
        }
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// An executor's waker that counts wakes and panics once, at its k-th operation (clone,
/// wake, wake_by_ref or drop).
struct PanicState {
    wakes: std::sync::atomic::AtomicUsize,
    countdown: std::sync::atomic::AtomicIsize,
}

fn panicky_waker(panic_at: Option<isize>) -> (std::sync::Arc<PanicState>, Waker) {
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::Arc;
    use std::task::{RawWaker, RawWakerVTable};
    fn tick(state: &PanicState) {
        if state.countdown.fetch_sub(1, SeqCst) == 1 && !std::thread::panicking() {
            panic!("executor waker panic");
        }
    }
    // Every `data` below comes from `Arc::into_raw` of a `PanicState`, and each waker
    // holds one strong count of it.
    unsafe fn clone(data: *const ()) -> RawWaker {
        // SAFETY: `data` is a live `Arc<PanicState>` (this waker's count).
        let state = unsafe { &*(data as *const PanicState) };
        tick(state);
        // SAFETY: as above; the new waker owns the new count.
        unsafe { Arc::increment_strong_count(data as *const PanicState) };
        RawWaker::new(data, &VTABLE)
    }
    unsafe fn wake(data: *const ()) {
        // SAFETY: waking by value consumes this waker's count.
        let state = unsafe { Arc::from_raw(data as *const PanicState) };
        state.wakes.fetch_add(1, SeqCst);
        tick(&state);
    }
    unsafe fn wake_by_ref(data: *const ()) {
        // SAFETY: `data` is a live `Arc<PanicState>` (this waker's count).
        let state = unsafe { &*(data as *const PanicState) };
        state.wakes.fetch_add(1, SeqCst);
        tick(state);
    }
    unsafe fn drop_waker(data: *const ()) {
        // SAFETY: dropping consumes this waker's count.
        let state = unsafe { Arc::from_raw(data as *const PanicState) };
        tick(&state);
    }
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);
    let state = Arc::new(PanicState {
        wakes: std::sync::atomic::AtomicUsize::new(0),
        countdown: std::sync::atomic::AtomicIsize::new(panic_at.unwrap_or(isize::MAX)),
    });
    let data = Arc::into_raw(state.clone()) as *const ();
    // SAFETY: the vtable keeps the Arc's count.
    let waker = unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) };
    (state, waker)
}

impl PanicState {
    fn wakes(&self) -> usize {
        self.wakes.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Runs `f`, swallowing a panic (one that comes out of the executor's waker or a drop
/// outside a gather poll).
fn quietly(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

#[derive(Clone, Copy, Debug)]
struct Config {
    seed: u64,
    n: usize,
    stream: bool,
    limit: Option<usize>,
    per_child: bool,
    catch: bool,
    deadline: bool,
    mode: u8, // 0 settle, 1 fail fast, 2 as completed
    hint: Option<(usize, Option<usize>)>,
    panic_at_next: Option<usize>,
    pending_every: Option<usize>,
    external_pending: bool,
    drop_at: Option<u64>,
    waker_panic_at: Option<isize>,
}

/// Adapts a stream into a future that collects items (each `poll_next` is one gather
/// poll: the epoch moves on each).
struct Collect<S: Stream> {
    stream: Pin<Box<S>>,
    items: Vec<S::Item>,
    world: Rc<World>,
}
impl<S: Stream> Unpin for Collect<S> {}
impl<S: Stream> Future for Collect<S> {
    type Output = Vec<S::Item>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match this.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    this.items.push(item);
                    this.world.epoch.set(this.world.epoch.get() + 1);
                }
                Poll::Ready(None) => return Poll::Ready(std::mem::take(&mut this.items)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

enum Outcome {
    Settled(Vec<Result<Out, E>>),
    FailFast(Result<Vec<Out>, Vec<(usize, String)>>),
    Completed(Vec<(usize, Result<Out, E>)>),
}

thread_local! {
    /// How runs ended: ready, ready after the deadline, poisoned, dropped early; and how
    /// many polls went to reused slots.
    static STATS: RefCell<[usize; 5]> = const { RefCell::new([0; 5]) };
}

fn check_outcome(cfg: &Config, world: &World, outcome: Outcome, timer_fired: bool) {
    let taken: usize = world.made.borrow().iter().sum();
    let expect = |j: usize, r: &Result<Out, E>, what: &str| {
        let ok = match r {
            Ok(o) => o.i == j && !world.plans[j].err,
            Err(E::Child(k)) => *k == j && world.plans[j].err,
            Err(E::TimedOut(t)) => t.index == j && cfg.deadline,
            Err(E::Panicked(k)) => *k == j && cfg.catch,
        };
        if !ok {
            world.violation(format!("{what}: slot {j} holds {r:?}"));
        }
    };
    match outcome {
        Outcome::Settled(results) => {
            if results.len() != taken {
                world.violation(format!(
                    "settled: {} results, {} children made",
                    results.len(),
                    taken
                ));
            }
            // An iterator is read to its end after the deadline: every job has its outcome.
            // (A stream gives what it has ready.)
            if (!timer_fired || !cfg.stream) && results.len() != cfg.n {
                world.violation(format!("settled: {} results of {}", results.len(), cfg.n));
            }
            for (j, r) in results.iter().enumerate() {
                expect(j, r, "settled");
            }
        }
        Outcome::FailFast(Ok(outs)) => {
            if outs.len() != cfg.n && (!timer_fired || !cfg.stream) {
                world.violation(format!(
                    "fail_fast Ok with {} successes of {} (timer fired: {timer_fired})",
                    outs.len(),
                    cfg.n
                ));
            }
            for (j, o) in outs.iter().enumerate() {
                if o.i != j {
                    world.violation(format!("fail_fast Ok: position {j} holds {}", o.i));
                }
            }
        }
        Outcome::FailFast(Err(errors)) => {
            let mut last = None;
            for (i, e) in &errors {
                if last.is_some_and(|l| l >= *i) {
                    world.violation(format!("fail_fast errors out of order: {errors:?}"));
                }
                last = Some(*i);
                let good = e == &format!("Child({i})")
                    || e == &format!("TimedOut(TimedOut {{ index: {i} }})")
                    || e == &format!("Panicked({i})");
                if !good {
                    world.violation(format!("fail_fast error {i}: {e}"));
                }
            }
        }
        Outcome::Completed(items) => {
            let mut seen = vec![false; cfg.n];
            for (j, r) in &items {
                if seen[*j] {
                    world.violation(format!("as_completed: {j} twice"));
                }
                seen[*j] = true;
                expect(*j, r, "as_completed");
            }
            if items.len() != taken || (!cfg.stream && items.len() != cfg.n) {
                world.violation(format!(
                    "as_completed: {} items, {} made",
                    items.len(),
                    taken
                ));
            }
        }
    }
}

/// Drives `fut` with events from the world; returns the output, or None if it panicked or
/// was dropped early. Returns (output, timer fired).
fn drive_world<F: Future>(
    cfg: &Config,
    world: &Rc<World>,
    timer: (&Rc<Cell<bool>>, &Rc<RefCell<Option<Waker>>>),
    stream_ctl: (&Rc<RefCell<Option<Waker>>>, &Rc<Cell<bool>>),
    fut: F,
) -> (Option<F::Output>, bool) {
    let mut rng = Rng(cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (counter, waker) = panicky_waker(cfg.waker_panic_at);
    let mut fut = Box::pin(fut);
    let mut fired = false;
    let outcome = 'run: {
        for step in 0..20_000u64 {
            if cfg.drop_at == Some(step) {
                STATS.with(|s| s.borrow_mut()[3] += 1);
                break 'run None;
            }
            world.epoch.set(world.epoch.get() + 1);
            let before = counter.wakes();
            let polled = catch_unwind(AssertUnwindSafe(|| poll_with(fut.as_mut(), &waker)));
            match polled {
                Err(_) => {
                    // Poisoned: the next poll must say so.
                    let again = catch_unwind(AssertUnwindSafe(|| poll_with(fut.as_mut(), &waker)));
                    match again {
                        Err(p) => {
                            let msg = p
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| p.downcast_ref::<String>().cloned())
                                .unwrap_or_default();
                            if !msg.contains("panicked") {
                                world.violation(format!("poisoned poll panicked with {msg:?}"));
                            }
                        }
                        Ok(_) => world.violation("poisoned gather polled without a panic".into()),
                    }
                    STATS.with(|s| s.borrow_mut()[2] += 1);
                    break 'run None;
                }
                Ok(Poll::Ready(out)) => {
                    STATS.with(|s| s.borrow_mut()[if fired { 1 } else { 0 }] += 1);
                    break 'run Some(out);
                }
                Ok(Poll::Pending) => {}
            }
            // Fire events (as the outside world would) until the gather has been woken; a
            // real executor polls it only then. If nothing is left to fire, it hangs.
            let mut rounds = 0;
            loop {
                let woke = counter.wakes() > before;
                if woke && (rounds > 0 || !rng.chance(30)) {
                    break;
                }
                rounds += 1;
                let mut any_event = false;
                let stash_len = world.stash.borrow().len();
                if stash_len > 0 && rng.chance(70) {
                    let k = rng.below(stash_len as u64) as usize;
                    let (_, w, flag) = world.stash.borrow_mut().remove(k);
                    flag.set(true);
                    quietly(|| w.wake());
                    any_event = true;
                }
                if !world.stale.borrow().is_empty() && rng.chance(30) {
                    let stale: Vec<Waker> = world.stale.borrow_mut().drain(..).collect();
                    for w in stale {
                        quietly(|| w.wake());
                    }
                    any_event = true;
                }
                let stream_waker = stream_ctl.0.borrow_mut().take();
                if let Some(w) = stream_waker {
                    if rng.chance(60) {
                        stream_ctl.1.set(true);
                        quietly(|| w.wake());
                        any_event = true;
                    } else {
                        *stream_ctl.0.borrow_mut() = Some(w);
                    }
                }
                if cfg.deadline && !fired && rng.chance(5) {
                    fired = true;
                    timer.0.set(true);
                    let w = timer.1.borrow_mut().take();
                    if let Some(w) = w {
                        quietly(|| w.wake());
                    }
                    any_event = true;
                }
                let anything_left = !world.stash.borrow().is_empty()
                    || stream_ctl.0.borrow().is_some()
                    || (cfg.deadline && !fired && timer.1.borrow().is_some())
                    || !world.stale.borrow().is_empty();
                if !any_event && !anything_left && counter.wakes() == before {
                    world.violation(format!("pending without a wake at step {step}: a hang"));
                    break 'run None;
                }
                if rounds > 10_000 {
                    world.violation("no wake after 10000 rounds of events".into());
                    break 'run None;
                }
            }
        }
        world.violation("not done after 20000 polls".into());
        None
    };
    // Drop the gather here, not as the return value is being handed back: a panicking
    // drop of a local at return leaks the return value (rust-lang/rust#47949).
    drop(fut);
    drop(waker);
    (outcome, fired)
}

macro_rules! with_layers {
    ($g:expr, $cfg:expr, $timer:expr, $k:ident) => {{
        let g = $g;
        let g = match $cfg.limit {
            Some(n) => g.limit(n),
            None => g,
        };
        let g = if $cfg.per_child {
            g.per_child_wakers()
        } else {
            g
        };
        match ($cfg.catch, $cfg.deadline) {
            (false, false) => $k!(g),
            (true, false) => $k!(g.catch_panics()),
            (false, true) => $k!(g.deadline($timer)),
            (true, true) => $k!(g.catch_panics().deadline($timer)),
        }
    }};
}

fn run_case(cfg: Config) -> Vec<String> {
    let mut rng = Rng(cfg.seed | 1);
    let plans: Vec<Plan> = (0..cfg.n)
        .map(|_| {
            let external = rng.chance(30);
            Plan {
                pending: rng.below(3) as usize,
                external,
                stale: rng.chance(30),
                panic_poll: rng.maybe(6, |r| 1 + r.below(2) as usize),
                panic_drop: rng.chance(3),
                panic_out_drop: rng.chance(3),
                err: rng.chance(8),
                wake_stale_in_poll: rng.chance(20),
            }
        })
        .collect();
    let world = World::new(plans);
    let stream_waker = Rc::new(RefCell::new(None));
    let stream_release = Rc::new(Cell::new(false));
    let src = Src {
        world: world.clone(),
        next: 0,
        panic_at_next: cfg.panic_at_next,
        hint: cfg.hint,
        pending_every: cfg.pending_every,
        external_pending: cfg.external_pending,
        stream_polls: 0,
        stream_waker: stream_waker.clone(),
        stream_release: stream_release.clone(),
    };
    let fired = Rc::new(Cell::new(false));
    let timer_waker = Rc::new(RefCell::new(None));
    let timer = Timer {
        fired: fired.clone(),
        waker: timer_waker.clone(),
    };
    let t = (&fired, &timer_waker);
    let s = (&stream_waker, &stream_release);

    {
        let w = &world;
        macro_rules! settle {
            ($g:expr) => {{
                let (out, fired) = drive_world(&cfg, w, t, s, $g);
                if let Some(out) = out {
                    let results = out.into_results().into_vec();
                    check_outcome(&cfg, w, Outcome::Settled(results), fired);
                }
            }};
        }
        macro_rules! fail_fast {
            ($g:expr) => {{
                let (out, fired) = drive_world(&cfg, w, t, s, $g.fail_fast());
                if let Some(out) = out {
                    let out = out
                        .map(|v| v.into_vec())
                        .map_err(|e| e.iter().map(|(i, e)| (i, format!("{e:?}"))).collect());
                    check_outcome(&cfg, w, Outcome::FailFast(out), fired);
                }
            }};
        }
        macro_rules! completed {
            ($g:expr) => {{
                let c = Collect {
                    stream: Box::pin($g.as_completed()),
                    items: Vec::new(),
                    world: w.clone(),
                };
                let (out, fired) = drive_world(&cfg, w, t, s, c);
                if let Some(out) = out {
                    check_outcome(&cfg, w, Outcome::Completed(out), fired);
                }
            }};
        }
        let res = catch_unwind(AssertUnwindSafe(|| match (cfg.stream, cfg.mode) {
            (false, 0) => with_layers!(gather_iter(src), cfg, timer, settle),
            (false, 1) => with_layers!(gather_iter(src), cfg, timer, fail_fast),
            (false, _) => with_layers!(gather_iter(src), cfg, timer, completed),
            (true, 0) => with_layers!(gather_stream(src), cfg, timer, settle),
            (true, 1) => with_layers!(gather_stream(src), cfg, timer, fail_fast),
            (true, _) => with_layers!(gather_stream(src), cfg, timer, completed),
        }));
        if let Err(p) = res {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            // A panicking drop (of the gather or an output) is allowed to reach us.
            if !msg.contains("drop") && !msg.contains("executor waker") {
                world.violation(format!("unexpected panic: {msg}"));
            }
        }
    }
    // Whatever remains in the test's hands goes now.
    quietly(|| drop(timer_waker.borrow_mut().take()));
    quietly(|| drop(stream_waker.borrow_mut().take()));
    let stash: Vec<_> = world.stash.borrow_mut().drain(..).collect();
    quietly(|| drop(stash));
    // Wake every stale waker after the gather is gone.
    let stale: Vec<Waker> = world.stale.borrow_mut().drain(..).collect();
    for w in stale {
        quietly(|| w.wake());
    }
    world.check_drops();
    if let Some(n) = cfg.limit {
        if world.most.get() > n {
            world.violation(format!(
                "{} children alive at once, limit {n}",
                world.most.get()
            ));
        }
    }
    let v = world.violations.borrow().clone();
    v
}

fn config(seed: u64) -> Config {
    let mut rng = Rng(seed.wrapping_mul(31).wrapping_add(7) | 1);
    let n = if cfg!(miri) {
        rng.below(7) as usize
    } else if rng.chance(10) {
        100 + rng.below(300) as usize
    } else {
        rng.below(12) as usize
    };
    let stream = rng.chance(40);
    Config {
        seed,
        n,
        stream,
        limit: rng.maybe(70, |r| 1 + r.below(5) as usize),
        per_child: rng.chance(30),
        catch: rng.chance(50),
        deadline: rng.chance(40),
        mode: rng.below(3) as u8,
        hint: match rng.below(6) {
            0 => Some((0, Some(0))),
            1 => Some((0, None)),
            2 => Some((100, None)),
            3 => Some((0, Some(1))),
            _ => None,
        },
        panic_at_next: rng.maybe(8, |r| 1 + r.below(n as u64 + 2) as usize),
        pending_every: if stream && rng.chance(50) {
            Some(2 + rng.below(3) as usize)
        } else {
            None
        },
        external_pending: rng.chance(50),
        drop_at: rng.maybe(15, |r| r.below(10)),
        waker_panic_at: rng.maybe(15, |r| 1 + r.below(12) as isize),
    }
}

fn fuzz(range: std::ops::Range<u64>) {
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    for seed in range {
        let cfg = config(seed);
        let v = match catch_unwind(|| run_case(cfg)) {
            Ok(v) => v,
            Err(p) => vec![format!(
                "panic escaped the case: {:?}",
                p.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
            )],
        };
        if !v.is_empty() {
            failures.push(format!("{cfg:?}\n    {}", v.join("\n    ")));
            if failures.len() > 10 {
                break;
            }
        }
    }
    let _ = std::panic::take_hook();
    eprintln!(
        "stats (ready, ready+deadline, poisoned, dropped): {:?}",
        STATS.with(|s| *s.borrow())
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn random_lazy_gathers_keep_every_contract() {
    // Miri: keep it small.
    let n = if cfg!(miri) {
        120
    } else {
        std::env::var("LAZY_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20_000)
    };
    fuzz(0..n);
}

// ---------------------------------------------------------------------------------------
// Focused cases.
// ---------------------------------------------------------------------------------------

/// Children that can only finish once all `need` of them run at once (a barrier, like
/// tasks exchanging messages).
fn barrier_children(need: usize) -> impl Iterator<Item = Barrier> {
    let shared = Rc::new((Cell::new(0usize), RefCell::new(Vec::<Waker>::new())));
    (0..need).map(move |i| Barrier {
        i,
        need,
        arrived: false,
        shared: shared.clone(),
    })
}

struct Barrier {
    i: usize,
    need: usize,
    arrived: bool,
    shared: Rc<(Cell<usize>, RefCell<Vec<Waker>>)>,
}

impl Future for Barrier {
    type Output = usize;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        if !self.arrived {
            self.arrived = true;
            self.shared.0.set(self.shared.0.get() + 1);
        }
        if self.shared.0.get() >= self.need {
            for w in self.shared.1.borrow_mut().drain(..) {
                w.wake();
            }
            return Poll::Ready(self.i);
        }
        self.shared.1.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

impl<I: Iterator + Unpin> Stream for Liar<I> {
    type Item = I::Item;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.0.next())
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.1
    }
}

#[test]
fn a_barrier_of_three_under_limit_three_runs_them_together() {
    // Three children that finish only once all three have run: limit(3) runs them
    // together.
    let gathered = drive(gather_iter(barrier_children(3)).limit(3), 10);
    assert_eq!(gathered.into_results().into_vec(), [0, 1, 2]);
}

#[test]
fn a_size_hint_upper_bound_too_low_does_not_shrink_the_limit() {
    // limit(3): "the first n are taken out at the first poll", whatever the iterator's
    // `size_hint` says (here, wrongly, at most one): the three run together.
    let jobs = Liar(barrier_children(3), (0, Some(1)));
    let gathered = drive(gather_iter(jobs).limit(3), 10);
    assert_eq!(gathered.into_results().into_vec(), [0, 1, 2]);
}

#[test]
fn a_stream_whose_size_hint_is_too_low_still_runs_its_items_together() {
    // Without a limit, a stream's window (64 slots) does not follow its `size_hint`.
    let jobs = Liar(barrier_children(3), (0, Some(1)));
    let gathered = drive(gather_stream(jobs), 10);
    assert_eq!(gathered.into_results().into_vec(), [0, 1, 2]);
}

#[test]
fn an_endless_stream_without_a_limit_streams_its_outcomes() {
    // `stream::iter(0..)` says (usize::MAX, None): without a limit, the window is 64
    // slots all the same, and the outcomes come one by one.
    let jobs = stream::iter(0usize..).map(ready);
    let mut items = pin!(gather_stream(jobs).as_completed());
    let (_, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    let first = catch_unwind(AssertUnwindSafe(|| items.as_mut().poll_next(&mut cx)));
    let first = first.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
    });
    assert!(
        matches!(first, Ok(Poll::Ready(Some((0, 0))))),
        "first poll: {first:?}"
    );
}

#[test]
fn as_completed_hands_out_cut_off_children_in_input_order_after_slots_were_reused() {
    // `Gather::deadline`: "(the cut-off children, already dropped, are handed out last,
    // one per item, in input order)". Under limit(2): children 0 and 1 run in slots 0
    // and 1; child 0 finishes and child 2 takes slot 0. The timer fires: child 1 (slot 1)
    // comes before child 2 (slot 0).
    let (c0, h0) = common::manual::<Result<usize, TimedOut>>();
    let (c1, _h1) = common::manual::<Result<usize, TimedOut>>();
    let (c2, _h2) = common::manual::<Result<usize, TimedOut>>();
    let jobs = vec![c0, c1, c2];
    let (timer, fire) = common::manual::<()>();
    let mut items = pin!(gather_iter(jobs).limit(2).deadline(timer).as_completed());
    let (_, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(items.as_mut().poll_next(&mut cx).is_pending());
    h0.complete(Ok(0));
    assert!(matches!(
        items.as_mut().poll_next(&mut cx),
        Poll::Ready(Some((0, Ok(0))))
    ));
    assert!(items.as_mut().poll_next(&mut cx).is_pending());
    fire.complete(());
    let mut cut_off = Vec::new();
    while let Poll::Ready(Some((index, outcome))) = items.as_mut().poll_next(&mut cx) {
        assert_eq!(outcome, Err(TimedOut { index }));
        cut_off.push(index);
    }
    assert_eq!(cut_off, [1, 2], "cut-off children in input order");
}

#[test]
fn fail_fast_under_a_deadline_that_fires_between_passes_fails() {
    // A thousand ready jobs under limit(1): the first poll runs 128 (its budget) and
    // yields; then the timer has fired, with no child running. The 872 jobs never started
    // time out: fail-fast fails (as over a Vec, below).
    let jobs = (0..1000).map(|i| ready(Ok::<_, TimedOut>(i)));
    let out = drive(
        gather_iter(jobs).limit(1).deadline(ready(())).fail_fast(),
        10,
    );
    match out {
        Ok(v) => assert_eq!(v.len(), 1000, "Ok with {} of 1000 successes", v.len()),
        Err(e) => assert!(e.iter().count() > 0),
    }
}

#[test]
fn fail_fast_under_a_deadline_over_a_vec_reports_the_children_not_started() {
    // Control: the same over a Vec.
    let jobs: Vec<_> = (0..1000).map(|i| ready(Ok::<_, TimedOut>(i))).collect();
    let out = drive(
        gather::gather(jobs)
            .limit(1)
            .deadline(ready(()))
            .fail_fast(),
        10,
    );
    assert!(out.is_err(), "a Vec gather reports the cut-off children");
}

#[test]
fn settle_all_under_a_deadline_has_an_outcome_for_every_job() {
    // Settle-all: the same; the jobs never started time out.
    let jobs = (0..1000).map(|i| ready(Ok::<_, TimedOut>(i)));
    let gathered = drive(gather_iter(jobs).limit(1).deadline(ready(())), 10);
    assert_eq!(gathered.len(), 1000, "an outcome per job");
    assert!(
        !gathered.is_all_ok(),
        "the jobs cut off by the deadline timed out"
    );
}

#[test]
fn as_completed_is_not_empty_before_the_first_poll_when_items_will_come() {
    // `AsCompleted::is_empty`: "Whether every child has been yielded."
    let items = gather_iter((0..3).map(ready)).as_completed();
    assert!(!items.is_empty(), "nothing yielded yet, three to come");
}

#[test]
fn a_stream_that_would_yield_after_none_is_not_polled_again() {
    struct Flaky(usize);
    impl Stream for Flaky {
        type Item = std::future::Ready<usize>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.0 += 1;
            match self.0 {
                1 | 2 => Poll::Ready(Some(ready(self.0))),
                3 => Poll::Ready(None),
                4 => panic!("polled after None"),
                _ => Poll::Ready(Some(ready(99))),
            }
        }
    }
    for limit in [1, 2, 5] {
        let gathered = drive(gather_stream(Flaky(0)).limit(limit), 10);
        assert_eq!(gathered.into_results().into_vec(), [1, 2]);
    }
}

#[test]
fn stale_wakers_of_finished_children_woken_after_their_slot_is_reused_do_no_harm() {
    // Each child keeps its waker and wakes it again after it finished; slots are reused
    // by then (limit 2). Every child is polled until it finishes and never after.
    let kept: Rc<RefCell<Vec<Waker>>> = Rc::default();
    let polls: Rc<RefCell<Vec<usize>>> = Rc::new(RefCell::new(vec![0; 20]));
    let jobs = (0..20).map(|i| {
        let (kept, polls) = (kept.clone(), polls.clone());
        std::future::poll_fn(move |cx| {
            polls.borrow_mut()[i] += 1;
            kept.borrow_mut().push(cx.waker().clone());
            if polls.borrow()[i] == 1 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(i)
            }
        })
    });
    let mut all = Box::pin(gather_iter(jobs).limit(2));
    let (counter, waker) = CountingWaker::new();
    let mut outputs = None;
    for _ in 0..100 {
        let before = counter.wakes();
        // Every waker ever handed out wakes again, stale or not.
        for w in kept.borrow().iter() {
            w.wake_by_ref();
        }
        if let Poll::Ready(g) = poll_with(all.as_mut(), &waker) {
            outputs = Some(g.into_results().into_vec());
            break;
        }
        assert!(counter.wakes() > before);
    }
    assert_eq!(outputs.unwrap(), (0..20).collect::<Vec<_>>());
    assert!(
        polls.borrow().iter().all(|&p| p == 2),
        "{:?}",
        polls.borrow()
    );
    drop(all);
    // The gather is gone: its wakers still work, and do nothing.
    for w in kept.borrow_mut().drain(..) {
        w.wake();
    }
}
