//! futures-concurrency's `[F; 4].join()`, the successes and errors counted by hand.
#![no_std]
#![no_main]

use futures_concurrency::future::Join;
use gather_code_size::{block_on, read, report_results};

#[cortex_m_rt::entry]
fn main() -> ! {
    block_on(async {
        let results = [read(0), read(1), read(2), read(3)].join().await;
        report_results(&results);
    });
    loop {
        cortex_m::asm::wfi();
    }
}
