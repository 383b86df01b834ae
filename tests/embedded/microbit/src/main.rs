//! `gather` on a Cortex-M0 (`thumbv6m-none-eabi`: no atomic compare-and-swap, so no
//! `alloc` feature) under `embassy-executor`, run on QEMU's BBC micro:bit.
//!
//! Every child waits on an `embassy_time::Timer` whose wake comes from the SysTick interrupt;
//! the deadline is such a timer too. Each check is reported over semihosting and the exit
//! code says whether all passed: `cargo run --release` here (see the README, "On
//! microcontrollers").
#![no_std]
#![no_main]

#[path = "../../common/board.rs"]
mod board;

use core::pin::pin;
use core::sync::atomic::{AtomicBool, Ordering};

use board::{check, millis};
use embassy_executor::Spawner;
use embassy_time::Timer;
use gather::{gather, CompoundError, Gathered, Inline, StopError, StopSignal, Stopped, TimedOut};

/// The core clock of QEMU's nRF51: 16 MHz.
const CORE_HZ: u32 = 16_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SensorError {
    Offline(u8),
    TimedOut(usize),
    /// Stopped on request: it wound down when the gather raised its stop signal.
    Stopped,
}

impl From<Stopped> for SensorError {
    fn from(_: Stopped) -> Self {
        SensorError::Stopped
    }
}

impl StopError for SensorError {
    fn is_stopped(&self) -> bool {
        *self == SensorError::Stopped
    }
}

impl From<TimedOut> for SensorError {
    fn from(timed_out: TimedOut) -> Self {
        SensorError::TimedOut(timed_out.index)
    }
}

/// A sensor read that takes `ms` milliseconds of SysTick time.
async fn read(ms: u64, reading: Result<u16, SensorError>) -> Result<u16, SensorError> {
    Timer::after_millis(ms).await;
    reading
}

/// A switch read: another output type than [`read`], for tuples.
async fn switch(ms: u64, on: bool) -> Result<bool, SensorError> {
    Timer::after_millis(ms).await;
    Ok(on)
}

/// Set when a child is dropped before it finished.
static SLOW_READ_DROPPED: AtomicBool = AtomicBool::new(false);

