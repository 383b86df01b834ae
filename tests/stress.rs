//! Stress: 100,000 children on a tokio multi-thread runtime, woken from four other threads
//! in a random order, repeated. Every run must finish (a lost wake would hang it: each run
//! has a time limit) with every outcome in input order.
#![cfg(not(miri))]
mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::shuffled_with;
use gather::gather;

const CHILDREN: usize = 100_000;
const RUNS: u64 = 10;
const WAKING_THREADS: usize = 4;

#[derive(Default)]
struct Signal {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    fn fire(&self) {
        self.done.store(true, Ordering::Release);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
}

struct Child {
    signal: Arc<Signal>,
    index: usize,
    /// Children that returned `Pending` at least once, so far.
    pending: Arc<AtomicUsize>,
    first_poll: bool,
}

impl Future for Child {
    type Output = Result<usize, usize>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        *self.signal.waker.lock().unwrap() = Some(cx.waker().clone());
        let first_poll = std::mem::replace(&mut self.first_poll, false);
        if !self.signal.done.load(Ordering::Acquire) {
            if first_poll {
                self.pending.fetch_add(1, Ordering::Relaxed);
            }
            return Poll::Pending;
        }
        let i = self.index;
        Poll::Ready(if i % 7 == 0 { Err(i) } else { Ok(i) })
    }
}

#[test]
fn a_hundred_thousand_children_woken_from_other_threads_all_settle_in_order() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    for run in 0..RUNS {
        let signals: Vec<Arc<Signal>> = (0..CHILDREN).map(|_| Arc::default()).collect();
        let pending = Arc::new(AtomicUsize::new(0));
        let children: Vec<Child> = signals
            .iter()
            .enumerate()
            .map(|(index, signal)| Child {
                signal: signal.clone(),
                index,
                pending: pending.clone(),
                first_poll: true,
            })
            .collect();
        let order = shuffled_with(CHILDREN, run + 1);
        let gathered = runtime.block_on(async {
            let task = tokio::spawn(gather(children));
            // Wake from plain threads, in a random order, while the gather runs: once it
            // has left half of the children pending (its first pass takes many polls, of
            // 128 children each), so that wakes race the first pass and the later ones.
            let wakers: Vec<_> = order
                .chunks(CHILDREN / WAKING_THREADS)
                .map(|chunk| {
                    let chunk: Vec<Arc<Signal>> =
                        chunk.iter().map(|&i| signals[i].clone()).collect();
                    let pending = pending.clone();
                    std::thread::spawn(move || {
                        while pending.load(Ordering::Relaxed) < CHILDREN / 2 {
                            std::thread::yield_now();
                        }
                        chunk.iter().for_each(|s| s.fire());
                    })
                })
                .collect();
            let gathered = tokio::time::timeout(Duration::from_secs(120), task)
                .await
                .unwrap_or_else(|_| panic!("run {run}: not finished after 120 s (lost wake?)"))
                .expect("the gather's task panicked");
            for waker in wakers {
                waker.join().unwrap();
            }
            gathered
        });
        let woken = pending.load(Ordering::Relaxed);
        assert!(
            woken >= CHILDREN / 2,
            "run {run}: only {woken} children waited"
        );
        assert_eq!(gathered.len(), CHILDREN);
        assert_eq!(gathered.error_count(), CHILDREN.div_ceil(7), "run {run}");
        for (i, result) in gathered.into_results().into_iter().enumerate() {
            let expected = if i % 7 == 0 { Err(i) } else { Ok(i) };
            assert_eq!(result, expected, "run {run}, child {i}");
        }
    }
}
