//! A review that tries to break slot reuse in `Group` (src/input/group.rs, the group's pass,
//! src/engine/chunked.rs): push indices, push-order starts, the limit, stale wakes of a
//! reused slot (kept wakers, wakes as a child finishes, from other threads), deadlines at
//! every point, caught panics and panicking drops in reused slots, drops mid-stream, the
//! queries after reuse, pushes after `None`, chunk boundaries, graceful stops read as
//! completed, and the heap a long-lived group holds.
#![allow(clippy::type_complexity)]
mod common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use common::graceful::{ready_items, Error};
use common::{quiet, size};
use futures::stream::{FusedStream, Stream, StreamExt};
use gather::{CatchPanics, Deadline, Group, Handle, NoDeadline, StopSignal};

type Job = Pin<Box<dyn Future<Output = Result<usize, Error>>>>;
type Item = (usize, Result<usize, Error>);

// ---------------------------------------------------------------------------------------
// A child the test steers, and what it records.
// ---------------------------------------------------------------------------------------

/// What the probes of one test record, and what the test tells them.
#[derive(Default)]
struct World {
    /// The id the next probe gets: every push in these tests takes the next one, so a
    /// probe's id is its push index.
    next_id: usize,
    /// First polls, in order.
    started: Vec<usize>,
    polls: BTreeMap<usize, usize>,
    running: usize,
    most_running: usize,
    dropped: Vec<usize>,
    /// Finish (with `Ok(id)`) at the next poll.
    finish: BTreeSet<usize>,
    /// Finish with `Err(Failed(id))` at the next poll.
    fail: BTreeSet<usize>,
    /// Panic at the next poll.
    panic_poll: BTreeSet<usize>,
    /// Panic when dropped.
    panic_drop: BTreeSet<usize>,
    /// Wake the own waker in the poll that finishes (a wake that outlives the child).
    wake_on_finish: BTreeSet<usize>,
    /// At the first poll, push this many new probes through `handle`.
    spawn: BTreeMap<usize, usize>,
    handle: Option<Handle<Job>>,
    /// The waker each probe got at its last poll (kept after it finished: a stale waker).
    wakers: BTreeMap<usize, Waker>,
}

type W = Rc<RefCell<World>>;

struct Probe {
    id: usize,
    w: W,
    seen: bool,
    done: bool,
}

fn new_probe(w: &W, id: usize) -> Job {
    Box::pin(Probe {
        id,
        w: w.clone(),
        seen: false,
        done: false,
    })
}

/// A new probe, with the next id.
fn probe(w: &W) -> (usize, Job) {
    let id = {
        let mut w = w.borrow_mut();
        w.next_id += 1;
        w.next_id - 1
    };
    (id, new_probe(w, id))
}

impl Future for Probe {
    type Output = Result<usize, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        assert!(!self.done, "probe {id} polled after it finished");
        let rc = self.w.clone();
        let mut w = rc.borrow_mut();
        if !self.seen {
            self.seen = true;
            w.started.push(id);
            w.running += 1;
            w.most_running = w.most_running.max(w.running);
        }
        *w.polls.entry(id).or_default() += 1;
        w.wakers.insert(id, cx.waker().clone());
        let spawn = w.spawn.remove(&id).unwrap_or(0);
        let mut jobs = Vec::new();
        for _ in 0..spawn {
            w.next_id += 1;
            let nid = w.next_id - 1;
            jobs.push((nid, w.handle.clone().expect("a handle")));
        }
        drop(w);
        for (nid, handle) in jobs {
            let pushed = handle.push(new_probe(&rc, nid)).ok();
            assert_eq!(pushed, Some(nid), "a push from inside probe {id}'s poll");
        }
        let mut w = rc.borrow_mut();
        if w.panic_poll.contains(&id) {
            drop(w);
            panic!("boom: probe {id} poll");
        }
        let outcome = if w.finish.contains(&id) {
            Ok(id)
        } else if w.fail.contains(&id) {
            Err(Error::Failed(id as u32))
        } else {
            return Poll::Pending;
        };
        self.done = true;
        w.running -= 1;
        let wake = w.wake_on_finish.contains(&id);
        drop(w);
        if wake {
            cx.waker().wake_by_ref();
        }
        Poll::Ready(outcome)
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let mut w = self.w.borrow_mut();
        w.dropped.push(self.id);
        if self.seen && !self.done {
            w.running -= 1;
        }
        let panics = w.panic_drop.contains(&self.id);
        drop(w);
        if panics && !std::thread::panicking() {
            panic!("boom: drop of probe {}", self.id);
        }
    }
}

/// Tells probe `id` to finish and wakes it (if it was polled): how many wakes that took.
fn finish(w: &W, id: usize) -> usize {
    let waker = {
        let mut w = w.borrow_mut();
        w.finish.insert(id);
        w.wakers.get(&id).cloned()
    };
    waker.map(|waker| waker.wake()).map_or(0, |()| 1)
}

/// Wakes the waker probe `id` got last (its slot's, whoever is in it now).
fn wake(w: &W, id: usize) {
    let waker = w.borrow().wakers.get(&id).cloned().expect("a kept waker");
    waker.wake();
}

fn polls(w: &W, id: usize) -> usize {
    w.borrow().polls.get(&id).copied().unwrap_or(0)
}

fn dropped_count(w: &W, id: usize) -> usize {
    w.borrow().dropped.iter().filter(|&&d| d == id).count()
}

fn push<L>(group: &mut Group<Job, L>, w: &W) -> usize {
    let (id, job) = probe(w);
    assert_eq!(group.push(job), id, "push index");
    id
}

/// A timer the test fires (it does not wake: the tests poll after firing).
struct Timer(Rc<Cell<bool>>);

impl Future for Timer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0.get() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

type Timed = Deadline<Pin<Box<Timer>>>;

/// The groups the model runs, behind one interface.
trait G: Stream<Item = Item> + FusedStream + Unpin {
    fn push_(&mut self, job: Job) -> usize;
    fn len_(&self) -> usize;
    fn running_(&self) -> usize;
    fn handle_(&mut self) -> Handle<Job>;
}

macro_rules! impl_g {
    ($($t:ty),*) => {$(
        impl G for $t {
            fn push_(&mut self, job: Job) -> usize {
                self.push(job)
            }
            fn len_(&self) -> usize {
                self.len()
            }
            fn running_(&self) -> usize {
                self.running()
            }
            fn handle_(&mut self) -> Handle<Job> {
                self.handle()
            }
        }
    )*};
}

impl_g!(
    Group<Job>,
    Group<Job, Timed>,
    Group<Job, CatchPanics<NoDeadline>>,
    Group<Job, CatchPanics<Timed>>
);

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick(&mut self, from: &[usize]) -> Option<usize> {
        (!from.is_empty()).then(|| from[self.below(from.len())])
    }
}

// ---------------------------------------------------------------------------------------
// A model run: random pushes (the owner's, a handle's, from inside polls), finishes,
// stale wakes, extra wakes, panics, a deadline, with every invariant checked at each
// quiet point.
// ---------------------------------------------------------------------------------------

struct Model<T: G> {
    group: T,
    w: W,
    limit: usize,
    fire: Option<Rc<Cell<bool>>>,
    fired_at: Option<usize>,
    handed: BTreeMap<usize, String>,
    wakes: usize,
    label: String,
    /// The most children not handed out at a quiet point.
    peak: usize,
}

