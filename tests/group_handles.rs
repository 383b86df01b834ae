//! `Group`'s handles, inbox, deadline and catch_panics, the per-block wakers and the share
//! of a pass kept for children never polled (`Vec`, `gather_iter`, `gather_stream`), from
//! a second review that tried to break them: pushes from inside polls, drops and wakes,
//! from other threads, into a poisoned or finished group; reference cycles through queued
//! handles; panics of queued futures' drops; queries that must not close the group.
mod common;

use std::future::{pending, ready, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};

use common::test_waker::TestWaker;
use common::{drive, manual, CountingWaker, DropLog};
use common::{poll_next, quiet, run, size};
use futures::stream::FusedStream;
use futures::{Stream, StreamExt};
use gather::{Group, TimedOut};

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;
type SendBoxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A future that panics ("boom: drop") when dropped, and counts its drops.
struct PanicOnDrop(Arc<AtomicUsize>);
impl Future for PanicOnDrop {
    type Output = u8;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
        Poll::Pending
    }
}
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
        if !std::thread::panicking() {
            panic!("boom: drop");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The stream's bookkeeping and handle pushes.

#[test]
fn is_terminated_is_false_once_a_handle_pushed_after_the_streams_none() {
    // "`is_terminated` is `true` from that `None` until the next push": a push through a
    // handle is a push too. A `select!` loop skips a terminated stream for good, so a
    // worker thread's pushes would never be read.
    let mut group: Group<std::future::Ready<u8>> = Group::new();
    let handle = group.handle();
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
    assert!(group.is_terminated());
    assert_eq!(handle.push(ready(1)).ok(), Some(0));
    assert!(
        !group.is_terminated(),
        "a child waits in the group, yet the fused stream says it is over"
    );
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((0, 1))));
}

#[test]
fn a_select_loop_reads_children_pushed_through_a_handle_after_an_empty_moment() {
    // The same, as a user sees it: `futures::select!` on the fused group and a channel of
    // commands; a handle pushes a child after the group's stream said `None` once.
    let mut group: Group<std::future::Ready<u8>> = Group::new();
    let handle = group.handle();
    let (tx, mut rx) = futures::channel::mpsc::unbounded::<u8>();
    let mut seen = Vec::new();
    run(async {
        let mut sent = false;
        loop {
            futures::select! {
                item = group.next() => match item {
                    Some((index, n)) => seen.push((index, n)),
                    None => {
                        if !sent {
                            sent = true;
                            // The push through the handle and the command that follows it.
                            handle.push(ready(7)).ok().unwrap();
                            tx.unbounded_send(0).unwrap();
                        }
                    }
                },
                command = rx.next() => {
                    if command.is_some() {
                        // The command says: stop once the pushed child is read.
                        if seen.len() == 1 { break; }
                        tx.close_channel();
                    }
                },
                complete => break,
            }
        }
    });
    assert_eq!(
        seen,
        [(0, 7)],
        "the child pushed through the handle was never read"
    );
}

#[test]
fn a_handle_push_into_a_stream_group_after_its_deadline_is_cut_off_not_refused() {
    let (timer, fire) = manual::<()>();
    let mut group: Group<Boxed<'_, Result<u8, TimedOut>>, _> = Group::new().deadline(timer);
    let handle = group.handle();
    let (first, _first) = manual::<Result<u8, TimedOut>>();
    group.push(Box::pin(first));
    assert_eq!(poll_next(&mut group), Poll::Pending);
    fire.complete(());
    assert_eq!(
        poll_next(&mut group),
        Poll::Ready(Some((0, Err(TimedOut { index: 0 }))))
    );
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
    // The owner's push is taken and cut off; a handle's must be too (or both refused).
    group.push(Box::pin(pending()));
    assert_eq!(
        poll_next(&mut group),
        Poll::Ready(Some((1, Err(TimedOut { index: 1 }))))
    );
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
    let pushed = handle.push(Box::pin(pending()));
    assert_eq!(pushed.as_ref().ok(), Some(&2), "handle push refused");
    assert_eq!(
        poll_next(&mut group),
        Poll::Ready(Some((2, Err(TimedOut { index: 2 }))))
    );
}

