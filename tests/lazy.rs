//! Lazy inputs: `gather_iter` and `gather_stream` make (or receive) a child only when it
//! may start; under `limit(n)` at most `n` children exist at once, in a window of slots
//! that are reused, while outcomes keep their input indices and order.
mod common;

use std::cell::Cell;
use std::future::{ready, Future};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll};

use common::{drive, manual, poll_with, shuffled, yield_now, CountingWaker, Liar};
use futures::channel::mpsc;
use futures::future::FusedFuture;
use futures::{stream, Stream, StreamExt};
use gather::{gather_iter, gather_stream, TimedOut};

/// Counts the children that exist (made and not yet dropped), and the most at once.
#[derive(Clone, Default)]
struct Census {
    alive: Rc<Cell<usize>>,
    most: Rc<Cell<usize>>,
    made: Rc<Cell<usize>>,
}

impl Census {
    /// A child that yields `yields` times, then finishes with `output`; counted while
    /// it exists.
    fn child<T>(&self, yields: usize, output: T) -> Counted<T> {
        self.alive.set(self.alive.get() + 1);
        self.made.set(self.made.get() + 1);
        self.most.set(self.most.get().max(self.alive.get()));
        Counted {
            census: self.clone(),
            yields: yield_now(yields),
            output: Some(output),
        }
    }
}

struct Counted<T> {
    census: Census,
    yields: common::YieldNow,
    output: Option<T>,
}

impl<T: Unpin> Future for Counted<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        std::task::ready!(Pin::new(&mut self.yields).poll(cx));
        Poll::Ready(self.output.take().expect("polled after it finished"))
    }
}

impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        self.census.alive.set(self.census.alive.get() - 1);
    }
}

/// How many times child `i` of a batch yields before it finishes: an irregular mix, so
/// that children finish out of input order.
fn yields(i: usize) -> usize {
    (i * 7 + i / 3) % 5
}

#[test]
fn nothing_is_made_before_the_first_poll_and_everything_at_once_without_a_limit() {
    let census = Census::default();
    let mut all = pin!(gather_iter((0..10).map(|i| census.child(1, i))));
    assert_eq!(census.made.get(), 0, "made before the first poll");
    let (_, waker) = CountingWaker::new();
    assert!(poll_with(all.as_mut(), &waker).is_pending());
    assert_eq!(census.made.get(), 10, "every child at the first poll");
    let Poll::Ready(gathered) = poll_with(all.as_mut(), &waker) else {
        panic!("every child has yielded once");
    };
    assert_eq!(
        gathered.into_results().into_vec(),
        (0..10).collect::<Vec<_>>()
    );
}

#[test]
fn under_a_limit_at_most_n_children_exist_at_once_and_outputs_keep_input_order() {
    // (Fewer under Miri, which is slow.)
    let len = if cfg!(miri) { 100 } else { 1_000 };
    for limit in [1, 2, 3, 8, 64] {
        let census = Census::default();
        let jobs = (0..len).map(|i| census.child(yields(i), i));
        let gathered = drive(gather_iter(jobs).limit(limit), 100_000);
        assert_eq!(census.most.get(), limit, "limit({limit})");
        assert_eq!(census.alive.get(), 0);
        let outputs = gathered.into_results().into_vec();
        assert_eq!(outputs, (0..len).collect::<Vec<_>>(), "limit({limit})");
    }
}

#[test]
fn the_next_child_is_made_only_when_one_finishes() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..5).map(|_| manual::<usize>()).unzip();
    let made = Cell::new(0);
    let jobs = children.into_iter().inspect(|_| made.set(made.get() + 1));
    let mut all = pin!(gather_iter(jobs).limit(2));
    let (_, waker) = CountingWaker::new();
    assert!(poll_with(all.as_mut(), &waker).is_pending());
    assert_eq!(made.get(), 2);
    assert!(poll_with(all.as_mut(), &waker).is_pending());
    assert_eq!(made.get(), 2, "a poll with no child finished makes none");

    handles[1].complete(1);
    assert!(poll_with(all.as_mut(), &waker).is_pending());
    assert_eq!(made.get(), 3, "child 2 is made in child 1's place");
    assert!(!handles[1].alive(), "a finished child is dropped at once");
    assert_eq!(handles[2].polls(), 1, "and polled in the same pass");

    for (i, handle) in handles.iter().enumerate() {
        handle.complete(i);
    }
    let Poll::Ready(gathered) = poll_with(all.as_mut(), &waker) else {
        panic!("every child has finished");
    };
    assert_eq!(made.get(), 5);
    assert_eq!(gathered.into_results().into_vec(), [0, 1, 2, 3, 4]);
}

