//! `Group`: a set that grows while it runs. Push indices, completion order, the stream
//! that ends when empty and starts again after a push, awaiting whole (settle-all and
//! fail-fast), the limit, per-child wakes across the chunks the group grows in, and drops.
mod common;

use std::future::{pending, ready, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use common::{manual, poll_next, poll_with, run, shuffled, yield_now, CountingWaker, DropLog};
use futures::stream::FusedStream;
use futures::{Stream, StreamExt};
use gather::Group;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

#[test]
fn push_returns_the_push_order_from_zero() {
    let mut group = Group::new();
    assert!(group.is_empty());
    assert_eq!(group.push(ready(1)), 0);
    assert_eq!(group.push(ready(2)), 1);
    assert_eq!(group.len(), 2);
    assert_eq!(group.running(), 2);
}

#[test]
fn the_stream_hands_out_outcomes_in_completion_order_with_their_push_index() {
    let (a, handle_a) = manual::<char>();
    let (b, handle_b) = manual::<char>();
    let (c, handle_c) = manual::<char>();
    let mut group = Group::new();
    for child in [a, b, c] {
        group.push(child);
    }
    assert_eq!(poll_next(&mut group), Poll::Pending);
    handle_c.complete('c');
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((2, 'c'))));
    handle_a.complete('a');
    handle_b.complete('b');
    let rest: Vec<_> = [poll_next(&mut group), poll_next(&mut group)]
        .into_iter()
        .map(|item| match item {
            Poll::Ready(Some(item)) => item,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(rest, [(0, 'a'), (1, 'b')]);
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
}

#[test]
fn the_stream_ends_when_empty_and_starts_again_after_a_push() {
    let mut group = Group::new();
    assert!(!group.is_terminated());
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
    assert!(group.is_terminated());

    group.push(ready('a'));
    assert!(!group.is_terminated());
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((0, 'a'))));
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
    assert!(group.is_terminated());

    group.push(ready('b'));
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((1, 'b'))));
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
}

#[test]
fn children_pushed_while_the_stream_is_read_run_too() {
    // A crawl: each page found pushes the pages it links to, until depth 3.
    let mut group: Group<Boxed<'_, (u32, u32)>> = Group::new();
    group.push(Box::pin(ready((0, 1))));
    let mut pages = Vec::new();
    run(async {
        while let Some((index, (depth, page))) = group.next().await {
            pages.push((index, page));
            if depth < 3 {
                for link in [page * 2, page * 2 + 1] {
                    group.push(Box::pin(async move {
                        yield_now(1).await;
                        (depth + 1, link)
                    }));
                }
            }
        }
    });
    pages.sort_unstable();
    let indices: Vec<_> = pages.iter().map(|&(index, _)| index).collect();
    assert_eq!(indices, (0..15).collect::<Vec<_>>());
    let mut found: Vec<_> = pages.iter().map(|&(_, page)| page).collect();
    found.sort_unstable();
    assert_eq!(found, (1..16).collect::<Vec<_>>());
}

#[test]
fn awaited_whole_it_gives_every_outcome_in_push_order() {
    let mut group: Group<Boxed<'_, Result<u32, String>>> = Group::new();
    for n in 0..5u32 {
        group.push(Box::pin(async move {
            yield_now(5 - n as usize).await;
            if n == 3 {
                Err(format!("{n} failed"))
            } else {
                Ok(n)
            }
        }));
    }
    let gathered = run(async { group.await });
    assert_eq!(
        gathered.successes().copied().collect::<Vec<_>>(),
        [0, 1, 2, 4]
    );
    let errors: Vec<_> = gathered.errors().map(|(i, e)| (i, e.clone())).collect();
    assert_eq!(errors, [(3, "3 failed".to_string())]);
}

