// `.as_completed()` on a tuple, whose outputs differ in type.
use std::future::ready;

fn main() {
    let _ = gather::gather((ready(1u8), ready("one"))).as_completed();
}