// ---------------------------------------------------------------------------------------
// Poisoning.

#[test]
fn a_handle_push_into_a_poisoned_group_is_refused() {
    // A poisoned group can never run a child again: a push it accepts (`Ok(index)`) is
    // never run and never reported. It should hand the future back, as after completion.
    quiet();
    let mut group: Group<Boxed<'_, u8>> = Group::new();
    let handle = group.handle();
    group.push(Box::pin(async { panic!("boom: child") }));
    let mut settle = group.settle_all();
    let (_, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(catch_unwind(AssertUnwindSafe(|| Pin::new(&mut settle).poll(&mut cx))).is_err());
    let pushed = handle.push(Box::pin(ready(1)));
    assert!(
        pushed.is_err(),
        "accepted as child {:?} of a group that will never run it",
        pushed.as_ref().ok()
    );
}

#[test]
fn the_executors_waker_clone_panicking_in_the_take_in_poisons_and_queued_pushes_drop_once() {
    quiet();
    let log = DropLog::new();
    let mut group: Group<Boxed<'_, u8>> = Group::new();
    let handle = group.handle();
    for n in 0..3 {
        handle
            .push(Box::pin(log.future(format!("q{n}"), pending())))
            .ok()
            .unwrap();
    }
    let test_waker = TestWaker::new();
    test_waker.panic_on_clone(true);
    let waker = test_waker.waker();
    let mut cx = Context::from_waker(&waker);
    assert!(catch_unwind(AssertUnwindSafe(|| group.poll_next_unpin(&mut cx))).is_err());
    test_waker.panic_on_clone(false);
    let again = catch_unwind(AssertUnwindSafe(|| group.poll_next_unpin(&mut cx)));
    assert!(again.is_err(), "a poisoned group polled again must panic");
    drop(group);
    for n in 0..3 {
        assert_eq!(log.count(&format!("q{n}")), 1, "q{n}");
    }
    drop(waker);
    assert_eq!(test_waker.live(), 0);
}

#[test]
fn a_poisoned_stream_group_with_all_children_finished_still_panics_when_polled() {
    // A child's drop as it finishes panics after the last output is in its slot.
    quiet();
    struct DropBoom(bool);
    impl Future for DropBoom {
        type Output = u8;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
            Poll::Ready(1)
        }
    }
    impl Drop for DropBoom {
        fn drop(&mut self) {
            if self.0 && !std::thread::panicking() {
                panic!("boom: finished drop");
            }
        }
    }
    let mut group = Group::new();
    group.push(DropBoom(true));
    assert!(catch_unwind(AssertUnwindSafe(|| poll_next(&mut group))).is_err());
    let again = catch_unwind(AssertUnwindSafe(|| poll_next(&mut group)));
    assert!(
        again.is_err(),
        "poisoned, yet polled again it answered {:?}",
        again.ok()
    );
}

// ---------------------------------------------------------------------------------------
// Drops, cycles, leaks.

#[test]
fn dropping_a_group_drops_queued_pushes_that_hold_its_handle() {
    struct Holder {
        _handle: gather::Handle<Pin<Box<dyn Future<Output = u8>>>>,
        _alive: Arc<()>,
    }
    impl Future for Holder {
        type Output = u8;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
            Poll::Pending
        }
    }
    let alive = Arc::new(());
    let weak: Weak<()> = Arc::downgrade(&alive);
    {
        let mut group: Group<Pin<Box<dyn Future<Output = u8>>>> = Group::new();
        let handle = group.handle();
        // Queued, never taken in (the group is never polled).
        handle
            .push(Box::pin(Holder {
                _handle: handle.clone(),
                _alive: alive.clone(),
            }))
            .ok()
            .unwrap();
        // And one taken in, then one queued after a poll.
        group.push(Box::pin(Holder {
            _handle: handle.clone(),
            _alive: alive.clone(),
        }));
        assert_eq!(poll_next(&mut group), Poll::Pending);
        handle
            .push(Box::pin(Holder {
                _handle: handle.clone(),
                _alive: alive.clone(),
            }))
            .ok()
            .unwrap();
        drop(handle);
    }
    drop(alive);
    assert!(
        weak.upgrade().is_none(),
        "a queued child holding a handle leaked"
    );
}

