//! `CompoundError` composes with the error types people already use: it re-types, gives
//! up its first error by value, moves from the inline to the heap store, goes into
//! `anyhow::Result` with `?`, and names each failure once in a reporter's chain.

use std::future::ready;

use futures::executor::block_on;
use gather::{gather, CompoundError, Inline};

#[derive(Debug, PartialEq)]
enum ApiError {
    Status(u16),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Status(code) => write!(f, "status {code}"),
        }
    }
}

fn statuses() -> [std::future::Ready<Result<&'static str, u16>>; 4] {
    [
        ready(Ok("a")),
        ready(Err(500)),
        ready(Ok("c")),
        ready(Err(503)),
    ]
}

#[test]
fn map_re_types_every_error_and_keeps_its_index() {
    let error = block_on(gather(statuses())).into_compound_error().unwrap();
    let mapped: CompoundError<ApiError, Inline<4>> = error.map(ApiError::Status);
    assert_eq!(
        mapped.iter().collect::<Vec<_>>(),
        [(1, &ApiError::Status(500)), (3, &ApiError::Status(503))]
    );
    assert_eq!((mapped.len(), mapped.total()), (2, 4));

    let on_the_heap = block_on(gather(statuses().to_vec()))
        .into_compound_error()
        .unwrap()
        .map(ApiError::Status);
    assert_eq!(on_the_heap.error_at(3), Some(&ApiError::Status(503)));
    assert_eq!(on_the_heap.error_at(2), None);
}

#[test]
fn into_first_hands_over_the_lowest_index_by_value() {
    let error = block_on(gather(statuses()).fail_fast()).unwrap_err();
    assert_eq!(error.into_first(), (1, 500));
}

#[test]
fn an_inline_compound_error_moves_to_the_default_store() {
    let inline = block_on(gather(statuses())).into_compound_error().unwrap();
    let text = inline.to_string();
    let heap: CompoundError<u16> = inline.into();
    assert_eq!(heap.to_string(), text);
    assert_eq!(heap.iter().collect::<Vec<_>>(), [(1, &500), (3, &503)]);
    // One error type can now hold both shapes' errors.
    let from_vec: CompoundError<u16> = block_on(gather(statuses().to_vec()))
        .into_compound_error()
        .unwrap();
    assert_eq!(heap, from_vec);
}

async fn fetch(id: u32) -> anyhow::Result<u32> {
    if id % 2 == 1 {
        anyhow::bail!("user {id} not found");
    }
    Ok(id)
}

fn fetch_all() -> anyhow::Result<Vec<u32>> {
    let users = block_on(gather((0..4).map(fetch).collect::<Vec<_>>())).into_result()?;
    Ok(users)
}

#[test]
fn a_compound_of_anyhow_errors_goes_into_anyhow_with_the_question_mark() {
    let error = fetch_all().unwrap_err();
    let message = "2 of 4 futures failed: [1] user 1 not found; [3] user 3 not found";
    assert_eq!(error.to_string(), message);
    // The chain names each failure once: the message, and no source repeating it.
    assert_eq!(format!("{error:#}"), message);
    assert_eq!(error.chain().count(), 1);
    assert_eq!(format!("{error:?}").matches("user 1 not found").count(), 1);
    let compound = error
        .downcast_ref::<CompoundError<anyhow::Error>>()
        .unwrap();
    assert_eq!(compound.first().0, 1);
}

fn fetch_all_eyre() -> eyre::Result<Vec<u32>> {
    let calls: Vec<_> = (0..4)
        .map(|id| async move {
            if id == 2 {
                return Err(eyre::eyre!("user {id} not found"));
            }
            Ok(id)
        })
        .collect();
    Ok(block_on(gather(calls)).into_result()?)
}

#[test]
fn a_compound_of_eyre_reports_goes_into_eyre_with_the_question_mark() {
    let error = fetch_all_eyre().unwrap_err();
    assert_eq!(
        error.to_string(),
        "1 of 4 futures failed: [2] user 2 not found"
    );
    assert_eq!(error.chain().count(), 1);
}

#[test]
fn until_error_with_reports_each_success_to_a_closure() {
    use std::pin::pin;
    let jobs = gather(vec![
        ready(Ok(1)),
        ready(Ok(2)),
        ready(Err("full")),
        ready(Ok(4)),
    ]);
    let mut rest = pin!(jobs.as_completed());
    let mut seen = Vec::new();
    let first = block_on(
        rest.as_mut()
            .until_error_with(|index, value| seen.push((index, value))),
    );
    assert_eq!(first, Err((2, "full")));
    assert_eq!(seen, [(0, 1), (1, 2)]);
    assert_eq!(rest.len(), 1, "the last job is still in the stream");
}

#[test]
fn into_parts_splits_indexed_successes_from_the_compound_error() {
    let gathered = block_on(gather(statuses().to_vec()));
    assert_eq!(
        gathered.indexed_successes().collect::<Vec<_>>(),
        [(0, &"a"), (2, &"c")]
    );
    let (successes, errors) = gathered.into_parts();
    assert_eq!(successes, [(0, "a"), (2, "c")]);
    assert_eq!(
        errors.unwrap().iter().collect::<Vec<_>>(),
        [(1, &500), (3, &503)]
    );

    let (all, none) = block_on(gather([ready(Ok::<_, ()>(1))])).into_parts();
    assert_eq!((all, none), (vec![(0, 1)], None));
}

#[test]
fn a_gather_iter_is_named_without_smallvec_in_scope() {
    fn squares(n: u32) -> gather::GatherIter<impl Iterator<Item = std::future::Ready<u32>>> {
        gather::gather_iter((0..n).map(|i| ready(i * i)))
    }
    let outputs: gather::SmallVec<[u32; 4]> = block_on(squares(5)).into_results();
    assert_eq!(outputs.into_vec(), [0, 1, 4, 9, 16]);
}

#[test]
fn a_compound_error_is_unwind_safe_when_its_errors_are() {
    fn unwind_safe<T: std::panic::UnwindSafe>(_: &T) {}
    // `Cell` is `UnwindSafe` but not `RefUnwindSafe`: an owned list of them is unwind safe.
    let gathered = block_on(gather(vec![
        ready(Err::<(), _>(std::cell::Cell::new(1))),
        ready(Err(std::cell::Cell::new(2))),
    ]));
    let error: CompoundError<std::cell::Cell<i32>> = gathered.into_compound_error().unwrap();
    unwind_safe(&error);
    let caught = std::panic::catch_unwind(move || error.len());
    assert_eq!(caught.ok(), Some(2));
}
