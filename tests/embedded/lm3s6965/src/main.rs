//! `gather` on a Cortex-M3 (`thumbv7m-none-eabi`) with the `alloc` feature, a heap from
//! `embedded-alloc`, under `embassy-executor`, run on QEMU's LM3S6965 board.
//!
//! `Vec` gathers with per-child wakers, `limit` and a deadline. Every child waits on an
//! `embassy_time::Timer` whose wake comes from the SysTick interrupt, the deadline too. Each
//! check is reported over semihosting and the exit code says whether all passed:
//! `cargo run --release` here (see the README, "On microcontrollers").
#![no_std]
#![no_main]

extern crate alloc;

#[path = "../../common/board.rs"]
mod board;

use alloc::vec::Vec;
use core::cell::Cell;
use core::future::{poll_fn, Future};
use core::pin::pin;

use board::{check, millis};
use embassy_executor::Spawner;
use embassy_time::Timer;
use embedded_alloc::LlffHeap;
use gather::{gather, gather_iter, StopError, StopSignal, Stopped, TimedOut};

/// The core clock QEMU gives the LM3S6965 at reset: 12 MHz.
const CORE_HZ: u32 = 12_000_000;

#[global_allocator]
static HEAP: LlffHeap = LlffHeap::empty();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadError {
    TimedOut(usize),
    Failed(u32),
    Stopped,
}

impl From<Stopped> for ReadError {
    fn from(_: Stopped) -> Self {
        ReadError::Stopped
    }
}

impl StopError for ReadError {
    fn is_stopped(&self) -> bool {
        *self == ReadError::Stopped
    }
}

impl From<TimedOut> for ReadError {
    fn from(timed_out: TimedOut) -> Self {
        ReadError::TimedOut(timed_out.index)
    }
}

/// Runs `future`, counting its polls in `polls`.
async fn counted<F: Future>(polls: &Cell<u32>, future: F) -> F::Output {
    let mut future = pin!(future);
    poll_fn(|cx| {
        polls.set(polls.get() + 1);
        future.as_mut().poll(cx)
    })
    .await
}

/// A read of `ms` milliseconds of SysTick time that returns `value`.
async fn read(ms: u64, value: u32) -> Result<u32, ReadError> {
    Timer::after_millis(ms).await;
    Ok(value)
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    {
        const HEAP_SIZE: usize = 32 * 1024;
        static mut HEAP_MEMORY: [core::mem::MaybeUninit<u8>; HEAP_SIZE] =
            [core::mem::MaybeUninit::uninit(); HEAP_SIZE];
        // SAFETY: called once, before the first allocation; the memory is used by nothing
        // else.
        unsafe { HEAP.init(&raw mut HEAP_MEMORY as usize, HEAP_SIZE) }
    }
    let core = cortex_m::Peripherals::take().unwrap();
    board::start_ticking(core.SYST, CORE_HZ);

    a_large_vec_polls_each_child_twice().await;
    per_child_wakers_in_a_small_vec().await;
    a_limit_bounds_the_children_running().await;
    a_deadline_cuts_off_a_vec().await;
    a_failure_stops_a_limited_vec_gracefully().await;

    board::finish();
}

/// 64 children, each woken once by its timer: with per-child wakers (a `Vec` of more than 30
/// children has them without asking), a wake re-polls only its child, so each is polled
/// exactly twice.
async fn a_large_vec_polls_each_child_twice() {
    let polls: Vec<Cell<u32>> = (0..64).map(|_| Cell::new(0)).collect();
    let start = millis();
    let children: Vec<_> = polls
        .iter()
        .enumerate()
        .map(|(i, polls)| counted(polls, read(1 + (i as u64 * 7) % 40, i as u32)))
        .collect();
    let gathered = gather(children).await;
    let elapsed = millis() - start;
    check(gathered.is_all_ok(), "Vec of 64: every read succeeded");
    check(
        gathered.successes().copied().eq(0..64),
        "Vec of 64: outputs in input order",
    );
    check(
        polls.iter().all(|polls| polls.get() == 2),
        "Vec of 64: each child polled exactly twice (one wake, one re-poll)",
    );
    check(
        elapsed < 80,
        "Vec of 64: the reads ran at once (40 ms, not 1,300)",
    );
}

