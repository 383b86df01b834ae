//! Review of the `Vec` gather's output buffer (`outputs_in` in `raw/vec_slots.rs`): the
//! outputs take the input's buffer when its layout fits them, and fail-fast's successes
//! keep the results' buffer while they fill half of it.
//!
//! Children and outputs have layouts chosen by padding types, so that each branch of the
//! reuse rule is taken: same size, half size, 24-byte children with 16-byte outputs, same
//! size with another alignment, over-aligned (32) types, zero-sized children and outputs,
//! spare capacity landing on `len`, `2 * len` and `2 * len + 1`. Each child and output
//! records its drop in a [`DropLog`]: every one must be dropped exactly once, whether the
//! gather completes, is dropped part-way, fails fast, is cut off by its deadline, or a
//! child panics, and whether the outputs arrive in input order or not.
//!
//! Driven by hand (no runtime, no threads), so that Miri runs every test:
//! `MIRIFLAGS="-Zmiri-strict-provenance" cargo +nightly miri test --test vec_outputs_review`.
//! The layouts asserted are those of a 64-bit target.
#![cfg(target_pointer_width = "64")]
mod common;

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;

use common::{poll_with, CountingWaker, DropLog, Tracked};
use futures_core::Stream;
use gather::{gather, Panicked, SmallVec, TimedOut};

// ---------------------------------------------------------------------------------------
// Padding types: they set the size and alignment of children and outputs
// ---------------------------------------------------------------------------------------

trait Pad: Default + Unpin + Send + 'static {}
impl Pad for () {}
impl<const N: usize> Pad for [u64; N] where [u64; N]: Default {}

/// Zero-sized, aligned to 16.
#[derive(Default, Clone, Copy)]
#[repr(align(16))]
struct A16;
impl Pad for A16 {}

/// Zero-sized, aligned to 32.
#[derive(Default, Clone, Copy)]
#[repr(align(32))]
struct A32;
impl Pad for A32 {}

