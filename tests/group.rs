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

use common::{drive, manual, poll_with, shuffled, yield_now, CountingWaker, DropLog};
use futures::stream::FusedStream;
use futures::{Stream, StreamExt};
use gather::Group;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Runs `future` to its end, failing on a lost wake or a hang.
fn run<F: Future>(future: F) -> F::Output {
    drive(future, 100_000)
}

fn poll_next<S: Stream + Unpin>(stream: &mut S) -> Poll<Option<S::Item>> {
    let (_, waker) = CountingWaker::new();
    stream.poll_next_unpin(&mut Context::from_waker(&waker))
}

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
    for i in 0..100 {
        assert_eq!(log.count(&format!("child {i}")), 1, "child {i}");
        assert_eq!(log.count(&format!("output {i}")), 1, "output {i}");
    }
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
