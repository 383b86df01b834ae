//! loom models of the per-child wakers, the ready set and the gather's waker slot: loom
//! runs each test under every interleaving of its threads (within its bounds) with the
//! weaker orderings its atomics allow, and checks every access to the waker slot for
//! races. Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg gather_loom" cargo test --release --test loom
//! ```
//!
//! The crate swaps its atomics and cell for loom's under `--cfg gather_loom`
//! (`src/raw/sync.rs`). Children here keep their waker in a loom mutex and finish
//! once their flag is set; a lost wake leaves `block_on` waiting forever, which loom
//! reports (the model exceeds its branch bound).
#![cfg(gather_loom)]

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Wake, Waker};

use gather::gather;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A child that finishes once its flag is set, and keeps its latest waker for whoever
/// sets the flag.
#[derive(Default)]
struct Signal {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    /// Sets the flag and wakes the child by value (taking its waker out).
    fn fire(&self) {
        self.done.store(true, Ordering::Release);
        let waker = self.waker.lock().unwrap().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

struct Child(Arc<Signal>, usize);

impl Future for Child {
    type Output = Result<usize, ()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.0.done.load(Ordering::Acquire) {
            Poll::Ready(Ok(self.1))
        } else {
            Poll::Pending
        }
    }
}

/// Explores every interleaving with at most `LOOM_MAX_PREEMPTIONS` preemptions (3 unless
/// set): bugs of this kind need one or two; 3 takes seconds here, 4 takes a minute.
fn model(f: impl Fn() + Send + Sync + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

fn signals(n: usize) -> Vec<Arc<Signal>> {
    (0..n).map(|_| Arc::new(Signal::default())).collect()
}

fn children(signals: &[Arc<Signal>]) -> Vec<Child> {
    signals
        .iter()
        .enumerate()
        .map(|(i, s)| Child(s.clone(), i))
        .collect()
}

/// A caller's waker that counts its wakes.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter() -> (std::sync::Arc<Counter>, Waker) {
    let counter = std::sync::Arc::new(Counter::default());
    (counter.clone(), Waker::from(counter))
}

/// A gather of one child per signal, polled once (every child now holds its waker).
fn polled_once(signals: &[Arc<Signal>]) -> Pin<Box<impl Future>> {
    let (_, waker) = counter();
    polled_once_with(signals, &waker)
}

/// What a gather of `Child`ren resolves to.
type Outcomes = gather::Gathered<Vec<Result<usize, ()>>>;

/// [`polled_once`], polled with `waker`.
fn polled_once_with(
    signals: &[Arc<Signal>],
    waker: &Waker,
) -> Pin<Box<impl Future<Output = Outcomes>>> {
    let mut gather = Box::pin(gather(children(signals)).per_child_wakers());
    assert!(gather
        .as_mut()
        .poll(&mut Context::from_waker(waker))
        .is_pending());
    gather
}

/// Fires `signals[range]`, each from a thread of its own.
fn fire_on_threads(
    signals: &[Arc<Signal>],
    range: std::ops::Range<usize>,
) -> Vec<thread::JoinHandle<()>> {
    signals[range]
        .iter()
        .map(|signal| {
            let signal = signal.clone();
            thread::spawn(move || signal.fire())
        })
        .collect()
}

/// Polls `future` to completion on this loom thread, polling again only after its waker
/// was woken (it yields to the other threads meanwhile).
///
/// Not `loom::future::block_on`, whose notifications may be spurious: with it, the first
/// model below exceeds loom's branch bound on the spurious returns alone.
fn block_on<F: Future>(future: F) -> F::Output {
    let (wakes, waker) = counter();
    block_on_with(future, &wakes, &waker)
}

/// [`block_on`] with the caller's waker, which the caller keeps: a waker of ours that
/// another thread still holds is then never the last (the count of a `std` `Arc`, which
/// loom does not see, would otherwise decide which thread drops the counter).
///
/// A poll that woke its own waker (a registration that found a wake under way wakes the
/// task itself, see `AtomicWaker::store`) is followed by a yield before the next poll, as
/// an executor puts a woken task at the back of its queue. Without it, once loom has spent
/// its preemptions, the thread that holds that wake never runs again, and every poll
/// wakes itself once more: the model spins until it exceeds its branch bound (or, with a
/// bound past 65,535 steps of one thread, overflows loom's `u16` clocks, which then
/// reports a bogus causality violation).
fn block_on_with<F: Future>(future: F, wakes: &Counter, waker: &Waker) -> F::Output {
    let mut future = pin!(future);
    loop {
        let before = wakes.0.load(Ordering::SeqCst);
        if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(waker)) {
            return output;
        }
        if wakes.0.load(Ordering::SeqCst) != before {
            thread::yield_now();
        }
        while wakes.0.load(Ordering::SeqCst) == before {
            thread::yield_now();
        }
    }
}

