//! The as-completed driver: a stream of `(index, output)` in completion order.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use futures_core::{FusedStream, Stream};

use crate::engine::slots::{Slots, UniformSlots};
use crate::engine::{After, Pass};
use crate::gather::{assert_fresh, Gather};
use crate::input::Input;
use crate::layer::{Layer, NoDeadline};

/// One output of a gather over `I`.
type Output<I> = <<I as Input>::Slots as UniformSlots>::Output;

impl<I: Input, L> Gather<I, L> {
    /// Turns the gather into a stream of `(index, output)` in completion order:
    /// `asyncio.as_completed`.
    ///
    /// The caller may stop reading at any point and resume later; the children still
    /// running stay inside the stream (and are polled only while it is polled) until it is
    /// dropped, which drops them. Arrays, `Vec`s and `SmallVec`s; for a tuple, whose
    /// outputs differ in type, gather a settled result instead. See
    /// [`AsCompleted::next_completed`] and [`AsCompleted::until_error`] for
    /// `asyncio.wait(FIRST_COMPLETED)` and `asyncio.wait(FIRST_EXCEPTION)`.
    ///
    /// # Panics
    ///
    /// Panics if the gather was already polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use core::pin::pin;
    /// use gather::gather;
    /// # use futures::executor::block_on;
    ///
    /// async fn call(id: u32, ticks: u32) -> u32 {
    ///     for _ in 0..ticks {
    ///         yield_now().await;
    ///     }
    ///     id
    /// }
    /// # async fn yield_now() {
    /// #     let mut yielded = false;
    /// #     core::future::poll_fn(|cx| {
    /// #         if yielded { return core::task::Poll::Ready(()) }
    /// #         yielded = true;
    /// #         cx.waker().wake_by_ref();
    /// #         core::task::Poll::Pending
    /// #     }).await
    /// # }
    ///
    /// let mut calls = pin!(gather([call(0, 3), call(1, 0), call(2, 1)]).as_completed());
    /// let mut order = Vec::new();
    /// while let Some((index, id)) = block_on(calls.as_mut().next_completed()) {
    ///     assert_eq!(index as u32, id);
    ///     order.push(index);
    /// }
    /// assert_eq!(order, [1, 2, 0]);
    /// ```
    pub fn as_completed(self) -> AsCompleted<I, L>
    where
        I::Slots: UniformSlots,
    {
        assert_fresh!(self, "as_completed");
        AsCompleted::new(self)
    }
}

pin_project_lite::pin_project! {
    /// Stream for [`Gather::as_completed`].
    ///
    /// Yields `(index, output)` for each child as it finishes, in completion order, then
    /// `None`. Children that finished between two polls come out one per item in the order
    /// the gather polls them (see "Wakes and fairness" on [`Gather`](crate::Gather)): in
    /// wake order with per-child wakers, else in input order from the child after the last
    /// one yielded. Its
    /// [`size_hint`](Stream::size_hint) is exact: the children not yielded yet.
    ///
    /// # Cancellation
    ///
    /// The children still running stay inside while the stream lives, and are polled only
    /// while it is polled; dropping the stream drops them. Outputs already yielded belong to
    /// the caller.
    #[must_use = "streams do nothing unless polled"]
    pub struct AsCompleted<I, L = NoDeadline>
    where
        I: Input,
    {
        #[pin]
        gather: Gather<I, L>,
    }
}

impl<I: Input, L> AsCompleted<I, L> {
    fn new(gather: Gather<I, L>) -> Self {
        AsCompleted { gather }
    }
}

impl<I, L> AsCompleted<I, L>
where
    I: Input,
    I::Slots: UniformSlots,
    L: Layer<I::Slots>,
{
    /// The next child to finish, as `(index, output)`; `None` once every child has been
    /// yielded. The children still running stay in the stream: this is
    /// `asyncio.wait(return_when=FIRST_COMPLETED)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use core::pin::pin;
    /// use gather::gather;
    /// # use core::future::{pending, ready, Future};
    /// # use futures::executor::block_on;
    /// # type Call = std::pin::Pin<Box<dyn Future<Output = &'static str>>>;
    ///
    /// let calls: Vec<Call> = vec![Box::pin(pending()), Box::pin(ready("fast"))];
    /// let mut rest = pin!(gather(calls).as_completed());
    /// assert_eq!(block_on(rest.as_mut().next_completed()), Some((1, "fast")));
    /// assert_eq!(rest.len(), 1, "the slow call is still running, inside `rest`");
    /// ```
    pub fn next_completed(self: Pin<&mut Self>) -> NextCompleted<'_, I, L> {
        NextCompleted { stream: self }
    }

    /// How many children have not been yielded yet: of a lazy input
    /// ([`gather_iter`](crate::gather_iter), [`gather_stream`](crate::gather_stream)),
    /// those taken out of it so far (more may come: see [`is_empty`](Self::is_empty)).
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// assert_eq!(gather::gather([ready(1), ready(2)]).as_completed().len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.gather.remaining()
    }

    /// Whether every child has been yielded (of a lazy input, also: its input has ended).
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::Ready;
    /// let none: [Ready<u8>; 0] = [];
    /// assert!(gather::gather(none).as_completed().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.gather.intake_ended()
    }
}