struct NoteDrop(&'static AtomicBool);

impl Drop for NoteDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A read that notes whether it was dropped before it finished.
async fn slow_read(ms: u64) -> Result<u16, SensorError> {
    let dropped = NoteDrop(&SLOW_READ_DROPPED);
    Timer::after_millis(ms).await;
    core::mem::forget(dropped);
    Ok(0)
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let core = cortex_m::Peripherals::take().unwrap();
    board::start_ticking(core.SYST, CORE_HZ);

    settle_all_over_an_array().await;
    settle_all_over_a_tuple().await;
    fail_fast_drops_the_siblings().await;
    as_completed_yields_in_completion_order().await;
    a_deadline_cuts_off_the_slow_child().await;
    a_failure_stops_the_others_gracefully().await;
    a_deadline_stops_the_others_gracefully().await;

    board::finish();
}

async fn settle_all_over_an_array() {
    let start = millis();
    let gathered: Gathered<[Result<u16, SensorError>; 4]> = gather([
        read(10, Ok(1)),
        read(30, Err(SensorError::Offline(1))),
        read(20, Ok(3)),
        read(5, Err(SensorError::Offline(3))),
    ])
    .await;
    let elapsed = millis() - start;
    check(
        (30..60).contains(&elapsed),
        "array: the four reads ran at once (30 ms, not 65)",
    );
    check(gathered.error_count() == 2, "array: two errors counted");
    check(
        gathered.successes().sum::<u16>() == 4,
        "array: the successes summed",
    );
    let errors: CompoundError<SensorError, Inline<4>> = match gathered.into_result() {
        Ok(_) => {
            check(false, "array: into_result holds the errors");
            return;
        }
        Err(errors) => errors,
    };
    let mut indices = errors.iter().map(|(index, _)| index);
    check(
        indices.next() == Some(1) && indices.next() == Some(3) && indices.next().is_none(),
        "array: the compound error holds indices 1 and 3, in input order",
    );
    check(
        errors.error_at(3) == Some(&SensorError::Offline(3)),
        "array: the error of child 3 is its own",
    );
}

async fn settle_all_over_a_tuple() {
    let gathered = gather((read(4, Ok(21)), switch(2, true))).await;
    let successes: Result<(u16, bool), CompoundError<SensorError, Inline<2>>> =
        gathered.into_result();
    check(
        successes == Ok((21, true)),
        "tuple: both outputs, of two types",
    );
}

async fn fail_fast_drops_the_siblings() {
    let start = millis();
    let result: Result<(u16, u16), CompoundError<SensorError, Inline<2>>> =
        gather((read(5, Err(SensorError::Offline(0))), slow_read(200)))
            .fail_fast()
            .await;
    let elapsed = millis() - start;
    check(
        result.as_ref().err().map(|errors| errors.first()) == Some((0, &SensorError::Offline(0))),
        "fail-fast: the first error, with its index",
    );
    check(
        elapsed < 100,
        "fail-fast: returned without waiting for the slow read",
    );
    check(
        SLOW_READ_DROPPED.load(Ordering::Relaxed),
        "fail-fast: the slow read was dropped before it returned",
    );

    let all_ok: Result<[u16; 3], CompoundError<SensorError, Inline<3>>> =
        gather([read(3, Ok(1)), read(1, Ok(2)), read(2, Ok(3))])
            .fail_fast()
            .await;
    check(
        all_ok == Ok([1, 2, 3]),
        "fail-fast: every success, in input order",
    );
}

async fn as_completed_yields_in_completion_order() {
    let mut completed =
        pin!(gather([read(30, Ok(0)), read(10, Ok(1)), read(20, Ok(2))]).as_completed());
    let mut order = [usize::MAX; 3];
    let mut count = 0;
    while let Some((index, reading)) = completed.as_mut().next_completed().await {
        check(
            reading == Ok(index as u16),
            "as_completed: each output beside its index",
        );
        if count < order.len() {
            order[count] = index;
        }
        count += 1;
    }
    check(
        count == 3 && order == [1, 2, 0],
        "as_completed: indices 1, 2, 0, in the order the timers fired",
    );
}

async fn a_deadline_cuts_off_the_slow_child() {
    let start = millis();
    let gathered = gather([read(5, Ok(1)), read(500, Ok(2))])
        .deadline(Timer::after_millis(20))
        .await;
    let elapsed = millis() - start;
    check(
        (20..100).contains(&elapsed),
        "deadline: the SysTick timer fired at 20 ms",
    );
    check(
        gathered.results()[0] == Ok(1),
        "deadline: the fast child kept its output",
    );
    check(
        gathered.results()[1] == Err(SensorError::TimedOut(1)),
        "deadline: the slow child timed out, with its index",
    );
}

/// A logger that runs until it is asked to stop (or `fail_after` ms pass: then it fails),
/// and takes `wind_down` ms of SysTick time to flush before it says it stopped;
/// `deaf` ones never look at the signal.
async fn logger(
    stop: &StopSignal,
    fail_after: Option<u64>,
    wind_down: u64,
    deaf: bool,
) -> Result<u16, SensorError> {
    if let Some(ms) = fail_after {
        Timer::after_millis(ms).await;
        return Err(SensorError::Offline(0));
    }
    if deaf {
        Timer::after_millis(500).await;
        return Ok(0);
    }
    let stopped = stop.raised().await;
    Timer::after_millis(wind_down).await;
    Err(stopped.into())
}

async fn a_failure_stops_the_others_gracefully() {
    let stop = StopSignal::new();
    let start = millis();
    let gathered = gather([
        logger(&stop, None, 3, false),
        logger(&stop, Some(5), 0, false),
        logger(&stop, None, 1, false),
        logger(&stop, None, 0, true),
    ])
    .graceful(&stop, || Timer::after_millis(30))
    .await;
    let elapsed = millis() - start;
    check(stop.is_raised(), "graceful: the failure raised the signal");
    check(
        (35..100).contains(&elapsed),
        "graceful: the SysTick grace timer ended it, 30 ms after the failure",
    );
    check(
        gathered.results()
            == &[
                Err(SensorError::Stopped),
                Err(SensorError::Offline(0)),
                Err(SensorError::Stopped),
                Err(SensorError::Stopped),
            ],
        "graceful: the listeners wound down, the deaf one was cut off as stopped",
    );
    check(
        gathered.failures().count() == 1 && gathered.stopped().count() == 3,
        "graceful: one failure, three stopped",
    );
}

async fn a_deadline_stops_the_others_gracefully() {
    let stop = StopSignal::new();
    let result: Result<[u16; 3], CompoundError<SensorError, Inline<3>>> = gather([
        logger(&stop, None, 2, false),
        logger(&stop, None, 0, true),
        logger(&stop, None, 4, false),
    ])
    .deadline(Timer::after_millis(10))
    .graceful(&stop, || Timer::after_millis(20))
    .fail_fast()
    .await;
    let errors = match result {
        Ok(_) => {
            check(false, "graceful deadline: the deaf logger timed out");
            return;
        }
        Err(errors) => errors,
    };
    check(
        errors.len() == 1 && errors.first() == (1, &SensorError::TimedOut(1)),
        "graceful deadline: the error holds the deaf logger's timeout, not the stopped ones",
    );
}
