//! Settle-all, driven by hand: children finish exactly when the test says, so the
//! order of events is deterministic.
mod common;

use std::future::{ready, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use common::{manual, poll_with, yield_now, CountingWaker};
use futures_core::FusedFuture;
use gather::gather;

#[test]
fn outcomes_keep_input_order_when_children_finish_in_reverse() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..4).map(|_| manual::<u32>()).unzip();
    let (wakes, waker) = CountingWaker::new();
    let mut gather = pin!(gather(children));

    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    for (i, handle) in handles.iter().enumerate().rev() {
        handle.complete(i as u32 * 100);
        let woken = wakes.wakes();
        assert!(woken > 0, "completing a child wakes the gather");
        let poll = poll_with(gather.as_mut(), &waker);
        if i > 0 {
            assert!(poll.is_pending());
        } else {
            let Poll::Ready(gathered) = poll else {
                panic!("all children finished")
            };
            assert_eq!(gathered.into_results(), [0, 100, 200, 300]);
        }
    }
}

#[test]
fn nothing_runs_until_the_first_poll() {
    let (child, handle) = manual::<()>();
    let unpolled = gather([child]);
    assert_eq!(handle.polls(), 0);
    drop(unpolled);
    assert_eq!(
        handle.polls(),
        0,
        "dropping an unpolled gather polls nothing"
    );
    assert!(!handle.alive(), "and drops the child");

    let (child, handle) = manual::<()>();
    let mut gather = pin!(gather([child]));
    let (_, waker) = CountingWaker::new();
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_eq!(handle.polls(), 1);
}

#[test]
fn one_poll_polls_each_child_at_most_once() {
    // Children that wake themselves during their own poll, forever: a gather that re-polled
    // woken children within one poll would spin.
    let epoch = Arc::new(AtomicUsize::new(0));
    let children = [0, 1, 2].map(|_| OncePerEpoch::new(&epoch, yield_now(usize::MAX)));
    let polls: Vec<_> = children.iter().map(|c| c.polls.clone()).collect();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather(children));
    for round in 1..=5 {
        epoch.store(round, Ordering::SeqCst);
        assert!(poll_with(gather.as_mut(), &waker).is_pending());
        for child in &polls {
            assert_eq!(child.load(Ordering::SeqCst), round);
        }
    }
}

/// Wraps a child and fails the test if it is polled twice in one epoch (one poll of the
/// gather, as the test numbers them).
struct OncePerEpoch<F> {
    child: Pin<Box<F>>,
    epoch: Arc<AtomicUsize>,
    last: Option<usize>,
    polls: Arc<AtomicUsize>,
}

impl<F> OncePerEpoch<F> {
    fn new(epoch: &Arc<AtomicUsize>, child: F) -> Self {
        let polls = Arc::new(AtomicUsize::new(0));
        OncePerEpoch {
            child: Box::pin(child),
            epoch: epoch.clone(),
            last: None,
            polls,
        }
    }
}

impl<F: Future> Future for OncePerEpoch<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        assert_ne!(
            self.last,
            Some(epoch),
            "child polled twice in one poll of the gather"
        );
        self.last = Some(epoch);
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.child.as_mut().poll(cx)
    }
}

#[test]
fn a_child_that_is_not_woken_is_not_needed_to_make_progress() {
    let (a, handle_a) = manual::<&str>();
    let (b, handle_b) = manual::<&str>();
    let (wakes, waker) = CountingWaker::new();
    let mut gather = pin!(gather((a, b)));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_eq!(
        wakes.wakes(),
        0,
        "a gather of pending children does not wake itself"
    );
    handle_b.complete("b");
    assert_eq!(wakes.wakes(), 1);
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    handle_a.complete("a");
    assert_eq!(wakes.wakes(), 2);
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(gathered.into_results(), ("a", "b"));
}

#[test]
fn polling_after_completion_panics_with_a_clear_message() {
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather([ready(1)]));
    assert!(!gather.is_terminated());
    assert!(poll_with(gather.as_mut(), &waker).is_ready());
    assert!(gather.is_terminated());
    let panic = catch_unwind(AssertUnwindSafe(|| poll_with(gather.as_mut(), &waker))).unwrap_err();
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"`Gather` polled after completion")
    );
}

#[test]
fn an_empty_gather_resolves_at_its_first_poll() {
    let (wakes, waker) = CountingWaker::new();
    let none: [std::future::Pending<()>; 0] = [];
    let mut gather = pin!(gather(none));
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!("an empty gather must not hang")
    };
    assert_eq!(gathered.into_results(), []);
    assert_eq!(wakes.wakes(), 0);
    assert!(gather.is_terminated());
}

#[test]
fn a_large_gather_yields_to_its_executor_after_its_budget() {
    let children: Vec<_> = (0..1000).map(ready).collect();
    let (wakes, waker) = CountingWaker::new();
    let mut gather = pin!(gather(children));
    let mut polls = 0;
    let gathered = loop {
        polls += 1;
        let before = wakes.wakes();
        match poll_with(gather.as_mut(), &waker) {
            Poll::Ready(gathered) => break gathered,
            Poll::Pending => assert_eq!(wakes.wakes(), before + 1, "over budget: woke itself"),
        }
    };
    // 128 children per poll.
    assert_eq!(polls, 1000usize.div_ceil(128));
    assert_eq!(gathered.into_results(), (0..1000).collect::<Vec<_>>());
}

#[test]
fn a_gather_of_ready_children_needs_one_poll_and_no_wake() {
    let (wakes, waker) = CountingWaker::new();
    let mut gather = pin!(gather([
        ready(Ok::<_, ()>(1)),
        ready(Ok(2)),
        ready(Err(()))
    ]));
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(gathered.error_count(), 1);
    assert_eq!(wakes.wakes(), 0);
}
