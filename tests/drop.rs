//! What is dropped, and when: children as soon as they finish, everything exactly once
//! when a gather is dropped part-way, and a poisoned gather after a child panicked.
mod common;

use std::future::{pending, ready, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::task::Poll;

use common::{manual, poll_with, CountingWaker, DropLog, Tracked};
use gather::gather;

#[test]
fn a_child_is_dropped_as_soon_as_it_finishes() {
    let log = DropLog::new();
    let (slow, handle) = manual::<()>();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather((
        log.future("quick", ready(())),
        log.future("slow", slow)
    )));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_eq!(
        log.drops(),
        ["quick"],
        "the finished child is gone while its sibling runs"
    );
    handle.complete(());
    assert!(poll_with(gather.as_mut(), &waker).is_ready());
    assert_eq!(log.drops(), ["quick", "slow"]);
}

#[test]
fn dropping_a_gather_part_way_drops_every_child_and_output_exactly_once() {
    type Child = Pin<Box<dyn Future<Output = Tracked>>>;
    let log = DropLog::new();
    let (blocked, _handle) = manual::<Tracked>();
    let children: [Child; 4] = [
        Box::pin(log.future("child-0", ready(log.value("output-0")))),
        Box::pin(log.future("child-1", blocked)),
        Box::pin(log.future("child-2", ready(log.value("output-2")))),
        Box::pin(log.future("child-3", pending())),
    ];
    let (_, waker) = CountingWaker::new();
    let mut gather = Box::pin(gather(children));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_eq!(log.drops(), ["child-0", "child-2"]);

    drop(gather);
    let mut drops = log.drops();
    drops.sort();
    assert_eq!(
        drops,
        ["child-0", "child-1", "child-2", "child-3", "output-0", "output-2"]
    );
}

#[test]
fn dropping_a_vec_gather_part_way_drops_everything_exactly_once() {
    let log = DropLog::new();
    let (blocked, _handle) = manual::<Tracked>();
    let mut children: Vec<Pin<Box<dyn Future<Output = Tracked>>>> = (0..20)
        .map(|i| -> Pin<Box<dyn Future<Output = Tracked>>> {
            Box::pin(log.future(
                format!("child-{i}"),
                ready(log.value(format!("output-{i}"))),
            ))
        })
        .collect();
    children.push(Box::pin(log.future("blocked", blocked)));
    let (_, waker) = CountingWaker::new();
    let mut gather = Box::pin(gather(children));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    drop(gather);
    log.assert_each_dropped_once("child-", 20);
    log.assert_each_dropped_once("output-", 20);
    assert_eq!(log.count("blocked"), 1);
    assert_eq!(log.drops().len(), 41);
}

#[test]
fn outputs_handed_back_are_not_dropped_by_the_gather() {
    let log = DropLog::new();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather([ready(log.value("a")), ready(log.value("b"))]));
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!()
    };
    assert!(log.drops().is_empty());
    let [a, b] = gathered.into_results();
    assert_eq!((a.label(), b.label()), ("a", "b"));
    drop((a, b));
    assert_eq!(log.drops(), ["a", "b"]);
}

#[test]
fn a_child_panic_poisons_the_gather_and_nothing_is_dropped_twice_or_leaked() {
    type Child = Pin<Box<dyn Future<Output = Tracked>>>;
    let log = DropLog::new();
    let (pending_child, _handle) = manual::<Tracked>();
    let children: [Child; 3] = [
        Box::pin(log.future("child-0", ready(log.value("output-0")))),
        Box::pin(log.future("child-1", async { panic!("child 1 broke") })),
        Box::pin(log.future("child-2", pending_child)),
    ];
    let (_, waker) = CountingWaker::new();
    let mut gather = Box::pin(gather(children));

    let panic = catch_unwind(AssertUnwindSafe(|| poll_with(gather.as_mut(), &waker)));
    assert_eq!(
        panic.unwrap_err().downcast_ref::<&str>(),
        Some(&"child 1 broke")
    );
    let again = catch_unwind(AssertUnwindSafe(|| poll_with(gather.as_mut(), &waker)));
    assert_eq!(
        again.unwrap_err().downcast_ref::<&str>(),
        Some(&"`Gather` polled after one of its futures panicked")
    );

    drop(gather);
    let mut drops = log.drops();
    drops.sort();
    assert_eq!(drops, ["child-0", "child-1", "child-2", "output-0"]);
}
