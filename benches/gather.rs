//! Side-by-side benchmarks: `gather` against the crates people use today, in one run.
//!
//! `cargo bench` prints, for each scenario and number of children N, one row per
//! implementation: nanoseconds per child (the best batch: ten batches per row, and the
//! whole suite three times over, so that a slow spell of a shared machine does not decide
//! a row), child polls per child, and allocations per gather (counting the input `Vec` and
//! the output). No runtime: a hand-made `block_on` drives every future.
//!
//! Scenarios:
//! - `ready`: every child is ready at its first poll; every 7th is an `Err`.
//! - `yield_once`: each child wakes itself and returns `Pending` once, then is ready.
//! - `external_wake`: each child stays pending until an outside reactor wakes it; the
//!   reactor fires one child per outer poll, in a fixed random order.
//!
//! - `stop`: every child waits but the first, which fails: fail-fast drops the others, a
//!   graceful fail-fast (`graceful`) lets each see the stop signal and stop.
//!
//! `cargo bench -- quick` runs shorter batches (for CI); `cargo bench -- SCENARIO` runs one
//! scenario; `cargo bench -- small` only the small gathers (N <= 30, `[F; 8]`, tuples);
//! `cargo bench -- sets` only the growing sets (`Group` against `FuturesUnordered` and
//! `FutureGroup`, children pushed up front or refilled as they finish; and tokio's
//! `JoinSet` on a current-thread runtime, for reference: it spawns each child as a task).
//!
//! On glibc the benchmark first asks the allocator to keep freed memory (`mallopt`):
//! otherwise, at N = 65,536, every implementation spends most of its time in page faults on
//! memory that the allocator returned to the kernel after the previous run, and the rows
//! measure the allocator's trimming policy rather than the combinators.

mod harness;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_concurrency::prelude::*;

use harness::*;

// ---------------------------------------------------------------------------------------
// The implementations, each a function of the children that runs them to the end and
// returns how many outcomes it got (so nothing is optimised away).

#[derive(Clone, Copy, PartialEq, Eq)]
enum Imp {
    Gather,
    GatherFailFast,
    JoinAll,
    TryJoinAll,
    ConcurrencyJoin,
    ConcurrencyTryJoin,
    BufferedJoinAll,
    PlainLoop,
}

const IMPS: [Imp; 8] = [
    Imp::Gather,
    Imp::JoinAll,
    Imp::ConcurrencyJoin,
    Imp::BufferedJoinAll,
    Imp::PlainLoop,
    Imp::GatherFailFast,
    Imp::TryJoinAll,
    Imp::ConcurrencyTryJoin,
];

impl Imp {
    fn name(self) -> &'static str {
        match self {
            Imp::Gather => "gather (settle all)",
            Imp::GatherFailFast => "gather fail_fast",
            Imp::JoinAll => "futures join_all",
            Imp::TryJoinAll => "futures try_join_all",
            Imp::ConcurrencyJoin => "futures-concurrency join",
            Imp::ConcurrencyTryJoin => "futures-concurrency try_join",
            Imp::BufferedJoinAll => "futures-buffered join_all",
            Imp::PlainLoop => "plain loop (floor)",
        }
    }

    /// Whether this implementation rescans or re-polls every child on every wake, so
    /// that `external_wake` at large N would take minutes.
    fn quadratic(self) -> bool {
        matches!(self, Imp::ConcurrencyJoin | Imp::ConcurrencyTryJoin)
    }

    /// Builds the future over `children` and runs it with `run`.
    fn run<F>(self, children: Vec<F>, run: impl Runner) -> usize
    where
        F: Future<Output = Outcome> + Unpin,
    {
        match self {
            Imp::Gather => run.run(gather::gather(children), |g| g.len()),
            Imp::GatherFailFast => run.run(gather::gather(children).fail_fast(), |r| {
                r.map_or_else(|e| e.len(), |v| v.len())
            }),
            Imp::JoinAll => run.run(futures::future::join_all(children), |v| v.len()),
            Imp::TryJoinAll => run.run(futures::future::try_join_all(children), |r| {
                r.map_or(1, |v| v.len())
            }),
            Imp::ConcurrencyJoin => run.run(children.join(), |v| v.len()),
            Imp::ConcurrencyTryJoin => run.run(children.try_join(), |r| r.map_or(1, |v| v.len())),
            Imp::BufferedJoinAll => run.run(futures_buffered::join_all(children), |v| v.len()),
            Imp::PlainLoop => run.run(PlainLoop::new(children), |v| v.len()),
        }
    }
}

