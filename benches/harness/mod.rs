//! The benchmark harness: a counting allocator, the children of each scenario, the
//! hand-made executors that drive them, and the measuring and printing of rows. The rows
//! themselves (which implementations, which sizes) are in `benches/gather.rs`.
//!
//! The generic helpers that wrap each measured run are `#[inline]`: in a module of their
//! own they may land in another codegen unit than the rows, and a call into the harness
//! per run would then be measured too (as it was not when this was one file).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Counting: allocations (global allocator) and child polls (only in counting runs).

pub(crate) struct CountingAlloc;

pub(crate) static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
pub(crate) static GLOBAL: CountingAlloc = CountingAlloc;

thread_local! {
    static POLLS: Cell<u64> = const { Cell::new(0) };
}

#[inline(always)]
pub(crate) fn count_poll<const COUNT: bool>() {
    if COUNT {
        POLLS.with(|p| p.set(p.get() + 1));
    }
}

pub(crate) type Outcome = Result<u64, u64>;

pub(crate) fn outcome(i: u64) -> Outcome {
    if i % 7 == 6 {
        Err(i)
    } else {
        Ok(i)
    }
}

// ---------------------------------------------------------------------------------------
// Children.

/// Ready at its first poll.
pub(crate) struct ReadyChild<const COUNT: bool>(pub(crate) u64);

impl<const COUNT: bool> Future for ReadyChild<COUNT> {
    type Output = Outcome;
    #[inline]
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Outcome> {
        count_poll::<COUNT>();
        Poll::Ready(outcome(self.0))
    }
}

/// Wakes itself and returns `Pending` once, then is ready.
pub(crate) struct YieldOnce<const COUNT: bool> {
    pub(crate) i: u64,
    pub(crate) yielded: bool,
}

impl<const COUNT: bool> Future for YieldOnce<COUNT> {
    type Output = Outcome;
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        count_poll::<COUNT>();
        if self.yielded {
            return Poll::Ready(outcome(self.i));
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// An outside event source for `external_wake`: fires one child at a time.
pub(crate) struct Reactor {
    pub(crate) wakers: RefCell<Vec<Option<Waker>>>,
    pub(crate) fired: RefCell<Vec<bool>>,
    pub(crate) registered: Cell<usize>,
}

impl Reactor {
    pub(crate) fn new(n: usize) -> Self {
        Reactor {
            wakers: RefCell::new(vec![None; n]),
            fired: RefCell::new(vec![false; n]),
            registered: Cell::new(0),
        }
    }

    /// Back to as `new` made it: nothing fired, no waker registered.
    pub(crate) fn reset(&self) {
        self.wakers.borrow_mut().fill(None);
        self.fired.borrow_mut().fill(false);
        self.registered.set(0);
    }

    pub(crate) fn fire(&self, id: usize) {
        self.fired.borrow_mut()[id] = true;
        if let Some(waker) = self.wakers.borrow_mut()[id].take() {
            waker.wake();
        }
    }
}

/// Pending until the reactor fires it.
pub(crate) struct External<'r, const COUNT: bool> {
    pub(crate) id: usize,
    pub(crate) reactor: &'r Reactor,
}

impl<const COUNT: bool> Future for External<'_, COUNT> {
    type Output = Outcome;
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        count_poll::<COUNT>();
        if self.reactor.fired.borrow()[self.id] {
            return Poll::Ready(outcome(self.id as u64));
        }
        let mut wakers = self.reactor.wakers.borrow_mut();
        let slot = &mut wakers[self.id];
        if slot.is_none() {
            self.reactor
                .registered
                .set(self.reactor.registered.get() + 1);
        }
        match slot {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

// ---------------------------------------------------------------------------------------
// Driving.

pub(crate) struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
    fn wake_by_ref(self: &Arc<Self>) {}
}

pub(crate) fn noop_waker() -> Waker {
    Waker::from(Arc::new(Noop))
}

/// Polls until ready (busy: a woken future is polled again at once).
#[inline]
pub(crate) fn block_on<F: Future>(future: F, waker: &Waker) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// Drives `future` with `reactor`: polls until every child registered, then fires one
/// child per poll in `order`, then polls until ready.
#[inline]
pub(crate) fn drive_external<F: Future>(
    future: F,
    reactor: &Reactor,
    order: &[usize],
    waker: &Waker,
) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        if reactor.registered.get() == order.len() {
            break;
        }
    }
    for &id in order {
        reactor.fire(id);
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

pub(crate) fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    for i in (1..n).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// Runs a future to the end in one scenario's way.
pub(crate) trait Runner {
    fn run<G: Future>(self, future: G, count: impl FnOnce(G::Output) -> usize) -> usize;
}

pub(crate) struct Busy<'w>(pub(crate) &'w Waker);

