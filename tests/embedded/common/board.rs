//! What both firmware images share: an `embassy-time` driver on the SysTick, checks reported
//! over semihosting, and an exit code that tells QEMU's caller whether every check passed.
//!
//! Included by each image with `#[path = "../../common/board.rs"] mod board;` (the images are
//! separate crates, built for different targets, so this is a shared file, not a shared crate).

use core::cell::RefCell;
use core::sync::atomic::{AtomicU32, Ordering};
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::{exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprintln};
use critical_section::Mutex;
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// Milliseconds since [`start_ticking`], counted by the SysTick interrupt. Only that handler
/// writes it, so a load and a store do (`thumbv6m` has no atomic read-modify-write).
static TICKS: AtomicU32 = AtomicU32::new(0);

/// The `embassy-time` driver: time is the SysTick count; a timer that is due is woken from
/// the SysTick interrupt, so every wake in these images comes from a hardware interrupt.
struct SysTickDriver {
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        u64::from(TICKS.load(Ordering::Relaxed))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        // A timer already due is woken by the next tick (at most a millisecond late).
        critical_section::with(|cs| {
            self.queue.borrow_ref_mut(cs).schedule_wake(at, waker);
        });
    }
}

/// Starts the SysTick at 1 kHz (`embassy-time` is built with `tick-hz-1_000`), clocked by
/// the core at `core_hz`.
pub fn start_ticking(mut syst: SYST, core_hz: u32) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(core_hz / 1_000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[exception]
fn SysTick() {
    let now = TICKS.load(Ordering::Relaxed).wrapping_add(1);
    TICKS.store(now, Ordering::Relaxed);
    critical_section::with(|cs| {
        DRIVER
            .queue
            .borrow_ref_mut(cs)
            .next_expiration(u64::from(now));
    });
}

/// How many checks failed so far.
static FAILED: AtomicU32 = AtomicU32::new(0);

/// Reports one check over semihosting and remembers a failure for [`finish`].
pub fn check(passed: bool, what: &str) {
    if passed {
        hprintln!("ok   {}", what);
    } else {
        hprintln!("FAIL {}", what);
        FAILED.store(FAILED.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

/// Ends the run: QEMU exits with 0 if every check passed, 1 otherwise.
pub fn finish() -> ! {
    let failed = FAILED.load(Ordering::Relaxed);
    if failed == 0 {
        hprintln!("all checks passed");
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        hprintln!("{} checks failed", failed);
        debug::exit(debug::EXIT_FAILURE);
    }
    loop {
        cortex_m::asm::wfi();
    }
}

/// The current time in SysTick milliseconds.
pub fn millis() -> u32 {
    TICKS.load(Ordering::Relaxed)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("FAIL panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("FAIL hard fault at {:#010x}", frame.pc());
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
