//! The panic contract (the `# Panics` section of `Gather`'s docs) attacked from every
//! side: panicking `Drop`s of children, outputs and the timer, a panicking executor waker
//! (`clone`, `wake_by_ref`, `wake`, `drop`), with and without `catch_panics`, `limit` and
//! `deadline`, over every input shape and mode. Each test counts drops with shared logs;
//! Miri (`cargo +nightly miri test --test panics_everywhere`) checks for undefined
//! behaviour and leaks.
//!
//! Written by a hostile review of the first fix; the tests marked "Regression" failed
//! then, each for the cause its comment names.
//!
//! - `REDTEAM_REPORT_ONLY=1` prints the failures instead of panicking, so that a failing
//!   run ends normally and Miri's leak check runs too
//!   (`MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-env-forward=REDTEAM_REPORT_ONLY"`).
//! - `REDTEAM_LOUD=1` keeps the default panic hook (the provoked panics are silent
//!   otherwise).

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{self, catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex, Once};
use std::task::{Context, Poll, Waker};
use std::thread;

mod common;

use common::test_waker::TestWaker;
use futures::Stream;
use gather::{gather, gather_iter, CompoundError, ErrorStore, Gathered, Panicked, TimedOut};
use smallvec::SmallVec;

// ---------------------------------------------------------------------------------------
// Panics: a hook that keeps the expected ones quiet, and catching them.
// ---------------------------------------------------------------------------------------

/// Installs (once) a panic hook that stays silent for the panics these tests provoke
/// ("boom...", the poisoned gather's message, non-string payloads) and reports the rest.
fn quiet() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("REDTEAM_LOUD").is_some() {
            return;
        }
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| match text(info.payload()) {
            Some(m) if m.starts_with("boom") || m.starts_with("`Gather` polled after") => {}
            None => {}
            Some(_) => default(info),
        }));
    });
}

fn text(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

fn message(payload: &(dyn Any + Send)) -> String {
    text(payload).unwrap_or("<non-string payload>").to_string()
}

/// Runs `f`, turning a panic into its message.
fn try_run<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| message(&*payload))
}

// ---------------------------------------------------------------------------------------
// Drop accounting.
// ---------------------------------------------------------------------------------------

/// Every drop of a [`Bomb`], by label: in order, and counted.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Drops>>);

#[derive(Default)]
struct Drops {
    order: Vec<String>,
    counts: HashMap<String, usize>,
}

impl Log {
    fn bomb(&self, label: impl Into<String>, armed: Arm) -> Bomb {
        Bomb {
            label: label.into(),
            log: self.clone(),
            armed,
        }
    }

    fn record(&self, label: &str) {
        let mut drops = self.0.lock().unwrap_or_else(|e| e.into_inner());
        drops.order.push(label.to_string());
        *drops.counts.entry(label.to_string()).or_default() += 1;
    }

    fn count(&self, label: &str) -> usize {
        let drops = self.0.lock().unwrap_or_else(|e| e.into_inner());
        drops.counts.get(label).copied().unwrap_or(0)
    }

    fn all(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .order
            .clone()
    }
}

/// How a [`Bomb`]'s drop ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arm {
    Quiet,
    /// `panic!("boom: drop <label>")`.
    Panic,
    /// `panic_any(PayloadBomb)`: a panic whose payload panics when it is dropped.
    PanicWithBombPayload,
}

/// A value that records its drop, and may panic in it.
struct Bomb {
    label: String,
    log: Log,
    armed: Arm,
}

impl fmt::Debug for Bomb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        self.log.record(&self.label);
        match self.armed {
            Arm::Quiet => {}
            Arm::Panic => panic!("boom: drop {}", self.label),
            Arm::PanicWithBombPayload => panic::panic_any(PayloadBomb),
        }
    }
}

/// A panic payload whose own drop panics.
struct PayloadBomb;

impl Drop for PayloadBomb {
    fn drop(&mut self) {
        panic!("boom: payload dropped");
    }
}

thread_local! {
    /// How many `Error::TimedOut`s this thread has dropped.
    static TIMEOUT_DROPS: Cell<usize> = const { Cell::new(0) };
}

fn timeout_drops() -> usize {
    TIMEOUT_DROPS.with(Cell::get)
}

/// Counts the drop of a `TimedOut` error.
#[derive(Debug)]
struct Tick;

impl Drop for Tick {
    fn drop(&mut self) {
        TIMEOUT_DROPS.with(|t| t.set(t.get() + 1));
    }
}

#[derive(Debug)]
enum Error {
    Failed(Bomb),
    Panicked(Panicked),
    TimedOut(TimedOut, #[allow(dead_code)] Tick),
}

impl From<Panicked> for Error {
    fn from(panicked: Panicked) -> Self {
        Error::Panicked(panicked)
    }
}

impl From<TimedOut> for Error {
    fn from(timed_out: TimedOut) -> Self {
        Error::TimedOut(timed_out, Tick)
    }
}

type Res = Result<Bomb, Error>;

/// A short, comparable description of an outcome (dropping it).
fn describe(result: Res) -> String {
    match result {
        Ok(out) => format!("ok:{}", out.label),
        Err(Error::Failed(b)) => format!("fail:{}", b.label),
        Err(Error::Panicked(p)) => format!(
            "panic{}:{}",
            p.index,
            p.message().unwrap_or("<non-string payload>")
        ),
        Err(Error::TimedOut(t, _)) => format!("timeout{}", t.index),
    }
}

// ---------------------------------------------------------------------------------------
// Children and the timer.
// ---------------------------------------------------------------------------------------

type Stash = Arc<Mutex<Vec<(usize, Waker)>>>;

/// A child whose every step is scripted: when it finishes (and with what), when its poll
/// panics, whether its drop or its output's drop panics, whether it wakes its waker in
/// its poll, and whether it hands a clone of its waker to the test.
struct Kid {
    index: usize,
    log: Log,
    life: Bomb,
    ready_at: Option<usize>,
    fails: bool,
    out_arm: Arm,
    panic_at: Option<usize>,
    wakes: bool,
    stash: Option<Stash>,
    wake_on_drop: bool,
    own: Option<Waker>,
    polls: usize,
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(waker) = self.own.take() {
            waker.wake();
        }
    }
}

impl fmt::Debug for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kid{}", self.index)
    }
}

impl Kid {
    /// Pending for ever, unless told otherwise.
    fn new(log: &Log, index: usize) -> Self {
        Kid {
            index,
            log: log.clone(),
            life: log.bomb(format!("kid{index}"), Arm::Quiet),
            ready_at: None,
            fails: false,
            out_arm: Arm::Quiet,
            panic_at: None,
            wakes: false,
            stash: None,
            wake_on_drop: false,
            own: None,
            polls: 0,
        }
    }

    /// Finishes with `Ok(out<i>)` at poll `at` (waking itself before that).
    fn ready(mut self, at: usize) -> Self {
        self.ready_at = Some(at);
        self
    }

    /// Finishes with `Err(Failed(fail<i>))` at poll `at`.
    fn fails(mut self, at: usize) -> Self {
        self.ready_at = Some(at);
        self.fails = true;
        self
    }

    /// Its poll number `at` panics with "boom: poll kid<i>".
    fn panics(mut self, at: usize) -> Self {
        self.panic_at = Some(at);
        self
    }

    /// Its drop panics with "boom: drop kid<i>".
    fn drop_panics(mut self) -> Self {
        self.life.armed = Arm::Panic;
        self
    }

    fn drop_panics_with(mut self, arm: Arm) -> Self {
        self.life.armed = arm;
        self
    }

    /// The drop of the output it finishes with panics.
    fn out_panics(mut self) -> Self {
        self.out_arm = Arm::Panic;
        self
    }

    /// Calls `cx.waker().wake_by_ref()` in each poll.
    fn wakes(mut self) -> Self {
        self.wakes = true;
        self
    }

    /// Keeps a clone of its waker at its first poll, and wakes it (by value) in its drop.
    fn wakes_on_drop(mut self) -> Self {
        self.wake_on_drop = true;
        self
    }

    /// Hands a clone of its waker to `stash` at its first poll.
    fn stash(mut self, stash: &Stash) -> Self {
        self.stash = Some(stash.clone());
        self
    }
}

impl Future for Kid {
    type Output = Res;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Res> {
        let this = &mut *self;
        this.polls += 1;
        if this.polls == 1 {
            if let Some(stash) = &this.stash {
                stash.lock().unwrap().push((this.index, cx.waker().clone()));
            }
            if this.wake_on_drop {
                this.own = Some(cx.waker().clone());
            }
        }
        if this.wakes {
            cx.waker().wake_by_ref();
        }
        if this.panic_at == Some(this.polls) {
            panic!("boom: poll kid{}", this.index);
        }
        match this.ready_at {
            Some(at) if at == this.polls => Poll::Ready(if this.fails {
                Err(Error::Failed(
                    this.log.bomb(format!("fail{}", this.index), Arm::Quiet),
                ))
            } else {
                Ok(this.log.bomb(format!("out{}", this.index), this.out_arm))
            }),
            Some(at) if at > this.polls => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            _ => Poll::Pending,
        }
    }
}

/// A deadline timer the test fires by hand; its poll or its drop may panic.
struct Timer {
    fired: Arc<AtomicBool>,
    panic_poll: bool,
    _life: Bomb,
}

impl Future for Timer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.panic_poll {
            panic!("boom: timer poll");
        }
        if self.fired.load(SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

fn timer(log: &Log) -> (Timer, Arc<AtomicBool>) {
    let fired = Arc::new(AtomicBool::new(false));
    let timer = Timer {
        fired: fired.clone(),
        panic_poll: false,
        _life: log.bomb("timer", Arm::Quiet),
    };
    (timer, fired)
}

// ---------------------------------------------------------------------------------------
// Every shape, mode and layer behind one type.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Array,
    Tuple,
    /// `Vec` with `per_child_wakers()`.
    Vec,
    /// `Vec` as is: swept with the gather's own waker up to 30 children.
    FewVec,
    /// `SmallVec<[Kid; 8]>`: inline.
    Inline,
    /// `SmallVec<[Kid; 1]>` with `per_child_wakers()`: spilled from two children on.
    Spilled,
    /// `gather_iter`: inline up to 4, spilled past that; swept up to 30.
    Iter,
}

const SHAPES: [Shape; 7] = [
    Shape::Array,
    Shape::Tuple,
    Shape::Vec,
    Shape::FewVec,
    Shape::Inline,
    Shape::Spilled,
    Shape::Iter,
];

