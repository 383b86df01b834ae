//! `Gathered` and `CompoundError`: what a settled gather tells about its outcomes.
mod common;

use std::error::Error;
use std::fmt;
use std::future::ready;

use common::block_on;
use gather::{gather, gather_iter, CompoundError, Heap, Inline};

#[derive(Debug, Clone, PartialEq)]
struct Refused(u16);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {} refused", self.0)
    }
}

impl Error for Refused {}

#[derive(Debug)]
struct TimedOut;

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

impl Error for TimedOut {}

type BoxError = Box<dyn Error + Send + Sync>;

fn mixed() -> [std::future::Ready<Result<u32, Refused>>; 5] {
    [
        ready(Ok(10)),
        ready(Err(Refused(81))),
        ready(Ok(30)),
        ready(Err(Refused(443))),
        ready(Ok(50)),
    ]
}

#[test]
fn successes_errors_and_counts_follow_input_order() {
    let gathered = block_on(gather(mixed()));
    assert_eq!(gathered.len(), 5);
    assert_eq!(
        gathered.successes().copied().collect::<Vec<_>>(),
        [10, 30, 50]
    );
    assert_eq!(
        gathered.errors().collect::<Vec<_>>(),
        [(1, &Refused(81)), (3, &Refused(443))]
    );
    assert_eq!((gathered.success_count(), gathered.error_count()), (3, 2));
    assert!(!gathered.is_all_ok());
}

#[test]
fn predicate_filters_select_successes_and_errors() {
    let gathered = block_on(gather(mixed()));
    assert_eq!(
        gathered.successes_where(|n| *n > 20).collect::<Vec<_>>(),
        [&30, &50]
    );
    assert_eq!(
        gathered.errors_where(|e| e.0 > 100).collect::<Vec<_>>(),
        [(3, &Refused(443))]
    );
}

#[test]
fn into_result_gives_every_success_or_every_error() {
    let ok = block_on(gather([ready(Ok::<_, Refused>(1)), ready(Ok(2))]));
    assert!(ok.is_all_ok());
    assert_eq!(ok.into_result(), Ok([1, 2]));

    let error: CompoundError<Refused, Inline<5>> =
        block_on(gather(mixed())).into_result().unwrap_err();
    assert_eq!(error.len(), 2);
    assert_eq!(error.total(), 5);
    assert_eq!(error.first(), (1, &Refused(81)));
}

#[test]
fn into_compound_error_is_none_when_nothing_failed_never_empty() {
    let ok = block_on(gather(vec![ready(Ok::<_, Refused>(1))]));
    assert!(ok.into_compound_error().is_none());
    let empty = block_on(gather(Vec::<std::future::Ready<Result<u8, Refused>>>::new()));
    assert!(empty.into_compound_error().is_none());
    let failed = block_on(gather(vec![ready(Err::<u8, _>(Refused(1)))]));
    assert_eq!(failed.into_compound_error().map(|e| e.len()), Some(1));
}

#[test]
fn compound_error_displays_how_many_of_how_many_with_each_index_and_message() {
    let error = block_on(gather(mixed())).into_compound_error().unwrap();
    assert_eq!(
        error.to_string(),
        "2 of 5 futures failed: [1] port 81 refused; [3] port 443 refused"
    );
    let one = block_on(gather([ready(Err::<(), _>(TimedOut))]))
        .into_compound_error()
        .unwrap();
    assert_eq!(one.to_string(), "1 of 1 future failed: [0] timed out");
}

#[test]
fn compound_error_is_an_error_that_names_every_failure_once() {
    let error = block_on(gather(mixed())).into_compound_error().unwrap();
    let as_error: &dyn Error = &error;
    // The message names every failure; a source would name the first one again.
    assert!(as_error.source().is_none());
    let mut chain = Vec::new();
    let mut next = Some(as_error);
    while let Some(error) = next {
        chain.push(error.to_string());
        next = error.source();
    }
    assert_eq!(
        chain,
        ["2 of 5 futures failed: [1] port 81 refused; [3] port 443 refused"]
    );
    // And it converts with `?` into a boxed error.
    fn fails() -> Result<(), Box<dyn Error>> {
        block_on(gather(mixed())).into_result()?;
        Ok(())
    }
    assert!(fails()
        .unwrap_err()
        .to_string()
        .starts_with("2 of 5 futures failed"));
}