impl<T: G> Model<T> {
    fn live(&self) -> Vec<usize> {
        let w = self.w.borrow();
        (0..w.next_id)
            .filter(|id| {
                !self.handed.contains_key(id)
                    && !w.finish.contains(id)
                    && !w.fail.contains(id)
                    && !w.panic_poll.contains(id)
            })
            .collect()
    }

    fn drain(&mut self) {
        let label = self.label.clone();
        let items = ready_items(&mut self.group);
        let mut last_timed_out = None;
        for (index, outcome) in items {
            let w = self.w.borrow();
            let what = match &outcome {
                Ok(v) => {
                    assert_eq!(
                        *v, index,
                        "{label}: the output of child {v} under index {index}"
                    );
                    assert!(
                        w.finish.contains(&index),
                        "{label}: {index} was not told to finish"
                    );
                    "ok".to_string()
                }
                Err(Error::TimedOut(i)) => {
                    assert_eq!(
                        *i, index,
                        "{label}: TimedOut {{ index: {i} }} handed out as {index}"
                    );
                    assert!(
                        self.fire.as_ref().is_some_and(|fire| fire.get()),
                        "{label}: {index} timed out before the deadline"
                    );
                    assert!(
                        last_timed_out < Some(index),
                        "{label}: cut-off children out of push order: {index} after {last_timed_out:?}"
                    );
                    last_timed_out = Some(index);
                    "timed out".to_string()
                }
                Err(Error::Panicked(i)) => {
                    assert_eq!(
                        *i, index,
                        "{label}: Panicked {{ index: {i} }} handed out as {index}"
                    );
                    assert!(
                        w.panic_poll.contains(&index),
                        "{label}: {index} did not panic"
                    );
                    "panicked".to_string()
                }
                other => panic!("{label}: unexpected outcome {other:?} for {index}"),
            };
            assert!(
                self.handed.insert(index, what).is_none(),
                "{label}: index {index} handed out twice"
            );
        }
        // The group has seen the deadline once it hands a cut-off child out. (An empty
        // group returns `None` without polling its timer: a child pushed into it after
        // the timer fired is polled once, in the pass before the timer, as in any gather.)
        if self.fired_at.is_none() && self.handed.values().any(|what| what == "timed out") {
            self.fired_at = Some(self.w.borrow().next_id);
        }
        self.check();
    }

    fn check(&mut self) {
        let label = &self.label;
        let w = self.w.borrow();
        let pushed = w.next_id;
        assert_eq!(
            w.started,
            (0..w.started.len()).collect::<Vec<_>>(),
            "{label}: first polls out of push order"
        );
        assert!(
            w.most_running <= self.limit,
            "{label}: {} ran at once (limit {})",
            w.most_running,
            self.limit
        );
        let total: usize = w.polls.values().sum();
        assert!(
            total <= w.started.len() + self.wakes,
            "{label}: {total} polls for {} starts and {} wakes",
            w.started.len(),
            self.wakes
        );
        let unhanded = pushed - self.handed.len();
        self.peak = self.peak.max(unhanded);
        assert_eq!(self.group.len_(), pushed, "{label}: len");
        assert_eq!(self.group.running_(), unhanded, "{label}: running");
        assert_eq!(self.group.size_hint().0, unhanded, "{label}: size_hint");
        // (Both ways: before the fix in `is_terminated_is_false_while_a_child_a_handle_pushed_runs`,
        // it stayed `true` while a child taken in from a handle ran.)
        assert_eq!(
            self.group.is_terminated(),
            unhanded == 0,
            "{label}: terminated with {unhanded} not handed out"
        );
        match self.fired_at {
            None => assert_eq!(
                w.running,
                self.limit.min(unhanded),
                "{label}: children running at a quiet point ({unhanded} not handed out): a child \
                 that could start did not, or one was counted twice"
            ),
            Some(at) => {
                assert_eq!(unhanded, 0, "{label}: children left after the deadline");
                for id in at..pushed {
                    assert_eq!(
                        w.polls.get(&id),
                        None,
                        "{label}: child {id}, pushed after the deadline, was polled"
                    );
                }
            }
        }
    }

    fn run(&mut self, seed: u64, steps: usize, panics: bool, handle: Option<Handle<Job>>) {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let fire_step = self.fire.as_ref().map(|_| rng.below(steps));
        for step in 0..steps {
            if Some(step) == fire_step {
                // The group sees the deadline at its next poll that finds nothing to hand
                // out: children pushed until then (from inside polls) may still start.
                self.fire.as_ref().unwrap().set(true);
                self.drain();
            }
            let fired = self.fired_at.is_some();
            match rng.below(100) {
                0..=24 => {
                    for _ in 0..1 + rng.below(1 + (seed % 4) as usize) {
                        let (id, job) = probe(&self.w);
                        if !fired && handle.is_some() && rng.below(4) == 0 {
                            self.w.borrow_mut().spawn.insert(id, 1 + rng.below(2));
                        }
                        if !fired && rng.below(5) == 0 {
                            self.w.borrow_mut().wake_on_finish.insert(id);
                        }
                        assert_eq!(self.group.push_(job), id, "{}: push index", self.label);
                    }
                }
                25..=34 => match &handle {
                    Some(handle) if !fired => {
                        let (id, job) = probe(&self.w);
                        assert_eq!(
                            handle.push(job).ok(),
                            Some(id),
                            "{}: handle push",
                            self.label
                        );
                    }
                    _ => {}
                },
                35..=54 => {
                    if let Some(id) = rng.pick(&self.live()) {
                        self.wakes += finish(&self.w, id);
                    }
                }
                55..=59 => {
                    let live = self.live();
                    for _ in 0..rng.below(20) {
                        if let Some(id) = rng.pick(&live) {
                            self.wakes += finish(&self.w, id);
                        }
                    }
                }
                60..=69 => {
                    // A stale wake: the kept waker of a child handed out.
                    let old: Vec<usize> = {
                        let w = self.w.borrow();
                        self.handed
                            .keys()
                            .copied()
                            .filter(|id| w.wakers.contains_key(id))
                            .collect()
                    };
                    if let Some(id) = rng.pick(&old) {
                        wake(&self.w, id);
                        self.wakes += 1;
                    }
                }
                70..=74 if panics => {
                    if let Some(id) = rng.pick(&self.live()) {
                        let waker = {
                            let mut w = self.w.borrow_mut();
                            w.panic_poll.insert(id);
                            w.wakers.get(&id).cloned()
                        };
                        if let Some(waker) = waker {
                            waker.wake();
                            self.wakes += 1;
                        }
                    }
                }
                75..=79 => {
                    // A wake of a running child: one more poll, nothing else.
                    let running: Vec<usize> = {
                        let w = self.w.borrow();
                        self.live()
                            .into_iter()
                            .filter(|id| w.wakers.contains_key(id))
                            .collect()
                    };
                    if let Some(id) = rng.pick(&running) {
                        wake(&self.w, id);
                        self.wakes += 1;
                    }
                }
                _ => self.drain(),
            }
        }
        if std::env::var_os("REVIEW_STATS").is_some() {
            let w = self.w.borrow();
            let total: usize = w.polls.values().sum();
            eprintln!(
                "{}: pushed {}, peak {}, started {}, polls {}, wakes {}, spurious room {}",
                self.label,
                self.peak,
                w.next_id,
                w.started.len(),
                total,
                self.wakes,
                (w.started.len() + self.wakes) as isize - total as isize
            );
        }
        // Everything left finishes.
        for _ in 0..4 {
            for id in self.live() {
                self.wakes += finish(&self.w, id);
            }
            self.drain();
        }
        assert_eq!(
            self.handed.len(),
            self.w.borrow().next_id,
            "{}: not every child was handed out",
            self.label
        );
    }
}