impl Shape {
    /// Whether the children get per-child wakers (the gather registers the executor's
    /// waker in a block) for `len` children and `limit`.
    fn per_child(self, len: usize, limit: Option<usize>) -> bool {
        match self {
            Shape::Array | Shape::Tuple => false,
            Shape::Vec | Shape::Spilled => true,
            Shape::Inline => limit.is_some(),
            Shape::FewVec | Shape::Iter => len > 30 || limit.is_some(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Settle,
    FailFast,
    Stream,
}

const MODES: [Mode; 3] = [Mode::Settle, Mode::FailFast, Mode::Stream];

#[derive(Default)]
struct Cfg {
    catch: bool,
    timer: Option<Timer>,
    limit: Option<usize>,
}

type FailFastOutput = Result<Vec<Bomb>, Vec<(usize, Error)>>;

enum Subject<'a> {
    Settle(Pin<Box<dyn Future<Output = Vec<Res>> + 'a>>),
    FailFast(Pin<Box<dyn Future<Output = FailFastOutput> + 'a>>),
    Stream(Pin<Box<dyn Stream<Item = (usize, Res)> + 'a>>),
}

enum Step {
    Pending,
    Settled(Vec<Res>),
    FailFast(FailFastOutput),
    Item(Option<(usize, Res)>),
}

impl Subject<'_> {
    fn poll(&mut self, waker: &Waker) -> Step {
        let cx = &mut Context::from_waker(waker);
        match self {
            Subject::Settle(f) => match f.as_mut().poll(cx) {
                Poll::Ready(v) => Step::Settled(v),
                Poll::Pending => Step::Pending,
            },
            Subject::FailFast(f) => match f.as_mut().poll(cx) {
                Poll::Ready(v) => Step::FailFast(v),
                Poll::Pending => Step::Pending,
            },
            Subject::Stream(s) => match s.as_mut().poll_next(cx) {
                Poll::Ready(item) => Step::Item(item),
                Poll::Pending => Step::Pending,
            },
        }
    }

    /// One poll; a panic comes back as its message.
    fn try_poll(&mut self, waker: &Waker) -> Result<Step, String> {
        try_run(|| self.poll(waker))
    }

    /// Polls until done (at most `max` polls), describing every outcome: settle-all and
    /// as-completed as a list, fail-fast as `ok:..` items or one `err:[..]` item. Then
    /// drops it: a panic of the polls comes back as `Err(message)`, one of the drop as
    /// `Err("...; drop: message")`.
    fn run(mut self, waker: &Waker, max: usize) -> Result<Vec<String>, String> {
        let polled = self.run_polls(waker, max);
        match (polled, self.try_drop()) {
            (polled, Ok(())) => polled,
            (Ok(_), Err(dropped)) => Err(format!("drop: {dropped}")),
            (Err(polled), Err(dropped)) => Err(format!("{polled}; drop: {dropped}")),
        }
    }

    fn run_polls(&mut self, waker: &Waker, max: usize) -> Result<Vec<String>, String> {
        let mut items = Vec::new();
        for _ in 0..max {
            match self.try_poll(waker)? {
                Step::Pending => {}
                Step::Settled(v) => return Ok(v.into_iter().map(describe).collect()),
                Step::FailFast(Ok(v)) => {
                    return Ok(v.into_iter().map(|b| format!("ok:{}", b.label)).collect())
                }
                Step::FailFast(Err(errors)) => {
                    let errors: Vec<String> = errors
                        .into_iter()
                        .map(|(i, e)| format!("{i}:{}", describe(Err(e))))
                        .collect();
                    return Ok(vec![format!("err:[{}]", errors.join(", "))]);
                }
                Step::Item(Some((i, r))) => items.push(format!("{i}:{}", describe(r))),
                Step::Item(None) => return Ok(items),
            }
        }
        Err(format!("not done after {max} polls"))
    }

    /// Drops it; a panic comes back as its message.
    fn try_drop(self) -> Result<(), String> {
        try_run(move || drop(self))
    }
}

/// Maps a future's output without ever polling it again after it is ready.
struct MapOut<G: Future, F> {
    inner: Pin<Box<G>>,
    map: Option<F>,
}

impl<G: Future, R, F: FnOnce(G::Output) -> R + Unpin> Future for MapOut<G, F> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let out = match self.inner.as_mut().poll(cx) {
            Poll::Ready(out) => out,
            Poll::Pending => return Poll::Pending,
        };
        let map = self.map.take().expect("MapOut polled after it finished");
        Poll::Ready(map(out))
    }
}

fn settle_box<'a, O: 'a, G>(g: G, to_vec: fn(O) -> Vec<Res>) -> Subject<'a>
where
    G: Future<Output = Gathered<O>> + 'a,
{
    Subject::Settle(Box::pin(MapOut {
        inner: Box::pin(g),
        map: Some(move |g: Gathered<O>| to_vec(g.into_results())),
    }))
}

fn fail_fast_box<'a, S: 'a, St: ErrorStore<Error> + 'a, G>(
    g: G,
    to_vec: fn(S) -> Vec<Bomb>,
) -> Subject<'a>
where
    G: Future<Output = Result<S, CompoundError<Error, St>>> + 'a,
{
    Subject::FailFast(Box::pin(MapOut {
        inner: Box::pin(g),
        map: Some(move |r: Result<S, CompoundError<Error, St>>| match r {
            Ok(s) => Ok(to_vec(s)),
            Err(e) => Err(e.into_iter().collect()),
        }),
    }))
}

/// Gives `$g` the layers of `$cfg`, then turns it into the subject of `$mode`.
macro_rules! subject {
    ($g:expr, $mode:expr, $cfg:expr, $outs:expr, $succs:expr, stream: $stream:tt) => {{
        let g = $g;
        let mode = $mode;
        match ($cfg.catch, $cfg.timer.take()) {
            (false, None) => subject!(@mode g, mode, $outs, $succs, $stream),
            (false, Some(t)) => {
                let g = g.deadline(t);
                subject!(@mode g, mode, $outs, $succs, $stream)
            }
            (true, None) => {
                let g = g.catch_panics();
                subject!(@mode g, mode, $outs, $succs, $stream)
            }
            (true, Some(t)) => {
                let g = g.catch_panics().deadline(t);
                subject!(@mode g, mode, $outs, $succs, $stream)
            }
        }
    }};
    (@mode $g:ident, $mode:ident, $outs:expr, $succs:expr, true) => {
        match $mode {
            Mode::Settle => settle_box($g, $outs),
            Mode::FailFast => fail_fast_box($g.fail_fast(), $succs),
            Mode::Stream => Subject::Stream(Box::pin($g.as_completed())),
        }
    };
    (@mode $g:ident, $mode:ident, $outs:expr, $succs:expr, false) => {
        match $mode {
            Mode::Settle => settle_box($g, $outs),
            Mode::FailFast => fail_fast_box($g.fail_fast(), $succs),
            Mode::Stream => return None,
        }
    };
}

macro_rules! array_subject {
    ($kids:ident, $mode:ident, $cfg:ident; $($n:literal)*) => {
        match $kids.len() {
            $($n => {
                let Ok(array) = <[Kid; $n]>::try_from($kids) else { unreachable!() };
                subject!(
                    gather(array),
                    $mode,
                    $cfg,
                    |o: [Res; $n]| Vec::from(o),
                    |s: [Bomb; $n]| Vec::from(s),
                    stream: true
                )
            })*
            _ => return None,
        }
    };
}

/// The subject for `kids` in `shape` and `mode` under `cfg`; `None` for combinations the
/// crate does not offer (a tuple's stream, a limit over an array, ...).
fn build<'a>(shape: Shape, mode: Mode, mut cfg: Cfg, mut kids: Vec<Kid>) -> Option<Subject<'a>> {
    let supported = match shape {
        Shape::Array => cfg.limit.is_none() && matches!(kids.len(), 0..=6 | 130),
        Shape::Tuple => cfg.limit.is_none() && kids.len() == 3 && mode != Mode::Stream,
        _ => true,
    };
    if !supported {
        // Not built: the children go quietly (their drops are not what is tested).
        for kid in &mut kids {
            kid.life.armed = Arm::Quiet;
        }
        return None;
    }
    Some(match shape {
        Shape::Array => {
            if cfg.limit.is_some() {
                return None;
            }
            array_subject!(kids, mode, cfg; 0 1 2 3 4 5 6 130)
        }
        Shape::Tuple => {
            if cfg.limit.is_some() || kids.len() != 3 {
                return None;
            }
            let mut kids = kids.into_iter();
            let mut next = || kids.next().unwrap();
            let tuple = (next(), next(), next());
            subject!(
                gather(tuple),
                mode,
                cfg,
                |(a, b, c): (Res, Res, Res)| vec![a, b, c],
                |(a, b, c): (Bomb, Bomb, Bomb)| vec![a, b, c],
                stream: false
            )
        }
        Shape::Vec | Shape::FewVec => {
            let mut g = gather(kids);
            if shape == Shape::Vec {
                g = g.per_child_wakers();
            }
            if let Some(n) = cfg.limit {
                g = g.limit(n);
            }
            subject!(g, mode, cfg, |o: Vec<Res>| o, |s: Vec<Bomb>| s, stream: true)
        }
        Shape::Inline => {
            let kids: SmallVec<[Kid; 8]> = kids.into_iter().collect();
            let mut g = gather(kids);
            if let Some(n) = cfg.limit {
                g = g.limit(n);
            }
            subject!(
                g,
                mode,
                cfg,
                |o: SmallVec<[Res; 8]>| o.into_vec(),
                |s: SmallVec<[Bomb; 8]>| s.into_vec(),
                stream: true
            )
        }
        Shape::Spilled => {
            let kids: SmallVec<[Kid; 1]> = kids.into_iter().collect();
            let mut g = gather(kids).per_child_wakers();
            if let Some(n) = cfg.limit {
                g = g.limit(n);
            }
            subject!(
                g,
                mode,
                cfg,
                |o: SmallVec<[Res; 1]>| o.into_vec(),
                |s: SmallVec<[Bomb; 1]>| s.into_vec(),
                stream: true
            )
        }
        Shape::Iter => {
            let mut g = gather_iter(kids);
            if let Some(n) = cfg.limit {
                g = g.limit(n);
            }
            subject!(
                g,
                mode,
                cfg,
                |o: SmallVec<[Res; 4]>| o.into_vec(),
                |s: SmallVec<[Bomb; 4]>| s.into_vec(),
                stream: true
            )
        }
    })
}

/// Collects the failures of a sweep over many combinations, to report them all at once.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, what: impl fmt::Display, ok: bool, detail: impl fmt::Display) {
        if !ok {
            self.0.push(format!("{what}: {detail}"));
        }
    }

    fn eq<T: PartialEq + fmt::Debug>(&mut self, what: impl fmt::Display, got: T, want: T) {
        if got != want {
            self.0.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }

    /// Every label of `labels` was dropped exactly once.
    fn once(&mut self, what: impl fmt::Display, log: &Log, labels: &[&str]) {
        for label in labels {
            let n = log.count(label);
            if n != 1 {
                self.0.push(format!("{what}: {label} dropped {n} times"));
            }
        }
    }

    /// Panics with every failure, unless `REDTEAM_REPORT_ONLY` is set: then it prints
    /// them, so that a run of the failing tests ends normally and Miri checks it for leaks
    /// (`MIRIFLAGS="-Zmiri-env-forward=REDTEAM_REPORT_ONLY ..."`).
    #[track_caller]
    fn assert_none(self) {
        if std::env::var_os("REDTEAM_REPORT_ONLY").is_some() {
            for failure in &self.0 {
                eprintln!("REPORTED: {failure}");
            }
            return;
        }
        assert!(
            self.0.is_empty(),
            "{} failure(s):\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

const POISONED: &str = "`Gather` polled after one of its futures panicked";

/// Every (shape, mode, catch_panics, deadline) combination `f` is run for.
fn for_each_combination(mut f: impl FnMut(Shape, Mode, bool, bool)) {
    for shape in SHAPES {
        for mode in MODES {
            for catch in [false, true] {
                for deadline in [false, true] {
                    f(shape, mode, catch, deadline);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Children's drops.
// ---------------------------------------------------------------------------------------

#[test]
fn a_running_childs_panicking_drop_reaches_the_drop_and_spares_its_siblings() {
    quiet();
    let mut failures = Failures::default();
    for_each_combination(|shape, mode, catch, deadline| {
        let what = format!("{shape:?}/{mode:?}/catch={catch}/deadline={deadline}");
        let log = Log::default();
        let tw = TestWaker::new();
        let waker = tw.waker();
        let kids = vec![
            Kid::new(&log, 0),
            Kid::new(&log, 1).drop_panics(),
            Kid::new(&log, 2),
        ];
        let cfg = Cfg {
            catch,
            timer: deadline.then(|| timer(&log).0),
            limit: None,
        };
        let Some(mut subject) = build(shape, mode, cfg, kids) else {
            return;
        };
        let step = subject.try_poll(&waker);
        failures.check(
            &what,
            matches!(step, Ok(Step::Pending)),
            "first poll not pending",
        );
        failures.eq(
            &what,
            subject.try_drop(),
            Err("boom: drop kid1".to_string()),
        );
        failures.once(&what, &log, &["kid0", "kid1", "kid2"]);
        drop(waker);
        failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);
    });
    failures.assert_none();
}

#[test]
fn a_finished_childs_panicking_drop_poisons_the_gather_without_catch_panics() {
    quiet();
    let mut failures = Failures::default();
    for_each_combination(|shape, mode, catch, deadline| {
        if catch {
            return;
        }
        let what = format!("{shape:?}/{mode:?}/deadline={deadline}");
        let log = Log::default();
        let tw = TestWaker::new();
        let waker = tw.waker();
        let kids = vec![
            Kid::new(&log, 0),
            Kid::new(&log, 1).ready(1).drop_panics(),
            Kid::new(&log, 2),
        ];
        let cfg = Cfg {
            timer: deadline.then(|| timer(&log).0),
            ..Cfg::default()
        };
        let Some(mut subject) = build(shape, mode, cfg, kids) else {
            return;
        };
        failures.eq(
            format!("{what}: first poll"),
            subject.try_poll(&waker).err(),
            Some("boom: drop kid1".to_string()),
        );
        failures.eq(
            format!("{what}: poll of the poisoned gather"),
            subject.try_poll(&waker).err(),
            Some(POISONED.to_string()),
        );
        failures.eq(format!("{what}: drop"), subject.try_drop(), Ok(()));
        failures.once(&what, &log, &["kid0", "kid1", "kid2", "out1"]);
        drop(waker);
        failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);
    });
    failures.assert_none();
}

#[test]
fn catch_panics_turns_a_finished_childs_panicking_drop_into_its_outcome() {
    quiet();
    let mut failures = Failures::default();
    for_each_combination(|shape, mode, catch, deadline| {
        if !catch {
            return;
        }
        let what = format!("{shape:?}/{mode:?}/deadline={deadline}");
        let log = Log::default();
        let tw = TestWaker::new();
        let waker = tw.waker();
        let kids = vec![
            Kid::new(&log, 0).ready(1),
            Kid::new(&log, 1).ready(1).drop_panics(),
            Kid::new(&log, 2).ready(2),
        ];
        let cfg = Cfg {
            catch,
            timer: deadline.then(|| timer(&log).0),
            limit: None,
        };
        let Some(subject) = build(shape, mode, cfg, kids) else {
            return;
        };
        let want: Vec<String> = match mode {
            Mode::Settle => vec![
                "ok:out0".into(),
                "panic1:boom: drop kid1".into(),
                "ok:out2".into(),
            ],
            Mode::FailFast => vec!["err:[1:panic1:boom: drop kid1]".into()],
            Mode::Stream => vec![
                "0:ok:out0".into(),
                "1:panic1:boom: drop kid1".into(),
                "2:ok:out2".into(),
            ],
        };
        failures.eq(&what, subject.run(&waker, 10), Ok(want));
        let mut labels = vec!["kid0", "kid1", "kid2", "out0", "out1"];
        if mode != Mode::FailFast {
            labels.push("out2");
        }
        failures.once(&what, &log, &labels);
        drop(waker);
        failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);
    });
    failures.assert_none();
}

#[test]
fn catch_panics_keeps_the_polls_payload_when_the_childs_drop_panics_too() {
    quiet();
    let mut failures = Failures::default();
    for_each_combination(|shape, mode, catch, deadline| {
        if !catch || mode == Mode::FailFast {
            return;
        }
        let what = format!("{shape:?}/{mode:?}/deadline={deadline}");
        let log = Log::default();
        let tw = TestWaker::new();
        let waker = tw.waker();
        let kids = vec![
            Kid::new(&log, 0).ready(1),
            Kid::new(&log, 1).panics(1).drop_panics(),
            Kid::new(&log, 2).ready(1),
        ];
        let cfg = Cfg {
            catch,
            timer: deadline.then(|| timer(&log).0),
            limit: None,
        };
        let Some(subject) = build(shape, mode, cfg, kids) else {
            return;
        };
        let want: Vec<String> = match mode {
            Mode::Stream => vec![
                "0:ok:out0".into(),
                "1:panic1:boom: poll kid1".into(),
                "2:ok:out2".into(),
            ],
            _ => vec![
                "ok:out0".into(),
                "panic1:boom: poll kid1".into(),
                "ok:out2".into(),
            ],
        };
        failures.eq(&what, subject.run(&waker, 10), Ok(want));
        failures.once(&what, &log, &["kid0", "kid1", "kid2", "out0", "out2"]);
    });
    failures.assert_none();
}

/// Contract 3: when a child's poll panics and its drop panics too, "the second panic is
/// swallowed and the outcome keeps the poll's payload". Here the second panic's payload
/// itself panics when dropped (a payload made by `panic_any`).
///
/// Regression (fixed): `CatchPanics::poll_child` (now src/layer/catch_panics.rs) drops the caught payload of the
/// second panic with `drop(catch_unwind(..))`, outside any `catch_unwind`: the payload's
/// drop panics out of the gather's poll, the gather is poisoned and the siblings'
/// outcomes are lost.
#[test]
fn catch_panics_swallows_a_second_panic_whose_payload_panics_when_dropped() {
    quiet();
    let mut failures = Failures::default();
    for shape in [Shape::Array, Shape::Vec] {
        let log = Log::default();
        let tw = TestWaker::new();
        let waker = tw.waker();
        let kids = vec![
            Kid::new(&log, 0).ready(1),
            Kid::new(&log, 1)
                .panics(1)
                .drop_panics_with(Arm::PanicWithBombPayload),
            Kid::new(&log, 2).ready(1),
        ];
        let cfg = Cfg {
            catch: true,
            ..Cfg::default()
        };
        let subject = build(shape, Mode::Settle, cfg, kids).unwrap();
        failures.eq(
            format!("{shape:?}"),
            subject.run(&waker, 10),
            Ok(vec![
                "ok:out0".to_string(),
                "panic1:boom: poll kid1".to_string(),
                "ok:out2".to_string(),
            ]),
        );
        failures.once(
            format!("{shape:?}"),
            &log,
            &["kid0", "kid1", "kid2", "out0", "out2"],
        );
    }
    failures.assert_none();
}

#[test]
fn a_child_cut_off_by_the_deadline_whose_drop_panics_poisons_and_nothing_leaks() {
    quiet();
    let mut failures = Failures::default();
    for_each_combination(|shape, mode, catch, deadline| {
        if !deadline {
            return;
        }
        let what = format!("{shape:?}/{mode:?}/catch={catch}");
        let log = Log::default();
        let tw = TestWaker::new();
        let waker = tw.waker();
        let kids = vec![
            Kid::new(&log, 0),
            Kid::new(&log, 1).drop_panics(),
            Kid::new(&log, 2),
        ];
        let (timer, fired) = timer(&log);
        let cfg = Cfg {
            catch,
            timer: Some(timer),
            limit: None,
        };
        let Some(mut subject) = build(shape, mode, cfg, kids) else {
            return;
        };
        failures.check(
            &what,
            matches!(subject.try_poll(&waker), Ok(Step::Pending)),
            "first poll not pending",
        );
        fired.store(true, SeqCst);
        failures.eq(
            format!("{what}: poll as the timer fires"),
            subject.try_poll(&waker).err(),
            Some("boom: drop kid1".to_string()),
        );
        failures.eq(
            format!("{what}: poll of the poisoned gather"),
            subject.try_poll(&waker).err(),
            Some(POISONED.to_string()),
        );
        failures.eq(format!("{what}: drop"), subject.try_drop(), Ok(()));
        failures.once(&what, &log, &["kid0", "kid1", "kid2", "timer"]);
    });
    failures.assert_none();
}

/// Contract 5: "once the timer is seen to have fired, every child still running is
/// dropped in that same poll, in every mode". Here the drop of child 1 panics as the
/// deadline cuts it off.
///
/// Regression (fixed): `Engine::cut_off_all` (now src/engine/mod.rs) cuts the children off in a plain
/// `for` loop; the panic of child 1's drop leaves it, so child 2 is still alive when that
/// poll returns (it goes only with the gather). `VecSlots::clear` and `Block`'s drop use
/// `for_each_to_the_end` for exactly this; the cut-off loop does not.
#[test]
fn the_deadline_drops_every_running_child_in_its_poll_even_if_one_drop_panics() {
    quiet();
    let mut failures = Failures::default();
    for shape in SHAPES {
        for mode in MODES {
            let what = format!("{shape:?}/{mode:?}");
            let log = Log::default();
            let tw = TestWaker::new();
            let waker = tw.waker();
            let kids = vec![
                Kid::new(&log, 0),
                Kid::new(&log, 1).drop_panics(),
                Kid::new(&log, 2),
            ];
            let (timer, fired) = timer(&log);
            let cfg = Cfg {
                timer: Some(timer),
                ..Cfg::default()
            };
            let Some(mut subject) = build(shape, mode, cfg, kids) else {
                continue;
            };
            let _ = subject.try_poll(&waker);
            fired.store(true, SeqCst);
            let _ = subject.try_poll(&waker);
            failures.once(
                format!("{what}: right after the poll that saw the timer fire"),
                &log,
                &["kid0", "kid1", "kid2"],
            );
            let _ = subject.try_drop();
        }
    }
    failures.assert_none();
}

#[test]
fn fail_fast_dropping_a_child_whose_drop_panics_panics_instead_of_returning() {
    quiet();
    let mut failures = Failures::default();
    for_each_combination(|shape, mode, catch, deadline| {
        if mode != Mode::FailFast {
            return;
        }
        let what = format!("{shape:?}/catch={catch}/deadline={deadline}");
        let log = Log::default();
        let tw = TestWaker::new();
        let waker = tw.waker();
        let kids = vec![
            Kid::new(&log, 0).drop_panics(),
            Kid::new(&log, 1).fails(1),
            Kid::new(&log, 2),
        ];
        let cfg = Cfg {
            catch,
            timer: deadline.then(|| timer(&log).0),
            limit: None,
        };
        let Some(mut subject) = build(shape, mode, cfg, kids) else {
            return;
        };
        failures.eq(
            format!("{what}: poll"),
            subject.try_poll(&waker).err(),
            Some("boom: drop kid0".to_string()),
        );
        failures.eq(
            format!("{what}: poll of the poisoned gather"),
            subject.try_poll(&waker).err(),
            Some(POISONED.to_string()),
        );
        failures.eq(format!("{what}: drop"), subject.try_drop(), Ok(()));
        failures.once(&what, &log, &["kid0", "kid1", "kid2", "fail1"]);
    });
    failures.assert_none();
}

#[test]
fn limit_with_catch_panics_and_panicking_drops_settles_every_child() {
    quiet();
    let mut failures = Failures::default();
    for shape in [Shape::Vec, Shape::Inline, Shape::Spilled, Shape::Iter] {
        for mode in [Mode::Settle, Mode::Stream] {
            for deadline in [false, true] {
                let what = format!("{shape:?}/{mode:?}/deadline={deadline}");
                let log = Log::default();
                let tw = TestWaker::new();
                let waker = tw.waker();
                let kids = vec![
                    Kid::new(&log, 0).ready(1),
                    Kid::new(&log, 1).ready(2).drop_panics(),
                    Kid::new(&log, 2).panics(1).drop_panics(),
                    Kid::new(&log, 3).ready(3),
                    Kid::new(&log, 4).fails(1),
                    Kid::new(&log, 5).ready(1).drop_panics(),
                ];
                let cfg = Cfg {
                    catch: true,
                    timer: deadline.then(|| timer(&log).0),
                    limit: Some(2),
                };
                let subject = build(shape, mode, cfg, kids).unwrap();
                let got = subject.run(&waker, 50).map(|mut v| {
                    if mode == Mode::Stream {
                        // Completion order under a limit is the crate's business; compare
                        // as a set, by index.
                        v.sort();
                        v.into_iter()
                            .map(|s| s.split_once(':').unwrap().1.to_string())
                            .collect()
                    } else {
                        v
                    }
                });
                failures.eq(
                    &what,
                    got,
                    Ok(vec![
                        "ok:out0".to_string(),
                        "panic1:boom: drop kid1".to_string(),
                        "panic2:boom: poll kid2".to_string(),
                        "ok:out3".to_string(),
                        "fail:fail4".to_string(),
                        "panic5:boom: drop kid5".to_string(),
                    ]),
                );
                failures.once(
                    &what,
                    &log,
                    &[
                        "kid0", "kid1", "kid2", "kid3", "kid4", "kid5", "out0", "out1", "out3",
                        "out5", "fail4",
                    ],
                );
            }
        }
    }
    failures.assert_none();
}

#[test]
fn a_child_that_finishes_with_a_panicking_drop_as_the_timer_fires_counts_as_finished() {
    quiet();
    let mut failures = Failures::default();
    for shape in SHAPES {
        for mode in MODES {
            let what = format!("{shape:?}/{mode:?}");
            let log = Log::default();
            let tw = TestWaker::new();
            let waker = tw.waker();
            let kids = vec![
                Kid::new(&log, 0),
                Kid::new(&log, 1).ready(2).drop_panics(),
                Kid::new(&log, 2),
            ];
            let (timer, fired) = timer(&log);
            let cfg = Cfg {
                catch: true,
                timer: Some(timer),
                limit: None,
            };
            let Some(mut subject) = build(shape, mode, cfg, kids) else {
                continue;
            };
            failures.check(
                &what,
                matches!(subject.try_poll(&waker), Ok(Step::Pending)),
                "first poll not pending",
            );
            fired.store(true, SeqCst);
            let want: Vec<String> = match mode {
                Mode::Settle => vec![
                    "timeout0".into(),
                    "panic1:boom: drop kid1".into(),
                    "timeout2".into(),
                ],
                Mode::FailFast => vec!["err:[1:panic1:boom: drop kid1]".into()],
                Mode::Stream => vec![
                    "1:panic1:boom: drop kid1".into(),
                    "0:timeout0".into(),
                    "2:timeout2".into(),
                ],
            };
            failures.eq(&what, subject.run(&waker, 10), Ok(want));
            failures.once(&what, &log, &["kid0", "kid1", "kid2", "out1", "timer"]);
        }
    }
    failures.assert_none();
}

// ---------------------------------------------------------------------------------------
// Outputs' drops.
// ---------------------------------------------------------------------------------------

#[test]
fn an_outputs_panicking_drop_when_the_gather_is_dropped_spares_the_rest() {
    quiet();
    let mut failures = Failures::default();
    // The armed output is child 0's (in order: written to its place of a `Vec` gather's
    // outputs) or child 2's (out of order: held in its entry).
    for armed in [0, 2] {
        for shape in SHAPES {
            for mode in [Mode::Settle, Mode::FailFast] {
                for catch in [false, true] {
                    let what = format!("armed=out{armed}/{shape:?}/{mode:?}/catch={catch}");
                    let log = Log::default();
                    let tw = TestWaker::new();
                    let waker = tw.waker();
                    let kids = vec![
                        Kid::new(&log, 0).ready(1),
                        Kid::new(&log, 1),
                        Kid::new(&log, 2).ready(1),
                    ];
                    let kids = kids
                        .into_iter()
                        .map(|kid| {
                            if kid.index == armed {
                                kid.out_panics()
                            } else {
                                kid
                            }
                        })
                        .collect();
                    let cfg = Cfg {
                        catch,
                        ..Cfg::default()
                    };
                    let Some(mut subject) = build(shape, mode, cfg, kids) else {
                        continue;
                    };
                    failures.check(
                        &what,
                        matches!(subject.try_poll(&waker), Ok(Step::Pending)),
                        "first poll not pending",
                    );
                    failures.eq(
                        format!("{what}: drop"),
                        subject.try_drop(),
                        Err(format!("boom: drop out{armed}")),
                    );
                    failures.once(&what, &log, &["kid0", "kid1", "kid2", "out0", "out2"]);
                }
            }
        }
    }
    failures.assert_none();
}

#[test]
fn outputs_held_out_of_order_in_a_vec_gather_are_dropped_once_whatever_order() {
    quiet();
    // Child 3 then 1 finish first (held in their entries), then 0 (in place): the armed
    // output is each of them in turn.
    for armed in [0, 1, 3] {
        let log = Log::default();
        let tw = TestWaker::new();
        let waker = tw.waker();
        let mut kids: Vec<Kid> = (0..5).map(|i| Kid::new(&log, i)).collect();
        kids[armed].out_arm = Arm::Panic;
        kids[3].ready_at = Some(1);
        kids[1].ready_at = Some(2);
        kids[0].ready_at = Some(3);
        let mut g = Box::pin(gather(kids));
        for _ in 0..3 {
            assert!(
                try_run(|| g.as_mut().poll(&mut Context::from_waker(&waker)))
                    .unwrap()
                    .is_pending()
            );
        }
        assert_eq!(
            try_run(move || drop(g)),
            Err(format!("boom: drop out{armed}"))
        );
        let mut failures = Failures::default();
        failures.once(
            format!("armed=out{armed}"),
            &log,
            &[
                "kid0", "kid1", "kid2", "kid3", "kid4", "out0", "out1", "out3",
            ],
        );
        failures.assert_none();
        drop(waker);
        assert_eq!(tw.live(), 0);
    }
}

#[test]
fn an_outputs_panicking_drop_when_the_gathered_is_dropped_spares_the_rest() {
    quiet();
    fn kids(log: &Log) -> Vec<Kid> {
        vec![
            Kid::new(log, 0).ready(1),
            Kid::new(log, 1).ready(1).out_panics(),
            Kid::new(log, 2).ready(1),
        ]
    }
    let waker = TestWaker::new().waker();
    let cx = &mut Context::from_waker(&waker);
    let labels = ["kid0", "kid1", "kid2", "out0", "out1", "out2"];
    let mut failures = Failures::default();

    let log = Log::default();
    let Poll::Ready(gathered) = Box::pin(gather(kids(&log))).as_mut().poll(cx) else {
        panic!("not ready")
    };
    failures.eq(
        "Vec",
        try_run(move || drop(gathered)),
        Err("boom: drop out1".into()),
    );
    failures.once("Vec", &log, &labels);

    let log = Log::default();
    let array: [Kid; 3] = kids(&log).try_into().unwrap();
    let Poll::Ready(gathered) = Box::pin(gather(array)).as_mut().poll(cx) else {
        panic!("not ready")
    };
    failures.eq(
        "array",
        try_run(move || drop(gathered)),
        Err("boom: drop out1".into()),
    );
    failures.once("array", &log, &labels);

    for spilled in [false, true] {
        let log = Log::default();
        let mut all = kids(&log);
        if spilled {
            all.extend((3..6).map(|i| Kid::new(&log, i).ready(1)));
        }
        let Poll::Ready(gathered) = Box::pin(gather_iter(all)).as_mut().poll(cx) else {
            panic!("not ready")
        };
        // `into_result` drops the successes one by one as it looks for errors: none here,
        // so it hands them all back; drop that.
        let successes = gathered.into_result().unwrap();
        let what = format!("gather_iter spilled={spilled}");
        failures.eq(
            &what,
            try_run(move || drop(successes)),
            Err("boom: drop out1".into()),
        );
        failures.once(&what, &log, &labels);
    }
    failures.assert_none();
}

#[test]
fn into_result_with_errors_drops_every_success_once_even_if_one_drop_panics() {
    quiet();
    let log = Log::default();
    let waker = TestWaker::new().waker();
    let kids = vec![
        Kid::new(&log, 0).ready(1),
        Kid::new(&log, 1).ready(1).out_panics(),
        Kid::new(&log, 2).fails(1),
        Kid::new(&log, 3).ready(1),
    ];
    let Poll::Ready(gathered) = Box::pin(gather(kids))
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
    else {
        panic!("not ready")
    };
    assert_eq!(
        try_run(move || gathered.into_result().map(drop).map_err(drop)).err(),
        Some("boom: drop out1".to_string())
    );
    let mut failures = Failures::default();
    failures.once("into_result", &log, &["out0", "out1", "out3", "fail2"]);
    failures.assert_none();
}

#[test]
fn as_completed_dropped_part_way_after_the_deadline_drops_the_timeouts_it_kept() {
    quiet();
    let mut failures = Failures::default();
    for shape in SHAPES {
        for catch in [false, true] {
            let what = format!("{shape:?}/catch={catch}");
            let log = Log::default();
            let tw = TestWaker::new();
            let waker = tw.waker();
            let kids = vec![
                Kid::new(&log, 0).ready(1),
                Kid::new(&log, 1),
                Kid::new(&log, 2),
                Kid::new(&log, 3),
            ];
            let (timer, fired) = timer(&log);
            let cfg = Cfg {
                catch,
                timer: Some(timer),
                limit: None,
            };
            let Some(mut stream) = build(shape, Mode::Stream, cfg, kids) else {
                continue;
            };
            let before = timeout_drops();
            match stream.try_poll(&waker) {
                Ok(Step::Item(Some((0, Ok(out))))) => drop(out),
                _ => failures.check(&what, false, "first item is not child 0's"),
            }
            fired.store(true, SeqCst);
            match stream.try_poll(&waker) {
                Ok(Step::Item(Some((1, r)))) => {
                    // Contract 5: every cut-off child is gone when the first `TimedOut`
                    // comes out.
                    failures.once(
                        format!("{what}: at the first TimedOut"),
                        &log,
                        &["kid0", "kid1", "kid2", "kid3"],
                    );
                    failures.eq(&what, describe(r), "timeout1".to_string());
                }
                _ => failures.check(&what, false, "second item is not child 1's timeout"),
            }
            failures.eq(format!("{what}: drop"), stream.try_drop(), Ok(()));
            failures.eq(
                format!("{what}: TimedOuts dropped"),
                timeout_drops() - before,
                3,
            );
            failures.once(
                &what,
                &log,
                &["kid0", "kid1", "kid2", "kid3", "out0", "timer"],
            );
        }
    }
    failures.assert_none();
}

#[test]
fn as_completed_read_part_way_then_dropped_drops_the_rest_once() {
    quiet();
    let mut failures = Failures::default();
    for shape in SHAPES {
        for catch in [false, true] {
            let what = format!("{shape:?}/catch={catch}");
            let log = Log::default();
            let tw = TestWaker::new();
            let waker = tw.waker();
            let kids = vec![
                Kid::new(&log, 0).ready(2),
                Kid::new(&log, 1).ready(1),
                Kid::new(&log, 2).drop_panics(),
                Kid::new(&log, 3).ready(1),
            ];
            let cfg = Cfg {
                catch,
                ..Cfg::default()
            };
            let Some(mut stream) = build(shape, Mode::Stream, cfg, kids) else {
                continue;
            };
            match stream.try_poll(&waker) {
                Ok(Step::Item(Some((1, Ok(out))))) => drop(out),
                _ => failures.check(&what, false, "first item is not child 1's"),
            }
            failures.eq(
                format!("{what}: drop"),
                stream.try_drop(),
                Err("boom: drop kid2".to_string()),
            );
            failures.once(&what, &log, &["kid0", "kid1", "kid2", "kid3", "out1"]);
            failures.eq(format!("{what}: out3 drops"), log.count("out3") <= 1, true);
            drop(waker);
            failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);
        }
    }
    failures.assert_none();
}

// ---------------------------------------------------------------------------------------
// The timer.
// ---------------------------------------------------------------------------------------

#[test]
fn a_panicking_timer_poll_poisons_and_a_panicking_timer_drop_spares_the_children() {
    quiet();
    let mut failures = Failures::default();
    for_each_combination(|shape, mode, catch, deadline| {
        if !deadline {
            return;
        }
        let what = format!("{shape:?}/{mode:?}/catch={catch}");
        for drop_panics in [false, true] {
            let log = Log::default();
            let tw = TestWaker::new();
            let waker = tw.waker();
            let kids = vec![
                Kid::new(&log, 0),
                Kid::new(&log, 1).ready(1),
                Kid::new(&log, 2),
            ];
            let (mut timer, _) = timer(&log);
            if drop_panics {
                timer._life.armed = Arm::Panic;
            } else {
                timer.panic_poll = true;
            }
            let cfg = Cfg {
                catch,
                timer: Some(timer),
                limit: None,
            };
            let Some(mut subject) = build(shape, mode, cfg, kids) else {
                return;
            };
            if drop_panics {
                let _ = subject.try_poll(&waker);
                failures.eq(
                    format!("{what}: drop"),
                    subject.try_drop(),
                    Err("boom: drop timer".to_string()),
                );
            } else {
                let first = subject.try_poll(&waker);
                // As-completed yields child 1 before it polls the timer.
                if mode == Mode::Stream {
                    failures.check(
                        &what,
                        matches!(first, Ok(Step::Item(Some((1, _))))),
                        "first item is not child 1's",
                    );
                } else {
                    failures.eq(
                        format!("{what}: poll"),
                        first.err(),
                        Some("boom: timer poll".to_string()),
                    );
                }
                if mode == Mode::Stream {
                    failures.eq(
                        format!("{what}: poll"),
                        subject.try_poll(&waker).err(),
                        Some("boom: timer poll".to_string()),
                    );
                }
                failures.eq(
                    format!("{what}: poll of the poisoned gather"),
                    subject.try_poll(&waker).err(),
                    Some(POISONED.to_string()),
                );
                failures.eq(format!("{what}: drop"), subject.try_drop(), Ok(()));
            }
            failures.once(
                format!("{what}/timer drop panics={drop_panics}"),
                &log,
                &["kid0", "kid1", "kid2", "out1", "timer"],
            );
        }
    });
    failures.assert_none();
}

// ---------------------------------------------------------------------------------------
// The executor's waker, called by the gather.
// ---------------------------------------------------------------------------------------

#[test]
fn a_panicking_clone_of_the_executors_waker_when_the_gather_registers_it_poisons() {
    quiet();
    let mut failures = Failures::default();
    for shape in SHAPES {
        for mode in MODES {
            for catch in [false, true] {
                for limit in [None, Some(2)] {
                    let what = format!("{shape:?}/{mode:?}/catch={catch}/limit={limit:?}");
                    let log = Log::default();
                    let tw = TestWaker::new();
                    let waker = tw.waker();
                    tw.panic_on_clone(true);
                    let kids = vec![Kid::new(&log, 0), Kid::new(&log, 1), Kid::new(&log, 2)];
                    let cfg = Cfg {
                        catch,
                        timer: None,
                        limit,
                    };
                    let Some(mut subject) = build(shape, mode, cfg, kids) else {
                        continue;
                    };
                    let first = subject.try_poll(&waker);
                    if shape.per_child(3, limit) {
                        failures.eq(
                            format!("{what}: poll"),
                            first.err(),
                            Some("boom: waker clone".to_string()),
                        );
                        failures.eq(
                            format!("{what}: poll of the poisoned gather"),
                            subject.try_poll(&waker).err(),
                            Some(POISONED.to_string()),
                        );
                    } else {
                        failures.check(&what, matches!(first, Ok(Step::Pending)), "not pending");
                    }
                    failures.eq(format!("{what}: drop"), subject.try_drop(), Ok(()));
                    failures.once(&what, &log, &["kid0", "kid1", "kid2"]);
                    tw.panic_on_clone(false);
                    drop(waker);
                    failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);
                }
            }
        }
    }
    failures.assert_none();
}

/// Under Miri, the tests of more than 128 children run a few (shape, mode) pairs only:
/// each run polls hundreds of children.
fn miri_skips(shape: Shape, mode: Mode) -> bool {
    cfg!(miri)
        && !matches!(
            (shape, mode),
            (Shape::Array, Mode::Settle)
                | (Shape::Vec, Mode::Stream)
                | (Shape::Vec, Mode::FailFast)
                | (Shape::Spilled, Mode::Settle)
                | (Shape::Iter, Mode::Stream)
                | (Shape::Iter, Mode::FailFast)
        )
}

#[test]
fn a_panicking_self_wake_over_the_budget_of_128_polls_poisons_and_nothing_leaks() {
    quiet();
    let mut failures = Failures::default();
    for shape in [Shape::Array, Shape::Vec, Shape::Spilled, Shape::Iter] {
        for mode in MODES {
            if miri_skips(shape, mode) {
                continue;
            }
            for catch in [false, true] {
                let what = format!("{shape:?}/{mode:?}/catch={catch}");
                let log = Log::default();
                let tw = TestWaker::new();
                let waker = tw.waker();
                tw.panic_on_wakes(usize::MAX);
                let kids: Vec<Kid> = (0..130).map(|i| Kid::new(&log, i)).collect();
                let cfg = Cfg {
                    catch,
                    ..Cfg::default()
                };
                let Some(mut subject) = build(shape, mode, cfg, kids) else {
                    continue;
                };
                failures.eq(
                    format!("{what}: poll"),
                    subject.try_poll(&waker).err(),
                    Some("boom: wake".to_string()),
                );
                failures.eq(
                    format!("{what}: poll of the poisoned gather"),
                    subject.try_poll(&waker).err(),
                    Some(POISONED.to_string()),
                );
                failures.eq(format!("{what}: drop"), subject.try_drop(), Ok(()));
                let labels: Vec<String> = (0..130).map(|i| format!("kid{i}")).collect();
                let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                failures.once(&what, &log, &labels);
                drop(waker);
                failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);
            }
        }
    }
    failures.assert_none();
}

#[test]
fn a_panicking_drop_of_the_executors_waker_reaches_the_gathers_drop_or_its_poll() {
    quiet();
    let mut failures = Failures::default();
    for shape in SHAPES {
        for mode in MODES {
            for limit in [None, Some(2)] {
                let what = format!("{shape:?}/{mode:?}/limit={limit:?}");
                let per_child = shape.per_child(3, limit);
                // Dropped with the gather.
                let log = Log::default();
                let tw = TestWaker::new();
                let waker = tw.waker();
                let kids = vec![Kid::new(&log, 0), Kid::new(&log, 1), Kid::new(&log, 2)];
                let cfg = Cfg {
                    limit,
                    ..Cfg::default()
                };
                let Some(mut subject) = build(shape, mode, cfg, kids) else {
                    continue;
                };
                let _ = subject.try_poll(&waker);
                tw.panic_on_drop(true);
                failures.eq(
                    format!("{what}: drop"),
                    subject.try_drop(),
                    if per_child {
                        Err("boom: waker drop".to_string())
                    } else {
                        Ok(())
                    },
                );
                failures.once(&what, &log, &["kid0", "kid1", "kid2"]);
                tw.panic_on_drop(false);
                drop(waker);
                failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);

                // Replaced by another executor's waker.
                let log = Log::default();
                let (a, b) = (TestWaker::new(), TestWaker::new());
                let (wa, wb) = (a.waker(), b.waker());
                let kids = vec![Kid::new(&log, 0), Kid::new(&log, 1), Kid::new(&log, 2)];
                let cfg = Cfg {
                    limit,
                    ..Cfg::default()
                };
                let mut subject = build(shape, mode, cfg, kids).unwrap();
                let _ = subject.try_poll(&wa);
                a.panic_on_drop(true);
                let second = subject.try_poll(&wb);
                if per_child {
                    failures.eq(
                        format!("{what}: poll with a new waker"),
                        second.err(),
                        Some("boom: waker drop".to_string()),
                    );
                    failures.eq(
                        format!("{what}: poll of the poisoned gather"),
                        subject.try_poll(&wb).err(),
                        Some(POISONED.to_string()),
                    );
                } else {
                    failures.check(&what, matches!(second, Ok(Step::Pending)), "not pending");
                }
                a.panic_on_drop(false);
                failures.eq(format!("{what}: drop"), subject.try_drop(), Ok(()));
                failures.once(&what, &log, &["kid0", "kid1", "kid2"]);
                drop((wa, wb));
                failures.eq(format!("{what}: first waker alive"), a.live(), 0);
                failures.eq(format!("{what}: second waker alive"), b.live(), 0);
            }
        }
    }
    failures.assert_none();
}

// ---------------------------------------------------------------------------------------
// The executor's waker, reached through a child's waker.
// ---------------------------------------------------------------------------------------

#[test]
fn a_panicking_executor_wake_from_inside_a_childs_poll_is_that_childs_panic() {
    quiet();
    let mut failures = Failures::default();
    for shape in SHAPES {
        for mode in [Mode::Settle, Mode::Stream] {
            for deadline in [false, true] {
                let what = format!("{shape:?}/{mode:?}/deadline={deadline}");
                let log = Log::default();
                let tw = TestWaker::new();
                let waker = tw.waker();
                tw.panic_on_wakes(usize::MAX);
                let kids = vec![
                    Kid::new(&log, 0).wakes(),
                    Kid::new(&log, 1).ready(1),
                    Kid::new(&log, 2).ready(1),
                ];
                let cfg = Cfg {
                    catch: true,
                    timer: deadline.then(|| timer(&log).0),
                    limit: None,
                };
                let Some(subject) = build(shape, mode, cfg, kids) else {
                    continue;
                };
                let want: Vec<String> = match mode {
                    Mode::Stream => vec![
                        "0:panic0:boom: wake".into(),
                        "1:ok:out1".into(),
                        "2:ok:out2".into(),
                    ],
                    _ => vec![
                        "panic0:boom: wake".into(),
                        "ok:out1".into(),
                        "ok:out2".into(),
                    ],
                };
                failures.eq(&what, subject.run(&waker, 10), Ok(want));
                failures.once(&what, &log, &["kid0", "kid1", "kid2", "out1", "out2"]);
                drop(waker);
                failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);
            }
        }
    }
    failures.assert_none();
}

