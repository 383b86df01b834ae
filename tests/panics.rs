//! Regression tests for the panic contract: whatever user code panics (a child's poll or
//! drop, an output's drop, the deadline timer, the executor's waker), nothing is read
//! before it was written, nothing is dropped twice, and every other child and output is
//! still dropped exactly once. Driven by hand, no runtime, so that Miri runs them too.
//!
//! Each child and output records its drop in a [`DropLog`] under `child-i` / `out-i`.
//! Drops that panic only do so while the thread is not already unwinding, so no test makes
//! two drops panic in one unwinding (that aborts, as for any collection).
//!
//! This binary has a global allocator that only takes notes: [`watch`] tells whether the
//! memory a gather allocated (its block of wakers) was freed once everything is gone.
//!
//! Where the gather reads an output that was never written, a test may crash the whole
//! binary rather than fail on its own: run it alone (`cargo test --test panics -- --exact
//! NAME`), or under Miri, which names the read.
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::any::Any;
use std::cell::Cell;
use std::future::{poll_fn, ready, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::thread;

use common::{drive, manual, poll_with, CountingWaker, DropLog, Handle, Tracked};
use futures_core::Stream;
use gather::{gather, gather_iter, Panicked, TimedOut};

// ---------------------------------------------------------------------------------------
// Children, outputs and errors
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
enum Error {
    Panicked(Panicked),
    TimedOut(usize),
    Failed,
}

impl From<Panicked> for Error {
    fn from(panicked: Panicked) -> Self {
        Error::Panicked(panicked)
    }
}

impl From<TimedOut> for Error {
    fn from(timed_out: TimedOut) -> Self {
        Error::TimedOut(timed_out.index)
    }
}

/// A child's output: records its drop; its drop panics if `panics` (and the thread is not
/// unwinding already).
#[derive(Debug)]
struct Value {
    tracked: Option<Tracked>,
    panics: bool,
}

impl Value {
    fn label(&self) -> &str {
        self.tracked.as_ref().map_or("", Tracked::label)
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        let label = self.label().to_owned();
        drop(self.tracked.take());
        if self.panics && !thread::panicking() {
            panic!("{label} drop panicked");
        }
    }
}

type Out = Result<Value, Error>;
type Call = Pin<Box<dyn Future<Output = Out> + Send>>;

/// Output `out-i`.
fn value(log: &DropLog, i: usize) -> Value {
    Value {
        tracked: Some(log.value(format!("out-{i}"))),
        panics: false,
    }
}

/// Output `out-i`, whose drop panics with "out-i drop panicked".
fn panicking_value(log: &DropLog, i: usize) -> Value {
    Value {
        tracked: Some(log.value(format!("out-{i}"))),
        panics: true,
    }
}

/// Child `i`: `Ready(Ok(out-i))` at its first poll.
fn ready_ok(log: &DropLog, i: usize) -> Call {
    Box::pin(log.future(format!("child-{i}"), ready(Ok(value(log, i)))))
}

/// Child `i`: pending until its handle completes it.
fn pending(log: &DropLog, i: usize) -> (Call, Handle<Out>) {
    let (child, handle) = manual::<Out>();
    (Box::pin(log.future(format!("child-{i}"), child)), handle)
}

/// Child `i`: runs `future`; its drop records `child-i`, then panics with
/// "child-i drop panicked".
fn drop_panics(
    log: &DropLog,
    i: usize,
    future: impl Future<Output = Out> + Send + 'static,
) -> Call {
    Box::pin(DropPanics {
        future: Box::pin(future),
        tracked: Some(log.value(format!("child-{i}"))),
    })
}

struct DropPanics {
    future: Call,
    tracked: Option<Tracked>,
}

impl Future for DropPanics {
    type Output = Out;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Out> {
        self.future.as_mut().poll(cx)
    }
}

impl Drop for DropPanics {
    fn drop(&mut self) {
        let label = self.tracked.as_ref().map_or("", Tracked::label).to_owned();
        drop(self.tracked.take());
        if !thread::panicking() {
            panic!("{label} drop panicked");
        }
    }
}

/// A deadline timer that counts its polls and panics in each.
struct PanickingTimer {
    polls: Arc<AtomicUsize>,
    _tracked: Tracked,
}

impl Future for PanickingTimer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        panic!("timer broke");
    }
}

// ---------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------

/// The message of a panic payload, if it is a string.
fn message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// A short description of an outcome that prints nothing it owns (so that a bad value
/// does not crash the assertion message itself).
fn describe(outcome: &Out) -> String {
    match outcome {
        Ok(_) => "Ok(..)".into(),
        Err(Error::Panicked(p)) => format!("Err(Panicked {{ index: {}, .. }})", p.index),
        Err(Error::TimedOut(i)) => format!("Err(TimedOut({i}))"),
        Err(Error::Failed) => "Err(Failed)".into(),
    }
}

#[track_caller]
fn assert_ok(outcome: &Out, i: usize) {
    match outcome {
        Ok(value) => assert_eq!(value.label(), format!("out-{i}")),
        other => panic!("child {i}: expected Ok(out-{i}), got {}", describe(other)),
    }
}

