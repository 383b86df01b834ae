//! futures-concurrency's `[F; 4].join()`, the successes and errors counted by hand.
#![no_std]
#![no_main]

use futures_concurrency::future::Join;
use gather_code_size::{block_on, read, report};

#[cortex_m_rt::entry]
fn main() -> ! {
    block_on(async {
        let results = [read(0), read(1), read(2), read(3)].join().await;
        let (mut sum, mut errors) = (0, 0);
        for result in &results {
            match result {
                Ok(value) => sum += u32::from(*value),
                Err(_) => errors += 1,
            }
        }
        report(sum, errors);
    });
    loop {}
}
