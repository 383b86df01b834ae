//! Fail-fast, driven by hand.
mod common;

use std::future::ready;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::task::Poll;

use common::{manual, poll_with, CountingWaker};
use futures_core::FusedFuture;
use gather::{gather, CompoundError, Inline};

#[test]
fn fail_fast_drops_pending_siblings_before_returning() {
    let (a, handle_a) = manual::<Result<u8, &str>>();
    let (b, handle_b) = manual::<Result<u8, &str>>();
    let (c, handle_c) = manual::<Result<u8, &str>>();
    let (_, waker) = CountingWaker::new();
    let mut fail_fast = pin!(gather([a, b, c]).fail_fast());

    assert!(poll_with(fail_fast.as_mut(), &waker).is_pending());
    handle_a.complete(Ok(1));
    assert!(poll_with(fail_fast.as_mut(), &waker).is_pending());
    assert!(handle_b.alive() && handle_c.alive());

    handle_b.complete(Err("refused"));
    let Poll::Ready(Err(error)) = poll_with(fail_fast.as_mut(), &waker) else {
        panic!("fail_fast resolves at the first error")
    };
    assert_eq!(error.first(), (1, &"refused"));
    assert!(
        !handle_c.alive(),
        "the pending sibling was dropped before the future returned"
    );
    assert!(fail_fast.is_terminated());
}

#[test]
fn fail_fast_stops_the_poll_at_the_first_error_and_polls_no_later_child() {
    let children = [ready(Ok(0)), ready(Err("b")), ready(Ok(2)), ready(Err("d"))];
    let (_, waker) = CountingWaker::new();
    let mut fail_fast = pin!(gather(children).fail_fast());
    let Poll::Ready(Err(error)) = poll_with(fail_fast.as_mut(), &waker) else {
        panic!()
    };
    let error: CompoundError<&str, Inline<4>> = error;
    assert_eq!(error.iter().collect::<Vec<_>>(), [(1, &"b")]);

    // The same with children that count their polls, in each storage.
    for per_child in [false, true] {
        let (children, handles): (Vec<_>, Vec<_>) =
            (0..5).map(|_| manual::<Result<u8, &str>>()).unzip();
        handles[1].complete(Err("b"));
        handles[3].complete(Err("d"));
        let mut fail_fast = pin!(gather_of(children, per_child).fail_fast());
        let Poll::Ready(Err(error)) = poll_with(fail_fast.as_mut(), &waker) else {
            panic!()
        };
        assert_eq!(error.iter().collect::<Vec<_>>(), [(1, &"b")]);
        let polls: Vec<_> = handles.iter().map(|h| h.polls()).collect();
        assert_eq!(polls, [1, 1, 0, 0, 0], "per-child wakers: {per_child}");
        assert!(handles.iter().all(|h| !h.alive()), "every child dropped");
    }
}

#[test]
fn fail_fast_keeps_the_first_observed_error_not_the_lowest_index() {
    let (a, handle_a) = manual::<Result<u8, &str>>();
    let (b, handle_b) = manual::<Result<u8, &str>>();
    let (_, waker) = CountingWaker::new();
    let mut fail_fast = pin!(gather((a, b)).fail_fast());
    assert!(poll_with(fail_fast.as_mut(), &waker).is_pending());
    handle_b.complete(Err("second child, first to fail"));
    let Poll::Ready(Err(error)) = poll_with(fail_fast.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(error.first(), (1, &"second child, first to fail"));
    assert_eq!(error.len(), 1);
    assert!(!handle_a.alive());
    drop(handle_a);
}

#[test]
fn fail_fast_of_a_tuple_gives_the_tuple_of_successes() {
    let (_, waker) = CountingWaker::new();
    let mut fail_fast = pin!(gather((ready(Ok::<_, ()>(1u8)), ready(Ok("two")))).fail_fast());
    assert_eq!(
        poll_with(fail_fast.as_mut(), &waker),
        Poll::Ready(Ok((1, "two")))
    );
}

#[test]
fn fail_fast_after_the_first_poll_panics() {
    let (_, waker) = CountingWaker::new();
    let (child, _handle) = manual::<Result<(), ()>>();
    let mut polled = gather([child]);
    assert!(poll_with(std::pin::Pin::new(&mut polled), &waker).is_pending());
    let panic = catch_unwind(AssertUnwindSafe(|| polled.fail_fast())).unwrap_err();
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"`Gather::fail_fast` called after the first poll")
    );
}