/// `outcome` is child `index`'s caught panic with `message`.
#[track_caller]
fn assert_panicked(outcome: &Out, index: usize, expected: &str) {
    match outcome {
        Err(Error::Panicked(panicked)) => {
            assert_eq!(panicked.index, index, "the panic of the wrong child");
            assert_eq!(panicked.message(), Some(expected));
        }
        other => panic!(
            "child {index}: expected Err(Panicked {{ index: {index}, .. }}), got {}",
            describe(other)
        ),
    }
}

/// Each label was dropped exactly once.
#[track_caller]
fn assert_dropped_once(log: &DropLog, labels: &[&str]) {
    for label in labels {
        assert_eq!(
            log.count(label),
            1,
            "{label} should be dropped exactly once; drops: {:?}",
            log.drops()
        );
    }
}

/// `poll` panicked with a message saying that a future of the gather had panicked.
#[track_caller]
fn assert_poisoned<T>(poll: std::thread::Result<T>) {
    let Err(payload) = poll else {
        panic!("a poll after a panic should panic: the gather is poisoned")
    };
    let text = message(&*payload).unwrap_or("");
    assert!(
        text.contains("panicked"),
        "the poisoned gather should say a future panicked, not {text:?}"
    );
}

#[track_caller]
fn assert_panics_with<T>(result: std::thread::Result<T>, expected: &str) {
    let Err(payload) = result else {
        panic!("expected a panic with {expected:?}")
    };
    assert_eq!(message(&*payload), Some(expected));
}

/// The output of a poll that should have finished (and not panicked).
#[track_caller]
fn ready_or_panic<T>(poll: std::thread::Result<Poll<T>>, why: &str) -> T {
    match poll {
        Ok(Poll::Ready(output)) => output,
        Ok(Poll::Pending) => panic!("{why}: the poll should finish, not stay pending"),
        Err(payload) => panic!(
            "{why}: the poll should finish, not panic with {:?}",
            message(&*payload)
        ),
    }
}

fn next<S: Stream + ?Sized>(stream: Pin<&mut S>, waker: &Waker) -> Poll<Option<S::Item>> {
    stream.poll_next(&mut Context::from_waker(waker))
}

// ---------------------------------------------------------------------------------------
// A parent (executor) waker that can panic in `clone`, `wake_by_ref` or `drop`
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Parent {
    wakes: AtomicUsize,
    panic_on_clone: AtomicBool,
    panic_on_wake: AtomicBool,
    /// The next drop of a waker (and only that one) panics.
    panic_on_drop: AtomicBool,
    /// Run (once) by the next wake, before it panics, if it does.
    on_wake: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Parent {
    /// The shared state, and a waker on it (without a `clone`).
    fn new() -> (Arc<Parent>, Waker) {
        let parent = Arc::new(Parent::default());
        let data = Arc::into_raw(parent.clone()).cast::<()>();
        // SAFETY: `data` is a strong reference to a `Parent`, which the vtable's functions
        // expect and each consumes or keeps exactly as `RawWakerVTable` requires.
        let waker = unsafe { Waker::from_raw(RawWaker::new(data, &PARENT_VTABLE)) };
        (parent, waker)
    }

    /// How many wakers on this parent are alive (the test's own included).
    fn wakers(self: &Arc<Self>) -> usize {
        Arc::strong_count(self) - 1
    }

    fn wake_by_ref(&self) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        let hook = self.on_wake.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        if self.panic_on_wake.load(Ordering::SeqCst) && !thread::panicking() {
            panic!("parent waker wake panicked");
        }
    }
}

static PARENT_VTABLE: RawWakerVTable =
    RawWakerVTable::new(parent_clone, parent_wake, parent_wake_by_ref, parent_drop);

/// # Safety
///
/// `data` is a strong reference to a `Parent` (from a waker of this vtable).
unsafe fn parent_clone(data: *const ()) -> RawWaker {
    // SAFETY: see the function's contract: the waker being cloned keeps the `Parent` alive.
    let parent = unsafe { &*data.cast::<Parent>() };
    if parent.panic_on_clone.load(Ordering::SeqCst) {
        panic!("parent waker clone panicked");
    }
    // SAFETY: `data` came from `Arc::into_raw` and its reference is still held.
    unsafe { Arc::increment_strong_count(data.cast::<Parent>()) };
    RawWaker::new(data, &PARENT_VTABLE)
}

/// # Safety
///
/// As for [`parent_clone`]; consumes the reference.
unsafe fn parent_wake(data: *const ()) {
    // SAFETY: see the function's contract; the `Arc` releases the reference, even if the
    // wake panics.
    let parent = unsafe { Arc::from_raw(data.cast::<Parent>()) };
    parent.wake_by_ref();
}

/// # Safety
///
/// As for [`parent_clone`].
unsafe fn parent_wake_by_ref(data: *const ()) {
    // SAFETY: see the function's contract.
    let parent = unsafe { &*data.cast::<Parent>() };
    parent.wake_by_ref();
}