#[test]
fn children_pushed_between_polls_before_it_is_awaited_are_in_the_result() {
    let (a, handle_a) = manual::<u8>();
    let mut group = Group::new();
    group.push(a);
    assert_eq!(poll_next(&mut group), Poll::Pending);
    let (b, handle_b) = manual::<u8>();
    group.push(b);
    let mut whole = Box::pin(group.settle_all());
    let (_, waker) = CountingWaker::new();
    assert!(poll_with(whole.as_mut(), &waker).is_pending());
    handle_b.complete(2);
    assert!(poll_with(whole.as_mut(), &waker).is_pending());
    handle_a.complete(1);
    let Poll::Ready(gathered) = poll_with(whole.as_mut(), &waker) else {
        panic!("both children finished")
    };
    assert_eq!(gathered.into_results(), [1, 2]);
}

#[test]
fn an_empty_group_awaited_whole_is_an_empty_result() {
    let group: Group<std::future::Ready<u8>> = Group::new();
    assert!(run(async { group.await }).into_results().is_empty());
}

#[test]
fn awaiting_whole_after_the_stream_handed_out_an_outcome_panics() {
    let mut group = Group::new();
    group.push(ready(1));
    group.push(ready(2));
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((0, 1))));
    let panic = catch_unwind(AssertUnwindSafe(|| group.settle_all()))
        .expect_err("the first outcome is no longer in the group");
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("after its stream handed an outcome out"),
        "{message}"
    );
}

#[test]
fn fail_fast_drops_the_children_still_running_at_the_first_error() {
    let log = DropLog::new();
    let mut group: Group<Boxed<'_, Result<u8, &str>>> = Group::new();
    group.push(Box::pin(log.future("running", pending())));
    group.push(Box::pin(log.future("ok", ready(Ok(1)))));
    group.push(Box::pin(log.future("failing", async {
        yield_now(1).await;
        Err("refused")
    })));
    let (_, waker) = CountingWaker::new();
    let mut fail_fast = Box::pin(group.fail_fast());
    assert!(poll_with(fail_fast.as_mut(), &waker).is_pending());
    assert_eq!(log.count("running"), 0);
    let Poll::Ready(Err(error)) = poll_with(fail_fast.as_mut(), &waker) else {
        panic!("child 2 failed")
    };
    assert_eq!(error.first(), (2, &"refused"));
    assert_eq!(error.len(), 1);
    assert_eq!(
        log.count("running"),
        1,
        "dropped before the error came back"
    );
}

#[test]
fn fail_fast_gives_every_success_in_push_order() {
    let mut group = Group::new();
    for n in 0..4u8 {
        group.push(ready(Ok::<_, ()>(n)));
    }
    assert_eq!(run(group.fail_fast()), Ok(vec![0, 1, 2, 3]));
}

#[test]
fn under_a_limit_at_most_n_children_run_and_the_others_wait_unpolled_in_push_order() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..5).map(|_| manual::<usize>()).unzip();
    let mut group = Group::new().limit(2);
    for child in children {
        group.push(child);
    }
    assert_eq!(poll_next(&mut group), Poll::Pending);
    let polls =
        |handles: &[common::Handle<usize>]| handles.iter().map(|h| h.polls()).collect::<Vec<_>>();
    assert_eq!(polls(&handles), [1, 1, 0, 0, 0]);
    handles[1].complete(1);
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((1, 1))));
    assert_eq!(poll_next(&mut group), Poll::Pending);
    assert_eq!(polls(&handles), [1, 2, 1, 0, 0]);
    for (i, handle) in handles.iter().enumerate() {
        handle.complete(i);
    }
    let mut rest: Vec<_> = run(group.collect::<Vec<_>>());
    rest.sort_unstable();
    assert_eq!(rest, [(0, 0), (2, 2), (3, 3), (4, 4)]);
}

#[test]
#[should_panic(expected = "`Group::limit(0)` would never start a future")]
fn a_limit_of_zero_panics() {
    let _ = Group::<std::future::Ready<()>>::new().limit(0);
}

