// `.limit()` on an array, which runs every child at once.
use std::future::ready;

fn main() {
    let _ = gather::gather([ready(1), ready(2)]).limit(1);
}
