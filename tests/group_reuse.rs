//! A `Group` read as a stream reuses the slot of each child whose outcome it handed out:
//! the next child pushed takes it. These tests pin what must not change with that: push
//! indices, start order (push order, under a limit too), a stale wake of the slot's
//! previous child, cut-off order after a deadline, caught panics, and drops.
mod common;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use common::{poll_next, quiet, run, DropLog};
use futures::StreamExt;
use gather::{Group, TimedOut};

/// What the children of one test record: the order of their first polls, and how many
/// run at once.
#[derive(Default)]
struct Log {
    started: Vec<usize>,
    running: usize,
    most_running: usize,
}

type Shared = Rc<RefCell<Log>>;

/// A child that finishes at its `polls`-th poll with `id`; with `stale`, it wakes itself
/// in the poll it finishes in (a wake that outlives it: its slot's next child hears it).
struct Kid {
    id: usize,
    polls: usize,
    stale: bool,
    seen: usize,
    log: Shared,
}

fn kid(log: &Shared, id: usize, polls: usize) -> Kid {
    Kid {
        id,
        polls,
        stale: false,
        seen: 0,
        log: log.clone(),
    }
}

impl Future for Kid {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let mut log = self.log.borrow_mut();
        if self.seen == 0 {
            log.started.push(self.id);
            log.running += 1;
            log.most_running = log.most_running.max(log.running);
        }
        drop(log);
        self.seen += 1;
        if self.seen < self.polls {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if self.stale {
            cx.waker().wake_by_ref();
        }
        self.log.borrow_mut().running -= 1;
        Poll::Ready(self.id)
    }
}

/// Reads `group` to the end, each outcome checked to be its own index's and noted in
/// `seen`; each outcome read pushes one more child (finishing at its `polls(id)`-th poll)
/// until `until` were pushed.
#[track_caller]
fn read_refilling(
    group: &mut Group<Kid>,
    log: &Shared,
    until: usize,
    polls: fn(usize) -> usize,
    seen: &mut Vec<usize>,
    context: &str,
) {
    while let Some((index, id)) = run(group.next()) {
        assert_eq!(index, id, "{context}: the outcome of child {id}");
        seen.push(index);
        if group.len() < until {
            let id = group.len();
            assert_eq!(group.push(kid(log, id, polls(id))), id);
        }
    }
}

#[test]
fn a_group_read_as_it_pushes_keeps_push_indices_and_starts_children_in_push_order() {
    for limit in [None, Some(1), Some(3)] {
        let log = Shared::default();
        let mut group = match limit {
            Some(n) => Group::new().limit(n),
            None => Group::new(),
        };
        // Ten at first, each of a different length; every outcome read pushes one more,
        // until 200 were pushed.
        for id in 0..10 {
            group.push(kid(&log, id, 1 + id % 4));
        }
        let mut seen = Vec::new();
        let context = format!("limit {limit:?}");
        read_refilling(&mut group, &log, 200, |id| 1 + id % 4, &mut seen, &context);
        seen.sort_unstable();
        assert_eq!(seen, (0..200).collect::<Vec<_>>(), "limit {limit:?}");
        let log = log.borrow();
        assert_eq!(
            log.started,
            (0..200).collect::<Vec<_>>(),
            "limit {limit:?}: first polls in push order"
        );
        if let Some(n) = limit {
            assert!(
                log.most_running <= n,
                "limit {n}: {} ran at once",
                log.most_running
            );
        }
    }
}

/// 150 children wait in reused slots at once, under a limit, and one more is
/// pushed per outcome: the queue of reused slots waiting to start never empties while the
/// group runs (it is read far past its first half, and compacted). Every child still
/// starts in push order, under its own index, at most two at a time.
#[test]
fn a_long_queue_of_reused_slots_that_never_empties_starts_children_in_push_order() {
    let log = Shared::default();
    let mut group = Group::new().limit(2);
    // 150 slots, each freed as its outcome is read...
    for id in 0..150 {
        group.push(kid(&log, id, 1 + id % 3));
    }
    let mut seen = Vec::new();
    for _ in 0..150 {
        let (index, id) = run(group.next()).expect("150 children pushed");
        assert_eq!(index, id);
        seen.push(index);
    }
    // ...then taken again by 150 children at once, which wait for the limit's two places;
    // each outcome read pushes one more, until 400 were pushed.
    for id in 150..300 {
        assert_eq!(group.push(kid(&log, id, 1 + id % 3)), id);
    }
    read_refilling(&mut group, &log, 400, |id| 1 + id % 3, &mut seen, "limit 2");
    seen.sort_unstable();
    assert_eq!(seen, (0..400).collect::<Vec<_>>());
    let log = log.borrow();
    assert_eq!(
        log.started,
        (0..400).collect::<Vec<_>>(),
        "first polls in push order"
    );
    assert!(log.most_running <= 2, "{} ran at once", log.most_running);
}