/// # Safety
///
/// As for [`parent_clone`]; releases the reference (before panicking, if it does).
unsafe fn parent_drop(data: *const ()) {
    // SAFETY: see the function's contract.
    let parent = unsafe { Arc::from_raw(data.cast::<Parent>()) };
    let panics = parent.panic_on_drop.swap(false, Ordering::SeqCst);
    drop(parent);
    if panics && !thread::panicking() {
        panic!("parent waker drop panicked");
    }
}

// ---------------------------------------------------------------------------------------
// Watching allocations: whether the memory a gather allocated was all freed
// ---------------------------------------------------------------------------------------

struct Watching;

const WATCHED: usize = 16;

thread_local! {
    /// Whether this thread's allocations are being watched now.
    static WATCH: Cell<bool> = const { Cell::new(false) };
    /// Addresses of the watched allocations of this thread not freed yet (0: a free place).
    static LIVE: Cell<[usize; WATCHED]> = const { Cell::new([0; WATCHED]) };
}

// SAFETY: forwards every call to the system allocator unchanged; it only takes notes.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() && WATCH.try_with(Cell::get).unwrap_or(false) {
            let _ = LIVE.try_with(|live| {
                let mut places = live.get();
                let place = places.iter_mut().find(|place| **place == 0);
                *place.expect("too many watched allocations") = ptr as usize;
                live.set(places);
            });
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|live| {
            let mut places = live.get();
            for place in &mut places {
                if *place == ptr as usize {
                    *place = 0;
                }
            }
            live.set(places);
        });
        // SAFETY: `ptr` was allocated by `System` through `alloc` above, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Watching = Watching;

/// Runs `f`, watching the allocations it makes on this thread (forgetting earlier ones).
fn watch<T>(f: impl FnOnce() -> T) -> T {
    LIVE.with(|live| live.set([0; WATCHED]));
    WATCH.with(|watch| watch.set(true));
    let value = f();
    WATCH.with(|watch| watch.set(false));
    value
}

/// How many allocations made under [`watch`] are not freed yet.
fn watched_live() -> usize {
    LIVE.with(|live| live.get().iter().filter(|place| **place != 0).count())
}

// ---------------------------------------------------------------------------------------
// 1. A child whose drop panics right after it finished, under `catch_panics`
// ---------------------------------------------------------------------------------------

/// The one child of case 1: `Ready(Ok(out-i))` at its first poll, and its drop panics.
fn finishes_then_drop_panics(log: &DropLog, i: usize) -> Call {
    drop_panics(log, i, ready(Ok(value(log, i))))
}

#[test]
fn a_vec_child_whose_drop_panics_after_finishing_becomes_panicked_under_catch_panics() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather(vec![finishes_then_drop_panics(&log, 0)]).catch_panics());
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!("the only child finished at its first poll")
    };
    let results = gathered.into_results();
    assert_eq!(results.len(), 1);
    assert_panicked(&results[0], 0, "child-0 drop panicked");
    assert_dropped_once(&log, &["child-0", "out-0"]);
    drop(results);
    assert_dropped_once(&log, &["child-0", "out-0"]);
}

#[test]
fn a_vec_child_whose_drop_panics_after_finishing_fails_fast_as_panicked() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let calls = vec![finishes_then_drop_panics(&log, 0)];
    let mut fail_fast = pin!(gather(calls).catch_panics().fail_fast());
    let Poll::Ready(result) = poll_with(fail_fast.as_mut(), &waker) else {
        panic!("the only child finished at its first poll")
    };
    assert_dropped_once(&log, &["child-0", "out-0"]);
    let Err(error) = result else {
        panic!("a child whose drop panicked is an error, not a success")
    };
    assert_eq!(error.len(), 1);
    let (index, first) = error.first();
    assert_eq!(index, 0);
    match first {
        Error::Panicked(panicked) => {
            assert_eq!(panicked.index, 0);
            assert_eq!(panicked.message(), Some("child-0 drop panicked"));
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    drop(error);
    assert_dropped_once(&log, &["child-0", "out-0"]);
}

#[test]
fn a_vec_child_whose_drop_panics_after_finishing_under_a_limit_becomes_panicked() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let calls = vec![finishes_then_drop_panics(&log, 0)];
    let mut gather = pin!(gather(calls).limit(1).catch_panics());
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!("the only child finished at its first poll")
    };
    let results = gathered.into_results();
    assert_panicked(&results[0], 0, "child-0 drop panicked");
    assert_dropped_once(&log, &["child-0", "out-0"]);
}

#[test]
fn a_vec_child_whose_drop_panics_after_finishing_is_yielded_as_panicked_by_as_completed() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let calls = vec![finishes_then_drop_panics(&log, 0)];
    let mut stream = pin!(gather(calls).catch_panics().as_completed());
    let first = catch_unwind(AssertUnwindSafe(|| next(stream.as_mut(), &waker)));
    let (index, outcome) = match first {
        Ok(Poll::Ready(Some(item))) => item,
        Ok(_) => panic!("the stream should yield the child at once"),
        Err(payload) => panic!(
            "the stream should yield the child, not panic with {:?}",
            message(&*payload)
        ),
    };
    assert_eq!(index, 0);
    assert_panicked(&outcome, 0, "child-0 drop panicked");
    assert_dropped_once(&log, &["child-0", "out-0"]);
    assert!(matches!(next(stream.as_mut(), &waker), Poll::Ready(None)));
}