#[test]
fn a_future_refused_after_the_group_is_gone_comes_back_and_holds_no_cycle() {
    #[allow(dead_code)] // held for their drops
    struct Holder(gather::Handle<Pin<Box<dyn Future<Output = u8>>>>, Arc<()>);
    impl Future for Holder {
        type Output = u8;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
            Poll::Ready(0)
        }
    }
    let alive = Arc::new(());
    let mut group: Group<Pin<Box<dyn Future<Output = u8>>>> = Group::new();
    let handle = group.handle();
    drop(group);
    let back = handle.push(Box::pin(Holder(handle.clone(), alive.clone())));
    assert!(back.is_err());
    drop(back);
    drop(handle);
    assert_eq!(Arc::strong_count(&alive), 1);
}

#[test]
fn a_queued_push_whose_drop_panics_as_the_group_drops_drops_every_other_once() {
    quiet();
    let log = DropLog::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut group: Group<Boxed<'_, u8>> = Group::new();
    let handle = group.handle();
    group.push(Box::pin(log.future("running", pending())));
    assert_eq!(poll_next(&mut group), Poll::Pending);
    handle
        .push(Box::pin(log.future("q0", pending())))
        .ok()
        .unwrap();
    handle
        .push(Box::pin(PanicOnDrop(drops.clone())))
        .ok()
        .unwrap();
    handle
        .push(Box::pin(log.future("q2", pending())))
        .ok()
        .unwrap();
    assert!(catch_unwind(AssertUnwindSafe(move || drop(group))).is_err());
    assert_eq!(drops.load(SeqCst), 1);
    assert_eq!(
        (log.count("running"), log.count("q0"), log.count("q2")),
        (1, 1, 1)
    );
    assert!(
        handle.push(Box::pin(ready(0))).is_err(),
        "the group is gone"
    );
}