/// The floor: polls each child once, in order, and collects (ready children only).
struct PlainLoop<F: Future> {
    children: Vec<F>,
}

impl<F: Future> PlainLoop<F> {
    fn new(children: Vec<F>) -> Self {
        PlainLoop { children }
    }
}

impl<F: Future + Unpin> Future for PlainLoop<F> {
    type Output = Vec<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<F::Output>> {
        let out = self
            .children
            .iter_mut()
            .map(|c| match Pin::new(c).poll(cx) {
                Poll::Ready(v) => v,
                Poll::Pending => unreachable!("the plain loop takes ready children only"),
            })
            .collect();
        Poll::Ready(out)
    }
}

// ---------------------------------------------------------------------------------------
// Arrays: gather over `[F; N]` against embassy's `join_array`.

fn run_array<const N: usize, F: Future<Output = Outcome>>(
    imp: &str,
    children: [F; N],
    run: impl Runner,
) -> usize {
    // Both read every outcome, with the same code: an array result that only has its
    // length taken lives on the stack, and the compiler may then drop the work that made it.
    let errors = |outcomes: &[Outcome; N]| outcomes.iter().filter(|o| o.is_err()).count();
    match imp {
        "gather" => run.run(gather::gather(children), |g| errors(g.results())),
        _ => run.run(embassy_futures::join::join_array(children), |v| errors(&v)),
    }
}

/// The floor of `external_wake`: the reactor, and each fired child polled directly, with
/// no combinator at all (the driver knows which child it fired).
fn external_floor(reactor: &Reactor, order: &[usize], waker: &Waker) -> usize {
    let mut cx = Context::from_waker(waker);
    let mut children: Vec<_> = (0..order.len())
        .map(|id| External::<false> { id, reactor })
        .collect();
    let mut outputs: Vec<Option<Outcome>> = (0..order.len()).map(|_| None).collect();
    for child in &mut children {
        let _ = Pin::new(child).poll(&mut cx);
    }
    for &id in order {
        reactor.fire(id);
        if let Poll::Ready(output) = Pin::new(&mut children[id]).poll(&mut cx) {
            outputs[id] = Some(output);
        }
    }
    outputs.len()
}

/// One `external_wake` run of `imp` over a `Vec`; `COUNT` says whether children count
/// their polls (the counting run) or not (the timed one).
fn external_vec<const COUNT: bool>(
    imp: Imp,
    reactor: &Reactor,
    order: &[usize],
    waker: &Waker,
) -> usize {
    let children: Vec<_> = (0..order.len())
        .map(|id| External::<COUNT> { id, reactor })
        .collect();
    imp.run(
        children,
        Externally {
            reactor,
            order,
            waker,
        },
    )
}

/// One `external_wake` run of `imp` over an array; see [`external_vec`].
fn external_array<const N: usize, const COUNT: bool>(
    imp: &str,
    reactor: &Reactor,
    order: &[usize],
    waker: &Waker,
) -> usize {
    let children = core::array::from_fn::<_, N, _>(|id| External::<COUNT> { id, reactor });
    run_array(
        imp,
        children,
        Externally {
            reactor,
            order,
            waker,
        },
    )
}