/// Children that stay pending until the test wakes them, counting their polls.
struct Event {
    fired: Arc<Vec<std::sync::atomic::AtomicBool>>,
    wakers: Arc<std::sync::Mutex<Vec<Option<std::task::Waker>>>>,
    polls: Arc<AtomicUsize>,
    id: usize,
}

impl Future for Event {
    type Output = usize;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        if self.fired[self.id].load(Ordering::SeqCst) {
            return Poll::Ready(self.id);
        }
        self.wakers.lock().unwrap()[self.id] = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Polls `group` (pending each time) until `done`, at most 1,000 times (a poll reaches at
/// least one poll's budget of children).
fn poll_until<S: Stream + Unpin>(group: &mut S, done: impl Fn() -> bool)
where
    S::Item: std::fmt::Debug,
{
    for _ in 0..1_000 {
        if done() {
            return;
        }
        assert!(poll_next(group).is_pending());
    }
    panic!("the group did not reach every child");
}

#[test]
fn each_child_is_polled_exactly_twice_when_woken_once_in_random_order_across_chunks() {
    // Past the first chunks (64, 128, 256, ...): wakes land in every block.
    const N: usize = if cfg!(miri) { 400 } else { 5_000 };
    let fired: Arc<Vec<_>> = Arc::new((0..N).map(|_| Default::default()).collect());
    let wakers = Arc::new(std::sync::Mutex::new(vec![None; N]));
    let polls = Arc::new(AtomicUsize::new(0));
    let mut group = Group::new();
    // Half pushed before the first poll, half while it runs.
    let event = |id| Event {
        fired: fired.clone(),
        wakers: wakers.clone(),
        polls: polls.clone(),
        id,
    };
    for id in 0..N / 2 {
        group.push(event(id));
    }
    poll_until(&mut group, || polls.load(Ordering::SeqCst) == N / 2);
    for id in N / 2..N {
        group.push(event(id));
    }
    poll_until(&mut group, || polls.load(Ordering::SeqCst) == N);
    assert_eq!(polls.load(Ordering::SeqCst), N);

    let mut seen = Vec::new();
    for (woken, id) in shuffled(N).into_iter().enumerate() {
        fired[id].store(true, Ordering::SeqCst);
        let waker = wakers.lock().unwrap()[id].take().unwrap();
        waker.wake();
        assert_eq!(poll_next(&mut group), Poll::Ready(Some((id, id))));
        assert_eq!(
            polls.load(Ordering::SeqCst),
            N + woken + 1,
            "only child {id}"
        );
        seen.push(id);
    }
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
    assert_eq!(polls.load(Ordering::SeqCst), 2 * N);
}

#[test]
fn self_waking_children_in_every_chunk_all_make_progress() {
    // More children than one poll's budget, each yielding a few times: none starves.
    const N: usize = if cfg!(miri) { 200 } else { 1_000 };
    let polls = Arc::new(AtomicUsize::new(0));
    let mut group: Group<Boxed<'_, usize>> = Group::new();
    for id in 0..N {
        let polls = polls.clone();
        group.push(Box::pin(async move {
            for _ in 0..3 {
                polls.fetch_add(1, Ordering::SeqCst);
                yield_now(1).await;
            }
            polls.fetch_add(1, Ordering::SeqCst);
            id
        }));
    }
    let mut done = run(group
        .map(|(index, id)| {
            assert_eq!(index, id);
            id
        })
        .collect::<Vec<_>>());
    done.sort_unstable();
    assert_eq!(done, (0..N).collect::<Vec<_>>());
    assert_eq!(polls.load(Ordering::SeqCst), 4 * N, "each polled 4 times");
}

#[test]
fn dropping_the_group_drops_every_child_and_output_once() {
    let log = DropLog::new();
    let mut group: Group<Boxed<'_, common::Tracked>> = Group::new();
    for i in 0..100 {
        let value = log.value(format!("output {i}"));
        let future: Boxed<'_, common::Tracked> = if i % 2 == 0 {
            Box::pin(ready(value))
        } else {
            Box::pin(async move {
                pending::<()>().await;
                value
            })
        };
        group.push(Box::pin(log.future(format!("child {i}"), future)));
    }
    // One outcome handed out (and dropped here), the rest left in the group.
    assert!(matches!(poll_next(&mut group), Poll::Ready(Some(_))));
    drop(group);
    log.assert_each_dropped_once("child ", 100);
    log.assert_each_dropped_once("output ", 100);
}

#[test]
fn wakers_kept_after_the_group_is_dropped_stay_valid() {
    let (child, handle) = manual::<u8>();
    let mut group = Group::new();
    group.push(child);
    assert_eq!(poll_next(&mut group), Poll::Pending);
    let kept = handle.take_waker().unwrap();
    drop(group);
    kept.wake_by_ref();
    let moved = std::thread::spawn(move || {
        kept.wake_by_ref();
        kept
    })
    .join()
    .unwrap();
    moved.wake();
}

#[test]
fn a_wake_wakes_the_task_that_polled_the_group_last() {
    let (child, handle) = manual::<u8>();
    let mut group = Group::new();
    group.push(child);
    let (first, first_waker) = CountingWaker::new();
    let (second, second_waker) = CountingWaker::new();
    let mut pinned = Pin::new(&mut group);
    assert!(pinned
        .as_mut()
        .poll_next(&mut Context::from_waker(&first_waker))
        .is_pending());
    assert!(pinned
        .as_mut()
        .poll_next(&mut Context::from_waker(&second_waker))
        .is_pending());
    handle.complete(7);
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((0, 7))));
}

