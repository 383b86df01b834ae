//! `limit(n)`: at most `n` children running at once, started in input order, results in
//! input order.
mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use common::{manual, poll_with, CountingWaker};
use futures_core::FusedFuture;
use gather::{gather, gather_iter};
use smallvec::SmallVec;

#[test]
fn at_most_n_children_run_and_the_next_starts_in_input_order_as_one_finishes() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..5).map(|_| manual::<usize>()).unzip();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather(children).limit(2));
    let polls =
        |handles: &[common::Handle<usize>]| handles.iter().map(|h| h.polls()).collect::<Vec<_>>();

    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_eq!(polls(&handles), [1, 1, 0, 0, 0], "only the first two start");

    handles[1].complete(1);
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_eq!(
        polls(&handles),
        [1, 2, 1, 0, 0],
        "child 2 takes child 1's place"
    );

    handles[0].complete(0);
    handles[2].complete(2);
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_eq!(polls(&handles), [2, 2, 2, 1, 1]);

    handles[4].complete(4);
    handles[3].complete(3);
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(
        gathered.into_results(),
        [0, 1, 2, 3, 4],
        "results in input order"
    );
}

#[test]
fn a_limit_of_zero_is_rejected_with_a_clear_panic() {
    let children: Vec<std::future::Ready<u8>> = vec![std::future::ready(1)];
    let panic = catch_unwind(AssertUnwindSafe(|| gather(children).limit(0))).unwrap_err();
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"`Gather::limit(0)` would never start a future")
    );
}

#[test]
fn a_small_inline_gather_honours_its_limit_too() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..3).map(|_| manual::<usize>()).unzip();
    let children: SmallVec<[_; 4]> = children.into_iter().collect();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather(children).limit(1));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_eq!(
        handles.iter().map(|h| h.polls()).collect::<Vec<_>>(),
        [1, 0, 0]
    );
    for (i, handle) in handles.iter().enumerate() {
        handle.complete(i);
        let _ = poll_with(gather.as_mut(), &waker);
    }
    assert!(gather.is_terminated());
}

#[test]
fn fail_fast_with_a_limit_never_starts_the_children_after_the_error() {
    let (children, handles): (Vec<_>, Vec<_>) =
        (0..4).map(|_| manual::<Result<u8, &str>>()).unzip();
    let (_, waker) = CountingWaker::new();
    let mut fail_fast = pin!(gather(children).limit(2).fail_fast());
    assert!(poll_with(fail_fast.as_mut(), &waker).is_pending());
    handles[0].complete(Err("refused"));
    let Poll::Ready(Err(error)) = poll_with(fail_fast.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(error.first(), (0, &"refused"));
    assert_eq!(
        handles.iter().map(|h| h.polls()).collect::<Vec<_>>(),
        [2, 1, 0, 0]
    );
    assert!(handles.iter().all(|h| !h.alive()), "every child dropped");
}

#[cfg_attr(miri, ignore = "tokio's timer driver is not for Miri")]
/// 1,000 children that each sleep 10 ms, 10 at a time: about 100 sleeps, on tokio's
/// paused clock (which moves on by itself when every task waits on a timer).
#[test]
fn a_thousand_ten_millisecond_sleeps_ten_at_a_time_take_about_a_hundred_sleeps() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let children = (0..1000).map(|i| {
            let (running, most) = (running.clone(), most.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                i
            }
        });
        let started = tokio::time::Instant::now();
        let gathered = gather_iter(children).limit(10).await;
        let took = started.elapsed();
        assert_eq!(
            gathered.into_results().into_vec(),
            (0..1000).collect::<Vec<_>>()
        );
        assert_eq!(most.load(Ordering::SeqCst), 10);
        assert!(
            took >= Duration::from_millis(990) && took <= Duration::from_millis(1200),
            "took {took:?}, not about 100 sleeps of 10 ms"
        );
    });
}

/// `limit` combines with a deadline: children that never started time out too.
#[test]
fn a_deadline_cuts_off_children_that_never_started() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..3)
        .map(|_| manual::<Result<u8, gather::TimedOut>>())
        .unzip();
    let (timer, fire) = manual::<()>();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather(children).limit(1).deadline(timer));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    handles[0].complete(Ok(0));
    fire.complete(());
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!()
    };
    let results = gathered.into_results();
    assert_eq!(results[0], Ok(0));
    assert_eq!(results[1], Err(gather::TimedOut { index: 1 }));
    assert_eq!(results[2], Err(gather::TimedOut { index: 2 }));
    assert_eq!(handles[2].polls(), 0, "never started");
}
