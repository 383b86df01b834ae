//! No runtime at all: four sensor reads gathered under a deadline, driven by a hand-written
//! `block_on` loop and a simulated timer interrupt, as firmware without an executor would
//! do it. Arrays need no allocator: everything here also works in `no_std`.
//!
//! Run it with `cargo run --example no_runtime`.

use core::future::Future;
use core::pin::{pin, Pin};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use gather::{gather, TimedOut};

/// The hardware timer's count: one tick per timer interrupt.
static TICKS: AtomicU32 = AtomicU32::new(0);
/// Set by the task's waker (from an interrupt, on a device), cleared by the main loop.
static WOKEN: AtomicBool = AtomicBool::new(true);

/// The task's waker: it only raises `WOKEN`, so it needs no data and no allocation.
fn waker() -> Waker {
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(core::ptr::null(), &VTABLE)
    }
    fn wake(_: *const ()) {
        WOKEN.store(true, Ordering::Release);
    }
    fn drop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);
    // SAFETY: the vtable's functions touch no data (the pointer is null and never read),
    // and every one of them is safe to call from any thread, any number of times.
    unsafe { Waker::from_raw(RawWaker::new(core::ptr::null(), &VTABLE)) }
}

/// Polls `future` whenever its waker was woken; between polls, "waits for an interrupt":
/// here the timer interrupt fires, counts a tick and wakes the task.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = waker();
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if WOKEN.swap(false, Ordering::Acquire) {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
        }
        // The timer interrupt: on a device, `wfi` and the handler do this.
        TICKS.fetch_add(1, Ordering::Relaxed);
        WOKEN.store(true, Ordering::Release);
    }
}

/// Ready once the timer has reached `self.0` ticks (the tick interrupt wakes the task).
struct Until(u32);

impl Future for Until {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if TICKS.load(Ordering::Relaxed) >= self.0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[derive(Debug)]
enum SensorError {
    NoAck,
    TimedOut,
}

impl From<TimedOut> for SensorError {
    fn from(_: TimedOut) -> Self {
        SensorError::TimedOut
    }
}

impl core::fmt::Display for SensorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SensorError::NoAck => f.write_str("no acknowledge on the bus"),
            SensorError::TimedOut => f.write_str("timed out"),
        }
    }
}

/// Reads sensor `id`, which answers after `ticks` ticks (sensor 2 never acknowledges).
async fn read(id: u16, ticks: u32) -> Result<u16, SensorError> {
    Until(ticks).await;
    if id == 2 {
        return Err(SensorError::NoAck);
    }
    Ok(100 + id)
}

fn main() {
    let reads = [read(0, 3), read(1, 5), read(2, 2), read(3, 50)];
    let gathered = block_on(gather(reads).deadline(Until(20)));
    println!("settled at tick {}", TICKS.load(Ordering::Relaxed));
    for (index, outcome) in gathered.results().iter().enumerate() {
        match outcome {
            Ok(value) => println!("  sensor {index}: {value}"),
            Err(error) => println!("  sensor {index}: {error}"),
        }
    }
    assert_eq!(gathered.success_count(), 2);
    if let Err(errors) = gathered.into_result() {
        println!("{errors}");
    }
}
