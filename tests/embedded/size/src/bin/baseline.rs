//! The plain loop: the four reads one after another. Every other image is measured over it.
#![no_std]
#![no_main]

use gather_code_size::{block_on, read, report};

#[cortex_m_rt::entry]
fn main() -> ! {
    block_on(async {
        let (mut sum, mut errors) = (0, 0);
        for i in 0..4 {
            match read(i).await {
                Ok(value) => sum += u32::from(value),
                Err(_) => errors += 1,
            }
        }
        report(sum, errors);
    });
    loop {
        cortex_m::asm::wfi();
    }
}
