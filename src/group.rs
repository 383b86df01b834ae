//! [`Group`]: a set of futures that grows while it runs, read as a stream in completion
//! order or awaited whole. One engine with [`Gather`]: the group is a gather whose storage
//! (`input/group.rs`) takes children in between polls.
//!
//! It may use the gather, the engine, the inputs, the modes and the results.

use core::fmt;
use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use futures_core::{FusedStream, Stream};

use crate::engine::slots::{Slots, UniformSlots};
use crate::engine::{After, Pass};
use crate::gather::{assert_fresh, gather, Gather};
use crate::input::group::Pushed;
use crate::layer::{Layer, NoDeadline};
use crate::mode::fail_fast::FailFast;

pin_project_lite::pin_project! {
    /// A set of futures of one type that grows while it runs: `asyncio.TaskGroup` and
    /// `FuturesUnordered` in one, without a runtime, `'static` or `Send`.
    ///
    /// [`push`](Self::push) adds a child at any time (before the group is polled, between
    /// polls, while its outcomes are being read) and returns its index: its place in push
    /// order, from 0. Each child gets a waker of its own, so a wake re-polls that child
    /// only, whatever the size of the group; children live in chunks that double in size
    /// and never move, so a pushed child costs no allocation of its own.
    ///
    /// Two ways to read it, one engine:
    ///
    /// - **As a [`Stream`]** of `(index, output)` in completion order (like
    ///   [`Gather::as_completed`]). The stream ends (`None`) when every child pushed so far
    ///   has been handed out, and starts again when more are pushed: as with
    ///   `FuturesUnordered`, `None` means "empty for now", and
    ///   [`is_terminated`](FusedStream::is_terminated) is `true` from that `None` until the
    ///   next push.
    /// - **Awaited whole** (it is [`IntoFuture`]): a [`Gathered`](crate::Gathered) of every
    ///   outcome in push order, once every child has finished; or, with
    ///   [`fail_fast`](Self::fail_fast), every success in push order or the first error with
    ///   its index, the children still running dropped before it returns. A group whose
    ///   stream has handed an outcome out cannot be awaited whole (that outcome is no longer
    ///   in it): doing so panics.
    ///
    /// [`limit(n)`](Self::limit) runs at most `n` children at once: the others wait, in
    /// push order, without being polled.
    ///
    /// Dropping the group drops every child still in it.
    ///
    /// # Examples
    ///
    /// As a stream, pushing while reading:
    ///
    /// ```
    /// use futures::StreamExt;
    /// use gather::Group;
    /// # use core::future::{ready, Ready};
    /// # futures::executor::block_on(async {
    ///
    /// let mut group: Group<Ready<u32>> = Group::new();
    /// group.push(ready(1));
    /// let mut seen = Vec::new();
    /// while let Some((index, n)) = group.next().await {
    ///     seen.push((index, n));
    ///     if n < 3 {
    ///         group.push(ready(n + 1)); // a follow-up for each result, until 3
    ///     }
    /// }
    /// assert_eq!(seen, [(0, 1), (1, 2), (2, 3)]);
    /// # });
    /// ```
    ///
    /// Awaited whole, every outcome in push order:
    ///
    /// ```
    /// use gather::Group;
    /// # use core::future::ready;
    /// # futures::executor::block_on(async {
    ///
    /// let mut group = Group::new();
    /// for n in 0..4 {
    ///     group.push(ready(if n % 2 == 0 { Ok(n) } else { Err(n) }));
    /// }
    /// let gathered = group.await;
    /// assert_eq!(gathered.successes().copied().collect::<Vec<_>>(), [0, 2]);
    /// assert_eq!(gathered.errors().map(|(i, e)| (i, *e)).collect::<Vec<_>>(), [(1, 1), (3, 3)]);
    /// # });
    /// ```
    #[must_use = "streams do nothing unless polled"]
    pub struct Group<F, L = NoDeadline>
    where
        F: Future,
    {
        #[pin]
        gather: Gather<Pushed<F>, L>,
        // Whether the stream has handed an outcome out (the group can no longer be
        // awaited whole).
        handed_out: bool,
        // Whether the stream has ended and nothing was pushed since.
        terminated: bool,
    }
}

impl<F: Future> Group<F> {
    /// An empty group.
    pub fn new() -> Self {
        Group {
            gather: gather(Pushed::new()),
            handed_out: false,
            terminated: false,
        }
    }
}