#[test]
fn split_and_subgroup_partition_by_predicate_and_keep_indices() {
    let error = block_on(gather(mixed())).into_compound_error().unwrap();
    let (high, low) = error.clone().split(|e| e.0 > 100);
    assert_eq!(
        high.unwrap().iter().collect::<Vec<_>>(),
        [(3, &Refused(443))]
    );
    let low = low.unwrap();
    assert_eq!(low.iter().collect::<Vec<_>>(), [(1, &Refused(81))]);
    assert_eq!(low.total(), 5);

    let (all, none) = error.clone().split(|_| true);
    assert_eq!(all.as_ref(), Some(&error));
    assert!(
        none.is_none(),
        "an empty side is None, never an empty group"
    );
    assert!(error.clone().subgroup(|e| e.0 == 7).is_none());
    assert_eq!(error.subgroup(|e| e.0 == 81).unwrap().len(), 1);
}

#[test]
fn compound_error_iterates_by_reference_and_by_value_in_input_order() {
    let gathered = block_on(gather_iter(
        (0..6).map(|i| ready(if i % 2 == 0 { Err(i) } else { Ok(i) })),
    ));
    let error: CompoundError<i32, Heap> = gathered.into_compound_error().unwrap();
    assert_eq!(error.iter().len(), 3);
    assert_eq!(
        (&error).into_iter().map(|(i, _)| i).collect::<Vec<_>>(),
        [0, 2, 4]
    );
    assert_eq!(error.error_at(2), Some(&2));
    assert_eq!(error.error_at(3), None);
    assert_eq!(
        error.into_iter().collect::<Vec<_>>(),
        [(0, 0), (2, 2), (4, 4)]
    );
}

#[test]
fn split_works_the_same_for_the_heap_store() {
    let gathered = block_on(gather(vec![
        ready(Err::<(), _>(1)),
        ready(Err(2)),
        ready(Err(3)),
    ]));
    let (odd, even) = gathered
        .into_compound_error()
        .unwrap()
        .split(|e| e % 2 == 1);
    assert_eq!(
        odd.unwrap().into_iter().collect::<Vec<_>>(),
        [(0, 1), (2, 3)]
    );
    assert_eq!(even.unwrap().into_iter().collect::<Vec<_>>(), [(1, 2)]);
}

#[test]
fn boxed_errors_can_be_filtered_by_type() {
    let gathered = block_on(gather([
        ready(Ok::<u32, BoxError>(1)),
        ready(Err(Refused(80).into())),
        ready(Err(TimedOut.into())),
        ready(Err(Refused(443).into())),
    ]));
    let refused: Vec<_> = gathered.errors_of::<Refused>().collect();
    assert_eq!(refused, [(1, &Refused(80)), (3, &Refused(443))]);
    assert!(gathered.has_error::<TimedOut>());
    assert!(!gathered.has_error::<fmt::Error>());

    let error = gathered.into_compound_error().unwrap();
    assert_eq!(
        error
            .errors_of::<TimedOut>()
            .map(|(i, _)| i)
            .collect::<Vec<_>>(),
        [2]
    );
    assert!(error.has_error::<Refused>());
    let (refused, other) = error.split(|e| e.is::<Refused>());
    assert_eq!(refused.unwrap().len(), 2);
    assert_eq!(other.unwrap().first().0, 2);
}

#[test]
fn a_tuple_gives_its_successes_as_a_tuple_and_its_errors_with_indices() {
    let ok = block_on(gather((
        ready(Ok::<_, Refused>(1u8)),
        ready(Ok("two")),
        ready(Ok(3.0)),
    )));
    assert_eq!(ok.into_result(), Ok((1u8, "two", 3.0)));

    let failed = block_on(gather((
        ready(Ok::<_, Refused>(1u8)),
        ready(Err::<&str, _>(Refused(2))),
    )));
    assert_eq!(failed.errors().collect::<Vec<_>>(), [(1, &Refused(2))]);
    assert_eq!(failed.success_count(), 1);
    let error: CompoundError<Refused, Inline<2>> = failed.into_result().unwrap_err();
    assert_eq!(error.first(), (1, &Refused(2)));
}

#[test]
fn non_result_outputs_come_back_as_they_are() {
    let gathered = block_on(gather((ready(1), ready("one"), ready(()))));
    assert_eq!(gathered.results(), &(1, "one", ()));
    assert_eq!(gathered.into_results(), (1, "one", ()));
}
