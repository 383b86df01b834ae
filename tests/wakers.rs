//! Wakes: with per-child wakers (`Vec` inputs of more than 30, or `per_child_wakers()`) a
//! wake re-polls only its own child, whatever the number of children, and wakers stay
//! valid however long a child keeps them; a small gather sweeps with its own waker.
mod common;

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;

use common::{manual, poll_with, shuffled, CountingWaker};
use gather::gather;

/// An outside event source: child `i` stays pending until the reactor fires `i`.
struct Reactor {
    wakers: Mutex<Vec<Option<Waker>>>,
    fired: Vec<AtomicBool>,
    polls: AtomicUsize,
}

impl Reactor {
    fn new(len: usize) -> Arc<Self> {
        Arc::new(Reactor {
            wakers: Mutex::new(vec![None; len]),
            fired: (0..len).map(|_| AtomicBool::new(false)).collect(),
            polls: AtomicUsize::new(0),
        })
    }

    fn child(self: &Arc<Self>, id: usize) -> Event {
        Event {
            id,
            reactor: self.clone(),
        }
    }

    fn fire(&self, id: usize) {
        self.fired[id].store(true, Ordering::SeqCst);
        let waker = self.wakers.lock().unwrap()[id].take();
        waker.expect("the child registered a waker").wake();
    }
}

struct Event {
    id: usize,
    reactor: Arc<Reactor>,
}

impl Future for Event {
    type Output = usize;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.reactor.polls.fetch_add(1, Ordering::SeqCst);
        if self.reactor.fired[self.id].load(Ordering::SeqCst) {
            return Poll::Ready(self.id);
        }
        self.reactor.wakers.lock().unwrap()[self.id] = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[test]
fn each_child_is_polled_exactly_twice_when_woken_once_in_random_order() {
    // Miri is slow: a smaller gather there checks the same counts.
    const N: usize = if cfg!(miri) { 300 } else { 10_000 };
    let reactor = Reactor::new(N);
    let children: Vec<_> = (0..N).map(|id| reactor.child(id)).collect();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather(children).per_child_wakers());

    // The first poll reaches every child, 128 per poll of the gather.
    while reactor.polls.load(Ordering::SeqCst) < N {
        assert!(poll_with(gather.as_mut(), &waker).is_pending());
    }
    assert_eq!(reactor.polls.load(Ordering::SeqCst), N);

    let order = shuffled(N);
    let (last, rest) = order.split_last().unwrap();
    for (fired, &id) in rest.iter().enumerate() {
        reactor.fire(id);
        assert!(poll_with(gather.as_mut(), &waker).is_pending());
        assert_eq!(
            reactor.polls.load(Ordering::SeqCst),
            N + fired + 1,
            "only child {id}"
        );
    }
    reactor.fire(*last);
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(reactor.polls.load(Ordering::SeqCst), 2 * N);
    assert_eq!(gathered.into_results(), (0..N).collect::<Vec<_>>());
}

#[test]
fn a_wake_re_polls_only_its_own_child() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..8).map(|_| manual::<usize>()).unzip();
    let (wakes, waker) = CountingWaker::new();
    let mut gather = pin!(gather(children).per_child_wakers());
    assert!(poll_with(gather.as_mut(), &waker).is_pending());

    handles[5].complete(5);
    assert_eq!(wakes.wakes(), 1);
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    let polls: Vec<_> = handles.iter().map(|h| h.polls()).collect();
    assert_eq!(polls, [1, 1, 1, 1, 1, 2, 1, 1]);
}

#[test]
fn many_wakes_of_one_child_queue_it_once_and_wake_the_gather_once() {
    let (child, handle) = manual::<()>();
    let (other, _other_handle) = manual::<()>();
    let (wakes, waker) = CountingWaker::new();
    let mut gather = pin!(gather(vec![child, other]).per_child_wakers());
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    let kept = KeptWaker::default();
    // The child's waker, cloned by a "reactor" and woken three times.
    let child_waker = handle.take_waker().unwrap();
    kept.set(child_waker.clone());
    child_waker.wake_by_ref();
    child_waker.wake_by_ref();
    kept.wake();
    assert_eq!(
        wakes.wakes(),
        1,
        "one wake of the gather for a queued child"
    );
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_eq!(handle.polls(), 2, "polled once for three wakes");
}

#[derive(Default)]
struct KeptWaker(Mutex<Option<Waker>>);

impl KeptWaker {
    fn set(&self, waker: Waker) {
        *self.0.lock().unwrap() = Some(waker);
    }

    fn wake(&self) {
        if let Some(waker) = self.0.lock().unwrap().take() {
            waker.wake();
        }
    }
}