#[test]
fn a_size_hint_that_lies_or_says_nothing_changes_nothing() {
    for hint in [
        (0, Some(0)),
        (0, Some(1)),
        (100, None),
        (0, None),
        (1_000, Some(1_000)),
    ] {
        for limit in [None, Some(3)] {
            let census = Census::default();
            let jobs = Liar((0..20).map(|i| census.child(yields(i), i)), hint);
            let gather = gather_iter(jobs);
            let gather = match limit {
                Some(n) => gather.limit(n),
                None => gather,
            };
            let outputs = drive(gather, 1_000).into_results().into_vec();
            assert_eq!(outputs, (0..20).collect::<Vec<_>>(), "{hint:?}, {limit:?}");
            assert!(census.most.get() <= limit.unwrap_or(20));
        }
    }
}

#[test]
fn as_completed_over_an_endless_iterator_holds_only_the_running_children() {
    let census = Census::default();
    let jobs = (0..).map(|i| census.child(yields(i), i));
    let mut stream = Box::pin(gather_iter(jobs).limit(4).as_completed());
    assert_eq!(
        stream.size_hint(),
        (0, None),
        "nothing known to be left or not"
    );
    let (_, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    // (Fewer under Miri, which is slow.)
    let items = if cfg!(miri) { 200 } else { 1_000 };
    let mut seen = vec![false; items];
    let mut taken = 0;
    while taken < items {
        match stream.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some((index, output))) => {
                assert_eq!(index, output, "each item under its input index");
                if index < seen.len() {
                    assert!(!seen[index]);
                    seen[index] = true;
                }
                taken += 1;
            }
            Poll::Ready(None) => panic!("an endless input never ends"),
            Poll::Pending => {}
        }
        assert!(census.alive.get() <= 4);
    }
    assert!(census.made.get() <= items + 4);
    drop(stream);
    assert_eq!(census.alive.get(), 0, "dropped with the stream");
}

#[test]
fn fail_fast_reports_the_input_index_stops_making_children_and_drops_the_running() {
    let census = Census::default();
    // Job 37 fails; the slots have been reused many times by then.
    let jobs = (0..1_000).map(|i| census.child(yields(i), if i == 37 { Err(i) } else { Ok(i) }));
    let error = drive(gather_iter(jobs).limit(4).fail_fast(), 10_000).unwrap_err();
    assert_eq!(
        error.iter().map(|(i, e)| (i, *e)).collect::<Vec<_>>(),
        [(37, 37)]
    );
    assert!(
        census.made.get() < 50,
        "{} children made",
        census.made.get()
    );
    assert_eq!(
        census.alive.get(),
        0,
        "every child dropped before the error is returned"
    );

    let len = if cfg!(miri) { 60 } else { 300 };
    let jobs = (0..len).map(|i| census.child(yields(i), Ok::<_, usize>(i)));
    let successes = drive(gather_iter(jobs).limit(4).fail_fast(), 10_000).unwrap();
    assert_eq!(successes.into_vec(), (0..len).collect::<Vec<_>>());
}

#[test]
fn a_deadline_cuts_off_the_running_and_times_out_the_jobs_never_started() {
    let (children, handles): (Vec<_>, Vec<_>) =
        (0..6).map(|_| manual::<Result<usize, TimedOut>>()).unzip();
    let made = Cell::new(0);
    let jobs = children.into_iter().inspect(|_| made.set(made.get() + 1));
    let (timer, fire) = manual::<()>();
    let mut all = pin!(gather_iter(jobs).limit(2).deadline(timer));
    let (_, waker) = CountingWaker::new();
    assert!(poll_with(all.as_mut(), &waker).is_pending());
    handles[0].complete(Ok(0));
    assert!(poll_with(all.as_mut(), &waker).is_pending());
    // Children 1 and 2 run (2 in child 0's slot); 3, 4 and 5 have not started.
    assert_eq!(made.get(), 3);
    fire.complete(());
    let Poll::Ready(gathered) = poll_with(all.as_mut(), &waker) else {
        panic!("the deadline fired");
    };
    assert_eq!(made.get(), 6, "the rest are made, to be dropped unpolled");
    for (i, handle) in handles.iter().enumerate() {
        assert!(!handle.alive(), "child {i} dropped");
        assert_eq!(handle.polls(), [2, 1, 1, 0, 0, 0][i], "child {i} polled");
    }
    let outcomes = gathered.into_results().into_vec();
    let timed_out: Vec<_> = (1..6).map(|index| Err(TimedOut { index })).collect();
    assert_eq!(outcomes[0], Ok(0));
    assert_eq!(outcomes[1..], timed_out[..]);
}

