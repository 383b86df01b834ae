//! The program every size image runs: four sensor reads, their successes summed and their
//! errors counted, the two numbers written out. Only the way the four reads are joined
//! differs between the images in `src/bin/`; `baseline` awaits them one after another.
#![no_std]

use core::future::Future;
use core::pin::pin;
use core::ptr::{addr_of, addr_of_mut};
use core::task::{Context, Poll, Waker};

/// Stands for four sensor registers (read with volatile loads, so nothing is known of them).
static mut REGISTERS: [u16; 4] = [0; 4];

/// What the program reports (written with volatile stores, so nothing is optimised away).
static mut REPORT: [u32; 2] = [0; 2];

/// A sensor's failure: which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SensorError(pub u8);

/// Under a deadline, a read that was cut off fails as its sensor would.
impl From<gather::TimedOut> for SensorError {
    fn from(timed_out: gather::TimedOut) -> Self {
        SensorError(timed_out.index as u8)
    }
}

/// Reads sensor `i`: waits one poll (as a read waits for its interrupt), then reads the
/// register; zero means the sensor failed.
pub async fn read(i: usize) -> Result<u16, SensorError> {
    let mut waited = false;
    core::future::poll_fn(|cx| {
        if waited {
            Poll::Ready(())
        } else {
            waited = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
    // SAFETY: a volatile read of a plain static; nothing writes it concurrently.
    match unsafe { core::ptr::read_volatile(addr_of!(REGISTERS[i])) } {
        0 => Err(SensorError(i as u8)),
        value => Ok(value),
    }
}

/// Writes the sum of the successes and the error count out.
pub fn report(sum: u32, errors: usize) {
    // SAFETY: volatile writes of a plain static; nothing reads it concurrently.
    unsafe {
        core::ptr::write_volatile(addr_of_mut!(REPORT[0]), sum);
        core::ptr::write_volatile(addr_of_mut!(REPORT[1]), errors as u32);
    }
}

/// Sums the successes and counts the errors by hand, then [`report`]s them: what the
/// anchors' callers write.
pub fn report_results<'a>(results: impl IntoIterator<Item = &'a Result<u16, SensorError>>) {
    let (mut sum, mut errors) = (0, 0);
    for result in results {
        match result {
            Ok(value) => sum += u32::from(*value),
            Err(_) => errors += 1,
        }
    }
    report(sum, errors);
}

/// Runs `future` to its end on this core: the smallest executor there is.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::asm::udf()
}
