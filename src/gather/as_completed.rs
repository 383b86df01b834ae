//! The as-completed driver: a stream of `(index, output)` in completion order.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use futures_core::{FusedStream, Stream};

use super::deadline::{Layer, NoDeadline};
use super::engine::{After, Pass};
use super::slots::UniformSlots;
use super::{Gather, Input};

/// One output of a gather over `I`.
type Output<I> = <<I as Input>::Slots as UniformSlots>::Output;

pin_project_lite::pin_project! {
    /// Stream for [`Gather::as_completed`].
    ///
    /// Yields `(index, output)` for each child as it finishes, in completion order (within
    /// one poll of the stream, lower index first), then `None`. Its
    /// [`size_hint`](Stream::size_hint) is exact: the children not yielded yet.
    ///
    /// # Cancellation
    ///
    /// The children still running stay inside while the stream lives, and are polled only
    /// while it is polled; dropping the stream drops them. Outputs already yielded belong to
    /// the caller.
    #[must_use = "streams do nothing unless polled"]
    pub struct AsCompleted<I, T = NoDeadline>
    where
        I: Input,
    {
        #[pin]
        gather: Gather<I, T>,
    }
}

impl<I: Input, T> AsCompleted<I, T> {
    pub(super) fn new(gather: Gather<I, T>) -> Self {
        AsCompleted { gather }
    }
}

impl<I, T> AsCompleted<I, T>
where
    I: Input,
    I::Slots: UniformSlots,
    T: Layer<I::Slots>,
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
    pub fn next_completed(self: Pin<&mut Self>) -> NextCompleted<'_, I, T> {
        NextCompleted { stream: self }
    }

    /// How many children have not been yielded yet.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// assert_eq!(gather::gather([ready(1), ready(2)]).as_completed().len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.gather.engine.remaining()
    }

    /// Whether every child has been yielded.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::Ready;
    /// let none: [Ready<u8>; 0] = [];
    /// assert!(gather::gather(none).as_completed().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<I, V, E, T> AsCompleted<I, T>
where
    I: Input,
    I::Slots: UniformSlots<Output = Result<V, E>>,
    T: Layer<I::Slots>,
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
    ) -> UntilError<'a, I, C, T> {
        UntilError { stream: self, done }
    }
}

impl<I, T> Stream for AsCompleted<I, T>
where
    I: Input,
    I::Slots: UniformSlots,
    T: Layer<I::Slots>,
{
    type Item = (usize, Output<I>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let gather = self.project().gather;
        if gather.engine.is_terminated() {
            return Poll::Ready(None);
        }
        gather.poll_with(
            cx,
            |_, _| After::Yield,
            |slots, pass| match pass {
                Pass::Yielded(index) => Some((index, slots.take_one(index))),
                Pass::Complete => None,
            },
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.gather.engine.remaining();
        (left, Some(left))
    }
}

impl<I, T> FusedStream for AsCompleted<I, T>
where
    I: Input,
    I::Slots: UniformSlots,
    T: Layer<I::Slots>,
{
    fn is_terminated(&self) -> bool {
        self.gather.engine.is_terminated()
    }
}

impl<I: Input, T> fmt::Debug for AsCompleted<I, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AsCompleted").field(&self.gather).finish()
    }
}

/// Future for [`AsCompleted::next_completed`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct NextCompleted<'a, I: Input, T = NoDeadline> {
    stream: Pin<&'a mut AsCompleted<I, T>>,
}

impl<I, T> Future for NextCompleted<'_, I, T>
where
    I: Input,
    I::Slots: UniformSlots,
    T: Layer<I::Slots>,
{
    type Output = Option<(usize, Output<I>)>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.stream.as_mut().poll_next(cx)
    }
}

impl<I: Input, T> fmt::Debug for NextCompleted<'_, I, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NextCompleted").field(&self.stream).finish()
    }
}

/// Future for [`AsCompleted::until_error`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct UntilError<'a, I: Input, C, T = NoDeadline> {
    stream: Pin<&'a mut AsCompleted<I, T>>,
    done: &'a mut C,
}

impl<I, V, E, C, T> Future for UntilError<'_, I, C, T>
where
    I: Input,
    I::Slots: UniformSlots<Output = Result<V, E>>,
    C: Extend<(usize, V)>,
    T: Layer<I::Slots>,
{
    type Output = Result<(), (usize, E)>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match ready!(this.stream.as_mut().poll_next(cx)) {
                Some((index, Ok(value))) => this.done.extend(Some((index, value))),
                Some((index, Err(error))) => return Poll::Ready(Err((index, error))),
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<I: Input, C, T> fmt::Debug for UntilError<'_, I, C, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UntilError").field(&self.stream).finish()
    }
}