impl<I, V, E, L> AsCompleted<I, L>
where
    I: Input,
    I::Slots: UniformSlots<Output = Result<V, E>>,
    L: Layer<I::Slots>,
{
    /// Runs until the first child fails, putting each success into `done` as
    /// `(index, value)` in completion order. Resolves to `Err((index, error))` for the
    /// first failure, with the children still running left in the stream, or to `Ok(())`
    /// once every child has succeeded: `asyncio.wait(return_when=FIRST_EXCEPTION)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use core::pin::pin;
    /// use gather::gather;
    /// # use core::future::{pending, ready, Future};
    /// # use futures::executor::block_on;
    /// # type Call = std::pin::Pin<Box<dyn Future<Output = Result<u32, &'static str>>>>;
    ///
    /// let calls: Vec<Call> =
    ///     vec![Box::pin(ready(Ok(1))), Box::pin(ready(Err("refused"))), Box::pin(pending())];
    /// let mut rest = pin!(gather(calls).as_completed());
    /// let mut done = Vec::new();
    /// assert_eq!(block_on(rest.as_mut().until_error(&mut done)), Err((1, "refused")));
    /// assert_eq!(done, [(0, 1)]);
    /// assert_eq!(rest.len(), 1);
    /// ```
    pub fn until_error<'a, C: Extend<(usize, V)>>(
        self: Pin<&'a mut Self>,
        done: &'a mut C,
    ) -> UntilError<'a, I, &'a mut C, L> {
        UntilError { stream: self, done }
    }

    /// As [`until_error`](Self::until_error), calling `each(index, value)` for each
    /// success as it comes (to report progress, say) instead of collecting them.
    ///
    /// # Examples
    ///
    /// ```
    /// use core::pin::pin;
    /// use gather::gather;
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    ///
    /// let jobs = gather([ready(Ok(10)), ready(Ok(20)), ready(Err("disk full"))]);
    /// let mut rest = pin!(jobs.as_completed());
    /// let mut total = 0;
    /// let first_error = block_on(rest.as_mut().until_error_with(|_, bytes| total += bytes));
    /// assert_eq!((first_error, total), (Err((2, "disk full")), 30));
    /// ```
    pub fn until_error_with<F: FnMut(usize, V)>(
        self: Pin<&mut Self>,
        each: F,
    ) -> UntilError<'_, I, ForEach<F>, L> {
        UntilError {
            stream: self,
            done: ForEach(each),
        }
    }
}

impl<I, L> Stream for AsCompleted<I, L>
where
    I: Input,
    I::Slots: UniformSlots,
    L: Layer<I::Slots>,
{
    type Item = (usize, Output<I>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let gather = self.project().gather;
        if gather.is_done() {
            return Poll::Ready(None);
        }
        gather.poll_with::<true, _>(
            cx,
            |_, _| After::Yield,
            |slots, pass| match pass {
                Pass::Yielded(slot) => Some((slots.input_index(slot), slots.take_one(slot))),
                Pass::Complete => None,
            },
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // A lazy input may still take children in: then only the lower bound is known.
        let left = self.gather.remaining();
        (left, self.gather.intake_ended().then_some(left))
    }
}

impl<I, L> FusedStream for AsCompleted<I, L>
where
    I: Input,
    I::Slots: UniformSlots,
    L: Layer<I::Slots>,
{
    fn is_terminated(&self) -> bool {
        self.gather.is_done()
    }
}

impl<I: Input, L> fmt::Debug for AsCompleted<I, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AsCompleted").field(&self.gather).finish()
    }
}

/// Future for [`AsCompleted::next_completed`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct NextCompleted<'a, I: Input, L = NoDeadline> {
    stream: Pin<&'a mut AsCompleted<I, L>>,
}

impl<I, L> Future for NextCompleted<'_, I, L>
where
    I: Input,
    I::Slots: UniformSlots,
    L: Layer<I::Slots>,
{
    type Output = Option<(usize, Output<I>)>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.stream.as_mut().poll_next(cx)
    }
}

impl<I: Input, L> fmt::Debug for NextCompleted<'_, I, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NextCompleted").field(&self.stream).finish()
    }
}

/// Future for [`AsCompleted::until_error`] and [`AsCompleted::until_error_with`]: `D` is
/// where the successes go (`&mut C` for a collection `C`, or [`ForEach`] for a closure).
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct UntilError<'a, I: Input, D, L = NoDeadline> {
    stream: Pin<&'a mut AsCompleted<I, L>>,
    done: D,
}

// The successes' destination is never pinned: it is only ever reached by `&mut`.
impl<I: Input, D, L> Unpin for UntilError<'_, I, D, L> {}

/// The closure of [`AsCompleted::until_error_with`], called with each success.
#[derive(Debug)]
pub struct ForEach<F>(F);

/// Where [`UntilError`] puts each success. Sealed: implemented for `&mut C` where
/// `C: Extend<(usize, V)>`, and for [`ForEach`].
pub trait Done<V>: crate::sealed::Done {
    #[doc(hidden)]
    fn done(&mut self, index: usize, value: V);
}

impl<C> crate::sealed::Done for &mut C {}

impl<V, C: Extend<(usize, V)>> Done<V> for &mut C {
    fn done(&mut self, index: usize, value: V) {
        self.extend(Some((index, value)));
    }
}

impl<F> crate::sealed::Done for ForEach<F> {}

impl<V, F: FnMut(usize, V)> Done<V> for ForEach<F> {
    fn done(&mut self, index: usize, value: V) {
        (self.0)(index, value);
    }
}

impl<I, V, E, D, L> Future for UntilError<'_, I, D, L>
where
    I: Input,
    I::Slots: UniformSlots<Output = Result<V, E>>,
    D: Done<V>,
    L: Layer<I::Slots>,
{
    type Output = Result<(), (usize, E)>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match ready!(this.stream.as_mut().poll_next(cx)) {
                Some((index, Ok(value))) => this.done.done(index, value),
                Some((index, Err(error))) => return Poll::Ready(Err((index, error))),
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<I: Input, D, L> fmt::Debug for UntilError<'_, I, D, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UntilError").field(&self.stream).finish()
    }
}