/// Contract 3: a panic of the executor's waker reached from inside a child's poll "counts
/// as that child's panic", "the siblings go on"; contract 4 lists when the gather itself
/// calls the waker (registering it, waking itself over its budget of 128 polls). Here
/// child 0 wakes its waker in its poll (the executor's wake panics: child 0's outcome),
/// child 1 stays pending, and the gather is far under its budget: the poll should return
/// `Pending`, as it does for arrays.
///
/// Regression (fixed), for per-child-waker shapes without a limit: at the end of the pass,
/// `unlimited_pass` (now src/engine/per_child.rs) calls `cx.waker().wake_by_ref()` whenever
/// `Block::has_ready` sees a node on the shared ready stack, and child 0's node is there
/// (pushed by its own wake during this pass, and left there by the panic). So the gather
/// wakes the executor itself although it is not over budget; that wake panics outside
/// any child and poisons the gather. (`limited_pass` checks `has_ready` only when over
/// budget, so a limit hides it. Without panics, the same path wakes the executor twice
/// for one self-wake: once from the push, once from the gather.)
#[test]
fn a_panicking_executor_wake_from_a_childs_poll_leaves_its_pending_siblings_going() {
    quiet();
    let mut failures = Failures::default();
    for shape in SHAPES {
        for limit in [None, Some(3)] {
            let what = format!("{shape:?}/limit={limit:?}");
            let log = Log::default();
            let tw = TestWaker::new();
            let waker = tw.waker();
            tw.panic_on_wakes(usize::MAX);
            let kids = vec![
                Kid::new(&log, 0).wakes(),
                Kid::new(&log, 1),
                Kid::new(&log, 2),
            ];
            let cfg = Cfg {
                catch: true,
                timer: None,
                limit,
            };
            let Some(mut subject) = build(shape, Mode::Settle, cfg, kids) else {
                continue;
            };
            let first = subject.try_poll(&waker);
            failures.check(
                &what,
                matches!(first, Ok(Step::Pending)),
                format!("first poll: {:?}", first.err()),
            );
            tw.panic_on_wakes(0);
            failures.eq(format!("{what}: drop"), subject.try_drop(), Ok(()));
            failures.once(&what, &log, &["kid0", "kid1", "kid2"]);
        }
    }
    failures.assert_none();
}

