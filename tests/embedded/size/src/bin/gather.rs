//! `gather` over `[F; 4]`, settle-all; the caller reads `successes()` and `error_count()`.
#![no_std]
#![no_main]

use gather::gather;
use gather_code_size::{block_on, read, report};

#[cortex_m_rt::entry]
fn main() -> ! {
    block_on(async {
        let gathered = gather([read(0), read(1), read(2), read(3)]).await;
        report(
            gathered.successes().map(|&value| u32::from(value)).sum(),
            gathered.error_count(),
        );
    });
    loop {
        cortex_m::asm::wfi();
    }
}