/// Child 0 wakes itself as it finishes; its slot, once free, takes child 2, while child 1
/// waits for the limit's only place. The stale wake must not start child 2 before child 1
/// (nor make two run at once).
#[test]
fn a_stale_wake_of_a_reused_slot_starts_no_child_out_of_turn() {
    let log = Shared::default();
    let mut group = Group::new().limit(1);
    group.push(Kid {
        stale: true,
        ..kid(&log, 0, 1)
    });
    group.push(kid(&log, 1, 3));
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((0, 0))));
    // Child 0's slot is free: child 2 takes it, and waits.
    assert_eq!(group.push(kid(&log, 2, 1)), 2);
    assert_eq!(run(group.next()), Some((1, 1)));
    assert_eq!(run(group.next()), Some((2, 2)));
    assert_eq!(run(group.next()), None);
    let log = log.borrow();
    assert_eq!(log.started, [0, 1, 2]);
    assert_eq!(log.most_running, 1);
}

/// A child that never finishes, and says when it is dropped.
struct Forever(Rc<RefCell<Vec<usize>>>, usize);

impl Future for Forever {
    type Output = Result<usize, TimedOut>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Pending
    }
}

impl Drop for Forever {
    fn drop(&mut self) {
        self.0.borrow_mut().push(self.1);
    }
}

/// A deadline's timer the test fires.
struct Timer(Rc<RefCell<bool>>);

impl Future for Timer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if *self.0.borrow() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

type Call = Pin<Box<dyn Future<Output = Result<usize, TimedOut>>>>;

/// Slots reused out of push order (child 2 in child 0's slot, child 4 in child 3's): the
/// deadline's cut-off children still come out in push order, each under its own index.
#[test]
fn cut_off_children_in_reused_slots_come_out_in_push_order_with_their_indices() {
    let fire = Rc::new(RefCell::new(false));
    let dropped = Rc::new(RefCell::new(Vec::new()));
    let mut group: Group<Call, _> = Group::new().deadline(Timer(fire.clone()));
    let forever = |n| -> Call { Box::pin(Forever(dropped.clone(), n)) };
    group.push(Box::pin(async { Ok(0) }));
    group.push(forever(1));
    assert_eq!(run(group.next()), Some((0, Ok(0))));
    group.push(forever(2)); // in slot 0
    group.push(Box::pin(async { Ok(3) })); // in slot 2
    assert_eq!(run(group.next()), Some((3, Ok(3))));
    group.push(forever(4)); // in slot 2
    group.push(forever(5)); // in slot 3
    assert!(poll_next(&mut group).is_pending());
    *fire.borrow_mut() = true;
    let rest: Vec<_> = run(group.collect::<Vec<_>>());
    assert_eq!(
        rest,
        [1, 2, 4, 5].map(|index| (index, Err(TimedOut { index })))
    );
    let mut dropped = dropped.borrow().clone();
    dropped.sort_unstable();
    assert_eq!(dropped, [1, 2, 4, 5], "each cut-off child dropped once");
}

/// A child that panics at its first poll, in a slot another child had.
#[test]
fn a_panic_caught_in_a_reused_slot_names_the_push_index() {
    quiet();
    type Job = Pin<Box<dyn Future<Output = Result<usize, gather::Panicked>>>>;
    let mut group: Group<Job, _> = Group::new().catch_panics();
    group.push(Box::pin(async { Ok(0) }));
    assert_eq!(
        run(group.next()).map(|(i, r)| (i, r.ok())),
        Some((0, Some(0)))
    );
    group.push(Box::pin(async { panic!("boom: in a reused slot") }));
    let (index, outcome) = run(group.next()).expect("an outcome");
    assert_eq!(index, 1);
    assert_eq!(outcome.map_err(|panicked| panicked.index), Err(1));
}

/// Dropping a group whose slots were reused drops every child still in it once, and
/// nothing whose outcome was handed out a second time.
#[test]
fn dropping_a_group_with_reused_slots_drops_each_child_once() {
    use futures::future::{pending, ready, Either};
    let log = DropLog::new();
    let child = |label: String, is_ready: bool| {
        log.future(
            label,
            if is_ready {
                Either::Left(ready(()))
            } else {
                Either::Right(pending())
            },
        )
    };
    let mut group = Group::new();
    for n in 0..70 {
        group.push(child(format!("a{n}"), n % 2 == 0));
    }
    // The ready ones (even) come out; their slots are free.
    for _ in 0..35 {
        let (index, _) = run(group.next()).expect("an even child");
        assert_eq!(index % 2, 0);
    }
    for n in 0..50 {
        group.push(child(format!("b{n}"), false));
    }
    assert!(poll_next(&mut group).is_pending());
    drop(group);
    log.assert_each_dropped_once("a", 70);
    log.assert_each_dropped_once("b", 50);
}