fn vec_scenario(settings: &Settings, scenario: &'static str, n: usize, waker: &Waker) {
    if scenario == "external_wake" {
        let order = shuffled(n);
        let ns = time(settings, || external_floor(&Reactor::new(n), &order, waker));
        // No counts: the floor is not measured for polls or allocations.
        record(scenario, n, "reactor + direct poll (floor)", ns, None);
    }
    for imp in IMPS {
        match scenario {
            "ready" => {
                let make = |_: ()| (0..n as u64).map(ReadyChild::<false>).collect::<Vec<_>>();
                let ns = time(settings, || imp.run(make(()), Busy(waker)));
                let (polls, allocs) = counts(|| {
                    imp.run((0..n as u64).map(ReadyChild::<true>).collect(), Busy(waker))
                });
                row(scenario, n, imp.name(), ns, polls, allocs);
            }
            "yield_once" => {
                if imp == Imp::PlainLoop {
                    continue;
                }
                let make = || (0..n as u64).map(|i| YieldOnce::<false> { i, yielded: false });
                let ns = time(settings, || imp.run(make().collect(), Busy(waker)));
                let (polls, allocs) = counts(|| {
                    let children = (0..n as u64).map(|i| YieldOnce::<true> { i, yielded: false });
                    imp.run(children.collect(), Busy(waker))
                });
                row(scenario, n, imp.name(), ns, polls, allocs);
            }
            _ => {
                if imp == Imp::PlainLoop || (imp.quadratic() && n > 8192) {
                    continue;
                }
                let order = shuffled(n);
                let ns = time(settings, || {
                    external_vec::<false>(imp, &Reactor::new(n), &order, waker)
                });
                let reactor = Reactor::new(n);
                let (polls, allocs) = counts(|| external_vec::<true>(imp, &reactor, &order, waker));
                row(scenario, n, imp.name(), ns, polls, allocs);
            }
        }
    }
}

