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
        // Counted by the pass (the first failure stops it; the deadline's cut-off reports
        // every child it cut off), read by the driver's work once the pass is done.
        let failed = Cell::new(0);
        let first = Cell::new(0);
        // On a bare-metal target, fail-fast without a deadline takes the error out of its
        // slot in the pass that sees it, so that it is checked once: 8 bytes of a
        // fail-fast over `[F; 4]`, where flash counts by the byte. Elsewhere the error is
        // taken after the pass, which keeps the pass lean: a `Vec`'s fail-fast rows are
        // 2-6 % faster on x86 (and code only compiled out, not a constant `false`, keeps
        // the `stop` row's 10 ns per child, not 13).
        #[cfg(target_os = "none")]
        let taken = Cell::new(None);
        let finished = |slots: Pin<&mut I::Slots>, i| {
            #[cfg(target_os = "none")]
            if !L::CUTS_OFF {
                let Some(error) = slots.take_err(i) else {
                    return After::Continue;
                };
                taken.set(Some((i, error)));
                return After::Complete;
            }
            if !slots.is_err(i) {
                return After::Continue;
            }
            if failed.get() == 0 {
                first.set(i);
            }
            failed.set(failed.get() + 1);
            After::Complete
        };
        self.project()
            .gather
            .poll_with::<false, _>(cx, finished, |mut slots, _| {
                if L::GRACEFUL {
                    // The stop is over: whatever failed in any poll of it.
                    return match L::take_failures(slots.as_mut(), failed.get()) {
                        None => Ok(slots.take_successes()),
                        Some(errors) => {
                            slots.clear();
                            Err(errors)
                        }
                    };
                }
                #[cfg(target_os = "none")]
                if !L::CUTS_OFF {
                    let Some((i, error)) = taken.take() else {
                        return Ok(slots.take_successes());
                    };
                    let errors = CompoundError::one(slots.children(), slots.input_index(i), error);
                    slots.clear();
                    return Err(errors);
                }
                // Without a deadline, the pass stopped at its first failure: at most one.
                debug_assert!(L::CUTS_OFF || failed.get() <= 1);
                let failed = if L::CUTS_OFF {
                    failed.get()
                } else {
                    failed.get().min(1)
                };
                let errors = match failed {
                    0 => return Ok(slots.take_successes()),
                    1 => {
                        let (total, index) = (slots.children(), slots.input_index(first.get()));
                        let error = slots.as_mut().take_err(first.get());
                        CompoundError::one(total, index, error.expect("the child failed"))
                    }
                    failed => slots
                        .as_mut()
                        .take_errors(failed)
                        .expect("children failed in this pass"),
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
