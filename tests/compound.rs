//! `CompoundError` keeps its first error apart from the rest: every way in and out of it
//! keeps each error exactly once, in input order, in both stores, whatever user code
//! (a predicate, a mapping, a drop) panics.
mod common;

use std::future::ready;
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{block_on, DropLog, Tracked};
use gather::{gather, CompoundError, ErrorStore, Heap, Inline};

/// Six children; child `i` fails with a value labelled `e{i}` where `fails[i]`.
fn outcomes(log: &DropLog, fails: [bool; 6]) -> [std::future::Ready<Result<(), Tracked>>; 6] {
    std::array::from_fn(|i| {
        ready(if fails[i] {
            Err(log.value(format!("e{i}")))
        } else {
            Ok(())
        })
    })
}

fn inline(log: &DropLog, fails: [bool; 6]) -> CompoundError<Tracked, Inline<6>> {
    block_on(gather(outcomes(log, fails)))
        .into_compound_error()
        .unwrap()
}

fn heap(log: &DropLog, fails: [bool; 6]) -> CompoundError<Tracked, Heap> {
    block_on(gather(Vec::from(outcomes(log, fails))))
        .into_compound_error()
        .unwrap()
}

/// Errors at 1, 2, 4 and 5.
const FOUR: [bool; 6] = [false, true, true, false, true, true];

fn indices<S: ErrorStore<Tracked>>(error: &CompoundError<Tracked, S>) -> Vec<usize> {
    error.iter().map(|(index, _)| index).collect()
}

fn labels<S: ErrorStore<Tracked>>(error: &CompoundError<Tracked, S>) -> Vec<String> {
    error.iter().map(|(_, e)| e.label().to_owned()).collect()
}

/// Splits the errors at 1, 2, 4 and 5 so that the first goes to one side and the second to
/// the other: each side's first error is its lowest index, and each error is on one side.
fn check_split_moves_the_first_error_to_its_side<S>(error: CompoundError<Tracked, S>)
where
    S: ErrorStore<Tracked>,
{
    let (matching, rest) = error.split(|e| e.label() == "e2" || e.label() == "e5");
    let (matching, rest) = (matching.unwrap(), rest.unwrap());
    assert_eq!(matching.first().0, 2);
    assert_eq!(indices(&matching), [2, 5]);
    assert_eq!((matching.len(), matching.total()), (2, 6));
    assert_eq!(rest.first().0, 1);
    assert_eq!(labels(&rest), ["e1", "e4"]);
    assert_eq!((rest.len(), rest.total()), (2, 6));
    assert!(matching.error_at(1).is_none() && rest.error_at(2).is_none());
    assert_eq!(rest.error_at(4).map(Tracked::label), Some("e4"));

    // Every error to one side: the other is `None`, and the first stays first.
    let (all, none) = rest.split(|_| true);
    assert!(none.is_none());
    assert_eq!(indices(&all.unwrap()), [1, 4]);
}

#[test]
fn split_hands_the_first_error_to_its_side_and_the_next_one_becomes_the_others_first() {
    let log = DropLog::new();
    check_split_moves_the_first_error_to_its_side(inline(&log, FOUR));
    check_split_moves_the_first_error_to_its_side(heap(&log, FOUR));
    assert_eq!(log.drops().len(), 8, "four errors of each store: {log:?}");
}

#[test]
fn error_at_finds_the_first_error_and_the_rest_and_nothing_else() {
    let log = DropLog::new();
    let inline = inline(&log, FOUR);
    let heap = heap(&log, FOUR);
    for index in 0..8 {
        let expected = FOUR.get(index).copied().unwrap_or(false);
        let label = format!("e{index}");
        let found = |error: Option<&Tracked>| error.map(|e| e.label() == label);
        assert_eq!(found(inline.error_at(index)), expected.then_some(true));
        assert_eq!(found(heap.error_at(index)), expected.then_some(true));
    }
}

#[test]
fn one_error_alone_is_its_first_and_only_entry() {
    let log = DropLog::new();
    let fails = [false, false, false, true, false, false];
    let error = heap(&log, fails);
    assert_eq!((error.len(), error.first().0), (1, 3));
    assert_eq!(error.iter().len(), 1);
    assert_eq!(indices(&error), [3]);
    let (index, only) = inline(&log, fails).into_first();
    assert_eq!((index, only.label()), (3, "e3"));
    let all: Vec<_> = error
        .into_iter()
        .map(|(i, e)| (i, e.label().to_owned()))
        .collect();
    assert_eq!(all, [(3, "e3".to_owned())]);
}