#[test]
fn a_childs_waker_woken_outside_a_poll_hands_the_executors_panic_to_the_waker() {
    quiet();
    let mut failures = Failures::default();
    for shape in SHAPES {
        for by_value in [false, true] {
            let what = format!("{shape:?}/by_value={by_value}");
            let log = Log::default();
            let stash = Stash::default();
            let tw = TestWaker::new();
            let waker = tw.waker();
            let kids = vec![
                Kid::new(&log, 0).stash(&stash),
                Kid::new(&log, 1).stash(&stash),
                Kid::new(&log, 2).stash(&stash),
            ];
            let Some(mut subject) = build(shape, Mode::Settle, Cfg::default(), kids) else {
                continue;
            };
            let _ = subject.try_poll(&waker);
            tw.panic_on_wakes(usize::MAX);
            let (_, child_waker) = stash.lock().unwrap().remove(0);
            let woken = if by_value {
                try_run(move || child_waker.wake())
            } else {
                let woken = try_run(|| child_waker.wake_by_ref());
                drop(child_waker);
                woken
            };
            failures.eq(&what, woken, Err("boom: wake".to_string()));
            tw.panic_on_wakes(0);
            failures.eq(format!("{what}: drop"), subject.try_drop(), Ok(()));
            failures.once(&what, &log, &["kid0", "kid1", "kid2"]);
            stash.lock().unwrap().clear();
            drop(waker);
            failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);
        }
    }
    failures.assert_none();
}

