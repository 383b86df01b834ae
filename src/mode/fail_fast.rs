//! The fail-fast driver: settle-all that completes at the first error.

use core::cell::Cell;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::FusedFuture;

use crate::engine::slots::{ResultSlots, Slots};
use crate::engine::After;
use crate::gather::{assert_fresh, Gather, Outputs};
use crate::input::Input;
use crate::layer::{Layer, NoDeadline};
use crate::results::compound::CompoundError;
use crate::results::gathered::Outcomes;

/// Every success of a gather over `I`, in input order.
type Successes<I> = <Outputs<I> as Outcomes>::Successes;
/// The compound error of a gather over `I`.
type Errors<I> = CompoundError<<Outputs<I> as Outcomes>::Error, <Outputs<I> as Outcomes>::Store>;

impl<I: Input, L> Gather<I, L> {
    /// Resolves at the first error instead of waiting for every child.
    ///
    /// The future resolves to `Ok` with every success in input order when every child
    /// succeeds, or to `Err` with a [`CompoundError`](crate::CompoundError) as soon as a
    /// child returns an `Err`: the poll that sees the error polls no other child, and
    /// every child still running is dropped before the future returns. The error holds
    /// that child's error, with its index ([`first`](crate::CompoundError::first)). When a
    /// [deadline](Gather::deadline) fires, it holds every child the deadline cut off.
    ///
    /// This is `try_join_all`, and Python's `asyncio.TaskGroup`.
    ///
    /// # Panics
    ///
    /// Panics if the gather was already polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use gather::gather;
    /// # use core::future::{pending, ready};
    /// # use futures::executor::block_on;
    /// use std::future::Future;
    /// use std::pin::Pin;
    ///
    /// type Call = Pin<Box<dyn Future<Output = Result<u32, &'static str>>>>;
    /// let calls: Vec<Call> = vec![
    ///     Box::pin(ready(Ok(1))),
    ///     Box::pin(pending()), // never finishes, and need not: it is dropped
    ///     Box::pin(ready(Err("refused"))),
    /// ];
    /// let error = block_on(gather(calls).fail_fast()).unwrap_err();
    /// assert_eq!(error.first(), (2, &"refused"));
    ///
    /// let fine = block_on(gather([ready(Ok::<_, ()>(1)), ready(Ok(2))]).fail_fast());
    /// assert_eq!(fine, Ok([1, 2]));
    /// ```
    pub fn fail_fast(self) -> FailFast<I, L>
    where
        I::Slots: ResultSlots,
    {
        assert_fresh!(self, "fail_fast");
        FailFast::new(self)
    }
}

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
    pub struct FailFast<I, L = NoDeadline>
    where
        I: Input,
    {
        #[pin]
        gather: Gather<I, L>,
    }
}

impl<I: Input, L> FailFast<I, L> {
    pub(crate) fn new(gather: Gather<I, L>) -> Self {
        FailFast { gather }
    }
}

impl<I, L> Future for FailFast<I, L>
where
    I: Input,
    I::Slots: ResultSlots,
    L: Layer<I::Slots>,
{
    type Output = Result<Successes<I>, Errors<I>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Without a deadline, the first failure ends the pass: its error is taken from its
        // slot there and then (the one check that it is an `Err`), with the child's slot.
        // With one, the deadline's cut-off fails every child still running in one pass:
        // the failures are counted, and taken once the pass is done.
        let first = Cell::new(None);
        let failed = Cell::new(0);
        let finished = |slots: Pin<&mut I::Slots>, i| {
            if L::CUTS_OFF {
                if !slots.is_err(i) {
                    return After::Continue;
                }
                failed.set(failed.get() + 1);
                return After::Complete;
            }
            match slots.take_err(i) {
                None => After::Continue,
                Some(error) => {
                    first.set(Some((i, error)));
                    After::Complete
                }
            }
        };
        self.project()
            .gather
            .poll_with::<false, _>(cx, finished, |mut slots, _| {
                let errors = if L::GRACEFUL {
                    // The stop is over: whatever failed in any poll of it.
                    L::take_failures(slots.as_mut(), failed.get())
                } else if L::CUTS_OFF {
                    match failed.get() {
                        0 => None,
                        failed => slots.as_mut().take_errors(failed),
                    }
                } else {
                    first.take().map(|(i, error)| {
                        CompoundError::one(slots.children(), slots.input_index(i), error)
                    })
                };
                let Some(errors) = errors else {
                    return Ok(slots.take_successes());
                };
                // The children still running go before the error is handed back. (If one of
                // their drops panics, the errors taken so far go with the panic.)
                slots.clear();
                Err(errors)
            })
    }
}

impl<I: Input, L: Layer<I::Slots>> FusedFuture for FailFast<I, L>
where
    I::Slots: ResultSlots,
{
    fn is_terminated(&self) -> bool {
        self.gather.is_terminated()
    }
}

impl<I: Input, L> fmt::Debug for FailFast<I, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FailFast").field(&self.gather).finish()
    }
}