#[test]
fn fail_fast_whose_queued_push_drop_panics_still_drops_every_running_child_once() {
    quiet();
    let log = DropLog::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut group: Group<Boxed<'_, Result<u8, u8>>> = Group::new();
    let handle = group.handle();
    group.push(Box::pin(log.future("running", pending())));
    let (fail, fail_handle) = manual::<Result<u8, u8>>();
    group.push(Box::pin(fail));
    let mut fail_fast = Box::pin(group.fail_fast());
    let (_, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(fail_fast.as_mut().poll(&mut cx).is_pending());
    struct Wrap(#[allow(dead_code)] PanicOnDrop); // held for its drop
    impl Future for Wrap {
        type Output = Result<u8, u8>;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<u8, u8>> {
            Poll::Pending
        }
    }
    handle
        .push(Box::pin(Wrap(PanicOnDrop(drops.clone()))))
        .ok()
        .unwrap();
    fail_handle.complete(Err(1));
    // The failing pass takes the queued child in first, so its drop panics with the
    // running ones; either way every child goes exactly once, and nothing aborts.
    let outcome = catch_unwind(AssertUnwindSafe(|| fail_fast.as_mut().poll(&mut cx)));
    drop(outcome);
    drop(catch_unwind(AssertUnwindSafe(move || drop(fail_fast))));
    assert_eq!(drops.load(SeqCst), 1);
    assert_eq!(log.count("running"), 1);
}

#[test]
fn a_childs_drop_that_pushes_as_it_finishes_is_in_the_settle_all_result() {
    struct PushOnDrop {
        handle: Option<gather::Handle<Boxed<'static, u8>>>,
        n: u8,
    }
    impl Future for PushOnDrop {
        type Output = u8;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
            Poll::Ready(self.n)
        }
    }
    impl Drop for PushOnDrop {
        fn drop(&mut self) {
            if let Some(handle) = self.handle.take() {
                let next = PushOnDrop {
                    handle: if self.n < 3 {
                        Some(handle.clone())
                    } else {
                        None
                    },
                    n: self.n + 1,
                };
                handle.push(Box::pin(next)).ok().expect("the group runs");
            }
        }
    }
    let mut group: Group<Boxed<'static, u8>> = Group::new();
    let handle = group.handle();
    group.push(Box::pin(PushOnDrop {
        handle: Some(handle),
        n: 0,
    }));
    assert_eq!(run(group.settle_all()).into_results(), [0, 1, 2, 3, 4]);
}

#[test]
fn children_whose_drop_pushes_when_cut_off_by_the_deadline_are_cut_off_too() {
    struct PushOnDrop {
        handle: Option<gather::Handle<Boxed<'static, Result<u8, TimedOut>>>>,
        left: u8,
        polls: Arc<AtomicUsize>,
    }
    impl Future for PushOnDrop {
        type Output = Result<u8, TimedOut>;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            self.polls.fetch_add(1, SeqCst);
            Poll::Pending
        }
    }
    impl Drop for PushOnDrop {
        fn drop(&mut self) {
            if let Some(handle) = self.handle.take() {
                if self.left > 0 {
                    let next = PushOnDrop {
                        handle: Some(handle.clone()),
                        left: self.left - 1,
                        polls: self.polls.clone(),
                    };
                    handle
                        .push(Box::pin(next))
                        .ok()
                        .expect("cut off, not refused");
                }
            }
        }
    }
    let polls = Arc::new(AtomicUsize::new(0));
    let (timer, fire) = manual::<()>();
    let mut group: Group<Boxed<'static, Result<u8, TimedOut>>, _> = Group::new().deadline(timer);
    let handle = group.handle();
    group.push(Box::pin(PushOnDrop {
        handle: Some(handle),
        left: 3,
        polls: polls.clone(),
    }));
    let mut settle = Box::pin(group.settle_all());
    let (_, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(settle.as_mut().poll(&mut cx).is_pending());
    fire.complete(());
    let Poll::Ready(gathered) = settle.as_mut().poll(&mut cx) else {
        panic!("the deadline fired");
    };
    let errors: Vec<usize> = gathered.errors().map(|(i, _)| i).collect();
    assert_eq!(errors, [0, 1, 2, 3]);
    assert_eq!(
        polls.load(SeqCst),
        1,
        "children pushed after the deadline ran"
    );
}

// ---------------------------------------------------------------------------------------
// Pushes from inside children, wakers, and other threads.

#[test]
fn a_child_that_pushes_then_panics_under_catch_panics_keeps_its_push() {
    quiet();
    let mut group: Group<Boxed<'static, Result<u8, gather::Panicked>>, _> =
        Group::new().catch_panics();
    let handle = group.handle();
    let inner = handle.clone();
    group.push(Box::pin(async move {
        inner.push(Box::pin(ready(Ok(5)))).ok().unwrap();
        panic!("boom: after push");
    }));
    let gathered = run(group.settle_all());
    let errors: Vec<usize> = gathered.errors().map(|(i, _)| i).collect();
    assert_eq!(errors, [0]);
    assert_eq!(gathered.successes().copied().collect::<Vec<_>>(), [5]);
    drop(handle);
}

/// An executor waker that pushes into a group through a handle on its first wakes.
struct PushingWaker {
    handle: Mutex<Option<gather::Handle<SendBoxed<u8>>>>,
    pushes_left: AtomicUsize,
    accepted: Mutex<Vec<usize>>,
    wakes: AtomicUsize,
}

impl Wake for PushingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, SeqCst);
        let left = self
            .pushes_left
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if left {
            if let Some(handle) = self.handle.lock().unwrap().as_ref() {
                if let Ok(index) = handle.push(Box::pin(ready(100))) {
                    self.accepted.lock().unwrap().push(index);
                }
            }
        }
    }
}

