//! As-completed, driven by hand: outcomes in completion order, an exact size hint,
//! reading part-way and resuming, and dropping the stream part-way.
mod common;

use std::pin::pin;
use std::task::Poll;

use common::{manual, poll_with, CountingWaker, DropLog, Tracked};
use futures_core::{FusedStream, Stream};
use gather::{gather, AsCompleted};

/// Polls the stream once.
fn next<S: Stream + ?Sized>(
    stream: std::pin::Pin<&mut S>,
    waker: &std::task::Waker,
) -> Poll<Option<S::Item>> {
    stream.poll_next(&mut std::task::Context::from_waker(waker))
}

#[test]
fn yields_each_outcome_with_its_index_in_completion_order() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..4).map(|_| manual::<&str>()).unzip();
    let (_, waker) = CountingWaker::new();
    let mut stream = pin!(gather(children).as_completed());
    assert_eq!(stream.size_hint(), (4, Some(4)));
    assert!(next(stream.as_mut(), &waker).is_pending());

    handles[2].complete("c");
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(Some((2, "c"))));
    assert_eq!(stream.size_hint(), (3, Some(3)));
    assert!(next(stream.as_mut(), &waker).is_pending());

    handles[3].complete("d");
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(Some((3, "d"))));
    handles[0].complete("a");
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(Some((0, "a"))));
    handles[1].complete("b");
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(Some((1, "b"))));
    assert_eq!(stream.size_hint(), (0, Some(0)));
    assert!(!stream.is_terminated());
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(None));
    assert!(stream.is_terminated());
    assert_eq!(
        next(stream.as_mut(), &waker),
        Poll::Ready(None),
        "fused: None again"
    );
}

/// Children that finished between two polls, in a gather small enough to sweep: one per
/// poll, in input order from the slot after the last one yielded, round to the start.
#[test]
fn a_sweeping_gather_yields_children_finished_together_from_where_it_left_off() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..4).map(|_| manual::<&str>()).unzip();
    let (_, waker) = CountingWaker::new();
    let mut stream = pin!(gather(children).as_completed());
    assert!(next(stream.as_mut(), &waker).is_pending());
    handles[1].complete("b");
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(Some((1, "b"))));
    handles[0].complete("a");
    handles[3].complete("d");
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(Some((3, "d"))));
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(Some((0, "a"))));
}

/// The same with per-child wakers (more children than a sweep takes): in wake order.
#[test]
fn a_gather_with_per_child_wakers_yields_children_finished_together_in_wake_order() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..40).map(|_| manual::<&str>()).unzip();
    let (_, waker) = CountingWaker::new();
    let mut stream = pin!(gather(children).as_completed());
    assert!(next(stream.as_mut(), &waker).is_pending());
    handles[30].complete("late");
    handles[3].complete("d");
    handles[17].complete("q");
    assert_eq!(
        next(stream.as_mut(), &waker),
        Poll::Ready(Some((30, "late")))
    );
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(Some((3, "d"))));
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(Some((17, "q"))));
    assert!(next(stream.as_mut(), &waker).is_pending());
}

#[test]
fn works_for_arrays_with_the_gathers_own_waker() {
    let (a, handle_a) = manual::<u8>();
    let (b, handle_b) = manual::<u8>();
    let (wakes, waker) = CountingWaker::new();
    let mut stream = pin!(gather([a, b]).as_completed());
    assert!(next(stream.as_mut(), &waker).is_pending());
    handle_b.complete(2);
    assert_eq!(wakes.wakes(), 1);
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(Some((1, 2))));
    handle_a.complete(1);
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(Some((0, 1))));
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(None));
}

#[test]
fn children_still_running_wait_inside_until_the_stream_is_polled_again() {
    let (a, handle_a) = manual::<u8>();
    let (b, handle_b) = manual::<u8>();
    let (_, waker) = CountingWaker::new();
    let mut stream = pin!(gather(vec![a, b]).as_completed());
    handle_a.complete(1);
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(Some((0, 1))));
    // The caller does other work; nothing polls `b` meanwhile.
    let polls = handle_b.polls();
    handle_b.complete(2);
    assert_eq!(handle_b.polls(), polls);
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(Some((1, 2))));
}

#[test]
fn dropping_the_stream_part_way_drops_what_is_still_running_exactly_once() {
    let log = DropLog::new();
    let (blocked, _handle) = manual::<Tracked>();
    let children: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = Tracked>>>> = vec![
        Box::pin(log.future("child-0", std::future::ready(log.value("output-0")))),
        Box::pin(log.future("child-1", blocked)),
    ];
    let (_, waker) = CountingWaker::new();
    let mut stream = Box::pin(gather(children).as_completed());
    let Poll::Ready(Some((0, output))) = next(stream.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(log.drops(), ["child-0"]);
    drop(stream);
    assert_eq!(log.drops(), ["child-0", "child-1"]);
    drop(output);
    assert_eq!(log.count("output-0"), 1);
}

#[test]
fn an_empty_gather_ends_at_once() {
    let none: [std::future::Ready<u8>; 0] = [];
    let (_, waker) = CountingWaker::new();
    let mut stream: std::pin::Pin<&mut AsCompleted<_>> = pin!(gather(none).as_completed());
    assert_eq!(next(stream.as_mut(), &waker), Poll::Ready(None));
    assert!(stream.is_terminated());
}

#[test]
fn next_completed_gives_the_first_finished_and_keeps_the_rest() {
    let (a, _handle_a) = manual::<u8>();
    let (b, handle_b) = manual::<u8>();
    let (_, waker) = CountingWaker::new();
    let mut rest = pin!(gather(vec![a, b]).as_completed());
    handle_b.complete(7);
    let first = poll_with(pin!(rest.as_mut().next_completed()), &waker);
    assert_eq!(first, Poll::Ready(Some((1, 7))));
    assert_eq!(rest.len(), 1);
}

#[test]
fn until_error_stops_at_the_first_error_and_keeps_earlier_successes() {
    let (children, handles): (Vec<_>, Vec<_>) =
        (0..4).map(|_| manual::<Result<u8, &str>>()).unzip();
    let (_, waker) = CountingWaker::new();
    let mut rest = pin!(gather(children).as_completed());
    let mut done = Vec::new();
    {
        let mut until = pin!(rest.as_mut().until_error(&mut done));
        assert!(poll_with(until.as_mut(), &waker).is_pending());
        handles[3].complete(Ok(3));
        assert!(poll_with(until.as_mut(), &waker).is_pending());
        handles[1].complete(Err("refused"));
        assert_eq!(
            poll_with(until.as_mut(), &waker),
            Poll::Ready(Err((1, "refused")))
        );
    }
    assert_eq!(done, [(3, 3)]);
    assert_eq!(
        rest.len(),
        2,
        "children 0 and 2 still running, in the stream"
    );
}

#[test]
fn until_error_without_errors_waits_for_every_child() {
    let (children, handles): (Vec<_>, Vec<_>) =
        (0..3).map(|_| manual::<Result<u8, &str>>()).unzip();
    let (_, waker) = CountingWaker::new();
    let mut rest = pin!(gather(children).as_completed());
    let mut done = Vec::new();
    {
        let mut until = pin!(rest.as_mut().until_error(&mut done));
        handles[2].complete(Ok(2));
        assert!(poll_with(until.as_mut(), &waker).is_pending());
        handles[0].complete(Ok(0));
        handles[1].complete(Ok(1));
        assert_eq!(poll_with(until.as_mut(), &waker), Poll::Ready(Ok(())));
    }
    assert_eq!(done, [(2, 2), (0, 0), (1, 1)]);
}
