//! Every input shape `gather` accepts, and what children may be.
mod common;

use std::cell::Cell;
use std::future::ready;
use std::rc::Rc;

use common::{block_on, yield_now};
use gather::{gather, gather_iter, GatherExt};
use smallvec::{smallvec, SmallVec};

#[test]
fn tuples_of_one_to_twelve_futures_with_different_output_types() {
    assert_eq!(block_on(gather((ready(1u8),))).into_results(), (1u8,));
    let twelve = block_on(gather((
        ready(1u8),
        ready(2u16),
        ready(3u32),
        ready(4u64),
        ready(5u128),
        ready(6usize),
        ready(7i8),
        ready("eight"),
        ready('9'),
        ready(10.0f32),
        ready(Some(11)),
        async {
            yield_now(3).await;
            String::from("twelve")
        },
    )));
    assert_eq!(
        twelve.into_results(),
        (
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            "eight",
            '9',
            10.0,
            Some(11),
            "twelve".to_string()
        )
    );
}

#[test]
fn a_smallvec_gives_a_smallvec_of_outputs() {
    let children: SmallVec<[_; 3]> = smallvec![ready(Ok::<_, ()>(1)), ready(Ok(2))];
    let gathered = block_on(gather(children));
    let successes: SmallVec<[i32; 3]> = gathered.into_result().unwrap();
    assert!(!successes.spilled());
    assert_eq!(successes.as_slice(), [1, 2]);

    let spilled: SmallVec<[_; 2]> = (0..5).map(ready).collect();
    assert_eq!(
        block_on(gather(spilled)).into_results().as_slice(),
        [0, 1, 2, 3, 4]
    );
}

#[test]
fn gather_iter_accepts_any_iterator() {
    let gathered = block_on(gather_iter(
        ["a", "bb", "ccc"].iter().map(|s| ready(s.len())),
    ));
    assert_eq!(gathered.into_results().into_vec(), [1, 2, 3]);
    let many = block_on(gather_iter((0..100).map(ready)));
    assert_eq!(many.into_results().into_vec(), (0..100).collect::<Vec<_>>());
}

#[test]
fn the_gather_method_works_on_arrays_tuples_and_vectors() {
    assert_eq!(
        block_on([ready(1), ready(2)].gather()).into_results(),
        [1, 2]
    );
    assert_eq!(
        block_on((ready(1), ready('a')).gather()).into_results(),
        (1, 'a')
    );
    assert_eq!(block_on(vec![ready(1)].gather()).into_results(), [1]);
}

#[test]
fn children_need_not_be_send_or_static() {
    let counter = Rc::new(Cell::new(0));
    let local = Cell::new(0);
    let children = [1, 2, 3].map(|n| {
        let counter = counter.clone();
        let local = &local;
        async move {
            yield_now(n).await;
            counter.set(counter.get() + n);
            local.set(local.get() + 1);
            n
        }
    });
    assert_eq!(block_on(gather(children)).into_results(), [1, 2, 3]);
    assert_eq!((counter.get(), local.get()), (6, 3));
}
