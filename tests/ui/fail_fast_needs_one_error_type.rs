// A tuple whose children fail with different error types.
use std::future::ready;

fn main() {
    let calls = (ready(Ok::<u8, &str>(1)), ready(Ok::<u16, u32>(2)));
    let _ = gather::gather(calls).fail_fast();
}
