//! An adversarial review of `CompoundError` (its first error by value, the rest in a store
//! from the second error on) and of fail-fast's error (written when fail-fast took it in the
//! pass on every target; bare-metal targets still do): every error exactly once, at its
//! index, in ascending order, with the right `len`, `total` and `iter().len()`, whatever
//! user code panics.
#![allow(dead_code)]
mod common;

use std::cell::{Cell, RefCell};
use std::future::{pending, ready, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use common::{quiet_all, DropLog, Tracked};
use gather::{
    gather, gather_iter, gather_stream, CompoundError, ErrorStore, Group, Heap, Inline, Panicked,
    SmallVec, StopError, StopSignal, Stopped, TimedOut,
};

/// An error that records its drop, and may panic in it.
#[derive(Debug)]
struct PE {
    t: Tracked,
    boom: bool,
}
impl Drop for PE {
    fn drop(&mut self) {
        if self.boom && !std::thread::panicking() {
            panic!("error {} drop panics", self.t.label());
        }
    }
}
impl Clone for PE {
    fn clone(&self) -> Self {
        if self.t.label().ends_with("!clone") {
            panic!("clone panics");
        }
        PE {
            t: DropLog::new().value("clone"),
            boom: false,
        }
    }
}
impl PartialEq for PE {
    fn eq(&self, other: &Self) -> bool {
        self.t.label() == other.t.label()
    }
}

fn noop_cx<R>(f: impl FnOnce(&mut Context<'_>) -> R) -> R {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    f(&mut cx)
}

fn run<F: Future>(f: F) -> F::Output {
    noop_cx(|cx| {
        let mut f = std::pin::pin!(f);
        for _ in 0..10_000 {
            if let Poll::Ready(o) = f.as_mut().poll(cx) {
                return o;
            }
        }
        panic!("not done")
    })
}

/// Errors at the indices of `fails`, of 8 children; `boom[i]`: its drop panics.
fn errs(log: &DropLog, fails: &[usize], boom: &[usize]) -> [std::future::Ready<Result<(), PE>>; 8] {
    std::array::from_fn(|i| {
        ready(if fails.contains(&i) {
            Err(PE {
                t: log.value(format!("e{i}")),
                boom: boom.contains(&i),
            })
        } else {
            Ok(())
        })
    })
}

fn inline(log: &DropLog, fails: &[usize], boom: &[usize]) -> CompoundError<PE, Inline<8>> {
    run(gather(errs(log, fails, boom)))
        .into_compound_error()
        .unwrap()
}
fn heap(log: &DropLog, fails: &[usize], boom: &[usize]) -> CompoundError<PE, Heap> {
    run(gather(Vec::from(errs(log, fails, boom))))
        .into_compound_error()
        .unwrap()
}

fn idx<E, S: ErrorStore<E>>(e: &CompoundError<E, S>) -> Vec<usize> {
    e.iter().map(|(i, _)| i).collect()
}

#[track_caller]
fn consistent<E, S: ErrorStore<E>>(e: &CompoundError<E, S>, want: &[usize], total: usize) {
    assert_eq!(idx(e), want, "indices");
    assert_eq!(e.len(), want.len(), "len");
    assert_eq!(e.iter().len(), want.len(), "iter().len()");
    assert_eq!(e.total(), total, "total");
    assert_eq!(e.first().0, want[0], "first");
    for i in 0..total + 2 {
        assert_eq!(e.error_at(i).is_some(), want.contains(&i), "error_at({i})");
    }
    let mut it = e.iter();
    for k in 0..want.len() {
        assert_eq!(it.len(), want.len() - k);
        it.next();
    }
    assert_eq!(it.next().map(|(i, _)| i), None);
}

#[track_caller]
fn once(log: &DropLog, fails: &[usize]) {
    for &i in fails {
        assert_eq!(
            log.count(&format!("e{i}")),
            1,
            "e{i} drops: {:?}",
            log.drops()
        );
    }
}

const SETS: &[&[usize]] = &[
    &[0],
    &[7],
    &[3],
    &[0, 1],
    &[2, 5],
    &[0, 3, 4, 7],
    &[0, 1, 2, 3, 4, 5, 6, 7],
];

// ---------------------------------------------------------------------------------------
// CompoundError operations

#[test]
fn split_map_from_keep_len_total_and_order() {
    for &fails in SETS {
        for store in 0..2 {
            let log = DropLog::new();
            macro_rules! body {
                ($e:expr) => {{
                    let e = $e;
                    consistent(&e, fails, 8);
                    let (even, odd) = e.split(|pe| {
                        pe.t.label()[1..].parse::<usize>().unwrap() % 2 == 0
                    });
                    let w_even: Vec<usize> = fails.iter().copied().filter(|i| i % 2 == 0).collect();
                    let w_odd: Vec<usize> = fails.iter().copied().filter(|i| i % 2 == 1).collect();
                    match even {
                        Some(e) => {
                            consistent(&e, &w_even, 8);
                            let m = e.map(|pe| pe.t.label().to_owned());
                            consistent(&m, &w_even, 8);
                            assert_eq!(m.into_iter().len(), w_even.len());
                        }
                        None => assert!(w_even.is_empty()),
                    }
                    match odd {
                        Some(e) => consistent(&e, &w_odd, 8),
                        None => assert!(w_odd.is_empty()),
                    }
                }};
            }
            if store == 0 {
                body!(inline(&log, fails, &[]));
                let h: CompoundError<PE, Heap> = inline(&log, fails, &[]).into();
                consistent(&h, fails, 8);
                assert_eq!(idx(&h), idx(&heap(&log, fails, &[])));
            } else {
                body!(heap(&log, fails, &[]));
            }
        }
    }
}

#[test]
fn from_inline_equals_heap_and_display_debug_agree() {
    for &fails in SETS {
        let log = DropLog::new();
        let a: CompoundError<String, Heap> = inline(&log, fails, &[])
            .map(|pe| pe.t.label().to_owned())
            .into();
        let b: CompoundError<String, Heap> =
            heap(&log, fails, &[]).map(|pe| pe.t.label().to_owned());
        assert!(a == b, "{a:?} vs {b:?}");
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let c = a.clone();
        assert!(c == a);
        consistent(&c, fails, 8);
        let ci: CompoundError<String, Inline<8>> =
            inline(&log, fails, &[]).map(|pe| pe.t.label().to_owned());
        let cc = ci.clone();
        assert!(cc == ci);
        consistent(&cc, fails, 8);
    }
}

#[test]
fn split_predicate_panics_at_every_call_drops_each_once() {
    quiet_all();
    for &fails in SETS {
        for at in 0..fails.len() {
            for store in 0..2 {
                let log = DropLog::new();
                let calls = Cell::new(0);
                let pred = |_: &PE| {
                    let n = calls.get();
                    calls.set(n + 1);
                    if n == at {
                        panic!("pred");
                    }
                    n % 2 == 0
                };
                let r = if store == 0 {
                    let e = inline(&log, fails, &[]);
                    catch_unwind(AssertUnwindSafe(|| drop(e.split(pred)))).is_err()
                } else {
                    let e = heap(&log, fails, &[]);
                    catch_unwind(AssertUnwindSafe(|| drop(e.split(pred)))).is_err()
                };
                assert!(r);
                once(&log, fails);
            }
        }
    }
}

#[test]
fn map_closure_panics_at_every_call_drops_each_once() {
    quiet_all();
    for &fails in SETS {
        for at in 0..fails.len() {
            for store in 0..2 {
                let log = DropLog::new();
                let calls = Cell::new(0);
                let mlog = log.clone();
                let f = |pe: PE| {
                    let n = calls.get();
                    calls.set(n + 1);
                    let label = format!("m{}", &pe.t.label()[1..]);
                    drop(pe);
                    if n == at {
                        panic!("map");
                    }
                    mlog.value(label)
                };
                let r = if store == 0 {
                    let e = inline(&log, fails, &[]);
                    catch_unwind(AssertUnwindSafe(|| drop(e.map(f)))).is_err()
                } else {
                    let e = heap(&log, fails, &[]);
                    catch_unwind(AssertUnwindSafe(|| drop(e.map(f)))).is_err()
                };
                assert!(r);
                once(&log, fails);
                for &i in fails.iter().take(at) {
                    assert_eq!(log.count(&format!("m{i}")), 1, "m{i}: {:?}", log.drops());
                }
            }
        }
    }
}

#[test]
fn panicking_error_drops_in_into_first_subgroup_split_and_drop() {
    quiet_all();
    for &fails in SETS {
        for &b in fails.iter() {
            for op in 0..5 {
                for store in 0..2 {
                    let log = DropLog::new();
                    let boom = [b];
                    macro_rules! go {
                        ($e:expr) => {{
                            let e = $e;
                            catch_unwind(AssertUnwindSafe(move || match op {
                                0 => {
                                    let (i, first) = e.into_first();
                                    assert_eq!(i, fails[0]);
                                    drop(first);
                                }
                                1 => {
                                    drop(e.subgroup(|pe| pe.t.label() == format!("e{}", fails[0])))
                                }
                                2 => drop(e.split(|_| false)),
                                3 => drop(e.into_iter().collect::<Vec<_>>()),
                                _ => drop(e),
                            }))
                        }};
                    }
                    let _ = if store == 0 {
                        go!(inline(&log, fails, &boom))
                    } else {
                        go!(heap(&log, fails, &boom))
                    };
                    once(&log, fails);
                }
            }
        }
    }
}

#[test]
fn clone_panicking_midway_leaks_nothing() {
    quiet_all();
    for shape in 0..2 {
        let log = DropLog::new();
        let make = |i: usize| {
            ready(if i % 2 == 0 {
                Err::<(), _>(PE {
                    t: log.value(if i == 4 {
                        format!("e{i}!clone")
                    } else {
                        format!("e{i}")
                    }),
                    boom: false,
                })
            } else {
                Ok(())
            })
        };
        if shape == 0 {
            let a = run(gather(std::array::from_fn::<_, 8, _>(make)))
                .into_compound_error()
                .unwrap();
            assert!(catch_unwind(AssertUnwindSafe(|| a.clone())).is_err());
            drop(a);
        } else {
            let b = run(gather((0..8).map(make).collect::<Vec<_>>()))
                .into_compound_error()
                .unwrap();
            assert!(catch_unwind(AssertUnwindSafe(|| b.clone())).is_err());
            drop(b);
        }
        once(&log, &[0, 2, 6]);
        assert_eq!(log.count("e4!clone"), 1);
    }
}

/// `into_compound_error`, `into_result`, `into_parts` with success outputs whose drop
/// panics: every error once.
#[test]
fn outputs_with_panicking_drop_during_into_compound_error() {
    quiet_all();
    #[derive(Debug)]
    struct T(Tracked, bool);
    impl Drop for T {
        fn drop(&mut self) {
            if self.1 && !std::thread::panicking() {
                panic!("success drop panics");
            }
        }
    }
    for how in 0..3 {
        for shape in 0..3 {
            let log = DropLog::new();
            let make = |i: usize| {
                ready(if i % 3 == 0 {
                    Err(PE {
                        t: log.value(format!("e{i}")),
                        boom: false,
                    })
                } else {
                    Ok(T(log.value(format!("t{i}")), i == 4 || i == 1))
                })
            };
            macro_rules! go {
                ($g:expr) => {{
                    let g = run($g);
                    catch_unwind(AssertUnwindSafe(move || match how {
                        0 => drop(g.into_compound_error()),
                        1 => drop(g.into_result()),
                        _ => drop(g.into_parts()),
                    }))
                }};
            }
            let r = match shape {
                0 => go!(gather(std::array::from_fn::<_, 8, _>(make))),
                1 => go!(gather((0..8).map(make).collect::<Vec<_>>())),
                _ => go!(gather((0..8).map(make).collect::<SmallVec<[_; 4]>>())),
            };
            assert!(r.is_err(), "how {how} shape {shape}");
            once(&log, &[0, 3, 6]);
            for i in [1, 2, 4, 5, 7] {
                assert_eq!(
                    log.count(&format!("t{i}")),
                    1,
                    "t{i} how {how} shape {shape}: {:?}",
                    log.drops()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// fail-fast: the right error, the right index, exactly once.

#[derive(Debug)]
enum Er {
    User(usize, Tracked),
    Panic(usize),
    Time(usize),
    Stop,
}
impl From<Panicked> for Er {
    fn from(p: Panicked) -> Self {
        Er::Panic(p.index)
    }
}
impl From<TimedOut> for Er {
    fn from(t: TimedOut) -> Self {
        Er::Time(t.index)
    }
}
impl From<Stopped> for Er {
    fn from(_: Stopped) -> Self {
        Er::Stop
    }
}
impl StopError for Er {
    fn is_stopped(&self) -> bool {
        matches!(self, Er::Stop)
    }
}
impl Er {
    /// The index the error itself names.
    fn says(&self) -> Option<usize> {
        match self {
            Er::User(i, _) | Er::Panic(i) | Er::Time(i) => Some(*i),
            Er::Stop => None,
        }
    }
}

/// Child `i`: pending until `clock >= at`, then ends as `end`. Polls are driven by a
/// shared clock that the test advances; each child wakes itself.
#[derive(Clone, Copy, Debug, PartialEq)]
enum End {
    Ok,
    Err,
    Panic,
    Never,
}

type Kid = Pin<Box<dyn Future<Output = Result<usize, Er>>>>;
/// A child that borrows from the test.
type BorrowingKid<'a> = Pin<Box<dyn Future<Output = Result<usize, Er>> + 'a>>;

fn kid(log: &DropLog, clock: &Rc<Cell<usize>>, i: usize, at: usize, end: End) -> Kid {
    let (log, clock) = (log.clone(), clock.clone());
    let guard = log.value(format!("k{i}"));
    Box::pin(async move {
        let _guard = guard;
        std::future::poll_fn(|cx| {
            if end != End::Never && clock.get() >= at {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
        match end {
            End::Ok => Ok(i),
            End::Err => Err(Er::User(i, log.value(format!("e{i}")))),
            End::Panic => panic!("kid {i}"),
            End::Never => unreachable!(),
        }
    })
}

/// Polls `f`, advancing the clock by one before each poll.
fn tick<F: Future>(clock: &Rc<Cell<usize>>, f: F) -> F::Output {
    noop_cx(|cx| {
        let mut f = std::pin::pin!(f);
        for _ in 0..10_000 {
            if let Poll::Ready(o) = f.as_mut().poll(cx) {
                return o;
            }
            clock.set(clock.get() + 1);
        }
        panic!("not done")
    })
}

/// A script: (finish time, end) per child.
fn script(n: usize, seed: u64) -> Vec<(usize, End)> {
    let order = common::shuffled_with(n, seed);
    (0..n)
        .map(|i| {
            let at = order[i] % 7 + 1;
            let end = match (order[i] * 7 + seed as usize) % 5 {
                0 => End::Err,
                1 if seed % 3 == 0 => End::Panic,
                _ => End::Ok,
            };
            (at, end)
        })
        .collect()
}

/// Which child fail-fast must report under `limit` (children start in input order, each
/// when a place is free; all children started in the same poll are polled in it, and
/// within a poll the engine's order decides among those ending at once): returned as the
/// set of acceptable indices (those whose failure time is the earliest).
fn earliest_failures(script: &[(usize, End)], limit: Option<usize>) -> Vec<usize> {
    // Simulate start times: with limit l, child i starts when a slot frees.
    let n = script.len();
    let l = limit.unwrap_or(n);
    let mut start = vec![0usize; n];
    let mut end = vec![0usize; n];
    let mut running: Vec<usize> = Vec::new();
    for i in 0..n {
        if running.len() == l {
            // the earliest-ending running child frees its place
            running.sort_by_key(|&j| end[j]);
            let j = running.remove(0);
            start[i] = end[j];
        } else {
            start[i] = 0;
        }
        // polled at start; finishes at the first poll with clock >= at
        end[i] = start[i].max(script[i].0);
        running.push(i);
    }
    let fails: Vec<usize> = (0..n)
        .filter(|&i| matches!(script[i].1, End::Err | End::Panic))
        .collect();
    let Some(t) = fails.iter().map(|&i| end[i]).min() else {
        return vec![];
    };
    fails.into_iter().filter(|&i| end[i] <= t + 1).collect()
}

#[test]
fn fail_fast_reports_an_index_that_names_the_error_itself() {
    quiet_all();
    let (seeds, ns): (u64, &[usize]) = if cfg!(miri) {
        (4, &[3, 13])
    } else {
        (40, &[1, 3, 6, 13, 40])
    };
    for seed in 1..seeds {
        for &n in ns {
            for shape in 0..6 {
                for limit in [None, Some(1), Some(2), Some(5)] {
                    if limit.is_some() && shape == 0 {
                        continue; // arrays have no limit
                    }
                    let sc = script(n, seed);
                    let log = DropLog::new();
                    let clock = Rc::new(Cell::new(0));
                    let kids = || -> Vec<Kid> {
                        sc.iter()
                            .enumerate()
                            .map(|(i, &(at, end))| kid(&log, &clock, i, at, end))
                            .collect()
                    };
                    macro_rules! lim {
                        ($g:expr) => {{
                            let g = $g;
                            match limit {
                                Some(l) => g.limit(l),
                                None => g,
                            }
                        }};
                    }
                    let result: Result<Vec<usize>, CompoundError<Er>> = match shape {
                        0 => {
                            let v = kids();
                            let arr: [Kid; 1] = match <[Kid; 1]>::try_from(v) {
                                Ok(a) => a,
                                Err(_) => continue,
                            };
                            tick(&clock, gather(arr).catch_panics().fail_fast())
                                .map(|a| a.to_vec())
                                .map_err(Into::into)
                        }
                        1 => tick(&clock, lim!(gather(kids())).catch_panics().fail_fast()),
                        2 => tick(
                            &clock,
                            lim!(gather(kids().into_iter().collect::<SmallVec<[Kid; 4]>>()))
                                .catch_panics()
                                .fail_fast(),
                        )
                        .map(|s| s.into_vec()),
                        3 => tick(&clock, lim!(gather_iter(kids())).catch_panics().fail_fast())
                            .map(|s| s.into_vec()),
                        4 => tick(
                            &clock,
                            lim!(gather_stream(futures::stream::iter(kids())))
                                .catch_panics()
                                .fail_fast(),
                        )
                        .map(|s| s.into_vec()),
                        _ => {
                            let mut group = Group::new();
                            let mut handle = None;
                            for (i, k) in kids().into_iter().enumerate() {
                                if i % 2 == 0 {
                                    assert_eq!(group.push(k), i);
                                } else {
                                    let h = handle.get_or_insert_with(|| group.handle());
                                    assert_eq!(h.push(k).ok(), Some(i));
                                }
                            }
                            let group = match limit {
                                Some(l) => group.limit(l),
                                None => group,
                            };
                            tick(&clock, group.catch_panics().fail_fast())
                        }
                    };
                    let ctx =
                        format!("seed {seed} n {n} shape {shape} limit {limit:?} script {sc:?}");
                    let any_fail = sc.iter().any(|(_, e)| matches!(e, End::Err | End::Panic));
                    match result {
                        Ok(v) => {
                            assert!(!any_fail, "Ok but a child fails: {ctx}");
                            assert_eq!(v, (0..n).collect::<Vec<_>>(), "{ctx}");
                        }
                        Err(e) => {
                            assert!(any_fail, "{ctx}");
                            assert_eq!((e.len(), e.iter().len()), (1, 1), "{ctx}");
                            let (i, err) = e.first();
                            assert_eq!(err.says(), Some(i), "index vs error: {ctx}");
                            assert!(
                                matches!(sc[i].1, End::Err | End::Panic),
                                "reported child did not fail: {i} {ctx}"
                            );
                            assert!(e.total() <= n && e.total() > i, "total {} {ctx}", e.total());
                            if shape != 5 {
                                let ok = earliest_failures(&sc, limit);
                                assert!(ok.contains(&i), "reported {i}, earliest {ok:?}: {ctx}");
                            }
                            let (j, err) = e.into_first();
                            assert_eq!(j, i);
                            drop(err);
                        }
                    }
                    // every child made was dropped once; every error made once.
                    log.assert_none_dropped_twice(&ctx);
                    log.assert_each_dropped_once("k", n);
                }
            }
        }
    }
}

#[test]
fn fail_fast_tuple_inline_store() {
    let log = DropLog::new();
    let clock = Rc::new(Cell::new(0));
    let t = (
        kid(&log, &clock, 0, 5, End::Err),
        kid(&log, &clock, 1, 3, End::Ok),
        kid(&log, &clock, 2, 2, End::Err),
        kid(&log, &clock, 3, 9, End::Never),
    );
    let e: CompoundError<Er, Inline<4>> = tick(&clock, gather(t).fail_fast()).unwrap_err();
    consistent(&e, &[2], 4);
    let h: CompoundError<Er, Heap> = e.into();
    consistent(&h, &[2], 4);
    drop(h);
    assert_eq!(log.count("e2"), 1);
    log.assert_each_dropped_once("k", 4);
}

/// Fail-fast under a deadline: every child cut off, in ascending input order, with its
/// own index (lazy inputs under a limit: the drained ones too).
#[test]
fn fail_fast_deadline_cut_offs_ascending_and_named() {
    for shape in 0..5 {
        for limit in [None, Some(1), Some(3)] {
            if shape == 0 && limit.is_some() {
                continue;
            }
            let log = DropLog::new();
            let clock = Rc::new(Cell::new(0));
            let n = 9;
            // Children 1, 4 finish early (Ok); the rest never do.
            let kids = || -> Vec<Kid> {
                (0..n)
                    .map(|i| {
                        kid(
                            &log,
                            &clock,
                            i,
                            1,
                            if i == 1 || i == 4 {
                                End::Ok
                            } else {
                                End::Never
                            },
                        )
                    })
                    .collect()
            };
            let c2 = clock.clone();
            let timer = move || {
                let c = c2.clone();
                std::future::poll_fn(move |_| {
                    if c.get() >= 5 {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
            };
            macro_rules! lim {
                ($g:expr) => {{
                    let g = $g;
                    match limit {
                        Some(l) => g.limit(l),
                        None => g,
                    }
                }};
            }
            let e: CompoundError<Er> = match shape {
                0 => {
                    let arr: [Kid; 9] = kids().try_into().ok().unwrap();
                    tick(&clock, gather(arr).deadline(timer()).fail_fast())
                        .unwrap_err()
                        .into()
                }
                1 => tick(&clock, lim!(gather(kids())).deadline(timer()).fail_fast()).unwrap_err(),
                2 => tick(
                    &clock,
                    lim!(gather_iter(kids())).deadline(timer()).fail_fast(),
                )
                .unwrap_err(),
                3 => tick(
                    &clock,
                    lim!(gather_stream(futures::stream::iter(kids())))
                        .deadline(timer())
                        .fail_fast(),
                )
                .unwrap_err(),
                _ => {
                    let mut group = Group::new();
                    for k in kids() {
                        group.push(k);
                    }
                    let group = match limit {
                        Some(l) => group.limit(l),
                        None => group,
                    };
                    tick(&clock, group.deadline(timer()).fail_fast()).unwrap_err()
                }
            };
            let ctx = format!("shape {shape} limit {limit:?}");
            let got: Vec<(usize, Option<usize>)> = e.iter().map(|(i, er)| (i, er.says())).collect();
            for w in got.windows(2) {
                assert!(w[0].0 < w[1].0, "not ascending {got:?} {ctx}");
            }
            for (i, s) in &got {
                assert_eq!(Some(*i), *s, "{got:?} {ctx}");
            }
            assert_eq!(e.len(), got.len());
            assert_eq!(e.iter().len(), got.len());
            let want: Vec<usize> = (0..n).filter(|i| *i != 1 && *i != 4).collect();
            // Under a limit, 1 and 4 might not have run before the deadline: then they
            // are cut off too.
            let idx: Vec<usize> = got
                .iter()
                .map(|g| g.0)
                .filter(|i| *i != 1 && *i != 4)
                .collect();
            assert_eq!(idx, want, "{got:?} {ctx}");
            assert_eq!(e.total(), n, "{ctx}");
            drop(e);
            log.assert_each_dropped_once("k", n);
        }
    }
}

/// Graceful fail-fast under a limit (lazy): the failure is reported, not the stopped.
#[test]
fn graceful_fail_fast_lazy_limit() {
    for limit in [3usize, 4, 8] {
        let log = DropLog::new();
        let signal = StopSignal::new();
        let stopped = RefCell::new(Vec::new());
        let n = 8;
        let kids: Vec<BorrowingKid<'_>> = (0..n)
            .map(|i| {
                let (log, signal, stopped) = (log.clone(), &signal, &stopped);
                let guard = log.value(format!("k{i}"));
                let b: Pin<Box<dyn Future<Output = Result<usize, Er>> + '_>> =
                    Box::pin(async move {
                        let _g = guard;
                        if i == 5 {
                            return Err(Er::User(i, log.value(format!("e{i}"))));
                        }
                        if i % 2 == 0 {
                            return Ok(i);
                        }
                        signal.raised().await;
                        stopped.borrow_mut().push(i);
                        Err(Er::Stop)
                    });
                b
            })
            .collect();
        let e = run(gather_iter(kids)
            .limit(limit)
            .graceful(&signal, pending::<()>)
            .fail_fast());
        // With limit 1, child 1 waits for the signal forever: child 5 never starts.
        match e {
            Err(e) => {
                let got: Vec<(usize, Option<usize>)> =
                    e.iter().map(|(i, er)| (i, er.says())).collect();
                assert_eq!(got, [(5, Some(5))], "limit {limit}");
                assert_eq!(e.len(), 1);
            }
            Ok(v) => panic!("limit {limit}: {v:?}"),
        }
        log.assert_each_dropped_once(
            "k",
            n.min(log.drops().iter().filter(|d| d.starts_with('k')).count()),
        );
    }
}

/// Fail-fast over a tuple with caught panics: the panic's index, once.
#[test]
fn fail_fast_tuple_catch_panics() {
    quiet_all();
    let log = DropLog::new();
    let clock = Rc::new(Cell::new(0));
    let t = (
        kid(&log, &clock, 0, 4, End::Err),
        kid(&log, &clock, 1, 2, End::Panic),
        kid(&log, &clock, 2, 3, End::Err),
    );
    let e = tick(&clock, gather(t).catch_panics().fail_fast()).unwrap_err();
    consistent(&e, &[1], 3);
    assert!(matches!(e.first().1, Er::Panic(1)));
    drop(e);
    log.assert_each_dropped_once("k", 3);
    assert_eq!(log.count("e0") + log.count("e2"), 0);
}

/// The executor's waker panics when woken (children wake it through their own wakers,
/// inside their polls): caught with catch_panics, a poisoned gather without.
#[test]
fn panicking_executor_waker_fail_fast() {
    quiet_all();
    struct Boom;
    impl std::task::Wake for Boom {
        fn wake(self: std::sync::Arc<Self>) {
            panic!("wake")
        }
    }
    for catch in [false, true] {
        for shape in 0..3 {
            let log = DropLog::new();
            let clock = Rc::new(Cell::new(0));
            let n = 40; // past the sweep: per-child wakers
            let kids = || -> Vec<Kid> {
                (0..n)
                    .map(|i| {
                        kid(
                            &log,
                            &clock,
                            i,
                            if i == 17 { 0 } else { 3 },
                            if i % 10 == 7 { End::Err } else { End::Ok },
                        )
                    })
                    .collect()
            };
            let waker = std::task::Waker::from(std::sync::Arc::new(Boom));
            let mut cx = Context::from_waker(&waker);
            let out = catch_unwind(AssertUnwindSafe(|| -> Option<CompoundError<Er>> {
                macro_rules! go {
                    ($g:expr) => {{
                        let mut g = Box::pin($g);
                        let mut r = None;
                        for _ in 0..50 {
                            clock.set(clock.get() + 1);
                            match catch_unwind(AssertUnwindSafe(|| g.as_mut().poll(&mut cx))) {
                                Ok(Poll::Ready(x)) => {
                                    r = Some(x.err().unwrap());
                                    break;
                                }
                                Ok(Poll::Pending) => {}
                                Err(_) => break,
                            }
                        }
                        r
                    }};
                }
                match (shape, catch) {
                    (0, true) => go!(gather(kids()).catch_panics().fail_fast()),
                    (0, false) => go!(gather(kids()).fail_fast()),
                    (1, true) => go!(gather_iter(kids()).limit(7).catch_panics().fail_fast()),
                    (1, false) => go!(gather_iter(kids()).limit(7).fail_fast()),
                    (_, true) => go!(gather(kids()).limit(3).catch_panics().fail_fast()),
                    (_, false) => go!(gather(kids()).limit(3).fail_fast()),
                }
            }));
            let ctx = format!("catch {catch} shape {shape}");
            let got = out.expect(&ctx);
            if let Some(e) = &got {
                let (i, er) = e.first();
                assert_eq!(er.says(), Some(i), "{ctx}: {e:?}");
                assert_eq!(e.len(), 1);
            }
            drop(got);
            log.assert_none_dropped_twice(&ctx);
        }
    }
}