/// 16 bytes aligned to 16.
#[derive(Default, Clone, Copy)]
#[repr(align(16))]
struct B16(#[allow(dead_code)] [u64; 2]);
impl Pad for B16 {}

/// 32 bytes aligned to 32 (with the child's box: 64 bytes).
#[derive(Default, Clone, Copy)]
#[repr(align(32))]
struct B32(#[allow(dead_code)] [u64; 4]);
impl Pad for B32 {}

// ---------------------------------------------------------------------------------------
// The board: the test decides when each child finishes, and how
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Plan {
    /// `Ok(out-i)` (or `out-i`).
    Ok,
    /// `Ok(out-i)` whose drop panics (when the thread is not unwinding already).
    OkDropPanics,
    /// `Err(err-i)`.
    Err,
    /// The child's poll panics with "kid-i panicked".
    Panic,
}

#[derive(Default)]
struct Place {
    plan: Option<Plan>,
    waker: Option<Waker>,
    finished: bool,
    polls: usize,
}

#[derive(Default)]
struct BoardInner {
    places: Vec<Place>,
    timer_fired: bool,
    timer_waker: Option<Waker>,
}

#[derive(Clone, Default)]
struct Board(Arc<Mutex<BoardInner>>);

impl Board {
    fn new(n: usize) -> Self {
        let board = Board::default();
        board.0.lock().unwrap().places = (0..n).map(|_| Place::default()).collect();
        board
    }

    /// Child `i` finishes as `plan` at its next poll (its first, if not polled yet).
    fn plan(&self, i: usize, plan: Plan) {
        self.0.lock().unwrap().places[i].plan = Some(plan);
    }

    /// Child `i` finishes as `plan`: it is woken, as a reactor would.
    fn finish(&self, i: usize, plan: Plan) {
        let waker = {
            let mut board = self.0.lock().unwrap();
            board.places[i].plan = Some(plan);
            board.places[i].waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn polls(&self, i: usize) -> usize {
        self.0.lock().unwrap().places[i].polls
    }

    fn fire_timer(&self) {
        let waker = {
            let mut board = self.0.lock().unwrap();
            board.timer_fired = true;
            board.timer_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn timer(&self) -> Timer {
        Timer(self.clone())
    }
}

/// A deadline timer that fires when the board says so.
struct Timer(Board);

impl Future for Timer {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut board = self.0 .0.lock().unwrap();
        if board.timer_fired {
            return Poll::Ready(());
        }
        board.timer_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

// ---------------------------------------------------------------------------------------
// Children and outputs
// ---------------------------------------------------------------------------------------

struct KidState {
    id: usize,
    board: Board,
    log: DropLog,
    /// Records `kid-i` when the child is dropped.
    _tracked: Tracked,
}

/// Child `i`: 8 bytes (a box) and its padding `Q`; outputs an `O`.
struct Kid<Q, O> {
    state: Box<KidState>,
    _pad: Q,
    _out: PhantomData<fn() -> O>,
}

impl<Q: Pad, O: MakeOut> Future for Kid<Q, O> {
    type Output = O;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        let state = &*self.get_mut().state;
        let plan = {
            let mut board = state.board.0.lock().unwrap();
            let place = &mut board.places[state.id];
            assert!(!place.finished, "kid-{} polled after it finished", state.id);
            place.polls += 1;
            match place.plan.take() {
                Some(plan) => {
                    place.finished = true;
                    plan
                }
                None => {
                    place.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        };
        if plan == Plan::Panic {
            panic!("kid-{} panicked", state.id);
        }
        Poll::Ready(O::make(&state.log, state.id, plan))
    }
}

/// The record an output keeps in its box: `out-i` (or `err-i`) is logged when it drops.
struct Rec {
    tracked: Option<Tracked>,
    panics: bool,
}

impl Drop for Rec {
    fn drop(&mut self) {
        let label = self.tracked.as_ref().map_or("", Tracked::label).to_owned();
        drop(self.tracked.take());
        if self.panics && !thread::panicking() {
            panic!("{label} drop panicked");
        }
    }
}

/// Output `out-i`: 8 bytes (a box) and its padding `P`.
struct Out<P> {
    rec: Box<Rec>,
    _pad: P,
}

impl<P> Out<P> {
    fn label(&self) -> &str {
        self.rec.tracked.as_ref().map_or("", Tracked::label)
    }
}

impl<P> fmt::Debug for Out<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Out({})", self.label())
    }
}

/// The error of a `Result` output: 8 bytes. Counted while alive (per thread: each test
/// runs on its own), so that errors the gather makes (timeouts, panics) are checked too.
struct Fail(Box<FailKind>, LiveFail);

thread_local! {
    static LIVE_FAILS: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
}

/// Counts a live [`Fail`].
struct LiveFail;

impl LiveFail {
    fn new() -> Self {
        LIVE_FAILS.with(|n| n.set(n.get() + 1));
        LiveFail
    }
}

impl Drop for LiveFail {
    fn drop(&mut self) {
        LIVE_FAILS.with(|n| n.set(n.get() - 1));
    }
}

fn live_fails() -> isize {
    LIVE_FAILS.with(std::cell::Cell::get)
}

impl Fail {
    fn new(kind: FailKind) -> Self {
        Fail(Box::new(kind), LiveFail::new())
    }
}

enum FailKind {
    Failed(Rec),
    TimedOut(usize),
    Panicked(Panicked),
}

impl From<Panicked> for Fail {
    fn from(panicked: Panicked) -> Self {
        Fail::new(FailKind::Panicked(panicked))
    }
}

impl From<TimedOut> for Fail {
    fn from(timed_out: TimedOut) -> Self {
        Fail::new(FailKind::TimedOut(timed_out.index))
    }
}

impl fmt::Debug for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            FailKind::Failed(rec) => {
                write!(
                    f,
                    "Failed({})",
                    rec.tracked.as_ref().map_or("", Tracked::label)
                )
            }
            FailKind::TimedOut(i) => write!(f, "TimedOut({i})"),
            FailKind::Panicked(p) => write!(f, "Panicked({})", p.index),
        }
    }
}

trait MakeOut: Sized + Send + 'static {
    fn make(log: &DropLog, id: usize, plan: Plan) -> Self;
}

fn rec(log: &DropLog, label: String, panics: bool) -> Rec {
    Rec {
        tracked: Some(log.value(label)),
        panics,
    }
}

impl<P: Pad> MakeOut for Out<P> {
    fn make(log: &DropLog, id: usize, plan: Plan) -> Self {
        let panics = match plan {
            Plan::Ok => false,
            Plan::OkDropPanics => true,
            Plan::Err | Plan::Panic => unreachable!("a plain output cannot fail"),
        };
        Out {
            rec: Box::new(rec(log, format!("out-{id}"), panics)),
            _pad: P::default(),
        }
    }
}

impl<P: Pad> MakeOut for Result<Out<P>, Fail> {
    fn make(log: &DropLog, id: usize, plan: Plan) -> Self {
        match plan {
            Plan::Err => Err(Fail::new(FailKind::Failed(rec(
                log,
                format!("err-{id}"),
                false,
            )))),
            plan => Ok(Out::make(log, id, plan)),
        }
    }
}

impl MakeOut for () {
    fn make(_: &DropLog, _: usize, _: Plan) -> Self {}
}

/// `n` pending children in a `Vec` of capacity `cap`.
fn kids<Q: Pad, O: MakeOut>(board: &Board, log: &DropLog, n: usize, cap: usize) -> Vec<Kid<Q, O>> {
    let mut kids = Vec::with_capacity(cap);
    kids.extend((0..n).map(|id| Kid {
        state: Box::new(KidState {
            id,
            board: board.clone(),
            log: log.clone(),
            _tracked: log.value(format!("kid-{id}")),
        }),
        _pad: Q::default(),
        _out: PhantomData,
    }));
    assert_eq!(kids.capacity(), cap, "the test's own input capacity");
    kids
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Whether the outputs should take the input's buffer: the rule of `outputs_in`, restated.
fn should_reuse<F, O>(cap: usize, len: usize) -> bool {
    let bytes = cap * size_of::<F>();
    let size = size_of::<O>();
    size <= size_of::<F>()
        && size != 0
        && bytes != 0
        && align_of::<O>() == align_of::<F>()
        && bytes % size == 0
        && (len..=2 * len).contains(&(bytes / size))
}

/// The stream of a `Vec` gather of `Kid`s, read as completed.
type KidStream<Q, P> = gather::AsCompleted<Vec<Kid<Q, Out<P>>>>;

/// A waker that does nothing (`Waker::noop` is newer than the crate's MSRV).
fn noop() -> Waker {
    CountingWaker::new().1
}

/// The address of a `Vec`'s buffer.
fn buffer<T>(v: &[T]) -> *const u8 {
    v.as_ptr().cast()
}

#[track_caller]
fn ready<T>(poll: Poll<T>) -> T {
    match poll {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the gather should be ready"),
    }
}

#[track_caller]
fn assert_labels<P>(outputs: &[Out<P>], ids: impl IntoIterator<Item = usize>) {
    let labels: Vec<&str> = outputs.iter().map(Out::label).collect();
    let expected: Vec<String> = ids.into_iter().map(|i| format!("out-{i}")).collect();
    assert_eq!(labels, expected);
}

#[track_caller]
fn assert_dropped_once(log: &DropLog, prefix: &str, ids: impl IntoIterator<Item = usize>) {
    let drops = log.drops();
    for i in ids {
        let label = format!("{prefix}{i}");
        let count = drops.iter().filter(|l| **l == label).count();
        assert_eq!(count, 1, "{label} dropped {count} times; drops: {drops:?}");
    }
}

#[track_caller]
fn assert_none_dropped(log: &DropLog, prefix: &str) {
    let drops = log.drops();
    assert!(
        !drops.iter().any(|l| l.starts_with(prefix)),
        "no {prefix}* should be dropped yet; drops: {drops:?}"
    );
}

/// How many `out-*` labels were dropped.
fn outputs_dropped(log: &DropLog) -> usize {
    log.drops().iter().filter(|l| l.starts_with("out-")).count()
}

fn message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// Runs `f` with the panic message hook silenced (the panics here are expected).
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let value = f();
    std::panic::set_hook(hook);
    value
}

// ---------------------------------------------------------------------------------------
// 1. Layouts: which buffer the outputs get, and its capacity
// ---------------------------------------------------------------------------------------

/// Gathers `len` children in a `Vec` of capacity `cap`, all ready at their first poll;
/// checks the outputs, whether they took the input's buffer (against the rule), their
/// capacity bound, and that every child and output is dropped exactly once. Returns
/// (whether the buffer was reused, the outputs' capacity).
#[track_caller]
fn settle_all_ready<Q: Pad, P: Pad>(len: usize, cap: usize) -> (bool, usize) {
    let log = DropLog::new();
    let board = Board::new(len);
    let children = kids::<Q, Out<P>>(&board, &log, len, cap);
    let input = buffer(&children);
    for i in 0..len {
        board.plan(i, Plan::Ok);
    }
    let waker = &noop();
    let mut gathered = pin!(gather(children));
    let outputs = ready(poll_with(gathered.as_mut(), waker)).into_results();
    assert_dropped_once(&log, "kid-", 0..len);
    assert_none_dropped(&log, "out-");
    assert_labels(&outputs, 0..len);
    let reused = len > 0 && buffer(&outputs) == input;
    assert_eq!(
        reused,
        should_reuse::<Kid<Q, Out<P>>, Out<P>>(cap, len),
        "child {} bytes (align {}), output {} bytes (align {}), cap {cap}, len {len}",
        size_of::<Kid<Q, Out<P>>>(),
        align_of::<Kid<Q, Out<P>>>(),
        size_of::<Out<P>>(),
        align_of::<Out<P>>(),
    );
    assert!(
        outputs.capacity() <= 2 * len,
        "{} places for {len} outputs",
        outputs.capacity()
    );
    assert_eq!(buffer(&outputs) as usize % align_of::<Out<P>>(), 0);
    let capacity = outputs.capacity();
    drop(outputs);
    assert_dropped_once(&log, "out-", 0..len);
    (reused, capacity)
}

#[test]
fn same_size_outputs_take_the_exactly_sized_input_buffer() {
    assert_eq!(size_of::<Kid<(), Out<()>>>(), 8);
    assert_eq!(size_of::<Out<()>>(), 8);
    assert_eq!(settle_all_ready::<(), ()>(5, 5), (true, 5));
    assert_eq!(settle_all_ready::<(), ()>(1, 1), (true, 1));
}

#[test]
fn spare_capacity_of_exactly_twice_len_is_reused_and_one_more_is_not() {
    // 8-byte children and outputs: bytes / size is the input's capacity.
    assert_eq!(settle_all_ready::<(), ()>(3, 4), (true, 4));
    assert_eq!(settle_all_ready::<(), ()>(3, 6), (true, 6), "2 * len");
    assert_eq!(settle_all_ready::<(), ()>(3, 7), (false, 3), "2 * len + 1");
    assert_eq!(settle_all_ready::<(), ()>(3, 100), (false, 3));
}

#[test]
fn half_size_outputs_land_exactly_on_twice_len() {
    // 16-byte children, 8-byte outputs: twice as many places as the input had.
    assert_eq!(size_of::<Kid<[u64; 1], Out<()>>>(), 16);
    assert_eq!(settle_all_ready::<[u64; 1], ()>(3, 3), (true, 6));
    assert_eq!(
        settle_all_ready::<[u64; 1], ()>(3, 4),
        (false, 3),
        "8 places for 3"
    );
    // 32-byte children, 8-byte outputs: four times: a buffer of their own.
    assert_eq!(settle_all_ready::<[u64; 3], ()>(3, 3), (false, 3));
}

#[test]
fn outputs_two_thirds_the_size_of_their_children_reuse_only_a_whole_number_of_places() {
    // 24-byte children, 16-byte outputs.
    assert_eq!(size_of::<Kid<[u64; 2], Out<[u64; 1]>>>(), 24);
    assert_eq!(size_of::<Out<[u64; 1]>>(), 16);
    assert_eq!(settle_all_ready::<[u64; 2], [u64; 1]>(4, 4), (true, 6));
    assert_eq!(settle_all_ready::<[u64; 2], [u64; 1]>(5, 6), (true, 9));
    // 72 bytes are not a whole number of 16-byte outputs.
    assert_eq!(settle_all_ready::<[u64; 2], [u64; 1]>(3, 3), (false, 3));
    // 40-byte children, 16-byte outputs: 80 bytes make 5 places for 2.
    assert_eq!(settle_all_ready::<[u64; 4], [u64; 1]>(2, 2), (false, 2));
}

#[test]
fn same_size_outputs_of_another_alignment_get_a_buffer_of_their_own() {
    // 16-byte children aligned to 8, 16-byte outputs aligned to 16.
    assert_eq!(
        (
            size_of::<Kid<[u64; 1], Out<A16>>>(),
            align_of::<Kid<[u64; 1], Out<A16>>>()
        ),
        (16, 8)
    );
    assert_eq!((size_of::<Out<A16>>(), align_of::<Out<A16>>()), (16, 16));
    assert_eq!(settle_all_ready::<[u64; 1], A16>(4, 4), (false, 4));
    // 16-byte children aligned to 16, 16-byte outputs aligned to 8.
    assert_eq!(align_of::<Kid<A16, Out<[u64; 1]>>>(), 16);
    assert_eq!(settle_all_ready::<A16, [u64; 1]>(4, 4), (false, 4));
    // 32-byte children aligned to 16 (B16), 16-byte outputs aligned to 8: smaller, but
    // aligned differently.
    assert_eq!(settle_all_ready::<B16, [u64; 1]>(4, 4), (false, 4));
}

#[test]
fn over_aligned_outputs_reuse_an_over_aligned_input_buffer() {
    assert_eq!(
        (
            size_of::<Kid<A32, Out<A32>>>(),
            align_of::<Kid<A32, Out<A32>>>()
        ),
        (32, 32)
    );
    assert_eq!((size_of::<Out<A32>>(), align_of::<Out<A32>>()), (32, 32));
    assert_eq!(settle_all_ready::<A32, A32>(4, 4), (true, 4));
    assert_eq!(settle_all_ready::<A32, A32>(3, 6), (true, 6));
    // 64-byte children aligned to 32, 32-byte outputs aligned to 32: twice the places.
    assert_eq!(size_of::<Kid<B32, Out<A32>>>(), 64);
    assert_eq!(settle_all_ready::<B32, A32>(3, 3), (true, 6));
    // Over-aligned children, outputs aligned to 8: a buffer of their own.
    assert_eq!(settle_all_ready::<A32, [u64; 1]>(3, 3), (false, 3));
    // Outputs aligned to 32, children to 8.
    assert_eq!(settle_all_ready::<[u64; 3], A32>(3, 3), (false, 3));
}

#[test]
fn outputs_larger_than_their_children_get_a_buffer_of_their_own() {
    assert_eq!(settle_all_ready::<(), [u64; 1]>(4, 4), (false, 4));
    assert_eq!(settle_all_ready::<(), [u64; 1]>(4, 8), (false, 4));
}

#[test]
fn an_empty_input_with_spare_capacity_gives_empty_outputs_without_room() {
    assert_eq!(settle_all_ready::<(), ()>(0, 4), (false, 0));
    assert_eq!(settle_all_ready::<(), ()>(0, 0), (false, 0));
    assert_eq!(settle_all_ready::<[u64; 1], ()>(0, 1), (false, 0));
}

#[test]
fn zero_sized_outputs_of_sized_children_are_all_handed_back() {
    let log = DropLog::new();
    let board = Board::new(5);
    let children = kids::<(), ()>(&board, &log, 5, 8);
    for i in 0..5 {
        board.plan(i, Plan::Ok);
    }
    let mut gathered = pin!(gather(children));
    let outputs = ready(poll_with(gathered.as_mut(), &noop())).into_results();
    assert_eq!(outputs.len(), 5);
    assert_dropped_once(&log, "kid-", 0..5);
}

/// A zero-sized child, ready at once with `value`.
struct Zst<const V: u64>;

impl<const V: u64> Future for Zst<V> {
    type Output = u64;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u64> {
        Poll::Ready(V)
    }
}

/// A zero-sized child with a zero-sized output.
struct ZstUnit;

impl Future for ZstUnit {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

#[test]
fn zero_sized_children_get_an_output_buffer_of_their_own() {
    let children: Vec<Zst<7>> = (0..6).map(|_| Zst).collect();
    let mut gathered = pin!(gather(children));
    let outputs = ready(poll_with(gathered.as_mut(), &noop())).into_results();
    assert_eq!(outputs, [7; 6]);
    assert!(outputs.capacity() <= 12);

    let children: Vec<ZstUnit> = (0..6).map(|_| ZstUnit).collect();
    let mut gathered = pin!(gather(children));
    let outputs = ready(poll_with(gathered.as_mut(), &noop())).into_results();
    assert_eq!(outputs.len(), 6);

    let mut gathered = pin!(gather(Vec::<Zst<1>>::with_capacity(10)));
    let outputs = ready(poll_with(gathered.as_mut(), &noop())).into_results();
    assert!(outputs.is_empty());
}

#[test]
fn inputs_built_in_other_ways_hand_their_buffer_on_soundly() {
    // A buffer collected in place from another type (`u64` to an 8-byte child), one from
    // a boxed slice, one from `vec!`: each is the global allocator's, of the child layout.
    let values: Vec<u64> = (0..4).collect();
    let children: Vec<Ready8> = values.into_iter().map(Ready8).collect();
    let input = buffer(&children);
    let mut gathered = pin!(gather(children));
    let outputs = ready(poll_with(gathered.as_mut(), &noop())).into_results();
    assert_eq!(outputs, [0, 1, 2, 3]);
    assert_eq!(buffer(&outputs), input);

    let boxed: Box<[Ready8]> = (0..5).map(Ready8).collect();
    let mut gathered = pin!(gather(boxed.into_vec()));
    let outputs = ready(poll_with(gathered.as_mut(), &noop())).into_results();
    assert_eq!(outputs, [0, 1, 2, 3, 4]);
    assert_eq!(outputs.capacity(), 5);

    let mut gathered = pin!(gather(vec![Ready8(9), Ready8(8)]));
    let outputs = ready(poll_with(gathered.as_mut(), &noop())).into_results();
    assert_eq!(outputs, [9, 8]);
    // A `Vec` shrunk after it grew: its capacity is what it says.
    let mut children: Vec<Ready8> = (0..20).map(Ready8).collect();
    children.truncate(3);
    children.shrink_to(5);
    let cap = children.capacity();
    let mut gathered = pin!(gather(children));
    let outputs = ready(poll_with(gathered.as_mut(), &noop())).into_results();
    assert_eq!(outputs, [0, 1, 2]);
    assert_eq!(outputs.capacity(), if cap <= 6 { cap } else { 3 });
}

/// An 8-byte child ready at once with its `u64`.
struct Ready8(u64);

impl Future for Ready8 {
    type Output = u64;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u64> {
        Poll::Ready(self.0)
    }
}

// ---------------------------------------------------------------------------------------
// 2. Drops: every output exactly once, in every layout
// ---------------------------------------------------------------------------------------

/// Children woken in reverse order (every output held out of order but the last to come,
/// which is child 0's) and some ready at their first poll: outputs in input order, each
/// dropped once, and only with the returned `Vec`.
fn outputs_arriving_out_of_order_are_each_dropped_once<Q: Pad, P: Pad>(spare: usize) {
    let n = 6;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<Q, Out<P>>(&board, &log, n, n + spare);
    let input = buffer(&children);
    board.plan(0, Plan::Ok); // stored in order at the first pass
    board.plan(1, Plan::Ok);
    let (_, waker) = CountingWaker::new();
    let mut gathered = pin!(gather(children));
    assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    for i in (2..n).rev() {
        board.finish(i, Plan::Ok);
        let poll = poll_with(gathered.as_mut(), &waker);
        assert_eq!(poll.is_ready(), i == 2, "after child {i}");
        if let Poll::Ready(gathered) = poll {
            assert_none_dropped(&log, "out-");
            let outputs = gathered.into_results();
            assert_labels(&outputs, 0..n);
            assert!(outputs.capacity() <= 2 * n);
            assert_eq!(
                buffer(&outputs) == input,
                should_reuse::<Kid<Q, Out<P>>, Out<P>>(n + spare, n),
                "the outputs take the input's buffer exactly when the rule says so"
            );
            drop(outputs);
        }
    }
    assert_dropped_once(&log, "out-", 0..n);
    assert_dropped_once(&log, "kid-", 0..n);
}

/// The gather dropped with outputs stored in order (0, 1), held out of order (3, 5) and
/// children still running (2, 4): each dropped exactly once.
fn dropping_the_gather_part_way_drops_each_output_and_child_once<Q: Pad, P: Pad>(spare: usize) {
    let n = 6;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<Q, Out<P>>(&board, &log, n, n + spare);
    board.plan(0, Plan::Ok);
    board.plan(1, Plan::Ok);
    let (_, waker) = CountingWaker::new();
    let mut gathered = Box::pin(gather(children).per_child_wakers());
    assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    board.finish(5, Plan::Ok);
    board.finish(3, Plan::Ok);
    assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    assert_none_dropped(&log, "out-");
    drop(gathered);
    assert_dropped_once(&log, "out-", [0, 1, 3, 5]);
    assert_eq!(outputs_dropped(&log), 4);
    assert_dropped_once(&log, "kid-", 0..n);
}

/// An output whose drop panics, stored (1) or held (4), while the gather is dropped
/// part-way: the panic comes out, and every other output and child is dropped once.
fn an_output_drop_panic_during_a_part_way_drop_drops_the_rest_once<Q: Pad, P: Pad>(
    spare: usize,
    held: bool,
) {
    let n = 6;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<Q, Out<P>>(&board, &log, n, n + spare);
    let panicky = if held { 4 } else { 1 };
    board.plan(0, Plan::Ok);
    board.plan(1, if held { Plan::Ok } else { Plan::OkDropPanics });
    let (_, waker) = CountingWaker::new();
    let mut gathered = Box::pin(gather(children).per_child_wakers());
    assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    board.finish(4, if held { Plan::OkDropPanics } else { Plan::Ok });
    board.finish(3, Plan::Ok);
    assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    let dropped = quietly(|| catch_unwind(AssertUnwindSafe(|| drop(gathered))));
    let payload = dropped.expect_err("the output's drop panics");
    assert_eq!(
        message(&*payload),
        Some(format!("out-{panicky} drop panicked").as_str())
    );
    assert_dropped_once(&log, "out-", [0, 1, 3, 4]);
    assert_eq!(outputs_dropped(&log), 4);
    assert_dropped_once(&log, "kid-", 0..n);
}

/// Every child finished; the returned `Vec` (in the input's buffer, where it fits) is
/// dropped and one output's drop panics: the others are still dropped once.
fn an_output_drop_panic_in_the_returned_vec_drops_the_rest_once<Q: Pad, P: Pad>(spare: usize) {
    let n = 5;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<Q, Out<P>>(&board, &log, n, n + spare);
    for i in 0..n {
        board.plan(i, if i == 2 { Plan::OkDropPanics } else { Plan::Ok });
    }
    let mut gathered = pin!(gather(children));
    let outputs = ready(poll_with(gathered.as_mut(), &noop())).into_results();
    assert_labels(&outputs, 0..n);
    let dropped = quietly(|| catch_unwind(AssertUnwindSafe(|| drop(outputs))));
    assert!(dropped.is_err());
    assert_dropped_once(&log, "out-", 0..n);
}

/// As-completed over a `Vec`: outputs taken one by one (from their places in the buffer,
/// or from their entries when held), then the stream dropped with outputs not yet yielded
/// and children still running: each dropped once, the yielded ones only by the caller.
fn as_completed_dropped_part_way_drops_each_output_once<Q: Pad, P: Pad>(spare: usize) {
    let n = 7;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<Q, Out<P>>(&board, &log, n, n + spare);
    for i in 0..4 {
        board.plan(i, Plan::Ok);
    }
    let (_, waker) = CountingWaker::new();
    let mut stream = Box::pin(gather(children).as_completed());
    let mut cx = Context::from_waker(&waker);
    let mut yielded = Vec::new();
    let mut next = |stream: Pin<&mut _>, yielded: &mut Vec<(usize, Out<P>)>| {
        let stream: Pin<&mut KidStream<Q, P>> = stream;
        match stream.poll_next(&mut cx) {
            Poll::Ready(Some((i, out))) => {
                assert_eq!(out.label(), format!("out-{i}"));
                yielded.push((i, out));
            }
            Poll::Ready(None) => panic!("children are left"),
            Poll::Pending => panic!("an output is ready"),
        }
    };
    next(stream.as_mut(), &mut yielded);
    next(stream.as_mut(), &mut yielded);
    board.finish(6, Plan::Ok);
    board.finish(4, Plan::Ok);
    // One more: which one depends on the order the stream polls in.
    next(stream.as_mut(), &mut yielded);
    assert_none_dropped(&log, "out-");
    let finished: Vec<usize> = {
        let board = board.0.lock().unwrap();
        (0..n).filter(|&i| board.places[i].finished).collect()
    };
    assert!(finished.starts_with(&[0, 1, 2]), "finished: {finished:?}");
    drop(stream);
    // Three yielded; the other finished ones, if any, are dropped with the stream.
    let ids: Vec<usize> = yielded.iter().map(|(i, _)| *i).collect();
    assert_eq!(ids, [0, 1, 2]);
    let left: Vec<usize> = finished
        .iter()
        .copied()
        .filter(|i| !ids.contains(i))
        .collect();
    assert_dropped_once(&log, "out-", left.iter().copied());
    assert_eq!(outputs_dropped(&log), left.len());
    assert_dropped_once(&log, "kid-", 0..n);
    drop(yielded);
    assert_dropped_once(&log, "out-", finished.iter().copied());
    assert_eq!(outputs_dropped(&log), finished.len());
}

/// As-completed to the end, children finishing in reverse order.
fn as_completed_to_the_end_yields_each_output_once<Q: Pad, P: Pad>(spare: usize) {
    let n = 5;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<Q, Out<P>>(&board, &log, n, n + spare);
    let (_, waker) = CountingWaker::new();
    let mut stream = pin!(gather(children).as_completed());
    let mut cx = Context::from_waker(&waker);
    assert!(stream.as_mut().poll_next(&mut cx).is_pending());
    let mut order = Vec::new();
    for i in (0..n).rev() {
        board.finish(i, Plan::Ok);
        let Poll::Ready(Some((index, out))) = stream.as_mut().poll_next(&mut cx) else {
            panic!("child {i} finished");
        };
        assert_eq!(out.label(), format!("out-{index}"));
        order.push(index);
    }
    assert!(matches!(
        stream.as_mut().poll_next(&mut cx),
        Poll::Ready(None)
    ));
    assert_eq!(order, [4, 3, 2, 1, 0]);
    assert_dropped_once(&log, "out-", 0..n);
    assert_dropped_once(&log, "kid-", 0..n);
}

/// Under a limit of 2, children finishing out of order: every output once.
fn a_limit_keeps_every_output_once<Q: Pad, P: Pad>(spare: usize) {
    let n = 6;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<Q, Out<P>>(&board, &log, n, n + spare);
    let input = buffer(&children);
    let (_, waker) = CountingWaker::new();
    let mut gathered = pin!(gather(children).limit(2));
    assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    assert_eq!((board.polls(0), board.polls(1), board.polls(2)), (1, 1, 0));
    // Finish whichever two are running, the later one first.
    let mut result = None;
    for _ in 0..n {
        let running: Vec<usize> = (0..n)
            .filter(|&i| {
                let b = board.0.lock().unwrap();
                b.places[i].polls > 0 && !b.places[i].finished
            })
            .collect();
        let last = *running.last().expect("a child is running");
        board.finish(last, Plan::Ok);
        if let Poll::Ready(gathered) = poll_with(gathered.as_mut(), &waker) {
            result = Some(gathered.into_results());
            break;
        }
    }
    let outputs = result.expect("the gather finished");
    assert_labels(&outputs, 0..n);
    assert!(outputs.capacity() <= 2 * n);
    assert_eq!(
        buffer(&outputs) == input,
        should_reuse::<Kid<Q, Out<P>>, Out<P>>(n + spare, n)
    );
    drop(outputs);
    assert_dropped_once(&log, "out-", 0..n);
    assert_dropped_once(&log, "kid-", 0..n);
}

macro_rules! drop_tests {
    ($($name:ident: $q:ty, $p:ty, spare $spare:expr;)*) => {$(
        mod $name {
            use super::*;

            #[test]
            fn outputs_arriving_in_reverse_order_are_each_dropped_once() {
                outputs_arriving_out_of_order_are_each_dropped_once::<$q, $p>($spare);
            }

            #[test]
            fn dropping_the_gather_part_way_drops_stored_held_and_running_once() {
                dropping_the_gather_part_way_drops_each_output_and_child_once::<$q, $p>($spare);
            }

            #[test]
            fn a_stored_output_whose_drop_panics_in_a_part_way_drop() {
                an_output_drop_panic_during_a_part_way_drop_drops_the_rest_once::<$q, $p>($spare, false);
            }

            #[test]
            fn a_held_output_whose_drop_panics_in_a_part_way_drop() {
                an_output_drop_panic_during_a_part_way_drop_drops_the_rest_once::<$q, $p>($spare, true);
            }

            #[test]
            fn an_output_whose_drop_panics_in_the_returned_vec() {
                an_output_drop_panic_in_the_returned_vec_drops_the_rest_once::<$q, $p>($spare);
            }

            #[test]
            fn as_completed_dropped_part_way_drops_each_output_once() {
                super::as_completed_dropped_part_way_drops_each_output_once::<$q, $p>($spare);
            }

            #[test]
            fn as_completed_to_the_end_yields_each_output_once() {
                super::as_completed_to_the_end_yields_each_output_once::<$q, $p>($spare);
            }

            #[test]
            fn a_limit_keeps_every_output_once() {
                super::a_limit_keeps_every_output_once::<$q, $p>($spare);
            }
        }
    )*};
}

drop_tests! {
    // Outputs in the input's buffer, same size.
    reused_same_size: (), (), spare 0;
    // The same, in an input with spare room (up to twice `n` places: 5, 6 or 7 for 5 to 7).
    reused_same_size_spare: (), (), spare 3;
    // Outputs in the input's buffer, twice as many places.
    reused_half_size: [u64; 1], (), spare 0;
    // 24-byte children, 16-byte outputs (even `n`: a whole number of places).
    reused_two_thirds: [u64; 2], [u64; 1], spare 0;
    // Over-aligned, in the input's buffer.
    reused_over_aligned: A32, A32, spare 0;
    // Over-aligned, twice as many places.
    reused_over_aligned_half_size: B32, A32, spare 0;
    // Outputs larger than their children: a buffer of their own.
    own_buffer_larger: (), [u64; 1], spare 0;
    // Same size, another alignment: a buffer of their own.
    own_buffer_other_alignment: [u64; 1], A16, spare 0;
    // Same size, much spare room: a buffer of their own.
    own_buffer_too_much_room: (), (), spare 20;
}

// ---------------------------------------------------------------------------------------
// 3. Result outputs: fail-fast, deadline, panics
// ---------------------------------------------------------------------------------------

type Res<P> = Result<Out<P>, Fail>;

#[test]
fn result_layouts_are_what_the_result_tests_expect() {
    assert_eq!(size_of::<Res<()>>(), 16);
    assert_eq!(size_of::<Kid<[u64; 1], Res<()>>>(), 16);
    assert!(should_reuse::<Kid<[u64; 1], Res<()>>, Res<()>>(6, 6));
    assert!(should_reuse::<Kid<[u64; 3], Res<()>>, Res<()>>(6, 6));
    assert!(!should_reuse::<Kid<(), Res<()>>, Res<()>>(6, 6));
}

/// Fail-fast with outputs stored (0, 1), held (3) and children running (4, 5) when child 2
/// fails: every output, error and child dropped once.
fn fail_fast_failure_drops_each_output_once<Q: Pad>() {
    let n = 6;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<Q, Res<()>>(&board, &log, n, n);
    board.plan(0, Plan::Ok);
    board.plan(1, Plan::Ok);
    let (_, waker) = CountingWaker::new();
    let mut gathered = pin!(gather(children).per_child_wakers().fail_fast());
    assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    board.finish(3, Plan::Ok);
    assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    board.finish(2, Plan::Err);
    let result = ready(poll_with(gathered.as_mut(), &waker));
    let error = result.expect_err("child 2 failed");
    assert_eq!(error.first().0, 2);
    assert_dropped_once(&log, "out-", [0, 1, 3]);
    assert_dropped_once(&log, "kid-", 0..n);
    assert_none_dropped(&log, "err-");
    drop(error);
    assert_dropped_once(&log, "err-", [2]);
    assert_eq!(outputs_dropped(&log), 3);
}

/// Fail-fast where every child succeeds, out of order: the successes, and their capacity.
fn fail_fast_successes_are_each_dropped_once_within_twice_their_len<Q: Pad>(cap: usize) {
    let n = 6;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<Q, Res<()>>(&board, &log, n, cap);
    board.plan(0, Plan::Ok);
    let (_, waker) = CountingWaker::new();
    let mut gathered = pin!(gather(children).fail_fast());
    assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    let mut successes = None;
    for i in (1..n).rev() {
        board.finish(i, Plan::Ok);
        if let Poll::Ready(result) = poll_with(gathered.as_mut(), &waker) {
            successes = Some(result.expect("every child succeeded"));
        }
    }
    let successes = successes.expect("the gather finished");
    assert_labels(&successes, 0..n);
    assert!(
        successes.capacity() <= 2 * n,
        "{} places for {n} successes",
        successes.capacity()
    );
    assert_none_dropped(&log, "out-");
    drop(successes);
    assert_dropped_once(&log, "out-", 0..n);
    assert_dropped_once(&log, "kid-", 0..n);
}

#[test]
fn fail_fast_failure_drops_each_output_once_in_the_reused_buffer() {
    fail_fast_failure_drops_each_output_once::<[u64; 1]>();
}

#[test]
fn fail_fast_failure_drops_each_output_once_in_a_buffer_twice_their_size() {
    fail_fast_failure_drops_each_output_once::<[u64; 3]>();
}

#[test]
fn fail_fast_failure_drops_each_output_once_in_a_buffer_of_their_own() {
    fail_fast_failure_drops_each_output_once::<()>();
}

#[test]
fn fail_fast_successes_stay_within_twice_their_len() {
    // Results in the input's buffer (16 of 16 bytes): the 8-byte successes fill half.
    fail_fast_successes_are_each_dropped_once_within_twice_their_len::<[u64; 1]>(6);
    // Results with twice their places (16 of 32 bytes): successes with four times.
    fail_fast_successes_are_each_dropped_once_within_twice_their_len::<[u64; 3]>(6);
    // Results in a buffer with spare room (12 places for 6).
    fail_fast_successes_are_each_dropped_once_within_twice_their_len::<[u64; 1]>(12);
    // Results in a buffer of their own.
    fail_fast_successes_are_each_dropped_once_within_twice_their_len::<()>(6);
}

#[test]
fn into_result_successes_stay_within_twice_their_len() {
    for cap in [4, 7, 8] {
        let log = DropLog::new();
        let board = Board::new(4);
        let children = kids::<[u64; 1], Res<()>>(&board, &log, 4, cap);
        for i in 0..4 {
            board.plan(i, Plan::Ok);
        }
        let mut gathered = pin!(gather(children));
        let results = ready(poll_with(gathered.as_mut(), &noop())).into_results();
        assert!(results.capacity() <= 8);
        let successes = Vec::from_iter(results)
            .into_iter()
            .collect::<Result<Vec<_>, _>>();
        let successes = successes.expect("all ok");
        assert_labels(&successes, 0..4);
        drop(successes);
        assert_dropped_once(&log, "out-", 0..4);

        let log = DropLog::new();
        let board = Board::new(4);
        let children = kids::<[u64; 1], Res<()>>(&board, &log, 4, cap);
        for i in 0..4 {
            board.plan(i, Plan::Ok);
        }
        let mut gathered = pin!(gather(children));
        let gathered = ready(poll_with(gathered.as_mut(), &noop()));
        let successes = gathered.into_result().expect("all ok");
        assert_labels(&successes, 0..4);
        assert!(
            successes.capacity() <= 8,
            "cap {cap}: {}",
            successes.capacity()
        );
        drop(successes);
        assert_dropped_once(&log, "out-", 0..4);
        assert_dropped_once(&log, "kid-", 0..4);
    }
}

#[test]
fn into_result_with_errors_drops_every_success_once() {
    let n = 6;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<[u64; 1], Res<()>>(&board, &log, n, n);
    for i in 0..n {
        board.plan(i, if i % 3 == 1 { Plan::Err } else { Plan::Ok });
    }
    let mut gathered = pin!(gather(children));
    let gathered = ready(poll_with(gathered.as_mut(), &noop()));
    let error = gathered.into_result().expect_err("two failed");
    assert_eq!(error.len(), 2);
    assert_dropped_once(&log, "out-", [0, 2, 3, 5]);
    drop(error);
    assert_dropped_once(&log, "err-", [1, 4]);
}

/// The deadline cuts off children 2 and 4 while 0 and 1 are stored (in order, at the first
/// pass) and 3 and 5 held (out of order): every output, and every child, dropped once.
fn deadline_cut_off_drops_each_output_once<Q: Pad>(fail_fast: bool) {
    let fails_before = live_fails();
    let n = 6;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<Q, Res<()>>(&board, &log, n, n);
    board.plan(0, Plan::Ok);
    board.plan(1, Plan::Ok);
    let (_, waker) = CountingWaker::new();
    if fail_fast {
        let mut gathered = pin!(gather(children).deadline(board.timer()).fail_fast());
        assert!(poll_with(gathered.as_mut(), &waker).is_pending());
        board.finish(5, Plan::Ok);
        board.finish(3, Plan::Ok);
        assert!(poll_with(gathered.as_mut(), &waker).is_pending());
        board.fire_timer();
        let error = ready(poll_with(gathered.as_mut(), &waker)).expect_err("timed out");
        assert!(matches!(&*error.first().1 .0, FailKind::TimedOut(_)));
        assert_dropped_once(&log, "out-", [0, 1, 3, 5]);
        assert_eq!(outputs_dropped(&log), 4);
    } else {
        let mut gathered = pin!(gather(children).deadline(board.timer()));
        assert!(poll_with(gathered.as_mut(), &waker).is_pending());
        board.finish(5, Plan::Ok);
        board.finish(3, Plan::Ok);
        assert!(poll_with(gathered.as_mut(), &waker).is_pending());
        board.fire_timer();
        let results = ready(poll_with(gathered.as_mut(), &waker)).into_results();
        assert_dropped_once(&log, "kid-", 0..n);
        assert_none_dropped(&log, "out-");
        for (i, result) in results.iter().enumerate() {
            match (i, result) {
                (0 | 1 | 3 | 5, Ok(out)) => assert_eq!(out.label(), format!("out-{i}")),
                (2 | 4, Err(Fail(kind, _))) => {
                    assert!(matches!(**kind, FailKind::TimedOut(t) if t == i))
                }
                (i, other) => panic!("child {i}: {other:?}"),
            }
        }
        assert!(results.capacity() <= 2 * n);
        drop(results);
        assert_dropped_once(&log, "out-", [0, 1, 3, 5]);
    }
    assert_dropped_once(&log, "kid-", 0..n);
    assert_eq!(
        live_fails(),
        fails_before,
        "every timeout dropped exactly once"
    );
}

#[test]
fn deadline_cut_off_drops_each_output_once_in_the_reused_buffer() {
    deadline_cut_off_drops_each_output_once::<[u64; 1]>(false);
    deadline_cut_off_drops_each_output_once::<[u64; 3]>(false);
}

#[test]
fn deadline_cut_off_drops_each_output_once_in_a_buffer_of_their_own() {
    deadline_cut_off_drops_each_output_once::<()>(false);
}

#[test]
fn deadline_under_fail_fast_drops_each_output_once() {
    deadline_cut_off_drops_each_output_once::<[u64; 1]>(true);
    deadline_cut_off_drops_each_output_once::<()>(true);
}

/// Children panic in order (0, at the first pass) and out of order (3, after a wake)
/// under `catch_panics`: each becomes `Panicked`, every output dropped once.
fn caught_panics_keep_every_output_once<Q: Pad>() {
    let fails_before = live_fails();
    let n = 5;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<Q, Res<()>>(&board, &log, n, n);
    board.plan(0, Plan::Panic);
    board.plan(1, Plan::Ok);
    let (_, waker) = CountingWaker::new();
    let mut gathered = pin!(gather(children).catch_panics());
    quietly(|| {
        assert!(poll_with(gathered.as_mut(), &waker).is_pending());
        board.finish(4, Plan::Ok);
        board.finish(3, Plan::Panic);
        assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    });
    board.finish(2, Plan::Ok);
    let results = ready(poll_with(gathered.as_mut(), &waker)).into_results();
    assert_dropped_once(&log, "kid-", 0..n);
    for (i, result) in results.iter().enumerate() {
        match (i, result) {
            (1 | 2 | 4, Ok(out)) => assert_eq!(out.label(), format!("out-{i}")),
            (0 | 3, Err(Fail(kind, _))) => match &**kind {
                FailKind::Panicked(p) => {
                    assert_eq!(p.index, i);
                    assert_eq!(p.message(), Some(format!("kid-{i} panicked").as_str()));
                }
                _ => panic!("child {i}: not a panic"),
            },
            (i, other) => panic!("child {i}: {other:?}"),
        }
    }
    assert_none_dropped(&log, "out-");
    drop(results);
    assert_dropped_once(&log, "out-", [1, 2, 4]);
    assert_eq!(outputs_dropped(&log), 3);
    assert_eq!(
        live_fails(),
        fails_before,
        "every caught panic dropped exactly once"
    );
}

#[test]
fn caught_panics_keep_every_output_once_in_the_reused_buffer() {
    caught_panics_keep_every_output_once::<[u64; 1]>();
}

#[test]
fn caught_panics_keep_every_output_once_in_a_buffer_of_their_own() {
    caught_panics_keep_every_output_once::<()>();
}

/// Without `catch_panics`, child 3 panics after 0 and 1 were stored and 4 held: the
/// gather is poisoned, and dropping it drops every output and child once.
fn an_uncaught_panic_then_drop_drops_every_output_once<Q: Pad, P: Pad>(spare: usize) {
    let n = 5;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<Q, Out<P>>(&board, &log, n, n + spare);
    board.plan(0, Plan::Ok);
    board.plan(1, Plan::Ok);
    let (_, waker) = CountingWaker::new();
    let mut gathered = Box::pin(gather(children).per_child_wakers());
    assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    board.finish(4, Plan::Ok);
    board.finish(3, Plan::Panic);
    let poll = quietly(|| catch_unwind(AssertUnwindSafe(|| poll_with(gathered.as_mut(), &waker))));
    assert!(poll.is_err(), "child 3's panic comes out of the poll");
    let again = quietly(|| catch_unwind(AssertUnwindSafe(|| poll_with(gathered.as_mut(), &waker))));
    assert!(again.is_err(), "the gather is poisoned");
    drop(gathered);
    let finished = log.drops().iter().filter(|l| l.starts_with("out-")).count();
    assert!(
        finished >= 3,
        "out-0, out-1 and out-4 at least: {:?}",
        log.drops()
    );
    assert_dropped_once(&log, "out-", [0, 1, 4]);
    assert_dropped_once(&log, "kid-", 0..n);
}

#[test]
fn an_uncaught_panic_then_drop_drops_every_output_once_in_the_reused_buffer() {
    an_uncaught_panic_then_drop_drops_every_output_once::<(), ()>(0);
    an_uncaught_panic_then_drop_drops_every_output_once::<(), ()>(4);
    an_uncaught_panic_then_drop_drops_every_output_once::<[u64; 1], ()>(0);
}

#[test]
fn an_uncaught_panic_then_drop_drops_every_output_once_in_a_buffer_of_their_own() {
    an_uncaught_panic_then_drop_drops_every_output_once::<(), [u64; 1]>(0);
}

/// As-completed with a deadline: child 0 yielded, then the timer cuts off the rest; their
/// timeouts are stored (in input order, in the output buffer) and handed out one per item.
/// The stream is dropped after two of them: the rest, and the outputs, dropped once.
fn as_completed_with_a_deadline_dropped_part_way_drops_each_timeout_once<Q: Pad>() {
    let fails_before = live_fails();
    let n = 6;
    let log = DropLog::new();
    let board = Board::new(n);
    let children = kids::<Q, Res<()>>(&board, &log, n, n);
    board.plan(0, Plan::Ok);
    let (_, waker) = CountingWaker::new();
    let mut stream = Box::pin(gather(children).deadline(board.timer()).as_completed());
    let mut cx = Context::from_waker(&waker);
    let Poll::Ready(Some((0, Ok(out)))) = stream.as_mut().poll_next(&mut cx) else {
        panic!("child 0 is ready");
    };
    assert_eq!(out.label(), "out-0");
    assert!(stream.as_mut().poll_next(&mut cx).is_pending());
    board.finish(3, Plan::Ok);
    board.fire_timer();
    let mut items = Vec::new();
    for _ in 0..3 {
        let Poll::Ready(Some(item)) = stream.as_mut().poll_next(&mut cx) else {
            panic!("cut-off children are handed out");
        };
        items.push(item);
    }
    let order: Vec<(usize, bool)> = items.iter().map(|(i, r)| (*i, r.is_ok())).collect();
    assert_eq!(order, [(3, true), (1, false), (2, false)]);
    // Live now: the two yielded timeouts and those of 4 and 5, still in the stream.
    assert_eq!(live_fails() - fails_before, 4);
    drop(stream);
    assert_dropped_once(&log, "kid-", 0..n);
    assert_eq!(
        live_fails() - fails_before,
        2,
        "4's and 5's timeouts dropped with the stream"
    );
    for (i, item) in &items {
        match item {
            Ok(out) => assert_eq!(out.label(), format!("out-{i}")),
            Err(Fail(kind, _)) => assert!(matches!(**kind, FailKind::TimedOut(t) if t == *i)),
        }
    }
    assert_none_dropped(&log, "out-");
    drop(items);
    drop(out);
    assert_eq!(
        live_fails(),
        fails_before,
        "every timeout dropped exactly once"
    );
    assert_dropped_once(&log, "out-", [0, 3]);
    assert_eq!(outputs_dropped(&log), 2);
}

#[test]
fn as_completed_with_a_deadline_dropped_part_way_in_the_reused_buffer() {
    as_completed_with_a_deadline_dropped_part_way_drops_each_timeout_once::<[u64; 1]>();
}

#[test]
fn as_completed_with_a_deadline_dropped_part_way_in_a_buffer_of_their_own() {
    as_completed_with_a_deadline_dropped_part_way_drops_each_timeout_once::<()>();
}

// ---------------------------------------------------------------------------------------
// 4. SmallVec successes (shrunk whenever they have room to spare, once spilled)
// ---------------------------------------------------------------------------------------

#[test]
fn spilled_smallvec_successes_of_into_result_are_exactly_sized() {
    let log = DropLog::new();
    let board = Board::new(5);
    let children: SmallVec<[Kid<(), Res<()>>; 2]> = kids::<(), Res<()>>(&board, &log, 5, 5)
        .into_iter()
        .collect();
    for i in 0..5 {
        board.plan(i, Plan::Ok);
    }
    let mut gathered = pin!(gather(children));
    let gathered = ready(poll_with(gathered.as_mut(), &noop()));
    let successes = gathered.into_result().expect("all ok");
    assert_eq!(successes.len(), 5);
    assert_eq!(successes.capacity(), 5);
    let labels: Vec<&str> = successes.iter().map(Out::label).collect();
    assert_eq!(labels, ["out-0", "out-1", "out-2", "out-3", "out-4"]);
    drop(successes);
    assert_dropped_once(&log, "out-", 0..5);
}

#[test]
fn spilled_smallvec_successes_of_fail_fast_stay_within_twice_their_len() {
    let log = DropLog::new();
    let board = Board::new(5);
    let children: SmallVec<[Kid<(), Res<()>>; 2]> = kids::<(), Res<()>>(&board, &log, 5, 5)
        .into_iter()
        .collect();
    for i in 0..5 {
        board.plan(i, Plan::Ok);
    }
    let mut gathered = pin!(gather(children).fail_fast());
    let successes = ready(poll_with(gathered.as_mut(), &noop())).expect("all ok");
    assert_eq!(successes.len(), 5);
    // Collected one by one (not through `into_successes`): grown by doubling.
    assert!(successes.capacity() <= 10);
    drop(successes);
    assert_dropped_once(&log, "out-", 0..5);
}

#[test]
fn inline_smallvec_successes_stay_inline() {
    let log = DropLog::new();
    let board = Board::new(2);
    let children: SmallVec<[Kid<(), Res<()>>; 4]> = kids::<(), Res<()>>(&board, &log, 2, 2)
        .into_iter()
        .collect();
    board.plan(0, Plan::Ok);
    board.plan(1, Plan::Ok);
    let mut gathered = pin!(gather(children).fail_fast());
    let successes = ready(poll_with(gathered.as_mut(), &noop())).expect("all ok");
    assert!(!successes.spilled());
    assert_eq!(successes.len(), 2);
    drop(successes);
    assert_dropped_once(&log, "out-", 0..2);
}