type Call<'a> = Boxed<'a, Result<u8, gather::TimedOut>>;

#[test]
fn the_deadline_cuts_off_running_and_waiting_children_and_those_pushed_after_it() {
    let (timer, fire) = manual::<()>();
    let (quick, finish_quick) = manual::<Result<u8, gather::TimedOut>>();
    let log = DropLog::new();
    let mut group: Group<Call<'_>, _> = Group::new().limit(2).deadline(timer);
    group.push(Box::pin(quick));
    group.push(Box::pin(log.future("running", pending())));
    group.push(Box::pin(log.future("waiting", pending())));
    assert_eq!(poll_next(&mut group), Poll::Pending);
    finish_quick.complete(Ok(7));
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((0, Ok(7)))));

    fire.complete(());
    let timed_out = |index| Poll::Ready(Some((index, Err(gather::TimedOut { index }))));
    assert_eq!(poll_next(&mut group), timed_out(1));
    assert_eq!((log.count("running"), log.count("waiting")), (1, 1));
    assert_eq!(poll_next(&mut group), timed_out(2));
    assert_eq!(poll_next(&mut group), Poll::Ready(None));

    // After the deadline, a pushed child is cut off without being polled.
    let (late, late_handle) = manual::<Result<u8, gather::TimedOut>>();
    assert_eq!(group.push(Box::pin(late)), 3);
    assert_eq!(poll_next(&mut group), timed_out(3));
    assert_eq!(late_handle.polls(), 0);
    assert!(!late_handle.alive());
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
}

#[test]
fn awaited_whole_under_a_deadline_the_cut_off_children_are_timed_out_in_push_order() {
    let (timer, fire) = manual::<()>();
    let mut group: Group<Call<'_>, _> = Group::new().deadline(timer);
    group.push(Box::pin(pending()));
    group.push(Box::pin(pending()));
    assert_eq!(poll_next(&mut group), Poll::Pending);
    group.push(Box::pin(pending()));
    let mut whole = Box::pin(group.fail_fast());
    let (_, waker) = CountingWaker::new();
    assert!(poll_with(whole.as_mut(), &waker).is_pending());
    fire.complete(());
    let Poll::Ready(Err(error)) = poll_with(whole.as_mut(), &waker) else {
        panic!("the deadline fired")
    };
    let errors: Vec<_> = error.iter().map(|(index, e)| (index, *e)).collect();
    assert_eq!(
        errors,
        (0..3)
            .map(|index| (index, gather::TimedOut { index }))
            .collect::<Vec<_>>()
    );
}