#[test]
fn fail_fast_under_a_deadline_reports_every_job_not_finished() {
    let census = Census::default();
    // Job 0 finishes at once; job 1 never does; jobs 2 and 3 wait for its slot.
    let jobs =
        (0..4).map(|i| census.child(if i == 0 { 0 } else { usize::MAX }, Ok::<_, TimedOut>(i)));
    let (timer, fire) = manual::<()>();
    let mut all = pin!(gather_iter(jobs).limit(1).deadline(timer).fail_fast());
    let (_, waker) = CountingWaker::new();
    assert!(poll_with(all.as_mut(), &waker).is_pending());
    fire.complete(());
    let Poll::Ready(Err(error)) = poll_with(all.as_mut(), &waker) else {
        panic!("the deadline fired: an error");
    };
    let indices: Vec<usize> = error.iter().map(|(i, _)| i).collect();
    assert_eq!(indices, [1, 2, 3]);
    assert_eq!(census.alive.get(), 0);
}

#[test]
fn as_completed_under_a_deadline_hands_out_the_cut_off_children_in_input_order() {
    let census = Census::default();
    let jobs = (0..100).map(|i| census.child(if i < 5 { 0 } else { usize::MAX }, Ok(i)));
    let (timer, fire) = manual::<()>();
    let mut stream = pin!(gather_iter(jobs).limit(3).deadline(timer).as_completed());
    let (_, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    let mut items = Vec::new();
    while items.len() < 5 {
        if let Poll::Ready(Some(item)) = stream.as_mut().poll_next(&mut cx) {
            items.push(item);
        }
    }
    fire.complete(());
    while let Poll::Ready(Some(item)) = stream.as_mut().poll_next(&mut cx) {
        items.push(item);
        assert!(
            census.alive.get() <= 1,
            "at most the one just made, to be cut off"
        );
    }
    assert!(stream.as_mut().poll_next(&mut cx).is_ready(), "ended");
    let timed_out: Vec<usize> = items[5..].iter().map(|(i, _)| *i).collect();
    assert_eq!(timed_out, (5..100).collect::<Vec<_>>(), "in input order");
    for (index, outcome) in &items[5..] {
        assert_eq!(outcome, &Err(TimedOut { index: *index }));
    }
    assert_eq!(census.made.get(), 100);
    assert_eq!(census.alive.get(), 0);
}

#[test]
fn catch_panics_reports_a_reused_slots_child_under_its_input_index() {
    std::panic::set_hook(Box::new(|_| {}));
    let jobs = (0..40).map(|i| async move {
        yield_now(yields(i)).await;
        if i == 29 {
            panic!("job 29");
        }
        Ok::<_, gather::Panicked>(i)
    });
    let gathered = drive(gather_iter(jobs).limit(3).catch_panics(), 1_000);
    let _ = std::panic::take_hook();
    let errors: Vec<_> = gathered.errors().map(|(i, e)| (i, e.index)).collect();
    assert_eq!(errors, [(29, 29)]);
    assert_eq!(gathered.success_count(), 39);
}

#[test]
fn a_child_woken_from_outside_is_polled_exactly_twice_under_a_limit() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..50).map(|_| manual::<usize>()).unzip();
    let mut all = pin!(gather_iter(children).limit(5));
    let (_, waker) = CountingWaker::new();
    assert!(poll_with(all.as_mut(), &waker).is_pending());
    // Complete running children in a scrambled order, one wake and one poll each.
    for pick in shuffled(50) {
        let running: Vec<usize> = (0..50)
            .filter(|&i| handles[i].alive() && handles[i].polls() == 1)
            .collect();
        let next = running[pick % running.len()];
        handles[next].complete(next);
        let _ = poll_with(all.as_mut(), &waker);
    }
    assert!(all.is_terminated(), "every child finished");
    for (i, handle) in handles.iter().enumerate() {
        assert_eq!(handle.polls(), 2, "child {i}");
    }
}