#[test]
fn wakes_from_two_threads_while_the_gather_polls_are_never_lost() {
    model(|| {
        let signals = signals(2);
        let wakers: Vec<_> = signals
            .iter()
            .map(|signal| {
                let signal = signal.clone();
                thread::spawn(move || signal.fire())
            })
            .collect();
        let gathered = block_on(gather(children(&signals)).per_child_wakers());
        assert_eq!(gathered.into_result(), Ok(vec![0, 1]));
        for waker in wakers {
            waker.join().unwrap();
        }
    });
}

#[test]
fn a_wake_racing_the_gathers_drop_is_harmless() {
    model(|| {
        let signals = signals(2);
        // Both children hold their wakers; then one is woken while the gather goes.
        let gather = polled_once(&signals);
        let signal = signals[0].clone();
        let waking = thread::spawn(move || signal.fire());
        drop(gather);
        waking.join().unwrap();
    });
}

#[test]
fn a_waker_kept_after_the_gather_is_gone_stays_valid() {
    model(|| {
        let signals = signals(1);
        let gather = polled_once(&signals);
        // Another thread holds a clone of the child's waker across the gather's drop,
        // wakes it, and releases the block's last reference.
        let kept = signals[0].waker.lock().unwrap().clone().unwrap();
        let keeper = thread::spawn(move || {
            kept.wake_by_ref();
            drop(kept);
        });
        drop(gather);
        signals[0].waker.lock().unwrap().take();
        keeper.join().unwrap();
    });
}

/// Polls a gather of `n` children with one waker, then with a second (another task),
/// while each child is woken from a thread of its own: either that poll sees every wake,
/// or a wake it did not see reaches the second waker.
fn wakes_racing_a_new_registration_reach_the_new_waker(n: usize) {
    let signals = signals(n);
    let (_, first) = counter();
    let (second_wakes, second) = counter();
    let mut gather = polled_once_with(&signals, &first);
    let wakers = fire_on_threads(&signals, 0..n);
    let ready = gather
        .as_mut()
        .poll(&mut Context::from_waker(&second))
        .is_ready();
    for waker in wakers {
        waker.join().unwrap();
    }
    if !ready {
        // What the poll did not see is on the stack, and its wake reached `second` (or
        // reached `first` before `second` was stored, and the poll saw it then).
        assert!(
            second_wakes.0.load(Ordering::SeqCst) > 0,
            "a wake the poll did not see went to the old waker only"
        );
        let third = gather.as_mut().poll(&mut Context::from_waker(&second));
        assert!(
            third.is_ready(),
            "a child woken before the last poll was lost"
        );
    }
}

#[test]
fn a_wake_racing_a_new_registration_reaches_the_new_waker() {
    model(|| wakes_racing_a_new_registration_reach_the_new_waker(1));
}

/// A new waker registers while two children are woken from two threads: what the poll
/// does not see is still on the ready stack, and the wake that stands for it (the push
/// onto the empty stack) reaches the new waker, whichever step of the registration the
/// pushes fall in.
#[test]
fn wakes_pushing_while_a_new_waker_registers_are_neither_lost_nor_kept_from_it() {
    model(|| wakes_racing_a_new_registration_reach_the_new_waker(2));
}

