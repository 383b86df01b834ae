//! A large gather shares its executor: one poll polls at most 128 children, then the
//! gather yields, so other tasks of a single-threaded runtime keep running.
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use gather::gather;

#[test]
fn another_task_interleaves_with_a_gather_of_ten_thousand_self_waking_children() {
    const CHILDREN: usize = 10_000;
    const YIELDS: usize = 3;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ticks = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let ticker = tokio::spawn({
            let (ticks, done) = (ticks.clone(), done.clone());
            async move {
                while !done.load(Ordering::SeqCst) {
                    ticks.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            }
        });

        // The tick count seen at each child poll, in order.
        let seen = Arc::new(Mutex::new(Vec::with_capacity(CHILDREN * (YIELDS + 1))));
        let children: Vec<_> = (0..CHILDREN)
            .map(|_| {
                let (ticks, seen) = (ticks.clone(), seen.clone());
                let mut left = YIELDS;
                poll_fn(move |cx| {
                    seen.lock().unwrap().push(ticks.load(Ordering::SeqCst));
                    if left == 0 {
                        return Poll::Ready(());
                    }
                    left -= 1;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                })
            })
            .collect();
        gather(children).await;
        done.store(true, Ordering::SeqCst);
        ticker.await.unwrap();

        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), CHILDREN * (YIELDS + 1));
        // The other task ran many times while the gather was pending...
        let ticks_during = seen.last().unwrap() - seen.first().unwrap();
        assert!(
            ticks_during >= seen.len() / 128 / 2,
            "only {ticks_during} ticks"
        );
        // ...and never waited for more than one budget of child polls.
        let longest_run = seen
            .chunk_by(|a, b| a == b)
            .map(<[usize]>::len)
            .max()
            .unwrap();
        assert!(
            longest_run <= 128,
            "{longest_run} child polls without yielding"
        );
    });
}
