// `.catch_panics()` on children whose error type cannot hold a panic.
use std::future::ready;

fn main() {
    let _ = gather::gather([ready(Err::<(), String>("no".into()))]).catch_panics();
}
