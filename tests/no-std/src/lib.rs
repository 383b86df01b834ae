//! Uses `gather` from a `#![no_std]` crate with no allocator: an array and a tuple, with
//! their results and compound errors. Built for `thumbv6m-none-eabi` by `.ci/run`.
#![no_std]

use core::future::{ready, Future, Ready};

use gather::{gather, CompoundError, Gather, Inline};

/// A gather over an array: outcomes stay in place, errors in an inline compound error.
pub async fn sum_or_errors(
    readings: [Ready<Result<u32, u8>>; 4],
) -> Result<u32, CompoundError<u8, Inline<4>>> {
    let successes = gather(readings).await.into_result()?;
    Ok(successes.iter().sum())
}

/// Fail-fast over a tuple of futures with different success types.
pub async fn first_failure() -> Result<(u8, bool), CompoundError<&'static str, Inline<2>>> {
    gather((ready(Ok(1u8)), ready(Err::<bool, _>("sensor offline")))).fail_fast().await
}

/// A gather as a plain value, to show the type.
pub fn sensors() -> Gather<[Ready<u8>; 2]> {
    gather([ready(1), ready(2)])
}

/// Counts the errors of a settled gather.
pub async fn error_count<F: Future<Output = Result<(), u8>>>(children: [F; 3]) -> usize {
    gather(children).await.error_count()
}

/// A graceful stop without an allocator or atomic compare-and-swap: the first failure
/// raises the signal, and the children that see it say they stopped.
pub async fn graceful(stop: &gather::StopSignal) -> usize {
    async fn child(stop: &gather::StopSignal, fails: bool) -> Result<u8, gather::Stopped> {
        if fails {
            return Err(gather::Stopped);
        }
        Err(stop.raised().await)
    }
    gather([child(stop, false), child(stop, true)])
        .graceful(stop, || ready(()))
        .await
        .stopped()
        .count()
}