fn model_one<T: G>(
    mut group: T,
    seed: u64,
    limit: Option<usize>,
    fire: Option<Rc<Cell<bool>>>,
    panics: bool,
    w: W,
    kind: &str,
) {
    let handle = (seed % 2 == 0).then(|| group.handle_());
    w.borrow_mut().handle = handle.clone();
    let mut model = Model {
        group,
        w: w.clone(),
        limit: limit.unwrap_or(usize::MAX),
        fire,
        fired_at: None,
        handed: BTreeMap::new(),
        wakes: 0,
        peak: 0,
        label: format!("{kind}, limit {limit:?}, seed {seed}"),
    };
    model.run(seed, size(400, 60), panics, handle);
    let label = model.label.clone();
    drop(model);
    w.borrow_mut().handle = None;
    let w = w.borrow();
    assert_eq!(w.running, 0, "{label}");
    let mut dropped = w.dropped.clone();
    dropped.sort_unstable();
    assert_eq!(
        dropped,
        (0..w.next_id).collect::<Vec<_>>(),
        "{label}: drops"
    );
}

fn limited<L>(group: Group<Job, L>, limit: Option<usize>) -> Group<Job, L> {
    match limit {
        Some(n) => group.limit(n),
        None => group,
    }
}

#[test]
fn model_plain() {
    for seed in 0..size(64, 2) as u64 {
        for limit in [None, Some(1), Some(2), Some(3)] {
            let w = W::default();
            let group: Group<Job> = limited(Group::new(), limit);
            model_one(group, seed, limit, None, false, w, "plain");
        }
    }
}

#[test]
fn model_with_a_deadline() {
    for seed in 0..size(64, 2) as u64 {
        for limit in [None, Some(1), Some(2), Some(3)] {
            let w = W::default();
            let fire = Rc::new(Cell::new(false));
            let group: Group<Job, Timed> =
                limited(Group::new(), limit).deadline(Timer(fire.clone()));
            model_one(group, seed, limit, Some(fire), false, w, "deadline");
        }
    }
}

#[test]
fn model_catching_panics() {
    quiet();
    for seed in 0..size(64, 2) as u64 {
        for limit in [None, Some(1), Some(2), Some(3)] {
            let w = W::default();
            let group: Group<Job, CatchPanics<NoDeadline>> =
                limited(Group::new(), limit).catch_panics();
            model_one(group, seed, limit, None, true, w, "catch_panics");
        }
    }
}