/// Children 0 and 2 are `Ready(Ok)` at their first poll; child 1 finished in the same
/// pass, in input order, so its output would go straight to the output `Vec`.
#[test]
fn a_vec_child_in_the_middle_whose_drop_panics_after_finishing_in_order_becomes_panicked() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let calls = vec![
        ready_ok(&log, 0),
        finishes_then_drop_panics(&log, 1),
        ready_ok(&log, 2),
    ];
    let mut gather = pin!(gather(calls).catch_panics());
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!("every child finished at its first poll")
    };
    let results = gathered.into_results();
    assert_ok(&results[0], 0);
    assert_panicked(&results[1], 1, "child-1 drop panicked");
    assert_ok(&results[2], 2);
    assert_dropped_once(&log, &["child-0", "child-1", "child-2", "out-1"]);
    assert_eq!(log.count("out-0") + log.count("out-2"), 0);
    drop(results);
    assert_dropped_once(&log, &["out-0", "out-1", "out-2"]);
}

/// Child 0 is still running when child 1 finishes: child 1's output would be held in its
/// entry (out of order).
#[test]
fn a_vec_child_in_the_middle_whose_drop_panics_after_finishing_out_of_order_becomes_panicked() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let (first, first_handle) = pending(&log, 0);
    let calls = vec![first, finishes_then_drop_panics(&log, 1), ready_ok(&log, 2)];
    let mut gather = pin!(gather(calls).catch_panics());
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_dropped_once(&log, &["child-1", "child-2"]);
    first_handle.complete(Ok(value(&log, 0)));
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!("every child finished")
    };
    let results = gathered.into_results();
    assert_ok(&results[0], 0);
    assert_panicked(&results[1], 1, "child-1 drop panicked");
    assert_ok(&results[2], 2);
    assert_dropped_once(&log, &["out-1"]);
    drop(results);
    assert_dropped_once(
        &log,
        &["child-0", "child-1", "child-2", "out-0", "out-1", "out-2"],
    );
}

#[test]
fn an_array_child_whose_drop_panics_after_finishing_becomes_panicked_under_catch_panics() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather([finishes_then_drop_panics(&log, 0)]).catch_panics());
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!("the only child finished at its first poll")
    };
    let [result] = gathered.into_results();
    assert_panicked(&result, 0, "child-0 drop panicked");
    assert_dropped_once(&log, &["child-0", "out-0"]);
}

#[test]
fn an_array_child_in_the_middle_whose_drop_panics_after_finishing_becomes_panicked() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let (first, first_handle) = pending(&log, 0);
    let calls = [first, finishes_then_drop_panics(&log, 1), ready_ok(&log, 2)];
    let mut gather = pin!(gather(calls).catch_panics());
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_dropped_once(&log, &["child-1", "child-2"]);
    first_handle.complete(Ok(value(&log, 0)));
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!("every child finished")
    };
    let [a, b, c] = gathered.into_results();
    assert_ok(&a, 0);
    assert_panicked(&b, 1, "child-1 drop panicked");
    assert_ok(&c, 2);
    assert_dropped_once(&log, &["out-1"]);
    drop((a, b, c));
    assert_dropped_once(
        &log,
        &["child-0", "child-1", "child-2", "out-0", "out-1", "out-2"],
    );
}

/// Contract 3, first case: the poll panics, then the drop that follows panics too; the
/// second panic is swallowed and the outcome keeps the poll's payload.
#[test]
fn a_vec_child_whose_poll_and_drop_both_panic_keeps_the_polls_payload_under_catch_panics() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let broken = drop_panics(&log, 0, poll_fn(|_| panic!("poll broke")));
    let mut gather = pin!(gather(vec![broken, ready_ok(&log, 1)]).catch_panics());
    let poll = catch_unwind(AssertUnwindSafe(|| poll_with(gather.as_mut(), &waker)));
    let gathered = ready_or_panic(poll, "the child's drop panic should be swallowed");
    let results = gathered.into_results();
    assert_dropped_once(&log, &["child-0", "child-1"]);
    assert_panicked(&results[0], 0, "poll broke");
    assert_ok(&results[1], 1);
}

#[test]
fn an_array_child_whose_poll_and_drop_both_panic_keeps_the_polls_payload_under_catch_panics() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let broken = drop_panics(&log, 0, poll_fn(|_| panic!("poll broke")));
    let mut gather = pin!(gather([broken, ready_ok(&log, 1)]).catch_panics());
    let poll = catch_unwind(AssertUnwindSafe(|| poll_with(gather.as_mut(), &waker)));
    let gathered = ready_or_panic(poll, "the child's drop panic should be swallowed");
    let [a, b] = gathered.into_results();
    assert_dropped_once(&log, &["child-0", "child-1"]);
    assert_panicked(&a, 0, "poll broke");
    assert_ok(&b, 1);
}