impl Runner for Busy<'_> {
    #[inline]
    fn run<G: Future>(self, future: G, count: impl FnOnce(G::Output) -> usize) -> usize {
        count(block_on(future, self.0))
    }
}

pub(crate) struct Externally<'a> {
    pub(crate) reactor: &'a Reactor,
    pub(crate) order: &'a [usize],
    pub(crate) waker: &'a Waker,
}

impl Runner for Externally<'_> {
    #[inline]
    fn run<G: Future>(self, future: G, count: impl FnOnce(G::Output) -> usize) -> usize {
        count(drive_external(future, self.reactor, self.order, self.waker))
    }
}

// ---------------------------------------------------------------------------------------
// Measuring.

pub(crate) struct Settings {
    pub(crate) batch: Duration,
    pub(crate) batches: usize,
}

/// Best mean time per run over several batches, in nanoseconds.
#[inline]
pub(crate) fn time(settings: &Settings, mut once: impl FnMut() -> usize) -> f64 {
    black_box(once());
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed() < settings.batch / 4 || runs == 0 {
        black_box(once());
        runs += 1;
    }
    let per_batch = (runs * 4).max(1);
    let mut best = f64::INFINITY;
    for _ in 0..settings.batches {
        let start = Instant::now();
        for _ in 0..per_batch {
            black_box(once());
        }
        best = best.min(start.elapsed().as_nanos() as f64 / f64::from(per_batch));
    }
    best
}

/// Child polls and allocations of one run.
#[inline]
pub(crate) fn counts(once: impl FnOnce() -> usize) -> (u64, usize) {
    POLLS.with(|p| p.set(0));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    black_box(once());
    (
        POLLS.with(Cell::get),
        ALLOCATIONS.load(Ordering::Relaxed) - before,
    )
}

/// One row of the table: the best time over every round, and the counts (the same in
/// every round).
pub(crate) struct Row {
    pub(crate) scenario: &'static str,
    pub(crate) n: usize,
    pub(crate) name: &'static str,
    pub(crate) ns_per_child: f64,
    /// Child polls per child and allocations per gather; `None` for the floor of
    /// `external_wake`, which is timed only.
    pub(crate) counts: Option<(f64, usize)>,
}

thread_local! {
    /// Every row so far, in the order of their first round.
    static TABLE: RefCell<Vec<Row>> = const { RefCell::new(Vec::new()) };
}

/// Records one measurement: a new row in the first round, a better time in later ones.
pub(crate) fn record(
    scenario: &'static str,
    n: usize,
    name: &'static str,
    ns: f64,
    counts: Option<(u64, usize)>,
) {
    let ns_per_child = ns / n as f64;
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        let same = |r: &&mut Row| r.scenario == scenario && r.n == n && r.name == name;
        match table.iter_mut().find(same) {
            Some(row) => row.ns_per_child = row.ns_per_child.min(ns_per_child),
            None => table.push(Row {
                scenario,
                n,
                name,
                ns_per_child,
                counts: counts.map(|(polls, allocations)| (polls as f64 / n as f64, allocations)),
            }),
        }
    });
}

pub(crate) fn row(
    scenario: &'static str,
    n: usize,
    name: &'static str,
    ns: f64,
    polls: u64,
    allocations: usize,
) {
    record(scenario, n, name, ns, Some((polls, allocations)));
}

pub(crate) fn print_table() {
    TABLE.with(|table| {
        let mut last = "";
        for row in table.borrow().iter() {
            if row.scenario != last {
                println!();
                last = row.scenario;
            }
            let (polls, allocations) = match row.counts {
                Some((polls, allocations)) => (format!("{polls:.2}"), allocations.to_string()),
                None => ("-".to_owned(), "-".to_owned()),
            };
            println!(
                "{:<14} {:>6} {:<30} {:>10.2} {polls:>8} {allocations:>8}",
                row.scenario, row.n, row.name, row.ns_per_child
            );
        }
    });
}
/// Keeps freed memory in the process (see the module docs).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn keep_freed_memory() {
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    // SAFETY: `mallopt` only changes allocator settings; these are valid values.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn keep_freed_memory() {}
