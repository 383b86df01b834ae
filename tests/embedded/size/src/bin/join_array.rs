//! embassy's `join_array` over `[F; 4]`, the successes and errors counted by hand.
#![no_std]
#![no_main]

use embassy_futures::join::join_array;
use gather_code_size::{block_on, read, report_results};

#[cortex_m_rt::entry]
fn main() -> ! {
    block_on(async {
        let results = join_array([read(0), read(1), read(2), read(3)]).await;
        report_results(&results);
    });
    loop {
        cortex_m::asm::wfi();
    }
}