impl<F: Future> Default for Group<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Future, L> Group<F, L> {
    /// Runs at most `n` children at once; the others wait in push order, not polled (not
    /// started) until a place frees up.
    ///
    /// # Panics
    ///
    /// If `n` is zero, or if the group has been polled already.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use gather::Group;
    /// # use core::future::{ready, Ready};
    /// # futures::executor::block_on(async {
    ///
    /// let mut group: Group<Ready<char>> = Group::new().limit(2);
    /// group.push(ready('a'));
    /// group.push(ready('b'));
    /// group.push(ready('c'));
    /// assert_eq!(group.collect::<Vec<_>>().await, [(0, 'a'), (1, 'b'), (2, 'c')]);
    /// # });
    /// ```
    pub fn limit(self, n: usize) -> Self {
        assert!(n > 0, "`Group::limit(0)` would never start a future");
        assert_fresh!(self.gather, "limit");
        Group {
            gather: self.gather.limit(n),
            ..self
        }
    }

    /// Adds `future` to the group and returns its index: how many were pushed before it.
    ///
    /// The child is first polled at the group's next poll (under a [`limit`](Self::limit),
    /// once a place is free).
    ///
    /// # Panics
    ///
    /// If the group has had `u32::MAX` children (the per-child wakers number them in 32
    /// bits).
    pub fn push(&mut self, future: F) -> usize {
        let index = self.gather.storage_mut().push(future);
        self.gather.reopen();
        self.terminated = false;
        index
    }

    /// How many children were pushed in all: the index the next push gets.
    pub fn len(&self) -> usize {
        self.gather.len()
    }

    /// Whether no child was ever pushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many children have not finished yet (running, or waiting under a limit).
    pub fn running(&self) -> usize {
        self.gather.remaining()
    }

    /// Fail-fast: awaited, every success in push order, or at the first error (with its
    /// index, and any other error seen in the same poll) the children still running are
    /// dropped and the error is returned. See [`Gather::fail_fast`].
    ///
    /// # Panics
    ///
    /// If the stream has handed an outcome out already.
    ///
    /// # Examples
    ///
    /// ```
    /// use gather::Group;
    /// # use core::future::{pending, ready, Future};
    /// # use std::pin::Pin;
    /// # futures::executor::block_on(async {
    ///
    /// let mut group: Group<Pin<Box<dyn Future<Output = Result<u8, &str>>>>> = Group::new();
    /// group.push(Box::pin(pending()));
    /// group.push(Box::pin(ready(Err("refused"))));
    /// let error = group.fail_fast().await.unwrap_err();
    /// assert_eq!(error.first(), (1, &"refused"));
    /// # });
    /// ```
    pub fn fail_fast<T, E>(self) -> FailFast<Pushed<F>, L>
    where
        F: Future<Output = Result<T, E>>,
    {
        FailFast::new(self.into_gather("fail_fast"))
    }

    /// Settle-all, what `.await` on the group does: every outcome in push order, once
    /// every child has finished. (Named, for when `StreamExt::into_future` is in scope too.)
    ///
    /// # Panics
    ///
    /// If the stream has handed an outcome out already.
    pub fn settle_all(self) -> Gather<Pushed<F>, L> {
        self.into_gather("settle_all")
    }

    fn into_gather(self, how: &str) -> Gather<Pushed<F>, L> {
        assert!(
            !self.handed_out,
            "`Group::{how}` after its stream handed an outcome out: that outcome is no longer in the group"
        );
        self.gather
    }
}

impl<F: Future, L: Layer<<Pushed<F> as crate::input::Input>::Slots>> IntoFuture for Group<F, L> {
    type Output = <Gather<Pushed<F>, L> as Future>::Output;
    type IntoFuture = Gather<Pushed<F>, L>;

    /// Every outcome in push order, once every child has finished.
    ///
    /// # Panics
    ///
    /// If the stream has handed an outcome out already.
    fn into_future(self) -> Self::IntoFuture {
        self.settle_all()
    }
}

impl<F, L> Stream for Group<F, L>
where
    F: Future,
    L: Layer<<Pushed<F> as crate::input::Input>::Slots>,
{
    type Item = (usize, F::Output);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if this.gather.remaining() == 0 {
            // Empty for now: ended, until the next push.
            *this.terminated = true;
            return Poll::Ready(None);
        }
        let item = ready!(this.gather.poll_with::<true, _>(
            cx,
            |_, _| After::Yield,
            |slots, pass| match pass {
                Pass::Yielded(slot) => Some((slots.input_index(slot), slots.take_one(slot))),
                Pass::Complete => None,
            },
        ));
        *this.handed_out |= item.is_some();
        *this.terminated = item.is_none();
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // More may be pushed: only the children in the group now are known.
        (self.gather.remaining(), None)
    }
}

impl<F, L> FusedStream for Group<F, L>
where
    F: Future,
    L: Layer<<Pushed<F> as crate::input::Input>::Slots>,
{
    fn is_terminated(&self) -> bool {
        self.terminated
    }
}

impl<F: Future, L> fmt::Debug for Group<F, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("len", &self.len())
            .field("running", &self.running())
            .field("terminated", &self.terminated)
            .finish()
    }
}
