//! Wakes from many threads at once, racing each other and the gather's polls: none is
//! lost. A lost wake hangs a gather, so each round runs on its own thread under a
//! deadline.
mod common;

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{block_on, manual};
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