#[test]
fn settle_all_under_a_deadline_reports_every_child_in_push_order() {
    let (timer, fire) = manual::<()>();
    let mut group: Group<Call<'_>, _> = Group::new().deadline(timer);
    group.push(Box::pin(pending()));
    group.push(Box::pin(ready(Ok(1))));
    let mut whole = Box::pin(group.settle_all());
    let (_, waker) = CountingWaker::new();
    assert!(poll_with(whole.as_mut(), &waker).is_pending());
    fire.complete(());
    let Poll::Ready(gathered) = poll_with(whole.as_mut(), &waker) else {
        panic!("the deadline fired")
    };
    assert_eq!(
        gathered.into_results(),
        [Err(gather::TimedOut { index: 0 }), Ok(1)]
    );
}

#[test]
fn with_catch_panics_a_panicking_child_fails_alone() {
    let mut group: Group<Boxed<'_, Result<u8, gather::Panicked>>, _> = Group::new().catch_panics();
    group.push(Box::pin(async { Ok(1) }));
    group.push(Box::pin(async { panic!("child 1 broke") }));
    group.push(Box::pin(async {
        yield_now(1).await;
        Ok(3)
    }));
    let results = run(async { group.await }).into_results();
    assert_eq!(results[0].as_ref().ok(), Some(&1));
    assert_eq!(results[1].as_ref().unwrap_err().index, 1);
    assert_eq!(
        results[1].as_ref().unwrap_err().message(),
        Some("child 1 broke")
    );
    assert_eq!(results[2].as_ref().ok(), Some(&3));
}

type Job<'a> = Boxed<'a, Result<u32, String>>;

/// A job that, unless it is a leaf, pushes `fan_out` children one level down through
/// `group` (after a yield), then finishes with its number; job 13 fails.
fn job<'a>(n: u32, depth: u32, fan_out: u32, group: gather::Handle<Job<'a>>) -> Job<'a> {
    Box::pin(async move {
        yield_now(1).await;
        if depth > 0 {
            for k in 0..fan_out {
                let child = job(n * fan_out + k + 1, depth - 1, fan_out, group.clone());
                assert!(group.push(child).is_ok(), "the group runs");
            }
        }
        if n == 13 {
            Err(format!("job {n} failed"))
        } else {
            Ok(n)
        }
    })
}

#[test]
fn children_push_siblings_through_a_handle_and_settle_all_waits_for_every_one() {
    let mut group = Group::new();
    let handle = group.handle();
    group.push(job(0, 3, 3, handle));
    let gathered = run(async { group.await });
    // 1 + 3 + 9 + 27 jobs, each reported at its push index.
    assert_eq!(gathered.len(), 40);
    let errors: Vec<_> = gathered.errors().map(|(_, e)| e.clone()).collect();
    assert_eq!(errors, ["job 13 failed"]);
    let mut numbers: Vec<_> = gathered.successes().copied().collect();
    numbers.push(13);
    numbers.sort_unstable();
    assert_eq!(numbers, (0..40).collect::<Vec<_>>());
}

#[test]
fn pushes_from_the_owner_and_from_handles_are_numbered_in_the_order_they_were_made() {
    let mut group = Group::new();
    let handle = group.handle();
    assert_eq!(group.push(ready('a')), 0);
    assert_eq!(handle.push(ready('b')).ok(), Some(1));
    assert_eq!(handle.push(ready('c')).ok(), Some(2));
    assert_eq!(group.push(ready('d')), 3);
    assert_eq!(handle.push(ready('e')).ok(), Some(4));
    let gathered = run(async { group.await });
    assert_eq!(gathered.into_results(), ['a', 'b', 'c', 'd', 'e']);
}