#[test]
fn fail_fast_polled_after_completion_panics() {
    let (_, waker) = CountingWaker::new();
    let mut fail_fast = pin!(gather([ready(Err::<(), _>(1))]).fail_fast());
    assert!(poll_with(fail_fast.as_mut(), &waker).is_ready());
    let panic = catch_unwind(AssertUnwindSafe(|| poll_with(fail_fast.as_mut(), &waker)));
    assert_eq!(
        panic.unwrap_err().downcast_ref::<&str>(),
        Some(&"`Gather` polled after completion")
    );
}

/// The README's comparison: past 30 futures, `futures`' `try_join_all` holds a later
/// child's error until the children before it finish; fail-fast reports it at once.
#[test]
fn an_error_behind_pending_siblings_fails_at_once_where_try_join_all_waits() {
    use std::future::{pending, Future};
    use std::pin::Pin;
    use std::task::Context;
    type Child = Pin<Box<dyn Future<Output = Result<u8, u8>>>>;
    let children = || {
        let mut children: Vec<Child> = (0..39).map(|_| Box::pin(pending()) as Child).collect();
        children.push(Box::pin(ready(Err(7))));
        children
    };
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut ours = gather(children()).fail_fast();
    match Pin::new(&mut ours).poll(&mut cx) {
        Poll::Ready(Err(error)) => assert_eq!(error.first(), (39, &7)),
        other => panic!(
            "fail-fast did not fail at once: {:?}",
            other.map(|r| r.is_ok())
        ),
    }
    let mut theirs = futures::future::try_join_all(children());
    assert!(Pin::new(&mut theirs).poll(&mut cx).is_pending());
}

/// A child with no drop glue whose outputs have none either: what a `Vec` fail-fast lets
/// go of without a pass over its entries. Ready after `polls` polls (waking itself in
/// between) with `output`, or never if `polls` is `None`.
struct Plain {
    polls: Option<u8>,
    output: Result<u32, u32>,
}

impl std::future::Future for Plain {
    type Output = Result<u32, u32>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Result<u32, u32>> {
        match self.polls {
            None => Poll::Pending,
            Some(0) => Poll::Ready(self.output),
            Some(left) => {
                self.polls = Some(left - 1);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

#[test]
fn fail_fast_over_plain_values_fails_with_outputs_stored_held_and_children_running() {
    assert!(!std::mem::needs_drop::<Plain>());
    let plain = |polls, output| Plain { polls, output };
    for per_child in [false, true] {
        let children = vec![
            plain(Some(0), Ok(0)),  // stored in the output `Vec`, in order
            plain(None, Ok(1)),     // still running at the end
            plain(Some(1), Ok(2)),  // out of order: held in its entry
            plain(Some(2), Err(3)), // the failure, at the third poll
            plain(Some(5), Ok(4)),  // still running at the end
        ];
        let (_, waker) = CountingWaker::new();
        let mut fail_fast = pin!(gather_of(children, per_child).fail_fast());
        let error = loop {
            if let Poll::Ready(result) = poll_with(fail_fast.as_mut(), &waker) {
                break result.expect_err("child 3 fails");
            }
        };
        assert_eq!(error.first(), (3, &3));
        assert_eq!(error.len(), 1);
        assert!(fail_fast.is_terminated());
        let again = catch_unwind(AssertUnwindSafe(|| poll_with(fail_fast.as_mut(), &waker)));
        assert!(again.is_err(), "a poll after completion panics");
    }
}

/// A gather over `children`, with per-child wakers if `per_child`, a sweep otherwise.
fn gather_of<F: std::future::Future>(children: Vec<F>, per_child: bool) -> gather::Gather<Vec<F>> {
    let gather = gather(children);
    if per_child {
        gather.per_child_wakers()
    } else {
        gather
    }
}
