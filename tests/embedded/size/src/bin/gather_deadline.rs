//! `gather` over `[F; 4]`, settle-all under a deadline (a timer that never fires here, so
//! that the row shows the layer's code, not the timer's).
#![no_std]
#![no_main]

use gather::gather;
use gather_code_size::{block_on, read, report};

struct Late;

impl core::future::Future for Late {
    type Output = ();
    fn poll(
        self: core::pin::Pin<&mut Self>,
        _: &mut core::task::Context<'_>,
    ) -> core::task::Poll<()> {
        core::task::Poll::Pending
    }
}

#[cortex_m_rt::entry]
fn main() -> ! {
    block_on(async {
        let gathered = gather([read(0), read(1), read(2), read(3)])
            .deadline(Late)
            .await;
        report(
            gathered.successes().map(|&value| u32::from(value)).sum(),
            gathered.error_count(),
        );
    });
    loop {
        cortex_m::asm::wfi();
    }
}