#[test]
fn a_child_that_wakes_itself_is_polled_again_only_in_the_next_poll() {
    let polls = Arc::new(AtomicUsize::new(0));
    let children: Vec<_> = (0..3)
        .map(|_| {
            let polls = polls.clone();
            std::future::poll_fn(move |cx| {
                polls.fetch_add(1, Ordering::SeqCst);
                cx.waker().wake_by_ref();
                Poll::<()>::Pending
            })
        })
        .collect();
    let (wakes, waker) = CountingWaker::new();
    let mut gather = pin!(gather(children).per_child_wakers());
    for round in 1..=4 {
        assert!(poll_with(gather.as_mut(), &waker).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 3 * round);
        assert!(wakes.wakes() >= round, "the self-wakes woke the gather");
    }
}

#[test]
fn wakers_kept_after_the_gather_is_dropped_stay_valid() {
    let (child, handle) = manual::<u8>();
    let (_, waker) = CountingWaker::new();
    let mut gather = Box::pin(gather(vec![child]).per_child_wakers());
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    let kept = handle.take_waker().unwrap();
    let kept_clone = kept.clone();
    drop(gather);
    // Waking and dropping wakers of a gather that is gone does nothing, and frees nothing
    // twice (Miri checks).
    kept.wake_by_ref();
    drop(kept);
    let moved = thread::spawn(move || {
        kept_clone.wake_by_ref();
        kept_clone
    })
    .join()
    .unwrap();
    moved.wake();
}

#[test]
fn a_finished_child_woken_again_is_not_polled_again() {
    let (a, handle_a) = manual::<u8>();
    let (b, handle_b) = manual::<u8>();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather(vec![a, b]).per_child_wakers());
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    let a_waker = handle_a.take_waker().unwrap();
    handle_a.complete(1);
    a_waker.wake_by_ref(); // a stray wake of a child that is about to finish
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    a_waker.wake(); // and one after it finished: the `Manual` child asserts it is not polled
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    handle_b.complete(2);
    let Poll::Ready(gathered) = poll_with(gather.as_mut(), &waker) else {
        panic!()
    };
    assert_eq!(gathered.into_results(), [1, 2]);
}

/// Sweeping (up to 30) or with per-child wakers (64), no wake from another thread is lost.
#[test]
fn wakes_from_other_threads_complete_the_gather() {
    for n in [2, 8, 30, 64] {
        let (children, handles): (Vec<_>, Vec<_>) = (0..n).map(|_| manual::<usize>()).unzip();
        let gather = gather(children);
        let wakers = thread::spawn(move || {
            for (i, handle) in handles.iter().enumerate().rev() {
                while handle.polls() == 0 {
                    thread::yield_now();
                }
                handle.complete(i);
            }
        });
        let gathered = common::block_on(gather);
        wakers.join().unwrap();
        assert_eq!(gathered.into_results(), (0..n).collect::<Vec<_>>());
    }
}

// ---------------------------------------------------------------------------------------
// The small path: up to 30 children without a limit share the gather's own waker.

#[test]
fn a_small_vec_gather_polls_every_running_child_on_a_wake() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..8).map(|_| manual::<usize>()).unzip();
    let (wakes, waker) = CountingWaker::new();
    let mut gather = pin!(gather(children));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());

    handles[5].complete(5);
    assert_eq!(wakes.wakes(), 1, "the child woke the gather's own waker");
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    let polls: Vec<_> = handles.iter().map(|h| h.polls()).collect();
    assert_eq!(polls, [2, 2, 2, 2, 2, 2, 2, 2]);
    handles[1].complete(1);
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    let polls: Vec<_> = handles.iter().map(|h| h.polls()).collect();
    assert_eq!(
        polls,
        [3, 3, 3, 3, 3, 2, 3, 3],
        "finished children are not polled"
    );
}

#[test]
fn thirty_children_sweep_and_thirty_one_get_wakers_of_their_own() {
    for (n, polls_of_the_others) in [(30, 2), (31, 1)] {
        let (children, handles): (Vec<_>, Vec<_>) = (0..n).map(|_| manual::<usize>()).unzip();
        let (_, waker) = CountingWaker::new();
        let mut gather = pin!(gather(children));
        assert!(poll_with(gather.as_mut(), &waker).is_pending());
        handles[0].complete(0);
        assert!(poll_with(gather.as_mut(), &waker).is_pending());
        assert_eq!(handles[0].polls(), 2);
        for handle in &handles[1..] {
            assert_eq!(handle.polls(), polls_of_the_others, "{n} children");
        }
    }
}