fn array_scenario<const N: usize>(settings: &Settings, scenario: &'static str, waker: &Waker) {
    for imp in ["gather", "embassy join_array"] {
        let name = if imp == "gather" {
            "gather [F; N]"
        } else {
            imp
        };
        match scenario {
            "ready" => {
                let ns = time(settings, || {
                    run_array(
                        imp,
                        core::array::from_fn::<_, N, _>(|i| ReadyChild::<false>(i as u64)),
                        Busy(waker),
                    )
                });
                let (polls, allocs) = counts(|| {
                    run_array(
                        imp,
                        core::array::from_fn::<_, N, _>(|i| ReadyChild::<true>(i as u64)),
                        Busy(waker),
                    )
                });
                row(scenario, N, name, ns, polls, allocs);
            }
            "yield_once" => {
                let make = |i: usize| YieldOnce::<false> {
                    i: i as u64,
                    yielded: false,
                };
                let ns = time(settings, || {
                    run_array(imp, core::array::from_fn::<_, N, _>(make), Busy(waker))
                });
                let (polls, allocs) = counts(|| {
                    let make = |i: usize| YieldOnce::<true> {
                        i: i as u64,
                        yielded: false,
                    };
                    run_array(imp, core::array::from_fn::<_, N, _>(make), Busy(waker))
                });
                row(scenario, N, name, ns, polls, allocs);
            }
            _ => {
                let order = shuffled(N);
                let ns = time(settings, || {
                    external_array::<N, false>(imp, &Reactor::new(N), &order, waker)
                });
                let reactor = Reactor::new(N);
                let (polls, allocs) =
                    counts(|| external_array::<N, true>(imp, &reactor, &order, waker));
                row(scenario, N, name, ns, polls, allocs);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tuples: gather over `(A, B, C, D)` against `futures::join!` (`join4`) and embassy's `join4`.

fn tuple_scenario(settings: &Settings, scenario: &'static str, waker: &Waker) {
    fn errors(o: (&Outcome, &Outcome, &Outcome, &Outcome)) -> usize {
        usize::from(o.0.is_err())
            + usize::from(o.1.is_err())
            + usize::from(o.2.is_err())
            + usize::from(o.3.is_err())
    }
    #[inline]
    fn run<F: Future<Output = Outcome>>(imp: &str, c: (F, F, F, F), waker: &Waker) -> usize {
        match imp {
            "gather" => Busy(waker).run(gather::gather(c), |g| {
                let (a, b, c, d) = g.results();
                errors((a, b, c, d))
            }),
            "futures" => Busy(waker).run(futures::future::join4(c.0, c.1, c.2, c.3), |o| {
                errors((&o.0, &o.1, &o.2, &o.3))
            }),
            _ => Busy(waker).run(embassy_futures::join::join4(c.0, c.1, c.2, c.3), |o| {
                errors((&o.0, &o.1, &o.2, &o.3))
            }),
        }
    }
    for (imp, name) in [
        ("gather", "gather (A, B, C, D)"),
        ("futures", "futures join4 (join!)"),
        ("embassy", "embassy join4"),
    ] {
        match scenario {
            "ready" => {
                let make = |_: ()| {
                    (
                        ReadyChild::<false>(0),
                        ReadyChild(1),
                        ReadyChild(2),
                        ReadyChild(6),
                    )
                };
                let ns = time(settings, || run(imp, make(()), waker));
                let (polls, allocs) = counts(|| {
                    run(
                        imp,
                        (
                            ReadyChild::<true>(0),
                            ReadyChild(1),
                            ReadyChild(2),
                            ReadyChild(6),
                        ),
                        waker,
                    )
                });
                row(scenario, 4, name, ns, polls, allocs);
            }
            "yield_once" => {
                fn make<const COUNT: bool>() -> [YieldOnce<COUNT>; 4] {
                    core::array::from_fn(|i| YieldOnce {
                        i: if i == 3 { 6 } else { i as u64 },
                        yielded: false,
                    })
                }
                let ns = time(settings, || {
                    let [a, b, c, d] = make::<false>();
                    run(imp, (a, b, c, d), waker)
                });
                let (polls, allocs) = counts(|| {
                    let [a, b, c, d] = make::<true>();
                    run(imp, (a, b, c, d), waker)
                });
                row(scenario, 4, name, ns, polls, allocs);
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Growing sets: `Group` against `FuturesUnordered` (futures-util, futures-buffered) and
// futures-concurrency's `FutureGroup`, read as streams. Two shapes: every child pushed
// up front, and a refill (64 at first, each completion pushing the next until N have run).

/// A set of futures that grows: push, and poll for the next outcome.
trait Set<F: Future>: Unpin {
    fn push(&mut self, child: F);
    /// The next outcome, `Ready(None)` when empty.
    fn poll_one(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outcome>>;
}

impl<F: Future<Output = Outcome> + Unpin> Set<F> for gather::Group<F> {
    fn push(&mut self, child: F) {
        gather::Group::push(self, child);
    }
    #[inline]
    fn poll_one(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outcome>> {
        use futures::Stream;
        Pin::new(self)
            .poll_next(cx)
            .map(|item| item.map(|(_, outcome)| outcome))
    }
}

impl<F: Future<Output = Outcome> + Unpin> Set<F> for futures::stream::FuturesUnordered<F> {
    fn push(&mut self, child: F) {
        futures::stream::FuturesUnordered::push(self, child);
    }
    #[inline]
    fn poll_one(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outcome>> {
        use futures::Stream;
        Pin::new(self).poll_next(cx)
    }
}

impl<F: Future<Output = Outcome> + Unpin> Set<F> for futures_buffered::FuturesUnordered<F> {
    fn push(&mut self, child: F) {
        futures_buffered::FuturesUnordered::push(self, child);
    }
    #[inline]
    fn poll_one(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outcome>> {
        use futures::Stream;
        Pin::new(self).poll_next(cx)
    }
}

impl<F: Future<Output = Outcome> + Unpin> Set<F> for futures_concurrency::future::FutureGroup<F> {
    fn push(&mut self, child: F) {
        self.insert(child);
    }
    #[inline]
    fn poll_one(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outcome>> {
        use futures::Stream;
        Pin::new(self).poll_next(cx)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetImp {
    Group,
    FuturesUnordered,
    BufferedUnordered,
    FutureGroup,
}

impl SetImp {
    const ALL: [SetImp; 4] = [
        SetImp::Group,
        SetImp::FuturesUnordered,
        SetImp::BufferedUnordered,
        SetImp::FutureGroup,
    ];

    fn name(self, refill: bool) -> &'static str {
        match (self, refill) {
            (SetImp::Group, false) => "gather Group, up front",
            (SetImp::Group, true) => "gather Group, refill",
            (SetImp::FuturesUnordered, false) => "futures FuturesUnordered, up front",
            (SetImp::FuturesUnordered, true) => "futures FuturesUnordered, refill",
            (SetImp::BufferedUnordered, false) => "futures-buffered FU, up front",
            (SetImp::BufferedUnordered, true) => "futures-buffered FU, refill",
            (SetImp::FutureGroup, false) => "f-concurrency FutureGroup, up front",
            (SetImp::FutureGroup, true) => "f-concurrency FutureGroup, refill",
        }
    }

    /// Runs `drive` over an empty set of this kind.
    #[inline]
    fn with<F: Future<Output = Outcome> + Unpin>(
        self,
        drive: impl FnOnce(&mut dyn Set<F>) -> usize,
    ) -> usize {
        match self {
            SetImp::Group => drive(&mut gather::Group::new()),
            SetImp::FuturesUnordered => drive(&mut futures::stream::FuturesUnordered::new()),
            SetImp::BufferedUnordered => drive(&mut futures_buffered::FuturesUnordered::new()),
            SetImp::FutureGroup => drive(&mut futures_concurrency::future::FutureGroup::new()),
        }
    }
}

/// How many children a refill keeps running.
const REFILL: usize = 64;

/// Reads `set` to the end, busily; `refill` makes child `pushed` for each outcome until
/// `n` were made. Returns how many outcomes came.
#[inline]
fn read_busily<F: Future>(
    set: &mut dyn Set<F>,
    n: usize,
    mut refill: Option<&mut dyn FnMut(usize) -> F>,
    waker: &Waker,
) -> usize {
    let mut cx = Context::from_waker(waker);
    let (mut outcomes, mut pushed) = (0, if refill.is_some() { REFILL.min(n) } else { n });
    loop {
        match set.poll_one(&mut cx) {
            Poll::Ready(Some(_)) => {
                outcomes += 1;
                if let Some(make) = refill.as_mut() {
                    if pushed < n {
                        set.push(make(pushed));
                        pushed += 1;
                    }
                }
            }
            Poll::Ready(None) => return outcomes,
            Poll::Pending => {}
        }
    }
}

fn set_yield_once<const COUNT: bool>(imp: SetImp, n: usize, refill: bool, waker: &Waker) -> usize {
    let make = |i: usize| YieldOnce::<COUNT> {
        i: i as u64,
        yielded: false,
    };
    imp.with(|set| {
        let first = if refill { REFILL.min(n) } else { n };
        for i in 0..first {
            set.push(make(i));
        }
        let mut make = make;
        read_busily(
            set,
            n,
            refill.then_some(&mut make as &mut dyn FnMut(usize) -> _),
            waker,
        )
    })
}

/// `external_wake` over a set: every child registers its waker, then the reactor fires
/// one per poll of the set (in `order`; for a refill, in the order they were made, each
/// completion making the next).
fn set_external<'r, const COUNT: bool>(
    imp: SetImp,
    reactor: &'r Reactor,
    order: &[usize],
    refill: bool,
    waker: &Waker,
) -> usize {
    let n = order.len();
    let mut cx = Context::from_waker(waker);
    imp.with(|set| {
        let make = |id: usize| External::<COUNT> { id, reactor };
        let mut pushed = if refill { REFILL.min(n) } else { n };
        for id in 0..pushed {
            set.push(make(id));
        }
        let mut outcomes = 0;
        let mut take = |set: &mut dyn Set<External<'r, COUNT>>, pushed: &mut usize| loop {
            match set.poll_one(&mut cx) {
                Poll::Ready(Some(_)) => {
                    outcomes += 1;
                    if refill && *pushed < n {
                        set.push(make(*pushed));
                        *pushed += 1;
                    }
                }
                Poll::Ready(None) | Poll::Pending => return,
            }
        };
        take(set, &mut pushed);
        for (i, &id) in order.iter().enumerate() {
            reactor.fire(if refill { i } else { id });
            take(set, &mut pushed);
        }
        outcomes
    })
}

/// tokio's `JoinSet` on a current-thread runtime, for reference: each child is a task of
/// its own (`spawn_local`, since the children are not `Send`), polled by the runtime's
/// scheduler rather than by the set. `external_wake`: once every child has registered,
/// the reactor fires one, and the set is awaited for its outcome (children pushed by a
/// refill may first run after they were fired). `reactor` is `None` for `yield_once`.
fn joinset<const COUNT: bool>(
    runtime: &tokio::runtime::Runtime,
    reactor: Option<&'static Reactor>,
    order: &[usize],
    refill: bool,
) -> usize {
    let n = order.len();
    let local = tokio::task::LocalSet::new();
    local.block_on(runtime, async {
        let mut set = tokio::task::JoinSet::new();
        let spawn = |set: &mut tokio::task::JoinSet<Outcome>, i: usize| match reactor {
            Some(reactor) => set.spawn_local(External::<COUNT> { id: i, reactor }),
            None => set.spawn_local(YieldOnce::<COUNT> {
                i: i as u64,
                yielded: false,
            }),
        };
        let mut pushed = if refill { REFILL.min(n) } else { n };
        for i in 0..pushed {
            spawn(&mut set, i);
        }
        let first = pushed;
        let mut outcomes = 0;
        type Joined = Option<Result<Outcome, tokio::task::JoinError>>;
        let mut next = |set: &mut tokio::task::JoinSet<Outcome>, joined: Joined| {
            let _: Outcome = joined
                .expect("a child for each outcome")
                .expect("the children do not panic");
            outcomes += 1;
            if refill && pushed < n {
                spawn(set, pushed);
                pushed += 1;
            }
        };
        let Some(reactor) = reactor else {
            while let Some(outcome) = set.join_next().await {
                next(&mut set, Some(outcome));
            }
            return outcomes;
        };
        reactor.reset();
        while reactor.registered.get() < first {
            tokio::task::yield_now().await;
        }
        for (i, &id) in order.iter().enumerate() {
            reactor.fire(if refill { i } else { id });
            let outcome = set.join_next().await;
            next(&mut set, outcome);
        }
        outcomes
    })
}

fn set_scenario(settings: &Settings, scenario: &'static str, n: usize, waker: &Waker) {
    let order = shuffled(n);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    // `JoinSet` children are tasks, which must be `'static`: they get a reactor of their
    // own, made once and reset by each run (the other rows make theirs in each run).
    let reactor: &'static Reactor = Box::leak(Box::new(Reactor::new(n)));
    let joinset_reactor = (scenario == "external_wake").then_some(reactor);
    for refill in [false, true] {
        for imp in SetImp::ALL {
            let name = imp.name(refill);
            // `FutureGroup` scans every slot per wake: 65,536 children woken one by one
            // would take most of a minute per batch.
            if imp == SetImp::FutureGroup && !refill && scenario == "external_wake" && n > 8192 {
                continue;
            }
            if scenario == "yield_once" {
                let ns = time(settings, || set_yield_once::<false>(imp, n, refill, waker));
                let (polls, allocs) = counts(|| set_yield_once::<true>(imp, n, refill, waker));
                row(scenario, n, name, ns, polls, allocs);
            } else {
                let ns = time(settings, || {
                    set_external::<false>(imp, &Reactor::new(n), &order, refill, waker)
                });
                let reactor = Reactor::new(n);
                let (polls, allocs) =
                    counts(|| set_external::<true>(imp, &reactor, &order, refill, waker));
                row(scenario, n, name, ns, polls, allocs);
            }
        }
        let name = if refill {
            "tokio JoinSet, refill"
        } else {
            "tokio JoinSet, up front"
        };
        let ns = time(settings, || {
            joinset::<false>(&runtime, joinset_reactor, &order, refill)
        });
        let (polls, allocs) = counts(|| joinset::<true>(&runtime, joinset_reactor, &order, refill));
        row(scenario, n, name, ns, polls, allocs);
    }
}

// ---------------------------------------------------------------------------------------
// Stopping: every child waits but the first, which fails at its second poll (every child
// has been polled once by then). Fail-fast drops the others; a graceful fail-fast raises a signal and polls each once more (it sees the
// signal and says it stopped) before it completes: what letting children clean up costs.

#[derive(Clone, Copy, PartialEq, Eq)]
enum StopImp {
    FailFast,
    Graceful,
    TryJoinAll,
}

impl StopImp {
    fn name(self) -> &'static str {
        match self {
            StopImp::FailFast => "gather fail_fast (drops them)",
            StopImp::Graceful => "gather graceful fail_fast",
            StopImp::TryJoinAll => "futures try_join_all (drops)",
        }
    }
}

#[derive(Debug)]
enum StopOutcome {
    Failed,
    Stopped,
}

impl From<gather::Stopped> for StopOutcome {
    fn from(_: gather::Stopped) -> Self {
        StopOutcome::Stopped
    }
}

impl gather::StopError for StopOutcome {
    fn is_stopped(&self) -> bool {
        matches!(self, StopOutcome::Stopped)
    }
}

/// A child that waits for the signal (and then stops), or fails at its second poll
/// (after every sibling was polled once).
struct Waiter<'a, const COUNT: bool> {
    signal: &'a gather::StopSignal,
    fails: bool,
    polled: bool,
}

impl<const COUNT: bool> Future for Waiter<'_, COUNT> {
    type Output = Result<u64, StopOutcome>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        count_poll::<COUNT>();
        if self.fails {
            if self.polled {
                return Poll::Ready(Err(StopOutcome::Failed));
            }
            self.polled = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        } else if self.signal.is_raised() {
            Poll::Ready(Err(StopOutcome::Stopped))
        } else {
            Poll::Pending
        }
    }
}

fn stop_run<const COUNT: bool>(imp: StopImp, n: usize, waker: &Waker) -> usize {
    let signal = gather::StopSignal::new();
    let children = (0..n).map(|i| Waiter::<COUNT> {
        signal: &signal,
        fails: i == 0,
        polled: false,
    });
    let failed = |r: Result<Vec<u64>, _>| r.map_or(1, |v| v.len());
    match imp {
        StopImp::FailFast => {
            let all = gather::gather(children.collect::<Vec<_>>()).fail_fast();
            block_on(all, waker).map_or_else(|e| e.len(), |v| v.len())
        }
        StopImp::Graceful => {
            let all = gather::gather(children.collect::<Vec<_>>())
                .graceful(&signal, std::future::pending::<()>)
                .fail_fast();
            block_on(all, waker).map_or_else(|e| e.len(), |v| v.len())
        }
        StopImp::TryJoinAll => failed(block_on(
            futures::future::try_join_all(children.collect::<Vec<_>>()),
            waker,
        )),
    }
}

fn stop_scenario(settings: &Settings, n: usize, waker: &Waker) {
    for imp in [StopImp::FailFast, StopImp::Graceful, StopImp::TryJoinAll] {
        let ns = time(settings, || stop_run::<false>(imp, n, waker));
        let (polls, allocs) = counts(|| stop_run::<true>(imp, n, waker));
        row("stop", n, imp.name(), ns, polls, allocs);
    }
}

fn main() {
    keep_freed_memory();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let quick = args.iter().any(|a| a == "quick");
    // Many short batches, and the whole suite several times over, rather than a few long
    // batches: on a shared machine, the best batch is the one that ran undisturbed, and a
    // slow spell of a second or two then costs a row nothing.
    let (settings, rounds) = if quick {
        let settings = Settings {
            batch: Duration::from_millis(10),
            batches: 2,
        };
        (settings, 1)
    } else {
        let settings = Settings {
            batch: Duration::from_millis(30),
            batches: 10,
        };
        (settings, 3)
    };
    // `small`: only the rows of small gathers (N <= 30, arrays of 8, tuples).
    let small = args.iter().any(|a| a == "small");
    // `sets`: only the rows of growing sets.
    let sets = args.iter().any(|a| a == "sets");
    let chosen = |scenario: &str| {
        !sets && args.iter().all(|a| a == "quick" || a == "small")
            || args.iter().any(|a| a == scenario)
    };
    let waker = noop_waker();

    println!(
        "gather benchmarks: {} (best of {} batches in each of {rounds} rounds); \
         ns/child, child polls/child, allocations/gather",
        std::env::consts::ARCH,
        settings.batches
    );
    for _ in 0..rounds {
        for scenario in ["ready", "yield_once", "external_wake"] {
            if !chosen(scenario) {
                continue;
            }
            tuple_scenario(&settings, scenario, &waker);
            array_scenario::<8>(&settings, scenario, &waker);
            if !small {
                array_scenario::<1024>(&settings, scenario, &waker);
            }
            for n in [2, 8, 30, 1024, 8192, 65_536] {
                if !small || n <= 30 {
                    vec_scenario(&settings, scenario, n, &waker);
                }
            }
        }
        // Stopping at a failure: dropping the rest, or letting them clean up.
        if chosen("stop") {
            for n in [8, 1024, 65_536] {
                if !small || n <= 30 {
                    stop_scenario(&settings, n, &waker);
                }
            }
        }
        // Growing sets (`sets` alone runs only these).
        for scenario in ["yield_once", "external_wake"] {
            if small || !(chosen(scenario) || sets) {
                continue;
            }
            for n in [1024, 8192, 65_536] {
                set_scenario(&settings, scenario, n, &waker);
            }
        }
    }
    println!(
        "{:<14} {:>6} {:<30} {:>10} {:>8} {:>8}",
        "scenario", "N", "implementation", "ns/child", "polls", "allocs"
    );
    print_table();
}
