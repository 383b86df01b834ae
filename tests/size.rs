//! A gather over an array is its slots (rounded up to a word) plus two words: no hidden
//! allocation, no padding per child.
use std::future::{Future, Pending, Ready};
use std::mem::size_of;

use gather::Gather;

/// The same shape as a gather's slot: the running child, then its output, then nothing.
#[allow(dead_code)]
enum SlotShape<F: Future> {
    Running(F),
    Finished(F::Output),
    Taken,
}

fn assert_slots_plus_two_words<F: Future, const N: usize>() {
    let gather = size_of::<Gather<[F; N]>>();
    // Rounded up to whole words: the two words are word-aligned.
    let slots = size_of::<[SlotShape<F>; N]>().next_multiple_of(size_of::<usize>());
    assert!(
        gather <= slots + 2 * size_of::<usize>(),
        "Gather<[{}; {N}]> is {gather} bytes; its slots are {slots}",
        std::any::type_name::<F>()
    );
}

#[test]
fn a_gather_over_an_array_is_its_slots_plus_two_words() {
    assert_slots_plus_two_words::<Ready<u8>, 1>();
    assert_slots_plus_two_words::<Ready<u64>, 8>();
    assert_slots_plus_two_words::<Ready<Result<u32, String>>, 16>();
    assert_slots_plus_two_words::<Pending<[u8; 100]>, 3>();
    assert_slots_plus_two_words::<std::pin::Pin<Box<dyn Future<Output = ()>>>, 1024>();
}