/// Contract 3, last case: the child wakes itself from its poll, which reaches the
/// executor's waker, which panics: that is the child's panic.
#[test]
fn a_parent_waker_panicking_inside_a_vec_childs_poll_is_that_childs_panic_under_catch_panics() {
    let log = DropLog::new();
    let (parent, waker) = Parent::new();
    let wakes_itself: Call = Box::pin(log.future(
        "child-0",
        poll_fn(|cx| -> Poll<Out> {
            cx.waker().wake_by_ref();
            Poll::Pending
        }),
    ));
    let mut gather = pin!(gather(vec![wakes_itself, ready_ok(&log, 1)])
        .per_child_wakers()
        .catch_panics());
    parent.panic_on_wake.store(true, Ordering::SeqCst);
    let poll = catch_unwind(AssertUnwindSafe(|| poll_with(gather.as_mut(), &waker)));
    parent.panic_on_wake.store(false, Ordering::SeqCst);
    let gathered = ready_or_panic(
        poll,
        "the waker's panic is child 0's, and the gather goes on",
    );
    let results = gathered.into_results();
    assert_dropped_once(&log, &["child-0", "child-1"]);
    assert_panicked(&results[0], 0, "parent waker wake panicked");
    assert_ok(&results[1], 1);
}

// ---------------------------------------------------------------------------------------
// 2. Dropping a gather whose child's or output's drop panics leaks nothing else
// ---------------------------------------------------------------------------------------

#[test]
fn dropping_a_vec_gather_whose_first_child_panics_in_drop_still_drops_every_other_child() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let (blocked, _blocked) = manual::<Out>();
    let mut calls = vec![drop_panics(&log, 0, blocked)];
    let mut handles = Vec::new();
    for i in 1..4 {
        let (child, handle) = pending(&log, i);
        calls.push(child);
        handles.push(handle);
    }
    let mut gather = Box::pin(gather(calls));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());

    let dropped = catch_unwind(AssertUnwindSafe(move || drop(gather)));
    assert_panics_with(dropped, "child-0 drop panicked");
    assert_dropped_once(&log, &["child-0", "child-1", "child-2", "child-3"]);
    assert!(handles.iter().all(|handle| !handle.alive()));
}

#[test]
fn dropping_a_spilled_gather_iter_whose_first_child_panics_in_drop_still_drops_every_other_child() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let (blocked, _blocked) = manual::<Out>();
    let mut calls = vec![drop_panics(&log, 0, blocked)];
    let mut handles = Vec::new();
    for i in 1..6 {
        let (child, handle) = pending(&log, i);
        calls.push(child);
        handles.push(handle);
    }
    let mut gather = Box::pin(gather_iter(calls));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());

    let dropped = catch_unwind(AssertUnwindSafe(move || drop(gather)));
    assert_panics_with(dropped, "child-0 drop panicked");
    assert_dropped_once(
        &log,
        &[
            "child-0", "child-1", "child-2", "child-3", "child-4", "child-5",
        ],
    );
    assert!(handles.iter().all(|handle| !handle.alive()));
}

#[test]
fn dropping_an_array_gather_whose_first_child_panics_in_drop_still_drops_every_other_child() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let (blocked, _blocked) = manual::<Out>();
    let (b, _b) = pending(&log, 1);
    let (c, _c) = pending(&log, 2);
    let mut gather = Box::pin(gather([drop_panics(&log, 0, blocked), b, c]));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());

    let dropped = catch_unwind(AssertUnwindSafe(move || drop(gather)));
    assert_panics_with(dropped, "child-0 drop panicked");
    assert_dropped_once(&log, &["child-0", "child-1", "child-2"]);
}

/// Outputs 0 and 1 came in input order (stored in the output `Vec`); output 0's drop
/// panics when the gather is dropped part-way: output 1, the held output 3 and the
/// running child 2 are still dropped.
#[test]
fn dropping_a_vec_gather_whose_stored_output_panics_in_drop_still_drops_the_outputs_after_it() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let (running, _running) = pending(&log, 2);
    let calls: Vec<Call> = vec![
        Box::pin(log.future("child-0", ready(Ok(panicking_value(&log, 0))))),
        ready_ok(&log, 1),
        running,
        ready_ok(&log, 3),
    ];
    let mut gather = Box::pin(gather(calls));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_dropped_once(&log, &["child-0", "child-1", "child-3"]);

    let dropped = catch_unwind(AssertUnwindSafe(move || drop(gather)));
    assert_panics_with(dropped, "out-0 drop panicked");
    assert_dropped_once(
        &log,
        &[
            "child-0", "child-1", "child-2", "child-3", "out-0", "out-1", "out-3",
        ],
    );
}

/// Child 0 finishes last: outputs 1 and 2 are held in their entries (out of order), and
/// output 1's drop panics when the gather is dropped part-way.
#[test]
fn dropping_a_vec_gather_whose_held_output_panics_in_drop_still_drops_every_other_output() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let (first, first_handle) = pending(&log, 0);
    let (running, _running) = pending(&log, 3);
    let calls: Vec<Call> = vec![
        first,
        Box::pin(log.future("child-1", ready(Ok(panicking_value(&log, 1))))),
        ready_ok(&log, 2),
        running,
    ];
    let mut gather = Box::pin(gather(calls));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    first_handle.complete(Ok(value(&log, 0)));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_dropped_once(&log, &["child-0", "child-1", "child-2"]);

    let dropped = catch_unwind(AssertUnwindSafe(move || drop(gather)));
    assert_panics_with(dropped, "out-1 drop panicked");
    assert_dropped_once(
        &log,
        &[
            "child-0", "child-1", "child-2", "child-3", "out-0", "out-1", "out-2",
        ],
    );
}