#[test]
fn an_executor_waker_that_pushes_on_wake_neither_deadlocks_nor_loses_its_pushes() {
    let mut group: Group<SendBoxed<u8>> = Group::new();
    let handle = group.handle();
    let pusher = Arc::new(PushingWaker {
        handle: Mutex::new(Some(handle.clone())),
        pushes_left: AtomicUsize::new(size(20, 5)),
        accepted: Mutex::new(Vec::new()),
        wakes: AtomicUsize::new(0),
    });
    let waker = Waker::from(pusher.clone());
    let mut cx = Context::from_waker(&waker);
    let (child, finish) = manual::<u8>();
    group.push(Box::pin(child));
    assert!(group.poll_next_unpin(&mut cx).is_pending());
    // This push wakes the waker, which pushes again (through the handle, from inside the
    // wake of the push before), and so on.
    assert_eq!(handle.push(Box::pin(ready(1))).ok(), Some(1));
    assert!(pusher.wakes.load(SeqCst) > 0);
    let mut seen = Vec::new();
    for _ in 0..1000 {
        match group.poll_next_unpin(&mut cx) {
            Poll::Ready(Some((index, _))) => seen.push(index),
            Poll::Ready(None) => break,
            Poll::Pending => finish.complete(0),
        }
    }
    *pusher.handle.lock().unwrap() = None;
    seen.sort_unstable();
    let accepted = pusher.accepted.lock().unwrap().clone();
    let total = 2 + accepted.len();
    assert_eq!(
        seen,
        (0..total).collect::<Vec<_>>(),
        "accepted: {accepted:?}"
    );
}

#[test]
fn pushes_from_other_threads_while_the_stream_is_read_are_each_reported_once() {
    let threads = size(4, 2);
    let per_thread = size(500, 20);
    let mut group: Group<SendBoxed<usize>> = Group::new();
    let handle = group.handle();
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let handle = handle.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut accepted = Vec::new();
                for k in 0..per_thread {
                    let value = t * 1_000_000 + k;
                    let future: SendBoxed<usize> = if k % 3 == 0 {
                        Box::pin(async move {
                            common::yield_now(1).await;
                            value
                        })
                    } else {
                        Box::pin(ready(value))
                    };
                    let index = handle.push(future).ok().expect("the group is alive");
                    accepted.push((index, value));
                }
                done.fetch_add(1, SeqCst);
                accepted
            })
        })
        .collect();
    drop(handle);
    let mut seen: Vec<Option<usize>> = Vec::new();
    common::block_on(async {
        loop {
            // Every push made before this read is read by it or a later one.
            let all_pushed = done.load(SeqCst) == threads;
            match group.next().await {
                Some((index, value)) => {
                    if seen.len() <= index {
                        seen.resize(index + 1, None);
                    }
                    assert!(seen[index].is_none(), "index {index} reported twice");
                    seen[index] = Some(value);
                }
                None if all_pushed => break,
                // Empty for now: come back (no wake is promised after `None`).
                None => common::yield_now(1).await,
            }
        }
    });
    let mut expected = vec![None; threads * per_thread];
    for worker in workers {
        for (index, value) in worker.join().unwrap() {
            expected[index] = Some(value);
        }
    }
    seen.resize(expected.len(), None);
    assert_eq!(seen, expected);
}

