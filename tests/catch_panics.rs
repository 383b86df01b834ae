//! `catch_panics()`: a child's panic becomes its error; its siblings go on.
mod common;

use std::future::{pending, ready, Future};
use std::pin::{pin, Pin};
use std::task::Poll;

use common::{manual, poll_with, CountingWaker, DropLog};
use futures_core::Stream;
use gather::{gather, Panicked, TimedOut};

#[derive(Debug)]
enum CallError {
    Panicked(Panicked),
    TimedOut(usize),
}

impl From<Panicked> for CallError {
    fn from(panicked: Panicked) -> Self {
        CallError::Panicked(panicked)
    }
}

impl From<TimedOut> for CallError {
    fn from(timed_out: TimedOut) -> Self {
        CallError::TimedOut(timed_out.index)
    }
}

type Call = Pin<Box<dyn Future<Output = Result<u8, CallError>>>>;

fn panicking(message: &'static str) -> Call {
    Box::pin(async move { panic!("{message}") })
}

#[test]
fn a_panic_becomes_the_childs_error_with_its_message_and_siblings_go_on() {
    let log = DropLog::new();
    let (sibling, sibling_handle) = manual::<Result<u8, CallError>>();
    let calls: Vec<Call> = vec![
        Box::pin(ready(Ok(0))),
        Box::pin(log.future("panicking", panicking("disk on fire"))),
        Box::pin(sibling),
    ];
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather(calls).catch_panics());
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_eq!(
        log.count("panicking"),
        1,
        "the panicked child is dropped, once"
    );
    sibling_handle.complete(Ok(2));
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!()
    };
    let results = gathered.into_results();
    assert_eq!(results[0].as_ref().ok(), Some(&0));
    match &results[1] {
        Err(CallError::Panicked(panicked)) => {
            assert_eq!(panicked.index, 1);
            assert_eq!(panicked.message(), Some("disk on fire"));
        }
        other => panic!("expected a caught panic, got {other:?}"),
    }
    assert_eq!(results[2].as_ref().ok(), Some(&2));
    assert_eq!(log.count("panicking"), 1);
}

#[test]
fn fail_fast_reports_a_caught_panic_as_the_error() {
    let calls: Vec<Call> = vec![
        Box::pin(pending()),
        panicking("boom"),
        Box::pin(ready(Ok(3))),
    ];
    let (_, waker) = CountingWaker::new();
    let mut fail_fast = pin!(gather(calls).catch_panics().fail_fast());
    let Poll::Ready(Err(error)) = poll_with(fail_fast.as_mut(), &waker) else {
        panic!()
    };
    let (index, CallError::Panicked(panicked)) = error.first() else {
        panic!()
    };
    assert_eq!((index, panicked.message()), (1, Some("boom")));
}

#[test]
fn as_completed_yields_a_caught_panic_in_its_turn() {
    let calls: Vec<Call> = vec![panicking("first"), Box::pin(ready(Ok(1)))];
    let (_, waker) = CountingWaker::new();
    let mut stream = pin!(gather(calls).catch_panics().as_completed());
    let mut next = || {
        stream
            .as_mut()
            .poll_next(&mut std::task::Context::from_waker(&waker))
    };
    let Poll::Ready(Some((0, Err(CallError::Panicked(panicked))))) = next() else {
        panic!()
    };
    assert_eq!(panicked.message(), Some("first"));
    assert!(matches!(next(), Poll::Ready(Some((1, Ok(1))))));
    assert!(matches!(next(), Poll::Ready(None)));
}

#[test]
fn catch_panics_combines_with_a_deadline() {
    let (timer, fire) = manual::<()>();
    let calls: Vec<Call> = vec![panicking("late"), Box::pin(pending())];
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather(calls).catch_panics().deadline(timer));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    fire.complete(());
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!()
    };
    let results = gathered.into_results();
    assert!(matches!(&results[0], Err(CallError::Panicked(p)) if p.index == 0));
    assert!(matches!(results[1], Err(CallError::TimedOut(1))));
}

#[test]
fn arrays_and_tuples_catch_panics_too() {
    let (_, waker) = CountingWaker::new();
    let mut array = pin!(gather([panicking("a"), Box::pin(ready(Ok(1)))]).catch_panics());
    let Poll::Ready(gathered) = poll_with(array.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(gathered.error_count(), 1);

    let tuple = gather((ready(Ok::<u8, Panicked>(1)), async {
        panic!("b") as Result<&str, Panicked>
    }));
    let mut tuple = pin!(tuple.catch_panics());
    let Poll::Ready(gathered) = poll_with(tuple.as_mut(), &waker) else {
        panic!()
    };
    let (first, second) = gathered.into_results();
    assert_eq!(first.ok(), Some(1));
    assert_eq!(second.unwrap_err().message(), Some("b"));
}
