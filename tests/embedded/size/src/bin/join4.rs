//! futures-util's `join4`, the successes and errors counted by hand.
#![no_std]
#![no_main]

use futures_util::future::join4;
use gather_code_size::{block_on, read, report_results};

#[cortex_m_rt::entry]
fn main() -> ! {
    block_on(async {
        let (a, b, c, d) = join4(read(0), read(1), read(2), read(3)).await;
        report_results(&[a, b, c, d]);
    });
    loop {
        cortex_m::asm::wfi();
    }
}