#[test]
fn a_limit_gives_a_small_gather_wakers_of_their_own() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..4).map(|_| manual::<usize>()).unzip();
    let (_, waker) = CountingWaker::new();
    let mut gather = pin!(gather(children).limit(4));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    handles[2].complete(2);
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    let polls: Vec<_> = handles.iter().map(|h| h.polls()).collect();
    assert_eq!(polls, [1, 1, 2, 1]);
}

#[test]
fn a_small_gather_of_ready_or_self_waking_children_polls_each_once_or_twice() {
    for n in [1, 2, 8, 30] {
        let (children, handles): (Vec<_>, Vec<_>) = (0..n).map(|_| manual::<usize>()).unzip();
        for (i, handle) in handles.iter().enumerate() {
            handle.complete(i);
        }
        let gathered = common::block_on(gather(children));
        assert_eq!(gathered.into_results(), (0..n).collect::<Vec<_>>());
        assert!(handles.iter().all(|h| h.polls() == 1), "{n} ready children");

        let (children, handles): (Vec<_>, Vec<_>) = (0..n).map(|_| manual::<usize>()).unzip();
        let (wakes, waker) = CountingWaker::new();
        let mut gather = pin!(gather(children));
        assert!(poll_with(gather.as_mut(), &waker).is_pending());
        // Each child is woken (here: completed) during the same pause of the gather.
        for (i, handle) in handles.iter().enumerate() {
            handle.complete(i);
        }
        assert_eq!(
            wakes.wakes(),
            n,
            "every wake reaches the gather's own waker"
        );
        assert!(poll_with(gather.as_mut(), &waker).is_ready());
        assert!(
            handles.iter().all(|h| h.polls() == 2),
            "{n} children woken once"
        );
    }
}

/// Children that wake one by one make a sweep poll every running child per wake: after one
/// such pass the gather gives each child a waker of its own, polling every running child
/// once to hand them out, and no wake is lost on the way.
#[test]
fn a_small_gather_whose_children_wake_one_by_one_switches_to_per_child_wakers() {
    let (children, handles): (Vec<_>, Vec<_>) = (0..16).map(|_| manual::<usize>()).unzip();
    let (wakes, waker) = CountingWaker::new();
    let mut gather = pin!(gather(children));
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    let polls = || handles.iter().map(|h| h.polls()).sum::<usize>();
    assert_eq!(polls(), 16, "the first pass polls every child");

    handles[0].complete(0);
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_eq!(polls(), 32, "a sweep: every child polled; 1 of 16 finished");

    handles[1].complete(1);
    assert_eq!(wakes.wakes(), 2, "child 1 woke the gather's own waker");
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    assert_eq!(
        polls(),
        47,
        "the switch: the 15 running children get their own wakers"
    );

    for i in 2..16 {
        let before = handles.iter().map(|h| h.polls()).collect::<Vec<_>>();
        handles[i].complete(i);
        let done = poll_with(gather.as_mut(), &waker);
        assert_eq!(done.is_ready(), i == 15);
        for (j, handle) in handles.iter().enumerate() {
            let expected = before[j] + usize::from(j == i);
            assert_eq!(handle.polls(), expected, "wake of child {i}: child {j}");
        }
    }
    assert_eq!(polls(), 61);
}

/// Polls `gather` once, then completes the children one per poll; returns every child's
/// polls in all.
fn polls_when_completed_one_by_one(
    gather: impl Future,
    handles: &[common::Handle<usize>],
    waker: &Waker,
) -> usize {
    let mut gather = pin!(gather);
    for (i, handle) in handles.iter().enumerate() {
        assert!(poll_with(gather.as_mut(), waker).is_pending());
        handle.complete(i);
    }
    assert!(poll_with(gather.as_mut(), waker).is_ready());
    handles.iter().map(|h| h.polls()).sum()
}

#[test]
fn a_small_spilled_smallvec_switches_too_and_an_inline_one_keeps_sweeping() {
    use smallvec::SmallVec;
    let (_, waker) = CountingWaker::new();

    let (children, handles): (Vec<_>, Vec<_>) = (0..16).map(|_| manual::<usize>()).unzip();
    let spilled: SmallVec<[_; 2]> = children.into_iter().collect();
    let polls = polls_when_completed_one_by_one(gather(spilled), &handles, &waker);
    assert_eq!(polls, 16 + 16 + 15 + 14, "spilled: switches, as a `Vec`");

    let (children, handles): (Vec<_>, Vec<_>) = (0..16).map(|_| manual::<usize>()).unzip();
    let inline: SmallVec<[_; 16]> = children.into_iter().collect();
    let polls = polls_when_completed_one_by_one(gather(inline), &handles, &waker);
    assert_eq!(
        polls,
        16 + (1..=16).sum::<usize>(),
        "inline: a sweep every time"
    );
}