/// A wake is lost: after one wake of the executor's waker panicked, a later wake of
/// another child, which returns normally, does not wake the executor either; the gather
/// then waits for ever. Arrays and inline `SmallVec`s (whose children hold the
/// executor's waker itself) pass it on.
///
/// Regression (fixed), for per-child-waker shapes (`Vec`, spilled `SmallVec`/`gather_iter`):
/// `Block::wake_by_ref` (now src/raw/block.rs) pushes the child's node onto the ready
/// stack, then wakes the executor only if the stack was empty. The panicking wake left a
/// node on the stack (it is not taken back), so every later wake finds the stack
/// non-empty and wakes nobody, until something else polls the gather. (The `AGAIN` bits a
/// concurrent wake set are also cleared by the `Release` guard of `AtomicWaker::wake`.)
#[test]
fn after_a_panicking_executor_wake_a_later_childs_wake_still_wakes_the_executor() {
    quiet();
    let mut failures = Failures::default();
    for shape in SHAPES {
        let log = Log::default();
        let stash = Stash::default();
        let tw = TestWaker::new();
        let waker = tw.waker();
        let kids = vec![
            Kid::new(&log, 0).stash(&stash),
            Kid::new(&log, 1).stash(&stash),
            Kid::new(&log, 2).stash(&stash),
        ];
        let mut subject = build(shape, Mode::Settle, Cfg::default(), kids).unwrap();
        let _ = subject.try_poll(&waker);
        let wakers: Vec<Waker> = stash.lock().unwrap().drain(..).map(|(_, w)| w).collect();
        tw.panic_on_wakes(1);
        assert_eq!(
            try_run(|| wakers[0].wake_by_ref()),
            Err("boom: wake".into())
        );
        let before = tw.wakes();
        wakers[1].wake_by_ref();
        failures.eq(
            format!("{shape:?}: executor wakes after child 1's wake"),
            tw.wakes() - before,
            1,
        );
        drop(wakers);
        drop(subject);
    }
    failures.assert_none();
}