// ---------------------------------------------------------------------------------------
// 3. A deadline drops every cut-off child at once, in `as_completed` too
// ---------------------------------------------------------------------------------------

#[test]
fn as_completed_with_a_deadline_drops_every_cut_off_vec_child_before_the_first_timed_out() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let (calls, handles): (Vec<Call>, Vec<_>) = (0..3).map(|i| pending(&log, i)).unzip();
    let (timer, fire) = manual::<()>();
    let mut stream = pin!(gather(calls).deadline(timer).as_completed());
    assert!(next(stream.as_mut(), &waker).is_pending());
    fire.complete(());

    let Poll::Ready(Some((0, Err(Error::TimedOut(0))))) = next(stream.as_mut(), &waker) else {
        panic!("child 0 is cut off first")
    };
    assert_dropped_once(&log, &["child-0", "child-1", "child-2"]);
    assert!(handles.iter().all(|handle| !handle.alive()));
    for i in 1..3 {
        let Poll::Ready(Some((index, Err(Error::TimedOut(cut))))) = next(stream.as_mut(), &waker)
        else {
            panic!("the cut-off children come one by one, in input order")
        };
        assert_eq!((index, cut), (i, i));
    }
    assert!(matches!(next(stream.as_mut(), &waker), Poll::Ready(None)));
    assert_dropped_once(&log, &["child-0", "child-1", "child-2"]);
}

#[test]
fn as_completed_with_a_deadline_drops_every_cut_off_array_child_before_the_first_timed_out() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let mut handles = Vec::new();
    let calls: [Call; 3] = std::array::from_fn(|i| {
        let (child, handle) = pending(&log, i);
        handles.push(handle);
        child
    });
    let (timer, fire) = manual::<()>();
    let mut stream = pin!(gather(calls).deadline(timer).as_completed());
    assert!(next(stream.as_mut(), &waker).is_pending());
    fire.complete(());

    let Poll::Ready(Some((0, Err(Error::TimedOut(0))))) = next(stream.as_mut(), &waker) else {
        panic!("child 0 is cut off first")
    };
    assert_dropped_once(&log, &["child-0", "child-1", "child-2"]);
    assert!(handles.iter().all(|handle| !handle.alive()));
    for i in 1..3 {
        let Poll::Ready(Some((index, Err(Error::TimedOut(cut))))) = next(stream.as_mut(), &waker)
        else {
            panic!("the cut-off children come one by one, in input order")
        };
        assert_eq!((index, cut), (i, i));
    }
    assert!(matches!(next(stream.as_mut(), &waker), Poll::Ready(None)));
}

/// The deadline cuts child 1 off and its drop panics: the poll panics, the gather is
/// poisoned, and dropping it drops every other child and output once.
#[test]
fn a_cut_off_vec_child_whose_drop_panics_poisons_the_gather_and_leaks_nothing() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let (blocked, _blocked) = manual::<Out>();
    let (last, _last) = pending(&log, 2);
    let calls = vec![ready_ok(&log, 0), drop_panics(&log, 1, blocked), last];
    let (timer, fire) = manual::<()>();
    let mut gather = Box::pin(gather(calls).deadline(timer));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    fire.complete(());

    let poll = catch_unwind(AssertUnwindSafe(|| poll_with(gather.as_mut(), &waker)));
    assert_panics_with(poll, "child-1 drop panicked");
    assert_poisoned(catch_unwind(AssertUnwindSafe(|| {
        poll_with(gather.as_mut(), &waker)
    })));
    drop(gather);
    assert_dropped_once(&log, &["child-0", "child-1", "child-2", "out-0"]);
}

// ---------------------------------------------------------------------------------------
// 4. The executor's waker, the deadline timer and outputs panicking elsewhere
// ---------------------------------------------------------------------------------------

/// (a) Dropping the gather drops the waker it registered, whose drop panics.
#[test]
fn dropping_a_vec_gather_whose_parent_waker_panics_in_drop_still_drops_every_child() {
    let log = DropLog::new();
    let (parent, waker) = Parent::new();
    let (calls, handles): (Vec<Call>, Vec<_>) = (0..3).map(|i| pending(&log, i)).unzip();
    let mut gather = Box::pin(gather(calls).per_child_wakers());
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_eq!(parent.wakers(), 2, "the gather registered a clone");

    parent.panic_on_drop.store(true, Ordering::SeqCst);
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(gather)));
    parent.panic_on_drop.store(false, Ordering::SeqCst);
    assert_panics_with(dropped, "parent waker drop panicked");
    assert_dropped_once(&log, &["child-0", "child-1", "child-2"]);
    assert!(handles.iter().all(|handle| !handle.alive()));
    assert_eq!(parent.wakers(), 1, "the gather's clone was dropped");
}