#[test]
fn a_stream_is_polled_only_for_a_free_slot_and_its_wake_is_not_lost() {
    let (sender, receiver) = mpsc::unbounded::<common::Manual<usize>>();
    let taken = Rc::new(Cell::new(0));
    let counted = {
        let taken = taken.clone();
        receiver.inspect(move |_| taken.set(taken.get() + 1))
    };
    let mut all = pin!(gather_stream(counted).limit(2));
    let (counter, waker) = CountingWaker::new();
    assert!(
        poll_with(all.as_mut(), &waker).is_pending(),
        "the stream is empty"
    );
    assert_eq!(counter.wakes(), 0, "pending, not spinning");

    let (first, first_handle) = manual();
    sender.unbounded_send(first).unwrap();
    assert_eq!(counter.wakes(), 1, "the stream's wake reaches the gather");
    assert!(poll_with(all.as_mut(), &waker).is_pending());
    assert_eq!(first_handle.polls(), 1);

    let more: Vec<_> = (1..4).map(|_| manual::<usize>()).collect();
    let mut handles = vec![first_handle];
    for (child, handle) in more {
        sender.unbounded_send(child).unwrap();
        handles.push(handle);
    }
    assert!(poll_with(all.as_mut(), &waker).is_pending());
    assert_eq!(taken.get(), 2, "one item taken: one slot was free");
    handles[0].complete(10);
    assert!(poll_with(all.as_mut(), &waker).is_pending());
    assert_eq!(taken.get(), 3, "the next item in the free slot");
    drop(sender);
    for (i, handle) in handles.iter().enumerate().skip(1) {
        handle.complete(10 + i);
    }
    // Children 1 and 2 finish, child 3 takes a slot and finishes, the stream has ended.
    let Poll::Ready(gathered) = poll_with(all.as_mut(), &waker) else {
        panic!("the stream ended and every child finished");
    };
    assert_eq!(gathered.into_results().into_vec(), [10, 11, 12, 13]);
}

#[test]
fn a_stream_gather_runs_every_mode_with_item_positions_as_indices() {
    let jobs = || {
        stream::iter(0..30).map(|i| async move {
            yield_now(yields(i)).await;
            if i % 7 == 3 {
                Err(i)
            } else {
                Ok(i)
            }
        })
    };
    let gathered = drive(gather_stream(jobs()).limit(4), 1_000);
    let errors: Vec<_> = gathered.errors().map(|(i, e)| (i, *e)).collect();
    assert_eq!(errors, [(3, 3), (10, 10), (17, 17), (24, 24)]);

    let unlimited = drive(gather_stream(jobs()), 1_000);
    assert_eq!(unlimited.success_count(), 26);

    let error = drive(gather_stream(jobs()).limit(2).fail_fast(), 1_000).unwrap_err();
    assert_eq!(error.first(), (3, &3));

    let mut items: Vec<_> = drive(
        gather_stream(jobs())
            .limit(5)
            .as_completed()
            .collect::<Vec<_>>(),
        1_000,
    );
    items.sort_unstable_by_key(|(i, _)| *i);
    let want: Vec<_> = (0..30)
        .map(|i| (i, if i % 7 == 3 { Err(i) } else { Ok(i) }))
        .collect();
    assert_eq!(items, want);
}

#[test]
fn empty_lazy_inputs_resolve_at_the_first_poll() {
    let none = std::iter::empty::<std::future::Ready<u8>>();
    assert!(drive(gather_iter(none.clone()), 1)
        .into_results()
        .is_empty());
    assert!(drive(gather_iter(none).limit(3), 1)
        .into_results()
        .is_empty());
    let empty = stream::empty::<std::future::Ready<u8>>();
    assert!(drive(gather_stream(empty), 1).into_results().is_empty());
    let ready_jobs = stream::iter((0..3).map(ready));
    let outputs = drive(gather_stream(ready_jobs), 1)
        .into_results()
        .into_vec();
    assert_eq!(outputs, [0, 1, 2]);
}