/// The `AtomicWaker` half of the lost wake above: a wake that arrives (from the gather's
/// thread) while another thread is inside the executor's `wake_by_ref` asks that thread
/// for one more wake (`AGAIN`). If the executor's wake panics there, the wake is not
/// retried during the unwind (a second panic would abort): it is owed, and the next wake
/// of any child pays it, even one whose push would otherwise count on an earlier wake.
/// (The control run, where the first wake does not panic, wakes the executor at once.)
#[test]
fn a_wake_asked_of_a_panicking_executor_wake_is_paid_by_the_next_childs_wake() {
    quiet();
    let mut failures = Failures::default();
    for (shape, limit) in PER_CHILD {
        for panics in [false, true] {
            let what = format!("{shape:?}/limit={limit:?}/first wake panics={panics}");
            let log = Log::default();
            let stash = Stash::default();
            let tw = TestWaker::new();
            let waker = tw.waker();
            let kids: Vec<Kid> = (0..5).map(|i| Kid::new(&log, i).stash(&stash)).collect();
            let cfg = Cfg {
                // Room for the two children woken below.
                limit: limit.map(|n| n.max(2)),
                ..Cfg::default()
            };
            let mut subject = build(shape, Mode::Settle, cfg, kids).unwrap();
            assert!(matches!(subject.try_poll(&waker), Ok(Step::Pending)));
            let mut wakers: Vec<Waker> = stash.lock().unwrap().drain(..).map(|(_, w)| w).collect();
            let first = wakers.remove(0);
            let first_again = first.clone();
            let gate = Arc::new(Barrier::new(2));
            tw.gate(Some(gate.clone()));
            let waking = thread::spawn(move || {
                let woken = try_run(|| first.wake_by_ref());
                drop(first);
                woken
            });
            gate.wait(); // the other thread is inside the executor's wake
            tw.gate(None);
            // The gather runs child 0 (taking the ready stack), then child 1 is woken: its
            // push finds the stack empty and asks the wake under way for one more.
            assert!(matches!(subject.try_poll(&waker), Ok(Step::Pending)));
            wakers[0].wake_by_ref();
            if panics {
                tw.panic_on_wakes(1);
            }
            gate.wait();
            let woken = waking.join().unwrap();
            failures.eq(
                format!("{what}: first wake"),
                woken,
                if panics {
                    Err("boom: wake".to_string())
                } else {
                    Ok(())
                },
            );
            if panics {
                // Owed: the next wake of any child (child 0 again, polled since) reaches the
                // executor, though child 1 is still on the ready stack.
                let before = tw.wakes();
                first_again.wake_by_ref();
                failures.check(
                    &what,
                    tw.wakes() > before,
                    "the next child's wake did not pay the owed wake",
                );
            } else {
                failures.check(
                    &what,
                    tw.wakes() >= 1,
                    "the executor was not woken for child 1's wake",
                );
            }
            drop((wakers, first_again));
            drop(subject);
            drop(waker);
            assert_eq!(tw.live(), 0);
        }
    }
    failures.assert_none();
}