/// (b) A child's waker, woken from the test, reaches the executor's waker, which panics:
/// the panic reaches the test's `wake`, and the waker it consumed is still released, so
/// the block is freed once the gather and every child waker are gone.
#[test]
fn a_parent_waker_whose_wake_panics_reaches_the_caller_of_a_child_wake_and_leaks_nothing() {
    let log = DropLog::new();
    let (parent, waker) = Parent::new();
    let (child, handle) = pending(&log, 0);
    let mut gather = watch(|| Box::pin(gather(vec![child]).per_child_wakers()));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    let child_waker = handle.take_waker().expect("the child keeps its waker");

    parent.panic_on_wake.store(true, Ordering::SeqCst);
    let woken = catch_unwind(AssertUnwindSafe(move || child_waker.wake()));
    parent.panic_on_wake.store(false, Ordering::SeqCst);
    assert_panics_with(woken, "parent waker wake panicked");

    drop(gather);
    assert_dropped_once(&log, &["child-0"]);
    assert_eq!(parent.wakers(), 1, "the gather's clone was dropped");
    assert_eq!(
        watched_live(),
        0,
        "the gather's memory (its block of wakers) was not freed: the waker consumed by the \
         panicking wake still holds a reference"
    );
}

/// (b, contract 6) The gather is dropped while its own waker is being woken (here from
/// inside that wake: on one thread, the moment another thread could drop it): the wake
/// drops the executor's waker when it is done, and the block goes with the last waker.
#[test]
fn a_vec_gather_dropped_during_its_parent_wake_has_its_parent_waker_dropped_by_the_wake() {
    let log = DropLog::new();
    let (parent, waker) = Parent::new();
    let (child, handle) = pending(&log, 0);
    let mut gather = watch(|| Box::pin(gather(vec![child]).per_child_wakers()));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    let child_waker = handle.take_waker().expect("the child keeps its waker");

    *parent.on_wake.lock().unwrap() = Some(Box::new(move || drop(gather)));
    child_waker.wake();
    assert_eq!(parent.wakes.load(Ordering::SeqCst), 1);
    assert_dropped_once(&log, &["child-0"]);
    assert_eq!(parent.wakers(), 1, "the gather's clone was dropped");
    assert_eq!(watched_live(), 0, "the block was freed with the last waker");
}

/// (b) The same, and the executor's waker panics after the gather was dropped: the panic
/// reaches the caller of `wake`, and still nothing is kept alive.
#[test]
fn a_vec_gather_dropped_during_a_panicking_parent_wake_has_its_parent_waker_dropped() {
    let log = DropLog::new();
    let (parent, waker) = Parent::new();
    let (child, handle) = pending(&log, 0);
    let mut gather = watch(|| Box::pin(gather(vec![child]).per_child_wakers()));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    let child_waker = handle.take_waker().expect("the child keeps its waker");

    *parent.on_wake.lock().unwrap() = Some(Box::new(move || drop(gather)));
    parent.panic_on_wake.store(true, Ordering::SeqCst);
    let woken = catch_unwind(AssertUnwindSafe(move || child_waker.wake()));
    parent.panic_on_wake.store(false, Ordering::SeqCst);
    assert_panics_with(woken, "parent waker wake panicked");
    assert_dropped_once(&log, &["child-0"]);
    assert_eq!(
        parent.wakers(),
        1,
        "the gather's clone of the executor's waker is kept alive by a leaked block"
    );
    assert_eq!(watched_live(), 0, "the block was freed with the last waker");
}

/// (c) The timer's panic is not a child's: it reaches the caller and poisons the gather;
/// the timer is not polled again.
#[test]
fn a_panicking_deadline_timer_poisons_the_gather_and_is_not_polled_again() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let polls = Arc::new(AtomicUsize::new(0));
    let timer = PanickingTimer {
        polls: polls.clone(),
        _tracked: log.value("timer"),
    };
    let (running, _running) = pending(&log, 0);
    let mut gather = Box::pin(gather(vec![running, ready_ok(&log, 1)]).deadline(timer));

    let poll = catch_unwind(AssertUnwindSafe(|| poll_with(gather.as_mut(), &waker)));
    assert_panics_with(poll, "timer broke");
    assert_eq!(polls.load(Ordering::SeqCst), 1);
    assert_poisoned(catch_unwind(AssertUnwindSafe(|| {
        poll_with(gather.as_mut(), &waker)
    })));
    assert_eq!(
        polls.load(Ordering::SeqCst),
        1,
        "the timer was polled again"
    );

    drop(gather);
    assert_dropped_once(&log, &["child-0", "child-1", "out-1", "timer"]);
}