fn check_map_that_panics_part_way_drops_every_error_once<S>(error: CompoundError<Tracked, S>)
where
    S: ErrorStore<Tracked>,
{
    let log = DropLog::new();
    let mapped = catch_unwind(AssertUnwindSafe(|| {
        error.map(|e| {
            assert_ne!(e.label(), "e4", "the mapping fails at e4");
            log.value(format!("m{}", &e.label()[1..]))
        })
    }));
    assert!(mapped.is_err());
    // The two mapped before the panic, each once.
    let mut drops = log.drops();
    drops.sort();
    assert_eq!(drops, ["m1", "m2"]);
}

#[test]
fn map_that_panics_part_way_drops_every_error_and_every_mapped_value_once() {
    let log = DropLog::new();
    check_map_that_panics_part_way_drops_every_error_once(inline(&log, FOUR));
    check_map_that_panics_part_way_drops_every_error_once(heap(&log, FOUR));
    let mut drops = log.drops();
    drops.sort();
    assert_eq!(drops, ["e1", "e1", "e2", "e2", "e4", "e4", "e5", "e5"]);
}

#[test]
fn map_that_panics_on_the_first_error_drops_the_rest_once() {
    let log = DropLog::new();
    let error = heap(&log, FOUR);
    let mapped = catch_unwind(AssertUnwindSafe(|| {
        error.map(|e| -> u8 { panic!("cannot map {}", e.label()) })
    }));
    assert!(mapped.is_err());
    let mut drops = log.drops();
    drops.sort();
    assert_eq!(drops, ["e1", "e2", "e4", "e5"]);
}

#[test]
fn split_whose_predicate_panics_drops_every_error_once() {
    let log = DropLog::new();
    for error in [inline(&log, FOUR).into(), heap(&log, FOUR)] {
        let split = catch_unwind(AssertUnwindSafe(|| {
            error.split(|e| {
                assert_ne!(e.label(), "e4", "the predicate fails at e4");
                e.label() == "e2"
            })
        }));
        assert!(split.is_err());
    }
    let mut drops = log.drops();
    drops.sort();
    assert_eq!(drops, ["e1", "e1", "e2", "e2", "e4", "e4", "e5", "e5"]);
}

/// An error whose drop panics, once, if it is told to.
struct PanicsOnDrop {
    tracked: Tracked,
    panics: bool,
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if self.panics {
            panic!("{} panics as it is dropped", self.tracked.label());
        }
    }
}

#[test]
fn into_first_whose_rest_panics_as_it_drops_drops_the_first_error_too() {
    let log = DropLog::new();
    let children: [_; 3] = std::array::from_fn(|i| {
        ready(Err::<(), _>(PanicsOnDrop {
            tracked: log.value(format!("e{i}")),
            panics: i == 1,
        }))
    });
    let error = block_on(gather(children)).into_compound_error().unwrap();
    assert!(catch_unwind(AssertUnwindSafe(|| error.into_first())).is_err());
    log.assert_each_dropped_once("e", 3);
}

#[test]
fn an_inline_error_moved_to_the_heap_store_keeps_its_first_error_and_the_rest() {
    let log = DropLog::new();
    let moved: CompoundError<Tracked, Heap> = inline(&log, FOUR).into();
    assert_eq!(moved.first().0, 1);
    assert_eq!(labels(&moved), ["e1", "e2", "e4", "e5"]);
    assert_eq!((moved.len(), moved.total()), (4, 6));
    assert_eq!(moved.error_at(5).map(Tracked::label), Some("e5"));
    assert!(
        log.drops().is_empty(),
        "nothing dropped on the way: {log:?}"
    );
}

#[test]
fn a_fail_fast_error_is_its_first_entry_in_both_stores() {
    let children = || [ready(Ok(0)), ready(Err("b")), ready(Err("c"))];
    let array = block_on(gather(children()).fail_fast()).unwrap_err();
    assert_eq!(
        (array.len(), array.first(), array.total()),
        (1, (1, &"b"), 3)
    );
    assert_eq!(
        array.error_at(2),
        None,
        "the pass stopped at the first error"
    );
    let vec = block_on(gather(Vec::from(children())).fail_fast()).unwrap_err();
    assert_eq!(vec.iter().collect::<Vec<_>>(), [(1, &"b")]);
}
