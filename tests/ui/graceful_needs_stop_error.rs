// `.graceful()` on children whose error type cannot say "stopped on request".
use core::future::{pending, ready};

fn main() {
    let stop = gather::StopSignal::new();
    let children = [ready(Err::<u8, String>("refused".to_string()))];
    let _ = gather::gather(children).graceful(&stop, pending::<()>);
}