#[test]
fn model_catching_panics_with_a_deadline() {
    quiet();
    for seed in 0..size(64, 2) as u64 {
        for limit in [None, Some(1), Some(2), Some(3)] {
            let w = W::default();
            let fire = Rc::new(Cell::new(false));
            let group: Group<Job, CatchPanics<Timed>> = limited(Group::new(), limit)
                .catch_panics()
                .deadline(Timer(fire.clone()));
            model_one(
                group,
                seed,
                limit,
                Some(fire),
                true,
                w,
                "catch_panics + deadline",
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Stale wakes, counted exactly.
// ---------------------------------------------------------------------------------------

/// A waker kept by a finished child and woken much later, while its slot holds another
/// child: one spurious poll of that child per wake (wakes before the poll merge), never
/// a poll of a child not started yet.
#[test]
fn a_kept_waker_woken_after_its_slot_was_reused_costs_one_poll_per_wake() {
    let w = W::default();
    let mut group: Group<Job> = Group::new();
    push(&mut group, &w); // 0, slot 0
    assert!(ready_items(&mut group).is_empty());
    finish(&w, 0);
    assert_eq!(ready_items(&mut group), [(0, Ok(0))]);
    push(&mut group, &w); // 1, slot 0
    assert!(ready_items(&mut group).is_empty());
    assert_eq!(polls(&w, 1), 1);
    wake(&w, 0);
    assert!(ready_items(&mut group).is_empty());
    assert_eq!(polls(&w, 1), 2, "one spurious poll for one stale wake");
    for _ in 0..3 {
        wake(&w, 0);
    }
    assert!(ready_items(&mut group).is_empty());
    assert_eq!(polls(&w, 1), 3, "wakes before the poll merge");
    finish(&w, 1);
    assert_eq!(ready_items(&mut group), [(1, Ok(1))]);
    // Two stale wakers of slot 0 woken before child 2 (in slot 0) starts: its first poll
    // is its start, no more.
    push(&mut group, &w); // 2, slot 0
    wake(&w, 0);
    wake(&w, 1);
    assert!(ready_items(&mut group).is_empty());
    assert_eq!(polls(&w, 2), 1);
    assert_eq!(w.borrow().started, [0, 1, 2]);
    drop(group);
    for id in 0..3 {
        assert_eq!(dropped_count(&w, id), 1, "probe {id}");
    }
}

/// Under a limit of 1: a stale wake of a reused slot whose child waits starts nothing,
/// polls nothing, and the child starts in turn when the place frees up.
#[test]
fn a_stale_wake_of_a_waiting_childs_slot_under_a_limit_polls_nobody() {
    let w = W::default();
    let mut group: Group<Job> = Group::new().limit(1);
    push(&mut group, &w); // 0, slot 0
    push(&mut group, &w); // 1, slot 1 (waits)
    finish(&w, 0);
    w.borrow_mut().wake_on_finish.insert(0);
    assert_eq!(ready_items(&mut group), [(0, Ok(0))]);
    assert_eq!(w.borrow().started, [0, 1]);
    push(&mut group, &w); // 2, slot 0: waits for 1
    push(&mut group, &w); // 3, slot 2: waits
    for _ in 0..5 {
        wake(&w, 0);
        assert!(ready_items(&mut group).is_empty());
    }
    assert_eq!(w.borrow().started, [0, 1]);
    assert_eq!((polls(&w, 1), polls(&w, 2)), (1, 0));
    finish(&w, 1);
    assert_eq!(ready_items(&mut group), [(1, Ok(1))]);
    assert_eq!(w.borrow().started, [0, 1, 2]);
    assert_eq!(polls(&w, 2), 1);
    // Now child 2 runs in slot 0: a stale wake polls it once more, and 3 still waits.
    wake(&w, 0);
    assert!(ready_items(&mut group).is_empty());
    assert_eq!((polls(&w, 2), polls(&w, 3)), (2, 0));
    finish(&w, 2);
    finish(&w, 3);
    let items = ready_items(&mut group);
    assert_eq!(items, [(2, Ok(2)), (3, Ok(3))]);
    assert_eq!(w.borrow().started, [0, 1, 2, 3]);
    assert_eq!(w.borrow().most_running, 1);
    assert_eq!(polls(&w, 3), 1);
}

/// Every child wakes itself as it finishes, under limits 1, 2, 3, with 300 children pushed
/// as outcomes are read: each slot's next child hears the wake of the one before.
#[test]
fn children_that_wake_themselves_as_they_finish_under_a_limit() {
    for limit in [1, 2, 3] {
        let w = W::default();
        let mut group: Group<Job> = Group::new().limit(limit);
        let mut wakes = 0;
        let mut read = Vec::new();
        for _ in 0..10 {
            let id = push(&mut group, &w);
            w.borrow_mut().wake_on_finish.insert(id);
        }
        let mut order = 0;
        while read.len() < 300 {
            // Finish the oldest running child.
            let running: Vec<usize> = {
                let w = w.borrow();
                w.started
                    .iter()
                    .copied()
                    .filter(|id| !w.finish.contains(id))
                    .collect()
            };
            if let Some(&id) = running.first() {
                wakes += finish(&w, id);
            }
            for (index, outcome) in ready_items(&mut group) {
                assert_eq!(outcome, Ok(index));
                read.push(index);
                if w.borrow().next_id < 300 {
                    let id = push(&mut group, &w);
                    w.borrow_mut().wake_on_finish.insert(id);
                }
            }
            order += 1;
            assert!(
                order < 10_000,
                "limit {limit}: stuck at {} read",
                read.len()
            );
        }
        let w = w.borrow();
        assert_eq!(w.started, (0..300).collect::<Vec<_>>(), "limit {limit}");
        assert!(
            w.most_running <= limit,
            "limit {limit}: {} at once",
            w.most_running
        );
        let total: usize = w.polls.values().sum();
        // One start each, one poll per finish wake, at most one spurious poll per stale
        // wake (one per child).
        assert!(total <= 300 + wakes + 300, "limit {limit}: {total} polls");
    }
}

// ---------------------------------------------------------------------------------------
// Chunk boundaries with reuse.
// ---------------------------------------------------------------------------------------

/// 100 live children (two chunks), a third of them read (in both chunks), 34 pushed into
/// their slots, then 100 more across the next boundary: wakes reach exactly their
/// children, stale wakes of the freed slots reach exactly the children now in them.
#[test]
fn reuse_across_the_64_slot_chunk_boundary_routes_every_wake() {
    for limit in [None, Some(100), Some(150)] {
        let w = W::default();
        let mut group: Group<Job> = limited(Group::new(), limit);
        for _ in 0..100 {
            push(&mut group, &w);
        }
        assert!(ready_items(&mut group).is_empty());
        let first: Vec<usize> = (0..100).step_by(3).collect(); // 34, up to 99
        for &id in &first {
            finish(&w, id);
        }
        let mut out: Vec<usize> = ready_items(&mut group)
            .into_iter()
            .map(|(i, o)| {
                assert_eq!(o, Ok(i));
                i
            })
            .collect();
        out.sort_unstable();
        assert_eq!(out, first, "limit {limit:?}");
        // 34 new children take the 34 free slots (64 of them in the first chunk, 36 in
        // the second).
        let refill: Vec<usize> = (0..34).map(|_| push(&mut group, &w)).collect();
        assert!(ready_items(&mut group).is_empty());
        assert_eq!(
            w.borrow().started,
            (0..134).collect::<Vec<_>>(),
            "limit {limit:?}"
        );
        for &id in &refill {
            assert_eq!(polls(&w, id), 1, "limit {limit:?}: child {id}");
        }
        // A stale wake of every freed slot: each reaches one new child, once.
        for &id in &first {
            wake(&w, id);
        }
        assert!(ready_items(&mut group).is_empty());
        for &id in &refill {
            assert_eq!(
                polls(&w, id),
                2,
                "limit {limit:?}: child {id} after the stale wakes"
            );
        }
        for id in (0..100).filter(|id| id % 3 != 0) {
            assert_eq!(
                polls(&w, id),
                1,
                "limit {limit:?}: child {id} was not woken"
            );
        }
        // 100 more: new slots 100..199, across the boundary at 192.
        let more: Vec<usize> = (0..100).map(|_| push(&mut group, &w)).collect();
        assert!(ready_items(&mut group).is_empty());
        let expect_started = match limit {
            None => 234,
            Some(100) => 134,
            _ => 184,
        };
        assert_eq!(
            w.borrow().started,
            (0..expect_started).collect::<Vec<_>>(),
            "limit {limit:?}"
        );
        // Each of them wakes once, in reverse order: one poll each.
        let mut rng = Rng(7);
        let mut all: Vec<usize> = refill.iter().chain(&more).copied().collect();
        for i in (1..all.len()).rev() {
            all.swap(i, rng.below(i + 1));
        }
        for &id in &all {
            if polls(&w, id) > 0 {
                wake(&w, id);
            }
        }
        let before: BTreeMap<usize, usize> = all.iter().map(|&id| (id, polls(&w, id))).collect();
        assert!(ready_items(&mut group).is_empty());
        for &id in &all {
            let expected = if before[&id] > 0 { before[&id] + 1 } else { 0 };
            assert_eq!(polls(&w, id), expected, "limit {limit:?}: child {id}");
        }
        // Everything finishes, in a random order; every index comes out once.
        let live: Vec<usize> = (0..234).filter(|id| !first.contains(id)).collect();
        for &id in &live {
            finish(&w, id);
        }
        let mut out: Vec<usize> = Vec::new();
        for _ in 0..10 {
            out.extend(ready_items(&mut group).into_iter().map(|(i, o)| {
                assert_eq!(o, Ok(i));
                i
            }));
        }
        out.sort_unstable();
        assert_eq!(out, live, "limit {limit:?}");
        assert_eq!(w.borrow().started, (0..234).collect::<Vec<_>>());
        assert!(group.is_terminated());
        drop(group);
        for id in 0..234 {
            assert_eq!(dropped_count(&w, id), 1, "limit {limit:?}: probe {id}");
        }
    }
}

/// Wakes itself at every poll and finishes at its `polls`-th; logs its first poll.
struct Spinner {
    id: usize,
    polls: usize,
    seen: usize,
    log: Rc<RefCell<(Vec<usize>, usize, usize)>>,
}

impl Future for Spinner {
    type Output = Result<usize, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.seen == 0 {
            let mut log = self.log.borrow_mut();
            log.0.push(self.id);
            log.1 += 1;
            log.2 = log.2.max(log.1);
        }
        self.seen += 1;
        // Wakes itself whether it finishes or not: a wake that outlives it when it does.
        cx.waker().wake_by_ref();
        if self.seen < self.polls {
            return Poll::Pending;
        }
        self.log.borrow_mut().1 -= 1;
        Poll::Ready(Ok(self.id))
    }
}

/// 300 children at once (over the budget of 128 polls a pass), each spinning a few polls
/// and waking itself as it finishes; every outcome read pushes one more, into the freed
/// slot, until 3,000: every child starts in push order, within the limit, and a child
/// pushed waits a bounded number of group polls to start.
#[test]
fn reuse_over_the_budget_with_self_waking_children() {
    for limit in [None, Some(1), Some(3), Some(150)] {
        let log = Rc::new(RefCell::new((Vec::new(), 0, 0)));
        let mut group: Group<Job> = limited(Group::new(), limit);
        let total = size(3_000, 150);
        let mut pushed = 0;
        let spinner = |id: usize| -> Job {
            Box::pin(Spinner {
                id,
                polls: 1 + id % 7,
                seen: 0,
                log: log.clone(),
            })
        };
        for _ in 0..size(300, 70) {
            assert_eq!(group.push(spinner(pushed)), pushed);
            pushed += 1;
        }
        let mut read = 0;
        let mut polls = 0;
        let (counter, waker) = common::CountingWaker::new();
        while read < total {
            let before = counter.wakes();
            match Pin::new(&mut group).poll_next(&mut Context::from_waker(&waker)) {
                Poll::Ready(Some((index, outcome))) => {
                    assert_eq!(outcome, Ok(index));
                    read += 1;
                    if pushed < total {
                        assert_eq!(group.push(spinner(pushed)), pushed);
                        pushed += 1;
                    }
                }
                Poll::Ready(None) => panic!("limit {limit:?}: ended at {read}"),
                Poll::Pending => assert!(counter.wakes() > before, "limit {limit:?}: a lost wake"),
            }
            polls += 1;
            assert!(polls < 200 * total, "limit {limit:?}: no progress");
        }
        let log = log.borrow();
        assert_eq!(
            log.0,
            (0..total).collect::<Vec<_>>(),
            "limit {limit:?}: start order"
        );
        assert!(
            log.2 <= limit.unwrap_or(usize::MAX),
            "limit {limit:?}: {} at once",
            log.2
        );
        assert_eq!(log.1, 0);
    }
}

// ---------------------------------------------------------------------------------------
// Deadlines.
// ---------------------------------------------------------------------------------------

/// Under a limit of 2, the deadline fires with children in reused slots waiting (and one
/// in a new slot between them): every child not handed out comes out once, as
/// `TimedOut` with its index, in push order; the waiting ones unpolled; children pushed
/// after it too.
#[test]
fn a_deadline_with_reused_slots_waiting_under_a_limit() {
    let w = W::default();
    let fire = Rc::new(Cell::new(false));
    let mut group: Group<Job, Timed> = Group::new().limit(2).deadline(Timer(fire.clone()));
    for _ in 0..5 {
        push(&mut group, &w); // 0..=4, slots 0..=4
    }
    assert!(ready_items(&mut group).is_empty());
    finish(&w, 1);
    finish(&w, 0);
    let mut out: Vec<_> = ready_items(&mut group);
    out.sort_by_key(|(i, _)| *i);
    assert_eq!(out, [(0, Ok(0)), (1, Ok(1))]);
    push(&mut group, &w); // 5, reused
    push(&mut group, &w); // 6, reused
    push(&mut group, &w); // 7, slot 5
    finish(&w, 3);
    assert_eq!(ready_items(&mut group), [(3, Ok(3))]);
    push(&mut group, &w); // 8, slot 3
    assert!(ready_items(&mut group).is_empty());
    assert_eq!(w.borrow().started, [0, 1, 2, 3, 4]);
    fire.set(true);
    let out = ready_items(&mut group);
    assert_eq!(
        out,
        [2, 4, 5, 6, 7, 8].map(|i| (i, Err(Error::TimedOut(i))))
    );
    assert!(group.is_terminated());
    for id in 5..=8 {
        assert_eq!(polls(&w, id), 0, "child {id}");
        assert_eq!(dropped_count(&w, id), 1, "child {id}");
    }
    // Pushed after the deadline: cut off unpolled, in a new slot (no reuse).
    assert_eq!(push(&mut group, &w), 9);
    assert_eq!(push(&mut group, &w), 10);
    assert!(!group.is_terminated());
    assert_eq!(group.size_hint().0, 2);
    assert_eq!(
        ready_items(&mut group),
        [9, 10].map(|i| (i, Err(Error::TimedOut(i))))
    );
    assert_eq!((polls(&w, 9), polls(&w, 10)), (0, 0));
    assert_eq!((group.len(), group.running()), (11, 0));
    drop(group);
    for id in 0..=10 {
        assert_eq!(dropped_count(&w, id), 1, "child {id}");
    }
}

/// The deadline fires in a poll that also hands out a finished child, and children are
/// read one poll at a time around it: each index once.
#[test]
fn a_deadline_firing_while_outcomes_are_read_one_by_one() {
    for limit in [None, Some(1), Some(2), Some(3)] {
        for fire_after in 0..6 {
            let w = W::default();
            let fire = Rc::new(Cell::new(false));
            let mut group: Group<Job, Timed> =
                limited(Group::new(), limit).deadline(Timer(fire.clone()));
            for _ in 0..6 {
                push(&mut group, &w);
            }
            let mut seen = BTreeMap::new();
            let mut reads = 0;
            let mut timed_out = Vec::new();
            for round in 0..40 {
                if round == fire_after * 2 {
                    fire.set(true);
                }
                if round % 2 == 0 && !fire.get() {
                    // Finish the oldest two running; push two.
                    let running: Vec<usize> = {
                        let w = w.borrow();
                        w.started
                            .iter()
                            .copied()
                            .filter(|id| !w.finish.contains(id))
                            .collect()
                    };
                    for &id in running.iter().take(2) {
                        finish(&w, id);
                    }
                    push(&mut group, &w);
                    push(&mut group, &w);
                }
                match common::poll_next(&mut group) {
                    Poll::Ready(Some((index, outcome))) => {
                        reads += 1;
                        if let Err(Error::TimedOut(i)) = outcome {
                            assert_eq!(i, index);
                            timed_out.push(i);
                        } else {
                            assert_eq!(outcome, Ok(index));
                        }
                        assert!(seen.insert(index, ()).is_none(), "index {index} twice");
                    }
                    Poll::Ready(None) => {
                        if fire.get() {
                            break;
                        }
                    }
                    Poll::Pending => {}
                }
            }
            let pushed = w.borrow().next_id;
            assert_eq!(reads, pushed, "limit {limit:?}, fire after {fire_after}");
            assert!(
                timed_out.windows(2).all(|p| p[0] < p[1]),
                "limit {limit:?}, fire after {fire_after}: cut off out of order: {timed_out:?}"
            );
            assert_eq!(
                w.borrow().started,
                (0..w.borrow().started.len()).collect::<Vec<_>>()
            );
            drop(group);
            for id in 0..pushed {
                assert_eq!(dropped_count(&w, id), 1, "child {id}");
            }
        }
    }
}

/// After the deadline, a handle's push: cut off unpolled, as the handle's docs say ("a
/// child pushed after it fired is cut off unpolled").
#[test]
fn a_handle_push_after_the_deadline_is_cut_off() {
    let w = W::default();
    let fire = Rc::new(Cell::new(false));
    let mut group: Group<Job, Timed> = Group::new().deadline(Timer(fire.clone()));
    let handle = group.handle();
    push(&mut group, &w);
    finish(&w, 0);
    assert_eq!(ready_items(&mut group), [(0, Ok(0))]);
    push(&mut group, &w); // 1 in slot 0
    assert!(ready_items(&mut group).is_empty());
    fire.set(true);
    assert_eq!(ready_items(&mut group), [(1, Err(Error::TimedOut(1)))]);
    assert!(group.is_terminated());
    // Pushed through the handle after the deadline fired (and the group saw it).
    let (id, job) = probe(&w);
    let pushed = handle.push(job).ok();
    assert_eq!(
        pushed,
        Some(id),
        "a handle's push after the deadline was refused"
    );
    assert_eq!(ready_items(&mut group), [(2, Err(Error::TimedOut(2)))]);
    assert_eq!(polls(&w, 2), 0);
    drop(group);
    drop(handle);
    for id in 0..3 {
        assert_eq!(dropped_count(&w, id), 1, "child {id}");
    }
}

// A group sees its deadline when it polls the timer, after its children: an empty group
// (its stream returned `None`) polls nothing. So a child pushed into an empty group after
// its timer finished is polled once by the next poll, which then sees the deadline and
// cuts it off (documented on `Group::deadline`: children pushed after the group saw the
// timer finish are cut off unpolled). (Found in review: the docs promised more.)
#[test]
fn a_child_pushed_into_an_empty_group_after_its_timer_finished_is_cut_off_at_the_next_poll() {
    let w = W::default();
    let fire = Rc::new(Cell::new(false));
    let mut group: Group<Job, Timed> = Group::new().deadline(Timer(fire.clone()));
    push(&mut group, &w);
    finish(&w, 0);
    assert_eq!(ready_items(&mut group), [(0, Ok(0))]);
    fire.set(true);
    assert!(ready_items(&mut group).is_empty(), "empty: `None`");
    push(&mut group, &w); // into slot 0, after the timer finished
    assert_eq!(ready_items(&mut group), [(1, Err(Error::TimedOut(1)))]);
    assert_eq!(polls(&w, 1), 1, "polled by the poll that saw the deadline");
    // From then on, the group has seen it: a child pushed now is never polled.
    push(&mut group, &w);
    assert_eq!(ready_items(&mut group), [(2, Err(Error::TimedOut(2)))]);
    assert_eq!(
        polls(&w, 2),
        0,
        "child 2, pushed after the group saw the deadline"
    );
}

// ---------------------------------------------------------------------------------------
// Panics and drops.
// ---------------------------------------------------------------------------------------

/// Under a limit of 1, caught panics in reused slots (at the first poll, at a later poll,
/// in the drop as the child finishes) each come out once with the push index, free the
/// place, and the next child starts.
#[test]
fn caught_panics_in_reused_slots_under_a_limit_of_one() {
    quiet();
    let w = W::default();
    let mut group: Group<Job, CatchPanics<NoDeadline>> = Group::new().limit(1).catch_panics();
    push(&mut group, &w); // 0
    finish(&w, 0);
    assert_eq!(ready_items(&mut group), [(0, Ok(0))]);
    // 1: panics at its first poll, in slot 0. 2: waits.
    let one = push(&mut group, &w);
    w.borrow_mut().panic_poll.insert(one);
    let two = push(&mut group, &w); // slot 1
    assert_eq!(ready_items(&mut group), [(1, Err(Error::Panicked(1)))]);
    assert_eq!(w.borrow().started, [0, 1, 2]);
    assert_eq!(dropped_count(&w, 1), 1);
    // 3 in slot 0, waits for 2; 2 panics at its second poll.
    let three = push(&mut group, &w);
    {
        let mut w = w.borrow_mut();
        w.panic_poll.insert(two);
    }
    wake(&w, two);
    assert_eq!(ready_items(&mut group), [(2, Err(Error::Panicked(2)))]);
    assert_eq!(w.borrow().started, [0, 1, 2, 3]);
    // 3's drop panics as it finishes: caught, the output dropped, `Panicked { index: 3 }`.
    w.borrow_mut().panic_drop.insert(three);
    finish(&w, three);
    assert_eq!(ready_items(&mut group), [(3, Err(Error::Panicked(3)))]);
    assert_eq!(dropped_count(&w, 3), 1);
    // 4 takes a slot and runs.
    let four = push(&mut group, &w);
    finish(&w, four);
    assert_eq!(ready_items(&mut group), [(4, Ok(4))]);
    assert_eq!(w.borrow().started, [0, 1, 2, 3, 4]);
    assert_eq!(w.borrow().most_running, 1);
    drop(group);
    for id in 0..5 {
        assert_eq!(dropped_count(&w, id), 1, "child {id}");
    }
}

/// A group dropped mid-stream, a child in a reused slot panicking in its drop: the drop
/// panics once, every child (running, waiting in a reused slot, waiting in a new one,
/// queued in the inbox) is dropped once, nothing handed out is dropped again.
#[test]
fn dropping_mid_stream_with_a_panicking_drop_in_a_reused_slot() {
    quiet();
    for limit in [None, Some(2)] {
        let w = W::default();
        let mut group: Group<Job> = limited(Group::new(), limit);
        let handle = group.handle();
        w.borrow_mut().handle = Some(handle.clone());
        for _ in 0..70 {
            push(&mut group, &w);
        }
        assert!(ready_items(&mut group).is_empty());
        for id in [0, 1, 65] {
            finish(&w, id);
        }
        let mut out: Vec<usize> = Vec::new();
        for _ in 0..10 {
            out.extend(ready_items(&mut group).into_iter().map(|(i, _)| i));
        }
        out.sort_unstable();
        let expect: Vec<usize> = match limit {
            None => vec![0, 1, 65],
            _ => vec![0, 1],
        };
        assert_eq!(out, expect, "limit {limit:?}");
        let a = push(&mut group, &w); // reused
        let b = push(&mut group, &w); // reused
        assert!(ready_items(&mut group).is_empty());
        let (c, job) = probe(&w);
        assert_eq!(handle.push(job).ok(), Some(c)); // in the inbox
        w.borrow_mut().panic_drop.insert(a);
        let _ = b;
        w.borrow_mut().handle = None;
        let dropped = catch_unwind(AssertUnwindSafe(|| drop(group)));
        assert!(
            dropped.is_err(),
            "limit {limit:?}: the drop's panic came out"
        );
        let n = w.borrow().next_id;
        for id in 0..n {
            assert_eq!(dropped_count(&w, id), 1, "limit {limit:?}: child {id}");
        }
        assert_eq!(w.borrow().running, 0);
        let (_, job) = probe(&w);
        assert!(
            handle.push(job).is_err(),
            "a push into a dropped group is refused"
        );
    }
}

/// Without `catch_panics`, a child in a reused slot panics: the panic comes out of the
/// poll, the group is poisoned (the next poll panics), and its drop drops each child once.
#[test]
fn a_panic_in_a_reused_slot_poisons_the_group() {
    quiet();
    let w = W::default();
    let mut group: Group<Job> = Group::new().limit(2);
    for _ in 0..4 {
        push(&mut group, &w);
    }
    finish(&w, 0);
    assert_eq!(ready_items(&mut group), [(0, Ok(0))]);
    let p = push(&mut group, &w); // 4, slot 0, waits
    finish(&w, 1);
    assert_eq!(ready_items(&mut group), [(1, Ok(1))]);
    w.borrow_mut().panic_poll.insert(3);
    wake(&w, 3);
    let panicked = catch_unwind(AssertUnwindSafe(|| ready_items(&mut group)));
    assert!(panicked.is_err());
    let again = catch_unwind(AssertUnwindSafe(|| common::poll_next(&mut group)));
    assert!(again.is_err(), "a poisoned group panics when polled again");
    let _ = p;
    drop(group);
    for id in 0..5 {
        assert_eq!(dropped_count(&w, id), 1, "child {id}");
    }
}

// ---------------------------------------------------------------------------------------
// Queries, `None` and pushes after it.
// ---------------------------------------------------------------------------------------

#[test]
fn queries_and_pushes_after_none_with_reused_slots() {
    for limit in [None, Some(1), Some(2)] {
        let w = W::default();
        let mut group: Group<Job> = limited(Group::new(), limit);
        assert!(group.is_empty());
        for _ in 0..3 {
            push(&mut group, &w);
        }
        for id in 0..3 {
            finish(&w, id);
        }
        let mut out = Vec::new();
        for _ in 0..5 {
            out.extend(ready_items(&mut group));
        }
        out.sort_by_key(|(i, _)| *i);
        assert_eq!(out, [(0, Ok(0)), (1, Ok(1)), (2, Ok(2))]);
        assert!(group.is_terminated());
        assert_eq!(
            (group.len(), group.running(), group.size_hint()),
            (3, 0, (0, None))
        );
        assert_eq!(common::poll_next(&mut group), Poll::Ready(None));
        // Three more into the three free slots, after `None`.
        for _ in 0..3 {
            push(&mut group, &w);
        }
        assert!(!group.is_terminated());
        assert_eq!(
            (group.len(), group.running(), group.size_hint()),
            (6, 3, (3, None))
        );
        assert!(ready_items(&mut group).is_empty());
        let started = limit.unwrap_or(3);
        assert_eq!(
            w.borrow().started,
            (0..3 + started).collect::<Vec<_>>(),
            "limit {limit:?}"
        );
        finish(&w, 4);
        finish(&w, 3);
        let mut out = Vec::new();
        for _ in 0..5 {
            out.extend(ready_items(&mut group));
        }
        out.sort_by_key(|(i, _)| *i);
        assert_eq!(out, [(3, Ok(3)), (4, Ok(4))], "limit {limit:?}");
        assert_eq!(
            (group.len(), group.running(), group.size_hint()),
            (6, 1, (1, None))
        );
        assert!(!group.is_terminated());
        // A fourth one pushed while 5 runs or waits: 7 slots' worth of children, 4 slots.
        push(&mut group, &w);
        finish(&w, 5);
        finish(&w, 6);
        let mut out = Vec::new();
        for _ in 0..5 {
            out.extend(ready_items(&mut group));
        }
        out.sort_by_key(|(i, _)| *i);
        assert_eq!(out, [(5, Ok(5)), (6, Ok(6))], "limit {limit:?}");
        assert!(group.is_terminated());
        assert_eq!(w.borrow().started, (0..7).collect::<Vec<_>>());
        assert!(w.borrow().most_running <= limit.unwrap_or(usize::MAX));
    }
}

// Found in review (older than slot reuse), fixed: `Group::poll_next` set `terminated` only
// when it returned `Ready`: after `None`, a child pushed through a `Handle` was taken in by
// the next poll, which returned `Pending` with the child running, and `is_terminated()`
// was `true` again (the flag still set, the inbox empty). A `select!` loop skips a
// terminated stream: it never polled the group again, and the child never finished.
#[test]
fn is_terminated_is_false_while_a_child_a_handle_pushed_runs() {
    let w = W::default();
    let mut group: Group<Job> = Group::new();
    let handle = group.handle();
    push(&mut group, &w);
    finish(&w, 0);
    assert_eq!(ready_items(&mut group), [(0, Ok(0))]);
    assert!(group.is_terminated());
    let (id, job) = probe(&w);
    assert_eq!(handle.push(job).ok(), Some(id));
    assert!(
        !group.is_terminated(),
        "a handle's push waits: not terminated"
    );
    assert!(ready_items(&mut group).is_empty());
    assert_eq!(polls(&w, 1), 1, "the pushed child runs");
    assert_eq!((group.running(), group.size_hint().0), (1, 1));
    assert!(
        !group.is_terminated(),
        "is_terminated() with a child running in the group (taken in from a handle)"
    );
}

/// A group read as a stream cannot be awaited whole (documented); one never read reuses
/// nothing and its outcomes come in push order under a limit.
#[test]
fn settle_all_after_reading_panics_and_without_reading_keeps_push_order() {
    let w = W::default();
    let mut group: Group<Job> = Group::new().limit(2);
    for _ in 0..5 {
        push(&mut group, &w);
    }
    for id in [4, 2, 0, 3, 1] {
        finish(&w, id);
    }
    let gathered = common::run(group.settle_all());
    let outputs: Vec<_> = gathered.into_results();
    assert_eq!(outputs, (0..5).map(Ok).collect::<Vec<_>>());

    let w = W::default();
    let mut group: Group<Job> = Group::new();
    push(&mut group, &w);
    finish(&w, 0);
    assert_eq!(ready_items(&mut group), [(0, Ok(0))]);
    assert!(catch_unwind(AssertUnwindSafe(|| drop(group.settle_all()))).is_err());
}

// ---------------------------------------------------------------------------------------
// Graceful stop, read as completed (handles' pushes reuse slots there too).
// ---------------------------------------------------------------------------------------

/// `settle_all().graceful(..).as_completed()`: handles' pushes take the slots of the
/// outcomes handed out; a failure begins the stop; the children still running (one in a
/// reused slot) and waiting come out as `Stopped`, in push order, each once; a push during
/// the grace period is cut off unpolled.
#[test]
fn a_graceful_stop_read_as_completed_with_reused_slots() {
    for limit in [None, Some(2)] {
        let w = W::default();
        let grace = Rc::new(Cell::new(false));
        let mut group: Group<Job> = limited(Group::new(), limit);
        let handle = group.handle();
        for _ in 0..3 {
            push(&mut group, &w); // 0, 1, 2
        }
        let signal = StopSignal::new();
        let g = grace.clone();
        let mut stream = Box::pin(
            group
                .settle_all()
                .graceful(&signal, move || Timer(g.clone()))
                .as_completed(),
        );
        assert!(ready_items(&mut stream).is_empty());
        finish(&w, 0);
        assert_eq!(ready_items(&mut stream), [(0, Ok(0))]);
        let (id, job) = probe(&w);
        assert_eq!(handle.push(job).ok(), Some(id)); // 3, in slot 0
        assert!(ready_items(&mut stream).is_empty());
        finish(&w, 1);
        assert_eq!(ready_items(&mut stream), [(1, Ok(1))]);
        for _ in 0..2 {
            let (id, job) = probe(&w);
            assert_eq!(handle.push(job).ok(), Some(id)); // 4 in slot 1, 5 in slot 3
        }
        assert!(ready_items(&mut stream).is_empty());
        let started: Vec<usize> = w.borrow().started.clone();
        let expect = match limit {
            None => vec![0, 1, 2, 3, 4, 5],
            _ => vec![0, 1, 2, 3],
        };
        assert_eq!(started, expect, "limit {limit:?}");
        // 3 (reused slot 0) fails: the stop begins.
        w.borrow_mut().fail.insert(3);
        wake(&w, 3);
        let out = ready_items(&mut stream);
        assert_eq!(out, [(3, Err(Error::Failed(3)))], "limit {limit:?}");
        assert!(signal.is_raised());
        // Pushed during the grace: never runs.
        let (late, job) = probe(&w);
        assert_eq!(handle.push(job).ok(), Some(late));
        assert!(ready_items(&mut stream).is_empty());
        assert_eq!(
            w.borrow().started,
            expect,
            "limit {limit:?}: nothing starts in the grace"
        );
        grace.set(true);
        let out = ready_items(&mut stream);
        let rest: Vec<usize> = match limit {
            None => vec![2, 4, 5, 6],
            _ => vec![2, 4, 5, 6],
        };
        assert_eq!(
            out,
            rest.iter()
                .map(|&i| (i, Err(Error::Stopped)))
                .collect::<Vec<_>>(),
            "limit {limit:?}"
        );
        assert_eq!(polls(&w, late), 0);
        drop(stream);
        drop(handle);
        for id in 0..7 {
            assert_eq!(dropped_count(&w, id), 1, "limit {limit:?}: child {id}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Threads: handles' pushes and stale wakes from elsewhere.
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Shared {
    started: Mutex<Vec<usize>>,
    running: AtomicUsize,
    most_running: AtomicUsize,
    drops: Mutex<Vec<usize>>,
    wakers: Mutex<Vec<Waker>>,
}

type SendJob = Pin<Box<dyn Future<Output = usize> + Send>>;

struct Busy {
    id: usize,
    left: usize,
    seen: bool,
    done: bool,
    shared: Arc<Shared>,
}

impl Future for Busy {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        assert!(!self.done);
        if !self.seen {
            self.seen = true;
            self.shared.started.lock().unwrap().push(self.id);
            let now = self.shared.running.fetch_add(1, SeqCst) + 1;
            self.shared.most_running.fetch_max(now, SeqCst);
            self.shared.wakers.lock().unwrap().push(cx.waker().clone());
        }
        if self.left == 0 {
            self.done = true;
            self.shared.running.fetch_sub(1, SeqCst);
            // A wake that outlives the child.
            cx.waker().wake_by_ref();
            return Poll::Ready(self.id);
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.shared.drops.lock().unwrap().push(self.id);
        if self.seen && !self.done {
            self.shared.running.fetch_sub(1, SeqCst);
        }
    }
}

/// Two threads push through handles while the group is read on this one, under a limit of
/// 2; a third wakes kept wakers (mostly stale) at random the whole time.
#[test]
fn handles_pushing_and_stale_wakes_from_other_threads() {
    let per_thread = size(400, 20);
    for limit in [None, Some(2)] {
        let shared = Arc::new(Shared::default());
        let mut group: Group<SendJob> = match limit {
            Some(n) => Group::new().limit(n),
            None => Group::new(),
        };
        let handle = group.handle();
        let next = Arc::new(Mutex::new(0usize));
        let make = |id: usize, shared: &Arc<Shared>| -> SendJob {
            Box::pin(Busy {
                id,
                left: id % 3,
                seen: false,
                done: false,
                shared: shared.clone(),
            })
        };
        let stop = Arc::new(AtomicBool::new(false));
        let waking = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0usize;
                while !stop.load(SeqCst) {
                    let waker = {
                        let wakers = shared.wakers.lock().unwrap();
                        (!wakers.is_empty()).then(|| wakers[i % wakers.len()].clone())
                    };
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                    i = i.wrapping_mul(31).wrapping_add(7);
                    std::thread::yield_now();
                }
            })
        };
        let pushers: Vec<_> = (0..2)
            .map(|_| {
                let (handle, next, shared) = (handle.clone(), next.clone(), shared.clone());
                std::thread::spawn(move || {
                    for _ in 0..per_thread {
                        let mut next = next.lock().unwrap();
                        let id = *next;
                        let pushed = handle.push(make(id, &shared)).ok();
                        assert_eq!(pushed, Some(id));
                        *next += 1;
                        drop(next);
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        let total = 2 * per_thread;
        let mut seen = vec![false; total];
        let mut read = 0;
        while read < total {
            match common::block_on(group.next()) {
                Some((index, id)) => {
                    assert_eq!(index, id, "limit {limit:?}");
                    assert!(
                        !std::mem::replace(&mut seen[index], true),
                        "index {index} twice"
                    );
                    read += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        for pusher in pushers {
            pusher.join().unwrap();
        }
        stop.store(true, SeqCst);
        waking.join().unwrap();
        let started = shared.started.lock().unwrap().clone();
        assert_eq!(started, (0..total).collect::<Vec<_>>(), "limit {limit:?}");
        if let Some(n) = limit {
            assert!(shared.most_running.load(SeqCst) <= n, "limit {n}");
        }
        drop(group);
        let mut drops = shared.drops.lock().unwrap().clone();
        drops.sort_unstable();
        assert_eq!(drops, (0..total).collect::<Vec<_>>(), "limit {limit:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Heap.
// ---------------------------------------------------------------------------------------

#[path = "common/held_heap.rs"]
mod held_heap;
use held_heap::held;

type Small = Pin<Box<dyn Future<Output = Result<usize, gather::TimedOut>>>>;

/// A crawler: each child pushes its successor through a handle from inside its poll, then
/// finishes; the group is read as a stream under a limit of 1. Live: two at a time.
#[test]
fn a_crawler_pushing_from_inside_its_children_holds_heap_for_two() {
    fn step(n: usize, end: usize, handle: Handle<Small>) -> Small {
        Box::pin(async move {
            if n + 1 < end {
                handle
                    .push(step(n + 1, end, handle.clone()))
                    .ok()
                    .expect("the group runs");
            }
            Ok(n)
        })
    }
    let measure = |end: usize| {
        let before = held();
        let mut group: Group<Small> = Group::new().limit(1);
        let handle = group.handle();
        group.push(step(0, end, handle.clone()));
        drop(handle);
        let mut count = 0;
        while let Some((index, out)) = common::run(group.next()) {
            assert_eq!(out.ok(), Some(index));
            count += 1;
        }
        assert_eq!(count, end);
        let after = held() - before;
        drop(group);
        after
    };
    let small = measure(size(1_000, 50));
    let big = measure(size(20_000, 200));
    assert_eq!(big, small, "the group grew with the children run");
}

// Found in review, fixed: after the deadline had fired, no slot was reused, so a long-lived
// group whose deadline fired grew one slot (plus an `inputs`/`order` entry) per child
// pushed and cut off, forever. Now a slot handed out after the deadline takes the next
// child pushed (to be cut off), as before it.
#[test]
fn a_group_whose_deadline_fired_holds_heap_for_its_live_children_only() {
    let fire = Rc::new(Cell::new(false));
    let mut group: Group<Small, Timed> = Group::new().deadline(Timer(fire.clone()));
    group.push(Box::pin(async { Ok(0) }));
    let _ = common::run(group.next());
    fire.set(true);
    let mut cycle = |n: usize| {
        for _ in 0..n {
            group.push(Box::pin(std::future::pending()));
            let (index, out) = common::run(group.next()).expect("a cut-off child");
            assert_eq!(out, Err(gather::TimedOut { index }));
        }
    };
    let before = held();
    cycle(size(1_000, 50));
    let after_1k = held() - before;
    cycle(size(20_000, 200));
    let after_21k = held() - before;
    assert!(
        after_21k <= after_1k + 1024,
        "the group grew after its deadline: {after_1k} bytes after 1,000 cut-off pushes, \
         {after_21k} after 21,000"
    );
}