#[test]
fn a_panicking_executor_clone_in_a_childs_poll_is_that_childs_panic() {
    quiet();
    // Arrays, tuples and inline `SmallVec`s hand the executor's waker itself to their
    // children: a child that clones it calls the executor's `clone`.
    let mut failures = Failures::default();
    for shape in [Shape::Array, Shape::Tuple, Shape::Inline, Shape::Iter] {
        for mode in [Mode::Settle, Mode::FailFast] {
            let what = format!("{shape:?}/{mode:?}");
            let log = Log::default();
            let stash = Stash::default();
            let tw = TestWaker::new();
            let waker = tw.waker();
            tw.panic_on_clone(true);
            let kids = vec![
                Kid::new(&log, 0).ready(1),
                Kid::new(&log, 1).stash(&stash),
                Kid::new(&log, 2).ready(2),
            ];
            let cfg = Cfg {
                catch: true,
                ..Cfg::default()
            };
            let subject = build(shape, mode, cfg, kids).unwrap();
            let want = match mode {
                Mode::FailFast => vec!["err:[1:panic1:boom: waker clone]".to_string()],
                _ => vec![
                    "ok:out0".to_string(),
                    "panic1:boom: waker clone".to_string(),
                    "ok:out2".to_string(),
                ],
            };
            failures.eq(&what, subject.run(&waker, 10), Ok(want));
            failures.once(&what, &log, &["kid0", "kid1", "kid2", "out0"]);
            tw.panic_on_clone(false);
            drop(waker);
            failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);
        }
    }
    failures.assert_none();
}

#[test]
fn a_childs_waker_woken_after_the_gather_is_gone_never_reaches_the_executor() {
    quiet();
    for shape in SHAPES {
        let log = Log::default();
        let stash = Stash::default();
        let tw = TestWaker::new();
        let waker = tw.waker();
        let kids = vec![
            Kid::new(&log, 0).stash(&stash),
            Kid::new(&log, 1).stash(&stash),
        ];
        let Some(mut subject) = build(shape, Mode::Settle, Cfg::default(), kids) else {
            continue;
        };
        let _ = subject.try_poll(&waker);
        let wakers: Vec<Waker> = stash.lock().unwrap().drain(..).map(|(_, w)| w).collect();
        drop(subject);
        if shape.per_child(2, None) {
            // The executor's waker is gone with the gather: a wake reaches nothing.
            assert_eq!(tw.live(), 1, "{shape:?}");
            tw.panic_on_wakes(usize::MAX);
            tw.panic_on_drop(true);
            let handle = thread::spawn(move || {
                let [a, b]: [Waker; 2] = wakers.try_into().unwrap();
                a.wake_by_ref();
                a.wake();
                b.wake();
            });
            handle.join().unwrap();
            tw.panic_on_drop(false);
        } else {
            drop(wakers);
        }
        drop(waker);
        assert_eq!(tw.live(), 0, "{shape:?}");
        assert_eq!(log.all().len(), 2);
    }
}

// ---------------------------------------------------------------------------------------
// The parent waker is not kept alive by the children's wakers (contract 6).
// ---------------------------------------------------------------------------------------

/// The shapes whose children get wakers of their own, with the limit that makes it so.
/// (`Vec` and `Spilled` ask for them; `FewVec` and `Iter` get them under a limit, or past
/// 30 children.)
const PER_CHILD: [(Shape, Option<usize>); 5] = [
    (Shape::Vec, None),
    (Shape::Spilled, None),
    (Shape::Iter, Some(8)),
    (Shape::Inline, Some(8)),
    (Shape::Vec, Some(1)),
];

/// Contract 6 with a child whose drop panics as the gather is dropped, while another
/// child's waker lives on (as a reactor keeps it).
///
/// Regression (fixed), for `Vec` gathers: `Block`'s `Drop` (now src/raw/block.rs) drops the payloads
/// (the children) through `for_each_to_the_end`, which resumes the panic once every
/// payload is dropped, so `self.header().parent.clear()` after it never runs. The
/// executor's waker stays in the header until the last child waker goes. (Spilled
/// `SmallVec`s pass: their block holds no children, the children's panic comes out of the
/// slots' drop and the block's drop runs in full during the unwinding.)
#[test]
fn a_panicking_child_drop_does_not_keep_the_executors_waker_alive() {
    quiet();
    let mut failures = Failures::default();
    for (shape, limit) in PER_CHILD {
        let what = format!("{shape:?}/limit={limit:?}");
        let log = Log::default();
        let stash = Stash::default();
        let tw = TestWaker::new();
        let waker = tw.waker();
        let kids: Vec<Kid> = (0..5)
            .map(|i| match i {
                0 => Kid::new(&log, i).stash(&stash),
                1 => Kid::new(&log, i).drop_panics(),
                _ => Kid::new(&log, i),
            })
            .collect();
        let cfg = Cfg {
            limit,
            ..Cfg::default()
        };
        let mut subject = build(shape, Mode::Settle, cfg, kids).unwrap();
        let _ = subject.try_poll(&waker);
        failures.eq(
            format!("{what}: drop"),
            subject.try_drop(),
            Err("boom: drop kid1".to_string()),
        );
        failures.once(&what, &log, &["kid0", "kid1", "kid2", "kid3", "kid4"]);
        failures.eq(
            format!("{what}: executor wakers alive besides the test's, with the gather gone"),
            tw.live() - 1,
            0,
        );
        stash.lock().unwrap().clear();
        drop(waker);
        failures.eq(
            format!("{what}: executor wakers alive at the end"),
            tw.live(),
            0,
        );
    }
    failures.assert_none();
}

/// Runs the `CLEAR` hand-off: a thread wakes child 0's waker and is stopped inside the
/// executor's `wake_by_ref`; meanwhile the gather is dropped; then the wake goes on (and
/// `then` says how it ends). Returns what the waking thread saw, and how many executor
/// wakers are alive besides the test's once it is done (the child waker still held).
fn clear_hand_off(
    shape: Shape,
    limit: Option<usize>,
    then: impl FnOnce(&TestWaker),
) -> (Result<(), String>, isize) {
    let log = Log::default();
    let stash = Stash::default();
    let tw = TestWaker::new();
    let waker = tw.waker();
    let kids: Vec<Kid> = (0..5).map(|i| Kid::new(&log, i).stash(&stash)).collect();
    let cfg = Cfg {
        limit,
        ..Cfg::default()
    };
    let mut subject = build(shape, Mode::Settle, cfg, kids).unwrap();
    assert!(matches!(subject.try_poll(&waker), Ok(Step::Pending)));
    let (_, child_waker) = stash.lock().unwrap().remove(0);
    let gate = Arc::new(Barrier::new(2));
    tw.gate(Some(gate.clone()));
    let waking = thread::spawn(move || {
        let woken = try_run(|| child_waker.wake_by_ref());
        (woken, child_waker)
    });
    gate.wait(); // the waking thread is inside the executor's wake
    tw.gate(None);
    assert_eq!(subject.try_drop(), Ok(()));
    assert_eq!(log.all().len(), 5);
    then(&tw);
    gate.wait(); // let it go on
    let (woken, child_waker) = waking.join().unwrap();
    let alive = tw.live() - 1;
    tw.panic_on_wakes(0);
    tw.panic_on_drop(false);
    drop(child_waker);
    stash.lock().unwrap().clear();
    drop(waker);
    assert_eq!(tw.live(), 0);
    (woken, alive)
}

#[test]
fn the_clear_hand_off_drops_the_executors_waker_in_the_waking_thread() {
    quiet();
    let mut failures = Failures::default();
    for (shape, limit) in PER_CHILD {
        let what = format!("{shape:?}/limit={limit:?}");
        let (woken, alive) = clear_hand_off(shape, limit, |_| {});
        failures.eq(format!("{what}: wake"), woken, Ok(()));
        failures.eq(format!("{what}: executor wakers alive"), alive, 0);
        // The executor's waker's drop panics in the waking thread: it gets the panic.
        let (woken, alive) = clear_hand_off(shape, limit, |tw| tw.panic_on_drop(true));
        failures.eq(
            format!("{what}: wake"),
            woken,
            Err("boom: waker drop".to_string()),
        );
        failures.eq(format!("{what}: executor wakers alive"), alive, 0);
    }
    failures.assert_none();
}

/// Contract 6: the executor's waker is dropped once the gather is gone "even if a child's
/// waker is being woken on another thread at that very moment (the waking thread drops
/// it when it is done)", here when that wake panics.
///
/// Regression (fixed): the `Release` guard of `AtomicWaker::wake` (now src/raw/atomic_waker.rs)
/// clears `WAKING | AGAIN` and leaves `CLEAR` set, but does not take the waker out of the
/// slot: the waking thread, whose turn it was to drop it, does not, and the executor's
/// waker lives on in the header while any child's waker does (until some later wake or
/// the block's last reference drops it).
#[test]
fn the_clear_hand_off_drops_the_executors_waker_even_if_the_wake_panics() {
    quiet();
    let mut failures = Failures::default();
    for (shape, limit) in PER_CHILD {
        let what = format!("{shape:?}/limit={limit:?}");
        let (woken, alive) = clear_hand_off(shape, limit, |tw| tw.panic_on_wakes(1));
        failures.eq(
            format!("{what}: wake"),
            woken,
            Err("boom: wake".to_string()),
        );
        failures.eq(format!("{what}: executor wakers alive"), alive, 0);
    }
    failures.assert_none();
}

// ---------------------------------------------------------------------------------------
// Sizes: empty, one child, more than a poll's budget; `gather_iter`'s construction.
// ---------------------------------------------------------------------------------------

