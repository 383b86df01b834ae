//! `gather` over `[F; 4]`, fail-fast: every success, or the first error and its index.
#![no_std]
#![no_main]

use gather::gather;
use gather_code_size::{block_on, read, report};

#[cortex_m_rt::entry]
fn main() -> ! {
    block_on(async {
        match gather([read(0), read(1), read(2), read(3)])
            .fail_fast()
            .await
        {
            Ok(values) => report(values.iter().map(|&value| u32::from(value)).sum(), 0),
            Err(error) => report(error.first().0 as u32, 1),
        }
    });
    loop {
        cortex_m::asm::wfi();
    }
}