#[test]
fn settle_all_racing_pushes_from_another_thread_reports_every_accepted_one() {
    for round in 0..size(50, 2) {
        let mut group: Group<SendBoxed<usize>> = Group::new();
        let handle = group.handle();
        let (first, finish) = manual::<usize>();
        group.push(Box::pin(first));
        let go = Arc::new(AtomicBool::new(false));
        let worker = {
            let go = go.clone();
            std::thread::spawn(move || {
                while !go.load(SeqCst) {
                    std::hint::spin_loop();
                }
                let mut accepted = Vec::new();
                for k in 0..size(200, 10) {
                    match handle.push(Box::pin(ready(k))) {
                        Ok(index) => accepted.push((index, k)),
                        Err(_) => break,
                    }
                }
                accepted
            })
        };
        let gathered = common::block_on(async {
            go.store(true, SeqCst);
            if round % 2 == 0 {
                finish.complete(usize::MAX);
            }
            let mut settle = std::pin::pin!(group.settle_all());
            futures::future::poll_fn(|cx| {
                if round % 2 == 1 {
                    finish.complete(usize::MAX);
                }
                settle.as_mut().poll(cx)
            })
            .await
        });
        let accepted = worker.join().unwrap();
        let results = gathered.into_results();
        assert_eq!(results.len(), 1 + accepted.len(), "round {round}");
        for (index, k) in accepted {
            assert_eq!(results[index], k, "round {round}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Wakes: the `Dirty` mask and the inbox's waker.

#[test]
fn wakes_from_another_thread_in_many_chunks_while_the_group_is_polled_are_never_lost() {
    let n = size(64 + 128 + 256 + 10, 200);
    let rounds = size(20, 2);
    let mut group: Group<Pin<Box<dyn Future<Output = usize> + Send>>> = Group::new();
    type Gate = Arc<Mutex<(usize, Option<Waker>)>>;
    let gates: Vec<Gate> = (0..n).map(|_| Arc::new(Mutex::new((0, None)))).collect();
    for (i, gate) in gates.iter().enumerate() {
        let gate = gate.clone();
        group.push(Box::pin(futures::future::poll_fn(move |cx| {
            let mut g = gate.lock().unwrap();
            if g.0 >= rounds {
                Poll::Ready(i)
            } else {
                g.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })));
    }
    let waker_gates = gates.clone();
    let worker = std::thread::spawn(move || {
        for _ in 0..rounds {
            for i in common::shuffled(waker_gates.len()) {
                loop {
                    let waker = {
                        let mut g = waker_gates[i].lock().unwrap();
                        g.1.take().inspect(|_| g.0 += 1)
                    };
                    if let Some(waker) = waker {
                        waker.wake();
                        break;
                    }
                    std::thread::yield_now();
                }
            }
        }
    });
    let mut seen = vec![false; n];
    common::block_on(async {
        while let Some((index, value)) = group.next().await {
            assert_eq!(index, value);
            assert!(!seen[index]);
            seen[index] = true;
        }
    });
    worker.join().unwrap();
    assert!(seen.iter().all(|&s| s));
}

#[test]
fn a_panicking_push_wake_is_paid_by_the_next_push() {
    quiet();
    let mut group: Group<SendBoxed<u8>> = Group::new();
    let handle = group.handle();
    let test_waker = TestWaker::new();
    let waker = test_waker.waker();
    let mut cx = Context::from_waker(&waker);
    let (child, _finish) = manual::<u8>();
    group.push(Box::pin(child));
    assert!(group.poll_next_unpin(&mut cx).is_pending());
    test_waker.panic_on_wakes(1);
    let first = catch_unwind(AssertUnwindSafe(|| handle.push(Box::pin(ready(1)))));
    assert!(first.is_err(), "the wake panicked");
    let before = test_waker.wakes();
    assert_eq!(handle.push(Box::pin(ready(2))).ok(), Some(2));
    assert!(test_waker.wakes() > before, "the second push woke the task");
    let mut seen = Vec::new();
    for _ in 0..4 {
        if let Poll::Ready(Some((i, _))) = group.poll_next_unpin(&mut cx) {
            seen.push(i);
        }
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        [1, 2],
        "the push whose wake panicked was still accepted and run"
    );
    drop(group);
    drop(waker);
    assert_eq!(test_waker.live(), 0);
}

// ---------------------------------------------------------------------------------------
// The fresh share and fairness.

/// A child that wakes itself `times` times, counting its polls.
fn busy(times: usize, polls: Arc<AtomicUsize>) -> impl Future<Output = usize> + Send {
    let mut left = times;
    futures::future::poll_fn(move |cx| {
        polls.fetch_add(1, SeqCst);
        if left == 0 {
            return Poll::Ready(times);
        }
        left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Poll counters, one per child.
fn counters(n: usize) -> Vec<Arc<AtomicUsize>> {
    (0..n).map(|_| Arc::new(AtomicUsize::new(0))).collect()
}

/// The fewest and the most polls any child had.
fn fewest_and_most(polls: &[Arc<AtomicUsize>]) -> (usize, usize) {
    let counts = polls.iter().map(|p| p.load(SeqCst));
    (counts.clone().min().unwrap(), counts.max().unwrap())
}

#[test]
fn a_woken_child_is_polled_in_the_next_pass_despite_a_flood_of_fresh_children() {
    // 1 child woken by the test, then 1,000 children pushed at once that stay pending:
    // the woken child must not wait for all of them to start.
    let fresh = size(1000, 300);
    let mut group: Group<SendBoxed<usize>> = Group::new();
    let (child, finish) = manual::<usize>();
    group.push(Box::pin(child));
    assert_eq!(poll_next(&mut group), Poll::Pending);
    for _ in 0..fresh {
        group.push(Box::pin(pending()));
    }
    finish.complete(7);
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((0, 7))));
}

#[test]
fn under_a_limit_a_vec_gather_of_busy_children_finishes_each_in_bounded_passes() {
    // gather(Vec).limit(k) with k > BUDGET of self-waking children: each finishes, and
    // the never-started ones start as places free up.
    let n = size(400, 150);
    let polls = counters(n);
    let children: Vec<_> = polls.iter().map(|p| busy(3, p.clone())).collect();
    let out = drive(gather::gather(children).limit(size(200, 140)), 10_000);
    assert_eq!(out.into_results(), vec![3; n]);
    for (i, p) in polls.iter().enumerate() {
        assert_eq!(p.load(SeqCst), 4, "child {i}");
    }
}

#[test]
fn gather_iter_under_a_limit_of_busy_children_starts_every_one() {
    let n = size(300, 140);
    let polls = counters(n);
    let children = polls.iter().map(|p| busy(1_000_000, p.clone()));
    let mut gathered = Box::pin(gather::gather_iter(children).limit(size(200, 135)));
    let (_, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..size(50, 10) {
        assert!(gathered.as_mut().poll(&mut cx).is_pending());
    }
    let started = polls.iter().filter(|p| p.load(SeqCst) > 0).count();
    assert_eq!(
        started,
        size(200, 135),
        "every place under the limit filled"
    );
}

#[test]
fn busy_children_of_a_group_under_a_limit_are_all_polled_though_chunks_take_turns() {
    // limit 300, 300 busy children running (chunks of 64, 128 and 108) and 1,000 more
    // queued behind the limit. Nothing starves; but the chunks take turns at the head of
    // a pass, so a child of a small chunk is polled more often than one of a large chunk
    // (measured: 19 to 68 polls). A `Vec` gather's are polled to within one: per-child
    // fairness across chunks is still to come (the growing-set issue).
    let running = size(300, 140);
    let mut group: Group<SendBoxed<usize>> = Group::new().limit(running);
    let polls = counters(running);
    for p in &polls {
        group.push(Box::pin(busy(1_000_000, p.clone())));
    }
    for _ in 0..size(1000, 50) {
        group.push(Box::pin(pending()));
    }
    for _ in 0..size(100, 20) {
        assert_eq!(poll_next(&mut group), Poll::Pending);
    }
    let (min, max) = fewest_and_most(&polls);
    assert!(min > 0, "a running child never polled");
    assert!(
        max <= 5 * min,
        "one child polled over five times as often as another: min {min}, max {max}"
    );
}

#[test]
fn equally_busy_children_of_a_group_are_all_polled_though_chunks_take_turns() {
    // 300 children that wake themselves at every poll (chunks of 64, 128 and 108 of
    // them): a `Vec` gather polls each in turn; a group polls every one, the children of
    // one chunk up to about twice as often as those of another (measured: 32 to 51).
    let n = size(300, 140);
    let mut group: Group<SendBoxed<usize>> = Group::new();
    let polls = counters(n);
    for p in &polls {
        group.push(Box::pin(busy(1_000_000, p.clone())));
    }
    for _ in 0..size(100, 20) {
        assert_eq!(poll_next(&mut group), Poll::Pending);
    }
    let (min, max) = fewest_and_most(&polls);
    assert!(min > 0, "a busy child never polled");
    assert!(
        max <= 3 * min,
        "one child polled over three times as often as another: min {min}, max {max}"
    );
}

#[test]
fn equally_busy_children_of_a_vec_gather_are_polled_about_equally_often() {
    // The reference the group test compares to.
    let n = size(300, 140);
    let polls = counters(n);
    let children: Vec<_> = polls.iter().map(|p| busy(1_000_000, p.clone())).collect();
    let mut gathered = Box::pin(gather::gather(children));
    let (_, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..size(100, 20) {
        assert!(gathered.as_mut().poll(&mut cx).is_pending());
    }
    let (min, max) = fewest_and_most(&polls);
    assert!(2 * max <= 3 * min, "unfair: min {min}, max {max}");
}

#[test]
fn gather_iter_without_a_limit_of_busy_children_starts_every_one() {
    let n = size(300, 140);
    let polls = counters(n);
    let children = polls.iter().map(|p| busy(1_000_000, p.clone()));
    let mut gathered = Box::pin(gather::gather_iter(children));
    let (_, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..size(50, 10) {
        assert!(gathered.as_mut().poll(&mut cx).is_pending());
    }
    let started = polls.iter().filter(|p| p.load(SeqCst) > 0).count();
    assert_eq!(started, n);
}

#[test]
fn gather_stream_under_a_limit_of_busy_children_starts_every_one() {
    let n = size(300, 140);
    let polls = counters(n);
    let children = futures::stream::iter(
        polls
            .iter()
            .map(|p| busy(1_000_000, p.clone()))
            .collect::<Vec<_>>(),
    );
    let mut gathered = Box::pin(gather::gather_stream(children).limit(size(200, 135)));
    let (_, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..size(50, 10) {
        assert!(gathered.as_mut().poll(&mut cx).is_pending());
    }
    let started = polls.iter().filter(|p| p.load(SeqCst) > 0).count();
    assert_eq!(
        started,
        size(200, 135),
        "every place under the limit filled"
    );
}

#[test]
fn small_vec_under_a_limit_of_busy_children_starts_every_one() {
    let n = size(300, 140);
    let polls = counters(n);
    let children: gather::SmallVec<[_; 4]> =
        polls.iter().map(|p| busy(1_000_000, p.clone())).collect();
    let mut gathered = Box::pin(gather::gather(children).limit(size(200, 135)));
    let (_, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..size(50, 10) {
        assert!(gathered.as_mut().poll(&mut cx).is_pending());
    }
    let started = polls.iter().filter(|p| p.load(SeqCst) > 0).count();
    assert_eq!(
        started,
        size(200, 135),
        "every place under the limit filled"
    );
}

// ---------------------------------------------------------------------------------------
// A query that closes the inbox: `exhausted()` (which closes it when empty) is reached
// from `AsCompleted::size_hint` and `is_empty` over a group's gather.

#[test]
fn size_hint_of_a_groups_as_completed_stream_does_not_refuse_later_handle_pushes() {
    let mut group: Group<Boxed<'static, u8>> = Group::new();
    let handle = group.handle();
    let (child, finish) = manual::<u8>();
    group.push(Box::pin(child));
    let stream = group.settle_all().as_completed();
    let _ = stream.size_hint();
    assert_eq!(
        handle.push(Box::pin(ready(2))).ok(),
        Some(1),
        "a push refused while child 0 still runs"
    );
    finish.complete(1);
    let mut seen = run(stream.collect::<Vec<_>>());
    seen.sort_unstable();
    assert_eq!(seen, [(0, 1), (1, 2)]);
}

#[test]
fn is_empty_of_a_groups_as_completed_stream_does_not_refuse_later_handle_pushes() {
    // An empty group read as completed, its children to come through a handle: asking
    // whether it is empty (true, for now) must not close it.
    let mut group: Group<Boxed<'static, u8>> = Group::new();
    let handle = group.handle();
    let mut stream = group.settle_all().as_completed();
    assert!(stream.is_empty());
    assert_eq!(
        handle.push(Box::pin(ready(2))).ok(),
        Some(0),
        "refused by a group never polled"
    );
    assert_eq!(run(stream.next()), Some((0, 2)));
}

#[test]
fn children_of_a_collected_as_completed_group_push_through_their_handle() {
    // `StreamExt::collect` asks the stream's `size_hint` first: that alone must not close
    // the group to its children's pushes.
    type Job = Boxed<'static, u32>;
    fn job(n: u32, handle: gather::Handle<Job>) -> Job {
        Box::pin(async move {
            if n < 3 {
                handle
                    .push(job(n + 1, handle.clone()))
                    .ok()
                    .expect("push refused while the group runs");
            }
            n
        })
    }
    let mut group: Group<Job> = Group::new();
    let handle = group.handle();
    group.push(job(0, handle));
    let seen = catch_unwind(AssertUnwindSafe(|| {
        run(group.settle_all().as_completed().collect::<Vec<_>>())
    }));
    let seen = seen.expect("a child's push was refused");
    assert_eq!(seen, [(0, 0), (1, 1), (2, 2), (3, 3)]);
}
