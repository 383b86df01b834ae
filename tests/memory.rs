//! Peak heap of large batches under `limit(8)`, with a counting global allocator: a lazy
//! `gather_iter` holds the running jobs and the outputs, never the whole batch of jobs.
//!
//! Each job is a future of more than 1 KiB (a 1 KiB buffer held across a yield). The
//! anchor is `futures`' `stream::iter(jobs).buffered(8)` collected into a `Vec`, measured
//! in the same run. Run with `--nocapture` to see the figures.
use std::future::Future;
use std::hint::black_box;

use futures::executor::block_on;
use futures::StreamExt;
use gather::gather_iter;

#[path = "common/held_heap.rs"]
mod held_heap;
use held_heap::peak_heap;

/// Job `n`: holds a 1 KiB buffer across one yield, then returns a number from it.
async fn job(n: u64) -> u64 {
    let mut buffer = [0u8; 1024];
    buffer[(n % 1024) as usize] = 1;
    yield_once().await;
    black_box(&buffer)
        .iter()
        .map(|&b| u64::from(b))
        .sum::<u64>()
        + n
}

async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

fn kib(bytes: usize) -> f64 {
    bytes as f64 / 1024.0
}

#[test]
fn a_job_is_a_future_of_more_than_one_kib() {
    assert!(
        size_of_val(&job(0)) > 1024,
        "{} bytes",
        size_of_val(&job(0))
    );
}

/// Gathers `jobs` of `job` under `limit(8)` and collects them with `buffered(8)`; checks
/// both give the same outputs and that `gather_iter`'s peak heap is at most 1.5x
/// `buffered`'s.
fn settle_all_beside_buffered<F: Future<Output = u64>>(what: &str, job: impl Fn(u64) -> F) {
    let jobs = if cfg!(miri) { 1_000 } else { 100_000 };
    let (ours, gather_peak) = peak_heap(|| {
        block_on(gather_iter((0..jobs).map(&job)).limit(8))
            .into_results()
            .into_vec()
    });
    let (theirs, buffered_peak) = peak_heap(|| {
        block_on(
            futures::stream::iter((0..jobs).map(&job))
                .buffered(8)
                .collect::<Vec<_>>(),
        )
    });
    assert_eq!(ours, theirs);
    let ratio = gather_peak as f64 / buffered_peak as f64;
    println!(
        "{jobs} {what} under limit(8), peak heap: gather_iter {:.1} KiB, buffered(8) {:.1} KiB: {ratio:.2}x",
        kib(gather_peak),
        kib(buffered_peak)
    );
    assert!(ratio <= 1.5, "{ratio:.2}x buffered(8)'s peak");
}

#[test]
fn settle_all_under_a_limit_holds_about_what_buffered_collected_holds() {
    settle_all_beside_buffered("jobs", job);
}

#[test]
fn settle_all_of_jobs_ready_at_once_keeps_their_outputs_in_one_vec() {
    // Jobs that finish at their first poll free their slots in the order they started;
    // their outputs must still go straight into the outputs in input order, not wait
    // aside (with their indices) until the end.
    settle_all_beside_buffered("ready jobs", |n| async move {
        u64::from(black_box([n as u8; 1024])[0]) + n
    });
}

#[test]
fn as_completed_under_a_limit_holds_under_64_kib_whatever_the_batch() {
    let sizes: &[u64] = if cfg!(miri) {
        &[1_000]
    } else {
        &[100_000, 1_000_000]
    };
    for &jobs in sizes {
        let (sum, peak) = peak_heap(|| {
            block_on(
                gather_iter((0..jobs).map(job))
                    .limit(8)
                    .as_completed()
                    .fold(0u64, |sum, (_, n)| async move { sum + n }),
            )
        });
        assert_eq!(sum, (0..jobs).map(|n| n + 1).sum::<u64>());
        println!(
            "{jobs} jobs under limit(8), as completed: peak heap {:.1} KiB",
            kib(peak)
        );
        assert!(peak <= 64 * 1024, "{:.1} KiB", kib(peak));
    }
}
