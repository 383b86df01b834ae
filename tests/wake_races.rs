//! Wakes from many threads at once, racing each other and the gather's polls: none is
//! lost. A lost wake hangs a gather, so each round runs on its own thread under a
//! deadline.
mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use common::{block_on, manual, poll_with, CountingWaker};
use gather::gather;

// Miri checks the same races for data races and weak-memory effects, more slowly.
const ROUNDS: usize = if cfg!(miri) { 4 } else { 300 };
const CHILDREN: usize = if cfg!(miri) { 6 } else { 32 };

/// Regression: a wake that found another wake under way left the gather's waker to it;
/// a gather that had just registered the same waker again did not notice, polled, and
/// missed the child that the second wake had queued.
#[test]
fn wakes_racing_each_other_and_the_gather_are_never_lost() {
    for round in 0..ROUNDS {
        let (done, finished) = mpsc::channel();
        thread::spawn(move || {
            let (children, handles): (Vec<_>, Vec<_>) =
                (0..CHILDREN).map(|_| manual::<usize>()).unzip();
            let start = Arc::new(Barrier::new(CHILDREN));
            let wakers: Vec<_> = handles
                .into_iter()
                .enumerate()
                .map(|(i, handle)| {
                    let start = start.clone();
                    thread::spawn(move || {
                        start.wait();
                        handle.complete(i);
                    })
                })
                .collect();
            let gathered = block_on(gather(children).per_child_wakers());
            for waker in wakers {
                waker.join().unwrap();
            }
            done.send(gathered.into_results()).unwrap();
        });
        let results = finished
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("round {round}: the gather never finished (a lost wake)"));
        assert_eq!(results, (0..CHILDREN).collect::<Vec<_>>());
    }
}

/// A child that keeps the waker of its latest poll in a slot, and never finishes.
struct KeepsWaker(Arc<Mutex<Option<Waker>>>);

impl Future for KeepsWaker {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *self.0.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A gather of one `KeepsWaker`, polled once, and the child's waker, taken out of its
/// slot.
fn polled_with_its_childs_waker() -> (Pin<Box<impl Future>>, Waker) {
    let slot = Arc::new(Mutex::new(None));
    let (_, waker) = CountingWaker::new();
    let mut gather = Box::pin(gather(vec![KeepsWaker(slot.clone())]).per_child_wakers());
    assert!(poll_with(gather.as_mut(), &waker).is_pending());
    let kept = slot.lock().unwrap().take().unwrap();
    (gather, kept)
}

/// A child's waker is woken and dropped on another thread, then the gather is dropped with
/// nothing else ordering the two (the flag is relaxed): the gather's drop sees itself
/// holding the block's only reference and lets go of the executor's waker without an
/// atomic hand-off. Under Miri, an access of that thread to the block not ordered before
/// the drop is a data race (it is, with the reference count read relaxed).
#[test]
fn a_gather_dropped_after_its_last_child_waker_went_on_another_thread_races_nothing() {
    static DONE: AtomicBool = AtomicBool::new(false);
    for _ in 0..4 {
        let (gather, kept) = polled_with_its_childs_waker();
        DONE.store(false, Ordering::Relaxed);
        let waking = thread::spawn(move || {
            kept.wake();
            DONE.store(true, Ordering::Relaxed);
        });
        while !DONE.load(Ordering::Relaxed) {
            thread::yield_now();
        }
        drop(gather);
        waking.join().unwrap();
    }
}

/// The gather goes first (its handle's release is a `fetch_sub`, the count being
/// 2), then a waker on another thread, ordered after it only by a relaxed flag, wakes by
/// value and frees the block with the last reference: its `fetch_sub` plus the acquire
/// fence must order every access of the gather's thread before the free (Miri checks).
#[test]
fn a_waker_freeing_the_block_after_the_gather_went_races_nothing() {
    static GONE: AtomicBool = AtomicBool::new(false);
    for _ in 0..4 {
        let (gather, kept) = polled_with_its_childs_waker();
        GONE.store(false, Ordering::Relaxed);
        let waking = thread::spawn(move || {
            while !GONE.load(Ordering::Relaxed) {
                thread::yield_now();
            }
            kept.wake();
        });
        drop(gather);
        GONE.store(true, Ordering::Relaxed);
        waking.join().unwrap();
    }
}