#[test]
fn empty_and_one_element_gathers_in_every_combination() {
    quiet();
    let mut failures = Failures::default();
    for_each_combination(|shape, mode, catch, deadline| {
        for limit in [None, Some(1)] {
            let what =
                format!("{shape:?}/{mode:?}/catch={catch}/deadline={deadline}/limit={limit:?}");
            let tw = TestWaker::new();
            let waker = tw.waker();
            // Empty.
            let log = Log::default();
            let cfg = Cfg {
                catch,
                timer: deadline.then(|| timer(&log).0),
                limit,
            };
            if let Some(subject) = build(shape, mode, cfg, Vec::new()) {
                failures.eq(format!("{what}: empty"), subject.run(&waker, 2), Ok(vec![]));
            }
            // One child, that panics in its poll and in its drop.
            let log = Log::default();
            let cfg = Cfg {
                catch,
                timer: deadline.then(|| timer(&log).0),
                limit,
            };
            let kids = vec![Kid::new(&log, 0).panics(1).drop_panics()];
            if let Some(subject) = build(shape, mode, cfg, kids) {
                let got = subject.run(&waker, 3);
                let want = match (catch, mode) {
                    (false, _) => Err("boom: poll kid0; drop: boom: drop kid0".to_string()),
                    (true, Mode::Settle) => Ok(vec!["panic0:boom: poll kid0".to_string()]),
                    (true, Mode::FailFast) => {
                        Ok(vec!["err:[0:panic0:boom: poll kid0]".to_string()])
                    }
                    (true, Mode::Stream) => Ok(vec!["0:panic0:boom: poll kid0".to_string()]),
                };
                // Without catch_panics the poll's panic poisons the gather, and the child's
                // drop panics when `run` drops it.
                failures.eq(format!("{what}: one"), got, want);
                failures.once(format!("{what}: one"), &log, &["kid0"]);
            }
            // One child that finishes at once.
            let log = Log::default();
            let cfg = Cfg {
                catch,
                timer: deadline.then(|| timer(&log).0),
                limit,
            };
            if let Some(subject) = build(shape, mode, cfg, vec![Kid::new(&log, 0).ready(1)]) {
                let want = match mode {
                    Mode::Stream => vec!["0:ok:out0".to_string()],
                    _ => vec!["ok:out0".to_string()],
                };
                failures.eq(format!("{what}: one ok"), subject.run(&waker, 3), Ok(want));
                failures.once(format!("{what}: one ok"), &log, &["kid0", "out0"]);
            }
            drop(waker);
            failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);
        }
    });
    failures.assert_none();
}

#[test]
fn more_children_than_a_polls_budget_with_panics_everywhere() {
    quiet();
    const N: usize = 130;
    let mut failures = Failures::default();
    for shape in [Shape::Array, Shape::Vec, Shape::Spilled, Shape::Iter] {
        for mode in [Mode::Settle, Mode::Stream] {
            if miri_skips(shape, mode) {
                continue;
            }
            for limit in [None, Some(100)] {
                let what = format!("{shape:?}/{mode:?}/limit={limit:?}");
                let log = Log::default();
                let tw = TestWaker::new();
                let waker = tw.waker();
                let mut want = Vec::new();
                let mut labels = Vec::new();
                let kids: Vec<Kid> = (0..N)
                    .map(|i| {
                        labels.push(format!("kid{i}"));
                        let kid = Kid::new(&log, i);
                        if i % 7 == 3 {
                            want.push(format!("panic{i}:boom: poll kid{i}"));
                            kid.wakes().panics(1 + i % 2)
                        } else if i % 5 == 1 {
                            want.push(format!("panic{i}:boom: drop kid{i}"));
                            labels.push(format!("out{i}"));
                            kid.ready(1 + i % 3).drop_panics()
                        } else {
                            want.push(format!("ok:out{i}"));
                            labels.push(format!("out{i}"));
                            kid.ready(1 + i % 3)
                        }
                    })
                    .collect();
                let cfg = Cfg {
                    catch: true,
                    timer: None,
                    limit,
                };
                let Some(subject) = build(shape, mode, cfg, kids) else {
                    continue;
                };
                let got = subject.run(&waker, 500).map(|v| {
                    if mode == Mode::Stream {
                        let mut v: Vec<(usize, String)> = v
                            .into_iter()
                            .map(|s| {
                                let (i, rest) = s.split_once(':').unwrap();
                                (i.parse().unwrap(), rest.to_string())
                            })
                            .collect();
                        v.sort();
                        v.into_iter().map(|(_, s)| s).collect()
                    } else {
                        v
                    }
                });
                failures.eq(&what, got, Ok(want));
                let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                failures.once(&what, &log, &labels);
                drop(waker);
                failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);
            }
        }
    }
    failures.assert_none();
}

#[test]
fn a_panic_past_the_first_polls_budget_poisons_and_drops_everything_once() {
    quiet();
    let mut failures = Failures::default();
    for shape in [Shape::Array, Shape::Vec, Shape::Spilled, Shape::Iter] {
        for mode in MODES {
            if miri_skips(shape, mode) {
                continue;
            }
            let what = format!("{shape:?}/{mode:?}");
            let log = Log::default();
            let tw = TestWaker::new();
            let waker = tw.waker();
            let kids: Vec<Kid> = (0..130)
                .map(|i| match i {
                    129 => Kid::new(&log, i).panics(1),
                    i if i % 2 == 0 => Kid::new(&log, i).ready(1),
                    _ => Kid::new(&log, i),
                })
                .collect();
            let Some(mut subject) = build(shape, mode, Cfg::default(), kids) else {
                continue;
            };
            let mut result = Ok(Step::Pending);
            for _ in 0..200 {
                result = subject.try_poll(&waker);
                if !matches!(result, Ok(Step::Pending | Step::Item(Some(_)))) {
                    break;
                }
            }
            failures.eq(&what, result.err(), Some("boom: poll kid129".to_string()));
            failures.eq(format!("{what}: drop"), subject.try_drop(), Ok(()));
            let mut labels: Vec<String> = (0..130).map(|i| format!("kid{i}")).collect();
            labels.extend((0..130).step_by(2).map(|i| format!("out{i}")));
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            failures.once(&what, &log, &labels);
            drop(waker);
            failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);
        }
    }
    failures.assert_none();
}

#[test]
fn gather_iter_whose_iterator_panics_part_way_drops_what_it_made_and_is_poisoned() {
    quiet();
    // Without a limit the iterator is read out at the first poll; under `limit(2)` as
    // children finish (every child here is ready at its first poll, so all of them have
    // finished when the iterator panics, and their outputs are dropped).
    for (len, limit) in [(3, None), (7, None), (3, Some(2)), (7, Some(2))] {
        let what = format!("len {len}, limit {limit:?}");
        let log = Log::default();
        let made = std::cell::Cell::new(0);
        let children = (0..len + 1).map(|i| {
            if i == len {
                panic!("boom: iterator");
            }
            made.set(made.get() + 1);
            let kid = Kid::new(&log, i);
            if limit.is_some() {
                kid.ready(1)
            } else {
                kid
            }
        });
        let gather = gather_iter(children);
        let mut gather = Box::pin(match limit {
            Some(n) => gather.limit(n),
            None => gather,
        });
        assert_eq!(
            made.get(),
            0,
            "{what}: nothing is made before the first poll"
        );
        let cx = &mut Context::from_waker(Waker::noop());
        let polled = try_run(|| gather.as_mut().poll(cx).is_ready());
        assert_eq!(polled.err().as_deref(), Some("boom: iterator"), "{what}");
        let again = try_run(|| gather.as_mut().poll(cx).is_ready());
        assert!(
            again.unwrap_err().starts_with("`Gather` polled after"),
            "{what}: poisoned"
        );
        drop(gather);
        let mut drops = log.all();
        drops.sort();
        let mut want: Vec<String> = (0..len).map(|i| format!("kid{i}")).collect();
        if limit.is_some() {
            want.extend((0..len).map(|i| format!("out{i}")));
        }
        want.sort();
        assert_eq!(
            drops, want,
            "{what}: every child made, and output, dropped once"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Poisoning, and the exact size of results (contract 7).
// ---------------------------------------------------------------------------------------

#[test]
fn a_child_whose_drop_wakes_a_panicking_executor_spares_its_siblings() {
    quiet();
    // Child 1 wakes its kept waker (by value) in its drop; the executor's wake panics,
    // through that drop, as the gather is dropped. Every child is still dropped once, and
    // nothing keeps a reference (Miri checks the blocks are freed).
    let mut failures = Failures::default();
    for shape in SHAPES {
        let what = format!("{shape:?}");
        let log = Log::default();
        let tw = TestWaker::new();
        let waker = tw.waker();
        let kids: Vec<Kid> = (0..5)
            .map(|i| match i {
                1 => Kid::new(&log, i).wakes_on_drop(),
                _ => Kid::new(&log, i),
            })
            .take(if shape == Shape::Tuple { 3 } else { 5 })
            .collect();
        let labels = ["kid0", "kid1", "kid2", "kid3", "kid4"];
        let labels = &labels[..kids.len()];
        let Some(mut subject) = build(shape, Mode::Settle, Cfg::default(), kids) else {
            continue;
        };
        let _ = subject.try_poll(&waker);
        tw.panic_on_wakes(usize::MAX);
        failures.eq(&what, subject.try_drop(), Err("boom: wake".to_string()));
        tw.panic_on_wakes(0);
        failures.once(&what, &log, labels);
        drop(waker);
        failures.eq(format!("{what}: executor wakers alive"), tw.live(), 0);
    }
    failures.assert_none();
}

/// Polls `future` until it is ready (at most 100 polls).
fn drive<F: Future>(future: F, waker: &Waker) -> F::Output {
    let mut future = Box::pin(future);
    for _ in 0..100 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(waker)) {
            return out;
        }
    }
    panic!("not ready after 100 polls");
}

#[test]
fn vec_results_are_exactly_sized() {
    use futures::future::ready;
    const N: usize = 1000;
    let waker = TestWaker::new().waker();
    let children = || {
        (0..N as u64)
            .map(|i| ready(Ok::<u64, [u64; 15]>(i)))
            .collect::<Vec<_>>()
    };

    let values = drive(gather(children()), &waker).into_result().unwrap();
    assert_eq!((values.len(), values.capacity()), (N, N));

    let values = drive(gather(children()).fail_fast(), &waker).unwrap();
    assert_eq!((values.len(), values.capacity()), (N, N));

    let values = drive(gather(children()).limit(7).fail_fast(), &waker).unwrap();
    assert_eq!((values.len(), values.capacity()), (N, N));

    let values = drive(gather_iter(children()), &waker)
        .into_result()
        .unwrap();
    assert_eq!((values.len(), values.capacity()), (N, N));
}