#[test]
fn a_push_through_a_handle_from_another_thread_wakes_the_group() {
    let mut group: Group<Pin<Box<dyn Future<Output = u8> + Send>>> = Group::new();
    let handle = group.handle();
    let (wakes, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(group.poll_next_unpin(&mut cx), Poll::Ready(None));
    let pushed = std::thread::spawn(move || handle.push(Box::pin(ready(9))).ok())
        .join()
        .unwrap();
    assert_eq!(pushed, Some(0));
    // The stream had ended: the push waits for the next read (as with `FuturesUnordered`).
    assert_eq!(wakes.wakes(), 0);
    assert_eq!(group.poll_next_unpin(&mut cx), Poll::Ready(Some((0, 9))));

    let (child, finish) = manual::<u8>();
    let handle = group.handle();
    group.push(Box::pin(child));
    assert_eq!(group.poll_next_unpin(&mut cx), Poll::Pending);
    std::thread::spawn(move || handle.push(Box::pin(ready(8))).ok())
        .join()
        .unwrap();
    assert_eq!(wakes.wakes(), 1, "the push woke the group's task");
    assert_eq!(group.poll_next_unpin(&mut cx), Poll::Ready(Some((2, 8))));
    finish.complete(1);
    assert_eq!(group.poll_next_unpin(&mut cx), Poll::Ready(Some((1, 1))));
}

#[test]
fn a_push_after_the_group_is_done_or_gone_is_refused_and_the_future_comes_back() {
    let mut group = Group::new();
    let handle = group.handle();
    group.push(ready(1));
    assert_eq!(run(async { group.await }).into_results(), [1]);
    let refused = handle.push(ready(2)).expect_err("the group completed");
    assert_eq!(run(refused), 2);

    let mut group: Group<std::future::Ready<u8>> = Group::new();
    let handle = group.handle();
    drop(group);
    assert!(handle.push(ready(3)).is_err(), "the group is gone");
}

#[test]
fn fail_fast_drops_the_children_pushed_through_handles_and_refuses_later_pushes() {
    let log = DropLog::new();
    let mut group: Group<Boxed<'_, Result<u8, &str>>> = Group::new();
    let handle = group.handle();
    group.push(Box::pin(log.future("running", pending())));
    let fail = {
        let handle = handle.clone();
        let log = log.clone();
        async move {
            // Pushed in the same poll as the failure: never started, dropped with the rest.
            assert!(handle
                .push(Box::pin(log.future("queued", pending())))
                .is_ok());
            Err("refused")
        }
    };
    group.push(Box::pin(fail));
    let error = run(group.fail_fast()).unwrap_err();
    assert_eq!(error.first(), (1, &"refused"));
    assert_eq!((log.count("running"), log.count("queued")), (1, 1));
    assert!(handle.push(Box::pin(ready(Ok(0)))).is_err());
}

#[test]
fn children_pushed_through_a_handle_wait_under_the_limit_and_are_cut_off_by_the_deadline() {
    let (timer, fire) = manual::<()>();
    let mut group: Group<Call<'_>, _> = Group::new().limit(1).deadline(timer);
    let handle = group.handle();
    let (first, _first_handle) = manual::<Result<u8, gather::TimedOut>>();
    group.push(Box::pin(first));
    let (second, second_handle) = manual::<Result<u8, gather::TimedOut>>();
    assert_eq!(handle.push(Box::pin(second)).ok(), Some(1));
    assert_eq!(poll_next(&mut group), Poll::Pending);
    assert_eq!(second_handle.polls(), 0, "waiting for a place");
    fire.complete(());
    let timed_out = |index| Poll::Ready(Some((index, Err(gather::TimedOut { index }))));
    assert_eq!(poll_next(&mut group), timed_out(0));
    assert_eq!(poll_next(&mut group), timed_out(1));
    // Pushed after the deadline: cut off unpolled.
    let (late, late_handle) = manual::<Result<u8, gather::TimedOut>>();
    assert_eq!(handle.push(Box::pin(late)).ok(), Some(2));
    assert_eq!(poll_next(&mut group), timed_out(2));
    assert_eq!(late_handle.polls(), 0);
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
}