/// (e) Registering the executor's waker (its `clone`) panics at the first poll.
#[test]
fn a_parent_waker_whose_clone_panics_poisons_a_vec_gather_which_still_drops_every_child() {
    let log = DropLog::new();
    let (parent, waker) = Parent::new();
    let (calls, _handles): (Vec<Call>, Vec<_>) = (0..3).map(|i| pending(&log, i)).unzip();
    let mut gather = Box::pin(gather(calls).per_child_wakers());

    parent.panic_on_clone.store(true, Ordering::SeqCst);
    let poll = catch_unwind(AssertUnwindSafe(|| poll_with(gather.as_mut(), &waker)));
    assert_panics_with(poll, "parent waker clone panicked");
    assert_poisoned(catch_unwind(AssertUnwindSafe(|| {
        poll_with(gather.as_mut(), &waker)
    })));
    parent.panic_on_clone.store(false, Ordering::SeqCst);

    drop(gather);
    assert_dropped_once(&log, &["child-0", "child-1", "child-2"]);
    assert_eq!(parent.wakers(), 1);
}

/// Over its budget of 128 polls, the gather wakes itself: that `wake_by_ref` panics.
#[test]
fn a_parent_waker_panicking_when_the_gather_wakes_itself_over_budget_poisons_it() {
    let log = DropLog::new();
    let (parent, waker) = Parent::new();
    let (calls, _handles): (Vec<Call>, Vec<_>) = (0..130).map(|i| pending(&log, i)).unzip();
    let mut gather = Box::pin(gather(calls));

    parent.panic_on_wake.store(true, Ordering::SeqCst);
    let poll = catch_unwind(AssertUnwindSafe(|| poll_with(gather.as_mut(), &waker)));
    parent.panic_on_wake.store(false, Ordering::SeqCst);
    assert_panics_with(poll, "parent waker wake panicked");
    assert_poisoned(catch_unwind(AssertUnwindSafe(|| {
        poll_with(gather.as_mut(), &waker)
    })));

    drop(gather);
    for i in 0..130 {
        assert_dropped_once(&log, &[format!("child-{i}").as_str()]);
    }
    assert_eq!(parent.wakers(), 1);
}

// ---------------------------------------------------------------------------------------
// 5. Results of `Vec` gathers are exactly sized
// ---------------------------------------------------------------------------------------

type Wide = [u64; 15];

fn thousand_ready() -> Vec<std::future::Ready<Result<u64, Wide>>> {
    (0..1000).map(|i| ready(Ok::<u64, Wide>(i))).collect()
}

#[test]
fn into_result_of_a_vec_gather_is_exactly_sized() {
    let successes = drive(gather(thousand_ready()), 100).into_result().unwrap();
    assert_eq!(successes.len(), 1000);
    assert_eq!(
        successes.capacity(),
        1000,
        "the successes should not keep the outcomes' larger buffer"
    );
    assert!(successes.iter().copied().eq(0..1000));
}

#[test]
fn fail_fast_of_a_vec_gather_is_exactly_sized() {
    let successes = drive(gather(thousand_ready()).fail_fast(), 100).unwrap();
    assert_eq!(successes.len(), 1000);
    assert_eq!(
        successes.capacity(),
        1000,
        "the successes should not keep the outcomes' larger buffer"
    );
    assert!(successes.iter().copied().eq(0..1000));
}

// ---------------------------------------------------------------------------------------
// 6. Fail-fast drops the running children after an error: one of those drops panics
// ---------------------------------------------------------------------------------------

#[test]
fn fail_fast_whose_dropped_child_panics_panics_is_poisoned_and_leaks_nothing() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let (blocked, _blocked) = manual::<Out>();
    let (running, running_handle) = pending(&log, 2);
    let calls: Vec<Call> = vec![
        ready_ok(&log, 0),
        drop_panics(&log, 1, blocked),
        running,
        ready_ok(&log, 3),
        Box::pin(log.future("child-4", ready(Err(Error::Failed)))),
    ];
    let mut fail_fast = Box::pin(gather(calls).fail_fast());

    let poll = catch_unwind(AssertUnwindSafe(|| poll_with(fail_fast.as_mut(), &waker)));
    assert_panics_with(poll, "child-1 drop panicked");
    assert_poisoned(catch_unwind(AssertUnwindSafe(|| {
        poll_with(fail_fast.as_mut(), &waker)
    })));

    drop(fail_fast);
    assert_dropped_once(
        &log,
        &[
            "child-0", "child-1", "child-2", "child-3", "child-4", "out-0", "out-3",
        ],
    );
    assert!(!running_handle.alive());
}

#[test]
fn fail_fast_of_an_array_whose_dropped_child_panics_panics_is_poisoned_and_leaks_nothing() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let (blocked, _blocked) = manual::<Out>();
    let (running, running_handle) = pending(&log, 2);
    let calls: [Call; 4] = [
        ready_ok(&log, 0),
        drop_panics(&log, 1, blocked),
        running,
        Box::pin(log.future("child-3", ready(Err(Error::Failed)))),
    ];
    let mut fail_fast = Box::pin(gather(calls).fail_fast());

    let poll = catch_unwind(AssertUnwindSafe(|| poll_with(fail_fast.as_mut(), &waker)));
    assert_panics_with(poll, "child-1 drop panicked");
    assert_poisoned(catch_unwind(AssertUnwindSafe(|| {
        poll_with(fail_fast.as_mut(), &waker)
    })));

    drop(fail_fast);
    assert_dropped_once(&log, &["child-0", "child-1", "child-2", "child-3", "out-0"]);
    assert!(!running_handle.alive());
}
