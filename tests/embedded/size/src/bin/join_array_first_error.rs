//! embassy's `join_array` over `[F; 4]` and a hand-written search for the first error: the
//! anchor of `gather_fail_fast` (which, unlike this, stops at the first error).
#![no_std]
#![no_main]

use embassy_futures::join::join_array;
use gather_code_size::{block_on, read, report};

#[cortex_m_rt::entry]
fn main() -> ! {
    block_on(async {
        let results = join_array([read(0), read(1), read(2), read(3)]).await;
        match results.iter().position(Result::is_err) {
            Some(index) => report(index as u32, 1),
            None => report(
                results
                    .iter()
                    .flatten()
                    .map(|&value| u32::from(value))
                    .sum(),
                0,
            ),
        }
    });
    loop {
        cortex_m::asm::wfi();
    }
}