/// Contract 6: once the gather is dropped, the caller's waker it registered is dropped,
/// even if a child's waker is waking it at that very moment on another thread (that thread
/// drops it when it is done), while the children's wakers live on.
#[test]
fn the_callers_waker_is_dropped_with_the_gather_even_during_a_child_wake() {
    model(|| {
        let signals = signals(1);
        let (caller, waker) = counter();
        let mut gather = Box::pin(gather(children(&signals)).per_child_wakers());
        assert!(gather
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        drop(waker);
        // The child keeps its waker (in its signal); another thread wakes a clone of it by
        // reference while this one drops the gather.
        let kept = signals[0].waker.lock().unwrap().clone().unwrap();
        let waking = thread::spawn(move || {
            kept.wake_by_ref();
            kept
        });
        drop(gather);
        let kept = waking.join().unwrap();
        assert_eq!(
            std::sync::Arc::strong_count(&caller),
            1,
            "the gather is gone but its clone of the caller's waker lives on"
        );
        drop(kept);
    });
}

/// A child of a group read as a stream, fired from another thread while the group polls:
/// its outcome comes out. (A child's wake marks its block in the mask the group reads at
/// each pass, which reads it only if it is not empty: no wake is lost between.) A second
/// child, done from the start, keeps the group's passes going while the wake comes.
#[test]
fn a_wake_from_another_thread_while_a_group_streams_is_never_lost() {
    model(|| {
        let signals = signals(2);
        signals[1].done.store(true, Ordering::Release);
        let mut group = gather::Group::new();
        for child in children(&signals) {
            group.push(child);
        }
        let signal = signals[0].clone();
        let firing = thread::spawn(move || signal.fire());
        let mut outcomes = block_on(futures::StreamExt::collect::<Vec<_>>(group));
        outcomes.sort_unstable();
        assert_eq!(outcomes, [(0, Ok(0)), (1, Ok(1))]);
        firing.join().unwrap();
    });
}

/// A group of 64 children (one block of wakers, which wakes the task itself) grows a
/// second block while another thread wakes child 0: the first block then wakes through the
/// shared mask instead, and the wake, before, during or after the switch, is not lost.
#[test]
fn a_wake_racing_the_groups_second_block_is_never_lost() {
    model(|| {
        let signals = signals(65);
        signals[64].done.store(true, Ordering::Release);
        let (wakes, waker) = counter();
        let mut group = gather::Group::new();
        let mut children = children(&signals).into_iter();
        for child in children.by_ref().take(64) {
            group.push(child);
        }
        let mut group = Box::pin(group);
        let poll =
            futures::StreamExt::poll_next_unpin(&mut group, &mut Context::from_waker(&waker));
        assert!(poll.is_pending(), "64 children wait");
        group.push(children.next().unwrap()); // child 64, in a second chunk
        let signal = signals[0].clone();
        let firing = thread::spawn(move || signal.fire());
        let mut outcomes = Vec::new();
        while outcomes.len() < 2 {
            let next = block_on_with(futures::StreamExt::next(&mut group), &wakes, &waker);
            outcomes.push(next.expect("an outcome"));
        }
        outcomes.sort_unstable();
        assert_eq!(outcomes, [(0, Ok(0)), (64, Ok(64))]);
        firing.join().unwrap();
        drop(group);
        drop((wakes, waker));
    });
}

/// A group of one child waiting for its signal; another thread pushes a second child
/// (through a handle) while a third fires the first: the push is either refused (the
/// group completed first) or reported, never lost, and no wake is lost either way.
#[test]
fn a_push_through_a_handle_racing_the_groups_completion_is_reported_or_refused() {
    model(|| {
        let signals = signals(2);
        let (wakes, waker) = counter();
        let mut group = gather::Group::new();
        let handle = group.handle();
        group.push(Child(signals[0].clone(), 0));
        signals[1].done.store(true, Ordering::Release);
        let late = Child(signals[1].clone(), 1);
        // A handle kept here until the end: the pushing thread's is then never the last
        // (the inbox's `Arc` is `std`'s, whose count loom does not see).
        let kept = handle.clone();
        let pushing = thread::spawn(move || handle.push(late).is_ok());
        let signal = signals[0].clone();
        let firing = thread::spawn(move || signal.fire());
        let results = block_on_with(group.settle_all(), &wakes, &waker).into_results();
        let pushed = pushing.join().unwrap();
        firing.join().unwrap();
        drop((wakes, waker, kept));
        if pushed {
            assert_eq!(results, [Ok(0), Ok(1)]);
        } else {
            assert_eq!(results, [Ok(0)]);
        }
    });
}

/// A push racing the group's drop: accepted and dropped with the group, or refused.
#[test]
fn a_push_through_a_handle_racing_the_groups_drop_is_harmless() {
    model(|| {
        let signals = signals(2);
        let mut group = gather::Group::new();
        let handle = group.handle();
        group.push(Child(signals[0].clone(), 0));
        let mut group = Box::pin(group);
        let (_, waker) = counter();
        use futures::Stream;
        assert!(group
            .as_mut()
            .poll_next(&mut Context::from_waker(&waker))
            .is_pending());
        let late = Child(signals[1].clone(), 1);
        let pushing = thread::spawn(move || drop(handle.push(late)));
        drop(group);
        pushing.join().unwrap();
    });
}

// A panicking executor waker, and wakes racing the gather's drop: the owed wake, the
// `AGAIN` and `CLEAR` rounds of a wake under way, and every last-reference path.

/// A caller's waker whose first wake panics (then it counts, as `Counter`).
#[derive(Default)]
struct PanicsOnce {
    panicked: AtomicBool,
    wakes: AtomicUsize,
}

impl Wake for PanicsOnce {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        if !self.panicked.swap(true, Ordering::SeqCst) {
            std::panic::panic_any(PanicToken);
        }
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

struct PanicToken;

fn quiet_panic_token() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<PanicToken>().is_none() {
            default(info);
        }
    }));
}