/// `per_child_wakers()` gives a small `Vec` (which starts by sweeping) its per-child wakers
/// from the first poll.
async fn per_child_wakers_in_a_small_vec() {
    let polls: [Cell<u32>; 4] = Default::default();
    let children: Vec<_> = polls
        .iter()
        .enumerate()
        .map(|(i, polls)| counted(polls, read(5 * (i as u64 + 1), i as u32)))
        .collect();
    let gathered = gather(children).per_child_wakers().await;
    check(
        gathered.is_all_ok(),
        "per_child_wakers: every read succeeded",
    );
    check(
        polls.iter().all(|polls| polls.get() == 2),
        "per_child_wakers: each of 4 children polled exactly twice",
    );
}

/// `gather_iter(..).limit(3)` over 12 reads of 10 ms: never more than 3 at once, 4 rounds.
async fn a_limit_bounds_the_children_running() {
    let running = Cell::new(0u32);
    let most_running = Cell::new(0u32);
    let start = millis();
    let reads = (0..12u32).map(|i| {
        let (running, most_running) = (&running, &most_running);
        async move {
            running.set(running.get() + 1);
            most_running.set(most_running.get().max(running.get()));
            let reading = read(10, i).await;
            running.set(running.get() - 1);
            reading
        }
    });
    let gathered = gather_iter(reads).limit(3).await;
    let elapsed = millis() - start;
    check(gathered.is_all_ok(), "limit: every read succeeded");
    check(
        most_running.get() == 3,
        "limit: at most 3 reads ran at once",
    );
    check(
        (40..80).contains(&elapsed),
        "limit: 12 reads of 10 ms took 4 rounds",
    );
}

/// A deadline over a `Vec`: the children still running when it fires time out, with their
/// indices; the others keep their outputs.
async fn a_deadline_cuts_off_a_vec() {
    let start = millis();
    let children: Vec<_> = (0..40u32).map(|i| read(u64::from(i) * 2, i)).collect();
    let gathered = gather(children).deadline(Timer::after_millis(41)).await;
    let elapsed = millis() - start;
    check(
        (41..100).contains(&elapsed),
        "deadline: the SysTick timer fired at 41 ms",
    );
    check(
        gathered.success_count() == 21,
        "deadline: the 21 reads due by 40 ms finished",
    );
    check(
        gathered
            .errors()
            .map(|(index, error)| (index, *error))
            .eq((21..40).map(|index| (index, ReadError::TimedOut(index)))),
        "deadline: reads 21 to 39 timed out, each with its index",
    );
}

/// A `Vec` of 40 jobs, 8 at a time, with per-child wakers: job 5 fails at 5 ms; the 7
/// others running then see the signal, take 2 ms to wind down and say they stopped; the
/// 32 waiting for a place never start.
async fn a_failure_stops_a_limited_vec_gracefully() {
    let stop = StopSignal::new();
    let started = Cell::new(0u32);
    let jobs: Vec<_> = (0..40u32)
        .map(|i| {
            let (stop, started) = (&stop, &started);
            async move {
                started.set(started.get() + 1);
                if i == 5 {
                    Timer::after_millis(5).await;
                    return Err::<u32, _>(ReadError::Failed(i));
                }
                let stopped = stop.raised().await;
                Timer::after_millis(2).await;
                Err(stopped.into())
            }
        })
        .collect();
    let result = gather(jobs)
        .limit(8)
        .graceful(&stop, || Timer::after_millis(50))
        .fail_fast()
        .await;
    check(
        started.get() == 8,
        "graceful: the 32 jobs waiting for a place never started",
    );
    check(
        result.as_ref().err().map(|errors| (errors.len(), errors.first()))
            == Some((1, (5, &ReadError::Failed(5)))),
        "graceful: the error holds the failure alone, not the 39 stopped",
    );
}
