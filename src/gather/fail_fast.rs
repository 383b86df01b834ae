//! The fail-fast driver: settle-all that completes at the first error.

use core::cell::Cell;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::FusedFuture;

use super::deadline::{Layer, NoDeadline};
use super::engine::After;
use super::slots::{ResultSlots, Slots};
use super::{Gather, Input};
use crate::gathered::Outcomes;
use crate::CompoundError;

/// The outcomes of a gather over `I`.
type OutcomesOf<I> = <<I as Input>::Slots as Slots>::Outputs;
/// Every success of a gather over `I`, in input order.
type Successes<I> = <OutcomesOf<I> as Outcomes>::Successes;
/// The compound error of a gather over `I`.
type Errors<I> =
    CompoundError<<OutcomesOf<I> as Outcomes>::Error, <OutcomesOf<I> as Outcomes>::Store>;

pin_project_lite::pin_project! {
    /// Future for [`Gather::fail_fast`].
    ///
    /// Resolves to every success in input order, or at the first error to a
    /// [`CompoundError`] naming the child that failed.
    ///
    /// # Panics
    ///
    /// Polling it again after it resolved panics; so does polling it after a child panicked
    /// out of an earlier poll.
    ///
    /// # Cancellation
    ///
    /// Dropping it drops every child still running and every output already stored, each
    /// exactly once. When it resolves to an error, every child still running has already
    /// been dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use gather::{gather, CompoundError, FailFast, Inline};
    /// # use core::future::{ready, Ready};
    /// # use futures::executor::block_on;
    ///
    /// let checks: FailFast<[Ready<Result<u8, &str>>; 2]> =
    ///     gather([ready(Ok(1)), ready(Err("disk full"))]).fail_fast();
    /// let error: CompoundError<&str, Inline<2>> = block_on(checks).unwrap_err();
    /// assert_eq!(error.to_string(), "1 of 2 futures failed: [1] disk full");
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct FailFast<I, T = NoDeadline>
    where
        I: Input,
    {
        #[pin]
        gather: Gather<I, T>,
    }
}

impl<I: Input, T> FailFast<I, T> {
    pub(super) fn new(gather: Gather<I, T>) -> Self {
        FailFast { gather }
    }
}

impl<I, T> Future for FailFast<I, T>
where
    I: Input,
    I::Slots: ResultSlots,
    T: Layer<I::Slots>,
{
    type Output = Result<Successes<I>, Errors<I>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Counted by the pass, read by the driver's work once the pass is done.
        let failed = Cell::new(0);
        let finished = |slots: Pin<&mut I::Slots>, i| {
            if slots.is_err(i) {
                failed.set(failed.get() + 1);
                After::Complete
            } else {
                After::Continue
            }
        };
        self.project()
            .gather
            .poll_with(cx, finished, |mut slots, _| {
                if failed.get() == 0 {
                    return slots.take_outputs().into_split();
                }
                let errors = CompoundError::collect(slots.len(), failed.get(), |i| {
                    slots.as_mut().take_err(i)
                });
                // The children still running go before the error is handed back. (If one of
                // their drops panics, the errors taken so far go with the panic.)
                slots.clear();
                Err(errors.expect("a child failed in this pass"))
            })
    }
}

impl<I: Input, T: Layer<I::Slots>> FusedFuture for FailFast<I, T>
where
    I::Slots: ResultSlots,
{
    fn is_terminated(&self) -> bool {
        self.gather.is_terminated()
    }
}

impl<I: Input, T> fmt::Debug for FailFast<I, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FailFast").field(&self.gather).finish()
    }
}