fn fire_catching(signal: &Signal) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| signal.fire())).is_err()
}

/// The executor's first wake panics while a second child is woken from another thread
/// (before, during or after the panic): the wake is owed, and a third child's wake,
/// after both, reaches the executor; then one poll sees all three.
#[test]
fn a_panicking_executor_wake_racing_another_wake_is_paid_by_the_next() {
    quiet_panic_token();
    model(|| {
        let signals = signals(3);
        let exec = std::sync::Arc::new(PanicsOnce::default());
        let waker = Waker::from(exec.clone());
        let mut gather = polled_once_with(&signals, &waker);
        let ts: Vec<_> = (0..2)
            .map(|i| {
                let s = signals[i].clone();
                thread::spawn(move || fire_catching(&s))
            })
            .collect();
        let panics: usize = ts.into_iter().map(|t| t.join().unwrap() as usize).sum();
        assert_eq!(panics, 1, "exactly the first executor wake panics");
        assert!(!fire_catching(&signals[2]));
        assert!(
            exec.wakes.load(Ordering::SeqCst) > 0,
            "the owed wake was never paid"
        );
        let out = gather.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(out.is_ready(), "a woken child was lost");
        drop(gather);
        drop(waker);
        assert_eq!(
            std::sync::Arc::strong_count(&exec),
            1,
            "caller's waker leaked"
        );
    });
}

/// Polls a gather of two children once, starts `wake(signals)` (threads that wake the
/// children), drops the gather meanwhile, joins them: the caller's waker must be gone
/// with the gather, whatever the wakes did meanwhile.
fn the_callers_waker_goes_with_the_gather_while(
    wake: impl Fn(&[Arc<Signal>]) -> Vec<thread::JoinHandle<()>>,
) {
    let signals = signals(2);
    let (caller, waker) = counter();
    let gather = polled_once_with(&signals, &waker);
    drop(waker);
    let threads = wake(&signals);
    drop(gather);
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(
        std::sync::Arc::strong_count(&caller),
        1,
        "the gather is gone but its clone of the caller's waker lives on"
    );
}

/// Two children woken from two threads (one asks the other for one more: AGAIN, then
/// maybe CLEAR on the release loop's second round) while the gather is dropped: the
/// caller's waker is dropped exactly once, the block freed exactly once.
#[test]
fn two_wakes_racing_the_gathers_drop_drop_the_callers_waker_once() {
    model(|| {
        the_callers_waker_goes_with_the_gather_while(|signals| fire_on_threads(signals, 0..2))
    });
}

/// Two threads each wake (by value) and drop their child's waker while the gather goes:
/// every last-reference path (handle's load, wakers' fetch_sub) races the others.
#[test]
fn wakers_dropped_on_two_threads_racing_the_gathers_drop_free_the_block_once() {
    model(|| {
        the_callers_waker_goes_with_the_gather_while(|signals| {
            signals
                .iter()
                .map(|signal| {
                    let waker = signal.waker.lock().unwrap().take().unwrap();
                    thread::spawn(move || waker.wake())
                })
                .collect()
        })
    });
}

/// Two wakes from two threads while the task polls with the same waker: the second
/// round of the release loop (AGAIN) is reached and no wake is lost.
#[test]
fn two_wakes_from_two_threads_while_the_gather_polls_reach_it() {
    model(|| {
        let signals = signals(3);
        signals[2].done.store(true, Ordering::Release);
        let (wakes, waker) = counter();
        let mut gather = polled_once_with(&signals, &waker);
        let ts = fire_on_threads(&signals, 0..2);
        let out = block_on_with(gather.as_mut(), &wakes, &waker);
        assert_eq!(out.into_result(), Ok(vec![0, 1, 2]));
        for t in ts {
            t.join().unwrap();
        }
    });
}
