//! futures-util's `join4`, the successes and errors counted by hand.
#![no_std]
#![no_main]

use futures_util::future::join4;
use gather_code_size::{block_on, read, report};

#[cortex_m_rt::entry]
fn main() -> ! {
    block_on(async {
        let (a, b, c, d) = join4(read(0), read(1), read(2), read(3)).await;
        let (mut sum, mut errors) = (0, 0);
        for result in [a, b, c, d] {
            match result {
                Ok(value) => sum += u32::from(value),
                Err(_) => errors += 1,
            }
        }
        report(sum, errors);
    });
    loop {}
}
