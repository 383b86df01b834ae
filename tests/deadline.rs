//! The deadline layer, with a hand-made timer: children still running when it fires are
//! dropped and count as `Err(TimedOut { index })`, in every mode.
mod common;

use std::future::{ready, Future};
use std::pin::{pin, Pin};
use std::task::Poll;

use common::{manual, poll_with, CountingWaker, DropLog};
use futures_core::Stream;
use gather::{gather, TimedOut};

#[derive(Debug, PartialEq)]
enum CallError {
    Refused,
    TimedOut(usize),
}

impl From<TimedOut> for CallError {
    fn from(timed_out: TimedOut) -> Self {
        CallError::TimedOut(timed_out.index)
    }
}

type Call = Pin<Box<dyn Future<Output = Result<u8, CallError>>>>;

#[test]
fn children_still_running_when_the_timer_fires_time_out_and_are_dropped() {
    let log = DropLog::new();
    let (slow, _slow_handle) = manual::<Result<u8, CallError>>();
    let (late, late_handle) = manual::<Result<u8, CallError>>();
    let (timer, fire) = manual::<()>();
    let calls: Vec<Call> = vec![
        Box::pin(ready(Ok(1))),
        Box::pin(log.future("slow", slow)),
        Box::pin(ready(Err(CallError::Refused))),
        Box::pin(log.future("late", late)),
    ];
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather(calls).deadline(timer));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());

    // `late` finishes in the same poll as the timer: it counts as finished.
    late_handle.complete(Ok(4));
    fire.complete(());
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(
        gathered.into_results(),
        [
            Ok(1),
            Err(CallError::TimedOut(1)),
            Err(CallError::Refused),
            Ok(4)
        ]
    );
    assert_eq!(log.count("slow"), 1, "the cut-off child was dropped");
}

#[test]
fn a_timer_that_never_fires_changes_nothing() {
    let (timer, _never) = manual::<()>();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather([ready(Ok::<_, TimedOut>(1)), ready(Ok(2))]).deadline(timer));
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(gathered.into_result(), Ok([1, 2]));
}

#[test]
fn fail_fast_with_a_deadline_reports_the_timeouts_as_errors() {
    let (a, _a) = manual::<Result<u8, TimedOut>>();
    let (b, b_handle) = manual::<Result<u8, TimedOut>>();
    let (c, _c) = manual::<Result<u8, TimedOut>>();
    let (timer, fire) = manual::<()>();
    let (_, waker) = CountingWaker::new();
    let mut fail_fast = pin!(gather((a, b, c)).deadline(timer).fail_fast());
    assert!(poll_with(fail_fast.as_mut(), &waker).is_pending());
    b_handle.complete(Ok(2));
    assert!(poll_with(fail_fast.as_mut(), &waker).is_pending());
    fire.complete(());
    let Poll::Ready(Err(error)) = poll_with(fail_fast.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(
        error.iter().collect::<Vec<_>>(),
        [(0, &TimedOut { index: 0 }), (2, &TimedOut { index: 2 })]
    );
}

#[test]
fn as_completed_with_a_deadline_yields_the_cut_off_children_last_in_input_order() {
    let (children, handles): (Vec<_>, Vec<_>) =
        (0..4).map(|_| manual::<Result<u8, TimedOut>>()).unzip();
    let (timer, fire) = manual::<()>();
    let (_, waker) = CountingWaker::new();
    let mut stream = pin!(gather(children).deadline(timer).as_completed());
    let mut next = || {
        stream
            .as_mut()
            .poll_next(&mut std::task::Context::from_waker(&waker))
    };
    assert!(next().is_pending());
    handles[2].complete(Ok(2));
    assert_eq!(next(), Poll::Ready(Some((2, Ok(2)))));
    fire.complete(());
    assert_eq!(next(), Poll::Ready(Some((0, Err(TimedOut { index: 0 })))));
    assert_eq!(next(), Poll::Ready(Some((1, Err(TimedOut { index: 1 })))));
    assert_eq!(next(), Poll::Ready(Some((3, Err(TimedOut { index: 3 })))));
    assert_eq!(next(), Poll::Ready(None));
}

#[test]
fn a_deadline_over_a_tuple_cuts_off_each_child_in_its_own_type() {
    let (slow, _slow) = manual::<Result<&str, TimedOut>>();
    let (timer, fire) = manual::<()>();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather((ready(Ok::<u8, TimedOut>(1)), slow)).deadline(timer));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    fire.complete(());
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(gathered.into_results(), (Ok(1), Err(TimedOut { index: 1 })));
}

#[test]
fn a_deadline_added_after_the_first_poll_panics() {
    let (_, waker) = CountingWaker::new();
    let (child, _handle) = manual::<Result<(), TimedOut>>();
    let mut polled = gather([child]);
    assert!(poll_with(Pin::new(&mut polled), &waker).is_pending());
    let panic =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| polled.deadline(ready(()))));
    assert_eq!(
        panic.unwrap_err().downcast_ref::<&str>(),
        Some(&"`Gather::deadline` called after the first poll")
    );
}

#[test]
fn a_deadline_over_an_array_cuts_off_what_is_still_running() {
    let (slow, _slow) = manual::<Result<u8, TimedOut>>();
    let (fast, fast_handle) = manual::<Result<u8, TimedOut>>();
    let (timer, fire) = manual::<()>();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather([slow, fast]).deadline(timer));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    fast_handle.complete(Ok(2));
    fire.complete(());
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(gathered.into_results(), [Err(TimedOut { index: 0 }), Ok(2)]);
}
