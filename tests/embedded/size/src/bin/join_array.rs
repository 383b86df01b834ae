//! embassy's `join_array` over `[F; 4]`, the successes and errors counted by hand.
#![no_std]
#![no_main]

use embassy_futures::join::join_array;
use gather_code_size::{block_on, read, report};

#[cortex_m_rt::entry]
fn main() -> ! {
    block_on(async {
        let results = join_array([read(0), read(1), read(2), read(3)]).await;
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
