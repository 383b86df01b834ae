//! An adversarial review of `Slot` (`src/raw/slot.rs`, whose `take_output` moves an output
//! out of a pinned slot after one check): pinned (`!Unpin`) children that check
//! their own address on every poll and on drop, outputs that count their drops, panics in
//! polls / drops / timers / wakers, early drops and polls after completion, over every
//! input shape built on `Slot` (array, tuple, `SmallVec`, iterator, stream, `Group`).
#![allow(dead_code)]
mod common;

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomPinned;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use common::{quiet_all, DropLog, Tracked};
use futures::Stream;
use gather::{gather, gather_iter, gather_stream, Group, Panicked, SmallVec, TimedOut};

/// A child's error.
#[derive(Debug)]
enum Er {
    User(Tracked),
    Panic(usize),
    Time(usize),
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

type Out = Result<Tracked, Er>;

/// Violations of pinning seen by the children.
#[derive(Clone, Default)]
struct Moves(Arc<Mutex<Vec<String>>>, Arc<Mutex<Vec<String>>>);
impl Moves {
    fn assert_none(&self) {
        let v = self.0.lock().unwrap();
        assert!(v.is_empty(), "pinned children moved: {v:?}");
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum End {
    Ok,
    Err,
    PanicPoll,
    Pending, // never finishes
}

/// A `!Unpin` child: pending `pend` times (waking itself), then ends as `end`.
struct Kid {
    label: String,
    pend: usize,
    end: End,
    panic_on_drop: bool,
    addr: Cell<usize>,
    log: DropLog,
    moves: Moves,
    _pin: PhantomPinned,
}

impl Kid {
    fn check(&self, at: &str) {
        let here = self as *const Self as usize;
        let was = self.addr.get();
        if was == 0 {
            self.addr.set(here);
        } else if was != here {
            self.moves
                .0
                .lock()
                .unwrap()
                .push(format!("{} moved before {at}", self.label));
        }
    }
}

impl Future for Kid {
    type Output = Out;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Out> {
        self.check("poll");
        // SAFETY: nothing is moved out.
        let this = unsafe { self.get_unchecked_mut() };
        if this.pend > 0 || this.end == End::Pending {
            this.pend = this.pend.saturating_sub(1);
            if this.end != End::Pending {
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
        match this.end {
            End::Ok => {
                let l = format!("o:{}", this.label);
                this.moves.1.lock().unwrap().push(l.clone());
                Poll::Ready(Ok(this.log.value(l)))
            }
            End::Err => {
                let l = format!("e:{}", this.label);
                this.moves.1.lock().unwrap().push(l.clone());
                Poll::Ready(Err(Er::User(this.log.value(l))))
            }
            End::PanicPoll => panic!("kid {} panics", this.label),
            End::Pending => unreachable!(),
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if self.addr.get() != 0 {
            self.check("drop");
        }
        drop(self.log.value(format!("k:{}", self.label)));
        if self.panic_on_drop && self.addr.get() != 0 && !std::thread::panicking() {
            panic!("kid {} drop panics", self.label);
        }
    }
}

struct Env {
    log: DropLog,
    moves: Moves,
}
impl Env {
    fn new() -> Self {
        Env {
            log: DropLog::new(),
            moves: Moves::default(),
        }
    }
    fn kid(&self, i: usize, pend: usize, end: End) -> Kid {
        Kid {
            label: i.to_string(),
            pend,
            end,
            panic_on_drop: false,
            addr: Cell::new(0),
            log: self.log.clone(),
            moves: self.moves.clone(),
            _pin: PhantomPinned,
        }
    }
    fn kid_pd(&self, i: usize, pend: usize, end: End) -> Kid {
        let mut k = self.kid(i, pend, end);
        k.panic_on_drop = true;
        k
    }
    /// Every kid 0..n dropped once; every value ever made (o:/e:) dropped at most once.
    fn check(&self, n: usize) {
        self.moves.assert_none();
        self.log.assert_each_dropped_once("k:", n);
        let drops = self.log.drops();
        let mut counts = std::collections::HashMap::<String, usize>::new();
        for d in &drops {
            *counts.entry(d.clone()).or_default() += 1;
        }
        for (label, count) in &counts {
            assert_eq!(*count, 1, "{label} dropped {count} times: {drops:?}");
        }
        for made in self.moves.1.lock().unwrap().iter() {
            assert_eq!(
                counts.get(made).copied().unwrap_or(0),
                1,
                "{made} leaked: {drops:?}"
            );
        }
    }
    fn dropped(&self, label: &str) -> usize {
        self.log.count(label)
    }
}

fn noop() -> Waker {
    futures::task::noop_waker()
}

/// Polls to completion with a noop waker (the kids wake themselves; polls are bounded).
fn run<F: Future>(f: F) -> F::Output {
    let waker = noop();
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    for _ in 0..10_000 {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("not done");
}

fn pends(i: usize) -> usize {
    // out-of-order completion
    [3, 0, 5, 1, 4, 2, 6, 0][i % 8]
}

// ---------------------------------------------------------------------------------------
// settle-all and fail-fast over every Slot shape: no moves, each value dropped once.

#[test]
fn array_settle_all_no_moves_each_output_once() {
    let env = Env::new();
    let kids: [Kid; 6] =
        std::array::from_fn(|i| env.kid(i, pends(i), if i % 3 == 1 { End::Err } else { End::Ok }));
    let gathered = run(gather(kids));
    let results = gathered.into_results();
    assert_eq!(results.len(), 6);
    drop(results);
    env.check(6);
    for i in 0..6 {
        let l = if i % 3 == 1 {
            format!("e:{i}")
        } else {
            format!("o:{i}")
        };
        assert_eq!(env.dropped(&l), 1, "{l}");
    }
}

#[test]
fn array_fail_fast_no_moves_each_once() {
    let env = Env::new();
    let kids: [Kid; 6] =
        std::array::from_fn(|i| env.kid(i, pends(i), if i == 4 { End::Err } else { End::Ok }));
    let error = run(gather(kids).fail_fast()).unwrap_err();
    assert_eq!(error.len(), 1);
    assert_eq!(error.first().0, 4);
    drop(error);
    env.check(6);
    assert_eq!(env.dropped("e:4"), 1);
}

#[test]
fn tuple_fail_fast_no_moves_each_once() {
    let env = Env::new();
    let t = (
        env.kid(0, 3, End::Ok),
        env.kid(1, 2, End::Err),
        env.kid(2, 0, End::Ok),
        env.kid(3, 9, End::Pending),
    );
    let error = run(gather(t).fail_fast()).unwrap_err();
    assert_eq!(error.into_first().0, 1);
    env.check(4);
    assert_eq!(env.dropped("e:1"), 1);
}

#[test]
fn tuple_settle_all_all_ok_outputs_move_out() {
    let env = Env::new();
    let t = (
        env.kid(0, 3, End::Ok),
        env.kid(1, 2, End::Ok),
        env.kid(2, 0, End::Ok),
    );
    let (a, b, c) = run(gather(t).fail_fast()).unwrap();
    assert_eq!((a.label(), b.label(), c.label()), ("o:0", "o:1", "o:2"));
    drop((a, b, c));
    env.check(3);
}

#[test]
fn smallvec_inline_and_spilled_fail_fast() {
    for n in [3usize, 8, 40] {
        let env = Env::new();
        let kids: SmallVec<[Kid; 4]> = (0..n)
            .map(|i| env.kid(i, pends(i), if i == n - 2 { End::Err } else { End::Ok }))
            .collect();
        let error = run(gather(kids).fail_fast()).unwrap_err();
        assert_eq!(error.first().0, n - 2, "n = {n}");
        drop(error);
        env.check(n);
    }
}

#[test]
fn iter_and_stream_with_limit_fail_fast_no_moves() {
    for limit in [None, Some(1), Some(2), Some(3)] {
        for stream in [false, true] {
            let env = Env::new();
            let n = 9;
            let kids: Vec<Kid> = (0..n)
                .map(|i| env.kid(i, pends(i), if i == 6 { End::Err } else { End::Ok }))
                .collect();
            let error = if stream {
                let g = gather_stream(futures::stream::iter(kids));
                let g = match limit {
                    Some(l) => g.limit(l),
                    None => g,
                };
                run(g.fail_fast()).unwrap_err()
            } else {
                let g = gather_iter(kids);
                let g = match limit {
                    Some(l) => g.limit(l),
                    None => g,
                };
                run(g.fail_fast()).unwrap_err()
            };
            assert_eq!(error.first().0, 6, "limit {limit:?} stream {stream}");
            assert_eq!(error.len(), 1);
            let taken_in = error.total();
            drop(error);
            env.check(taken_in);
        }
    }
}

#[test]
fn iter_with_limit_settle_all_no_moves() {
    for limit in [1, 2, 3, 5] {
        let env = Env::new();
        let n = 11;
        let kids: Vec<Kid> = (0..n)
            .map(|i| env.kid(i, pends(i), if i % 4 == 1 { End::Err } else { End::Ok }))
            .collect();
        let gathered = run(gather_iter(kids).limit(limit));
        let error = gathered.into_compound_error().unwrap();
        let idx: Vec<usize> = error.iter().map(|(i, _)| i).collect();
        assert_eq!(idx, [1, 5, 9], "limit {limit}");
        assert_eq!(error.iter().len(), 3);
        drop(error);
        env.check(n);
    }
}

#[test]
fn group_fail_fast_and_as_completed_no_moves() {
    let env = Env::new();
    let mut group = Group::new();
    for i in 0..6 {
        group.push(env.kid(i, pends(i), if i == 3 { End::Err } else { End::Ok }));
    }
    let error = run(group.fail_fast()).unwrap_err();
    assert_eq!(error.first().0, 3);
    drop(error);
    env.check(6);

    // As a stream, with slots reused by later pushes.
    let env = Env::new();
    let mut group = Group::new();
    for i in 0..3 {
        group.push(env.kid(i, pends(i), End::Ok));
    }
    let waker = noop();
    let mut cx = Context::from_waker(&waker);
    let mut got = Vec::new();
    let mut next = 3;
    for _ in 0..10_000 {
        match Pin::new(&mut group).poll_next(&mut cx) {
            Poll::Ready(Some((i, out))) => {
                got.push(i);
                drop(out);
                if next < 9 {
                    group.push(env.kid(next, pends(next), End::Ok));
                    next += 1;
                }
            }
            Poll::Ready(None) => break,
            Poll::Pending => {}
        }
    }
    got.sort();
    assert_eq!(got, (0..9).collect::<Vec<_>>());
    drop(group);
    env.check(9);
}

// ---------------------------------------------------------------------------------------
// as_completed: dropped mid-way; after the deadline.

#[test]
fn array_as_completed_dropped_midway() {
    let env = Env::new();
    let kids: [Kid; 5] = std::array::from_fn(|i| env.kid(i, pends(i), End::Ok));
    let mut stream = Box::pin(gather(kids).as_completed());
    let waker = noop();
    let mut cx = Context::from_waker(&waker);
    let mut got = 0;
    while got < 2 {
        if let Poll::Ready(Some((_, out))) = stream.as_mut().poll_next(&mut cx) {
            drop(out);
            got += 1;
        }
    }
    drop(stream);
    env.check(5);
}

#[test]
fn array_as_completed_with_deadline_hands_every_cut_off() {
    let env = Env::new();
    let kids: [Kid; 5] =
        std::array::from_fn(|i| env.kid(i, 0, if i % 2 == 0 { End::Pending } else { End::Ok }));
    let fired = Arc::new(Mutex::new(false));
    let f2 = fired.clone();
    let timer = std::future::poll_fn(move |_| {
        if *f2.lock().unwrap() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    let mut stream = Box::pin(gather(kids).deadline(timer).as_completed());
    let waker = noop();
    let mut cx = Context::from_waker(&waker);
    let mut items = Vec::new();
    for round in 0..100 {
        if round == 5 {
            *fired.lock().unwrap() = true;
        }
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some((i, out))) => items.push((i, matches!(out, Err(Er::Time(_))))),
            Poll::Ready(None) => break,
            Poll::Pending => {}
        }
    }
    items.sort();
    assert_eq!(
        items,
        [(0, true), (1, false), (2, true), (3, false), (4, true)]
    );
    drop(stream);
    env.check(5);
}

// ---------------------------------------------------------------------------------------
// Panics: in polls, in drops of finishing children, in the timer, in the waker.

#[test]
fn catch_panics_poll_and_drop_panics_everywhere_fail_fast_and_settle() {
    quiet_all();
    for mode in 0..2 {
        let env = Env::new();
        let kids: [Kid; 6] = std::array::from_fn(|i| match i {
            1 => env.kid(i, 2, End::PanicPoll),
            2 => env.kid_pd(i, 1, End::Ok), // drop panics as it finishes
            4 => env.kid_pd(i, 3, End::PanicPoll), // poll and drop panic
            _ => env.kid(i, pends(i), End::Ok),
        });
        if mode == 0 {
            let gathered = run(gather(kids).catch_panics());
            let r = gathered.into_results();
            assert!(matches!(r[1], Err(Er::Panic(1))));
            assert!(matches!(r[2], Err(Er::Panic(2))));
            assert!(matches!(r[4], Err(Er::Panic(4))));
            drop(r);
        } else {
            // Kid 4 (still running, drop panics) is dropped by fail-fast: not caught, the
            // panic leaves the poll; the error already taken goes with it.
            let mut g = Box::pin(gather(kids).catch_panics().fail_fast());
            let waker = noop();
            let mut cx = Context::from_waker(&waker);
            let unwound = catch_unwind(AssertUnwindSafe(|| loop {
                if g.as_mut().poll(&mut cx).is_ready() {
                    break;
                }
            }));
            assert!(unwound.is_err());
            drop(g);
            env.check(6);
            continue;
        }
        env.check(6);
    }
}

#[test]
fn catch_panics_fail_fast_reports_the_first_caught_panic() {
    quiet_all();
    for shape in 0..3 {
        let env = Env::new();
        let make = |i: usize| match i {
            1 => env.kid(i, 2, End::PanicPoll),
            2 => env.kid_pd(i, 1, End::Ok), // drop panics as it finishes (pass 2)
            4 => env.kid(i, 3, End::PanicPoll),
            _ => env.kid(i, pends(i), End::Ok),
        };
        let error = match shape {
            0 => {
                let kids: [Kid; 6] = std::array::from_fn(make);
                run(gather(kids).catch_panics().fail_fast())
                    .unwrap_err()
                    .into()
            }
            1 => run(gather((0..6).map(make).collect::<Vec<_>>())
                .catch_panics()
                .fail_fast())
            .unwrap_err(),
            _ => run(gather_iter((0..6).map(make).collect::<Vec<_>>())
                .limit(2)
                .catch_panics()
                .fail_fast())
            .unwrap_err(),
        };
        let error: gather::CompoundError<Er> = error;
        let first = error.first();
        // Array/Vec: kid 2 is the first to end (2nd poll); with limit 2 kids 0 and 1 run
        // first, kid 1 panics at its 3rd poll, kid 2 starts after kid 0 ends.
        let want = if shape == 2 { 1 } else { 2 };
        assert!(
            first.0 == want && matches!(first.1, Er::Panic(i) if *i == want),
            "shape {shape}: {:?}",
            first
        );
        assert_eq!((error.len(), error.iter().len()), (1, 1));
        drop(error);
        let n = if shape == 2 {
            env.log
                .drops()
                .iter()
                .filter(|l| l.starts_with("k:"))
                .count()
        } else {
            6
        };
        env.check(n);
    }
}

#[test]
fn finished_childs_drop_panic_without_catch_poisons_and_leaks_nothing() {
    quiet_all();
    for shape in 0..3 {
        let env = Env::new();
        let waker = noop();
        let mut cx = Context::from_waker(&waker);
        let result = catch_unwind(AssertUnwindSafe(|| match shape {
            0 => {
                let kids: [Kid; 3] = std::array::from_fn(|i| {
                    if i == 1 {
                        env.kid_pd(i, 0, End::Ok)
                    } else {
                        env.kid(i, 0, End::Ok)
                    }
                });
                let mut g = Box::pin(gather(kids));
                let first = catch_unwind(AssertUnwindSafe(|| g.as_mut().poll(&mut cx)));
                assert!(first.is_err());
                // Polling again: poisoned.
                let second = catch_unwind(AssertUnwindSafe(|| g.as_mut().poll(&mut cx)));
                assert!(second.is_err());
                drop(g);
            }
            1 => {
                let kids: SmallVec<[Kid; 2]> = (0..3)
                    .map(|i| {
                        if i == 2 {
                            env.kid_pd(i, 1, End::Err)
                        } else {
                            env.kid(i, 0, End::Ok)
                        }
                    })
                    .collect();
                let mut g = Box::pin(gather(kids).fail_fast());
                for _ in 0..5 {
                    if catch_unwind(AssertUnwindSafe(|| g.as_mut().poll(&mut cx))).is_err() {
                        break;
                    }
                }
                drop(g);
            }
            _ => {
                let t = (env.kid(0, 0, End::Ok), env.kid_pd(1, 0, End::Err));
                let mut g = Box::pin(gather(t).fail_fast());
                let first = catch_unwind(AssertUnwindSafe(|| g.as_mut().poll(&mut cx)));
                assert!(first.is_err());
                drop(g);
            }
        }));
        assert!(result.is_ok(), "shape {shape}");
        env.check(3.min(if shape == 2 { 2 } else { 3 }));
    }
}

#[test]
fn panicking_timer_poisons_and_drop_is_clean() {
    quiet_all();
    let env = Env::new();
    let kids: [Kid; 4] = std::array::from_fn(|i| env.kid(i, if i == 0 { 0 } else { 4 }, End::Ok));
    let polls = Cell::new(0);
    let timer = std::future::poll_fn(|_| {
        polls.set(polls.get() + 1);
        if polls.get() == 2 {
            panic!("timer panics");
        }
        Poll::<()>::Pending
    });
    let mut g = Box::pin(gather(kids).deadline(timer).fail_fast());
    let waker = noop();
    let mut cx = Context::from_waker(&waker);
    assert!(g.as_mut().poll(&mut cx).is_pending());
    assert!(catch_unwind(AssertUnwindSafe(|| g.as_mut().poll(&mut cx))).is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| g.as_mut().poll(&mut cx))).is_err());
    drop(g);
    env.check(4);
}

/// A waker whose wake panics: the kids' self-wakes panic inside their polls.
#[test]
fn panicking_waker_with_catch_panics() {
    quiet_all();
    struct Boom;
    impl std::task::Wake for Boom {
        fn wake(self: Arc<Self>) {
            panic!("wake panics")
        }
        fn wake_by_ref(self: &Arc<Self>) {
            panic!("wake panics")
        }
    }
    let env = Env::new();
    let kids: [Kid; 4] = std::array::from_fn(|i| env.kid(i, if i == 2 { 0 } else { 1 }, End::Ok));
    let waker = Waker::from(Arc::new(Boom));
    let mut cx = Context::from_waker(&waker);
    let mut g = Box::pin(gather(kids).catch_panics());
    let out = g.as_mut().poll(&mut cx);
    // Kids 0, 1, 3 panicked waking; kid 2 finished.
    match out {
        Poll::Ready(gathered) => {
            let r = gathered.into_results();
            assert!(r[2].is_ok());
            assert!(matches!(r[0], Err(Er::Panic(0))));
            drop(r);
        }
        Poll::Pending => panic!("expected ready"),
    }
    assert!(catch_unwind(AssertUnwindSafe(|| g.as_mut().poll(&mut cx))).is_err());
    drop(g);
    env.check(4);
}

#[test]
fn polling_after_completion_panics_and_drops_nothing_twice() {
    let env = Env::new();
    let kids: [Kid; 3] = std::array::from_fn(|i| env.kid(i, pends(i), End::Ok));
    let mut g = Box::pin(gather(kids));
    let waker = noop();
    let mut cx = Context::from_waker(&waker);
    let out = loop {
        if let Poll::Ready(out) = g.as_mut().poll(&mut cx) {
            break out;
        }
    };
    quiet_all();
    assert!(catch_unwind(AssertUnwindSafe(|| g.as_mut().poll(&mut cx))).is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| g.as_mut().poll(&mut cx))).is_err());
    drop(g);
    drop(out);
    env.check(3);
}

#[test]
fn dropped_after_each_poll_count() {
    // Drop the gather after k polls, for every k: children and stored outputs once.
    for k in 0..8 {
        for mode in 0..3 {
            let env = Env::new();
            let kids: [Kid; 5] = std::array::from_fn(|i| {
                env.kid(i, pends(i), if i == 4 { End::Err } else { End::Ok })
            });
            let waker = noop();
            let mut cx = Context::from_waker(&waker);
            match mode {
                0 => {
                    let mut g = Box::pin(gather(kids));
                    for _ in 0..k {
                        if g.as_mut().poll(&mut cx).is_ready() {
                            break;
                        }
                    }
                }
                1 => {
                    let mut g = Box::pin(gather(kids).fail_fast());
                    for _ in 0..k {
                        if g.as_mut().poll(&mut cx).is_ready() {
                            break;
                        }
                    }
                }
                _ => {
                    let mut g = Box::pin(gather(kids).as_completed());
                    for _ in 0..k {
                        if let Poll::Ready(None) = g.as_mut().poll_next(&mut cx) {
                            break;
                        }
                    }
                }
            }
            env.check(5);
        }
    }
}

/// Outputs whose drop panics, in the Gathered handed back and in the slots.
#[test]
fn outputs_with_panicking_drop() {
    quiet_all();
    struct Bomb(Tracked, bool);
    impl Drop for Bomb {
        fn drop(&mut self) {
            if self.1 {
                panic!("output drop panics");
            }
        }
    }
    let log = DropLog::new();
    let make = |i: usize| {
        let log = log.clone();
        async move { log.value(format!("b{i}")) }
    };
    // Stored outputs dropped with a gather left mid-way (after one poll: 3 done, 1 pending).
    let l2 = log.clone();
    let kids: [std::pin::Pin<Box<dyn Future<Output = Bomb>>>; 4] = std::array::from_fn(|i| {
        let f = make(i);
        let l = l2.clone();
        let b: Pin<Box<dyn Future<Output = Bomb>>> = if i == 3 {
            Box::pin(async move {
                let _ = &l;
                std::future::pending::<()>().await;
                unreachable!()
            })
        } else {
            Box::pin(async move { Bomb(f.await, i == 1) })
        };
        b
    });
    let mut g = Box::pin(gather(kids));
    let waker = noop();
    let mut cx = Context::from_waker(&waker);
    assert!(g.as_mut().poll(&mut cx).is_pending());
    assert!(catch_unwind(AssertUnwindSafe(|| drop(g))).is_err());
    log.assert_each_dropped_once("b", 3);
}
