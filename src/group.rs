//! [`Group`]: a set of futures that grows while it runs, read as a stream in completion
//! order or awaited whole. One engine with [`Gather`]: the group is a gather whose storage
//! (`input/group.rs`) takes children in between polls.
//!
//! It may use the gather, the engine, the inputs, the modes and the results.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::fmt;
use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use futures_core::{FusedStream, Stream};

use crate::engine::slots::CutOff;
use crate::engine::slots::{Slots, UniformSlots};
use crate::engine::{After, Pass};
use crate::gather::{gather, Gather};
use crate::input::group::{GroupSlots, Pushed};
#[cfg(feature = "std")]
use crate::layer::catch_panics::{CatchPanics, Panicked};
use crate::layer::deadline::{AddDeadline, TimedOut};
use crate::layer::{Layer, NoDeadline};
use crate::mode::fail_fast::FailFast;
use crate::raw::inbox::Inbox;

pin_project_lite::pin_project! {
    /// A set of futures of one type that grows while it runs: `asyncio.TaskGroup` and
    /// `FuturesUnordered` in one, without a runtime, `'static` or `Send`.
    ///
    /// [`push`](Self::push) adds a child at any time (before the group is polled, between
    /// polls, while its outcomes are being read) and returns its index: its place in push
    /// order, from 0. A [`Handle`] pushes from inside the children (the
    /// `TaskGroup.create_task` case) or from anywhere else. Each child gets a waker of its
    /// own, so a wake re-polls that child only, whatever the size of the group; children
    /// live in chunks that grow by doubling and never move, so a pushed child costs no
    /// allocation of its own. Read as a stream, a child's slot takes the next child pushed
    /// once its outcome was handed out: a long-lived group holds as many slots as it ran
    /// children at once, not one per child it ever ran. (Children start in push order all
    /// the same, under a limit too. A wake that a finished child left behind may cost the
    /// next child in its slot one spurious poll, never an early start.)
    ///
    /// Two ways to read it, one engine:
    ///
    /// - **As a [`Stream`]** of `(index, output)` in completion order (like
    ///   [`Gather::as_completed`]). The stream ends (`None`) when every child pushed so far
    ///   has been handed out, and starts again when more are pushed: as with
    ///   `FuturesUnordered`, `None` means "empty for now", and
    ///   [`is_terminated`](FusedStream::is_terminated) is `true` from that `None` until the
    ///   next push. Children that finish between two polls of the group come out
    ///   one per poll, each as soon as the group sees it; among those woken in the same
    ///   interval the order is not promised. (Under a sustained load of children that keep
    ///   waking themselves, the chunks take turns: nothing starves, but the children of a
    ///   small chunk may be polled up to a few times as often as those of a large one.)
    /// - **Awaited whole** (it is [`IntoFuture`]): a [`Gathered`](crate::Gathered) of every
    ///   outcome in push order, once every child has finished; or, with
    ///   [`fail_fast`](Self::fail_fast), every success in push order or the first error with
    ///   its index, the children still running dropped before it returns. A group whose
    ///   stream has handed an outcome out cannot be awaited whole (that outcome is no longer
    ///   in it): doing so panics.
    ///
    /// [`limit(n)`](Self::limit) runs at most `n` children at once: the others wait, in
    /// push order, without being polled. [`deadline(timer)`](Self::deadline) and
    /// [`catch_panics()`](Self::catch_panics) work as on a [`Gather`].
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
        assert_fresh("limit", &self.gather);
        Group {
            gather: self.gather.limit(n),
            ..self
        }
    }

    /// Gives the group a deadline: when `timer` finishes, every child still running (or
    /// waiting under a limit) is dropped and counts as `Err(E::from(TimedOut { index }))`,
    /// and so does every child pushed after the group saw it finish, unpolled. (The group
    /// polls its timer when it is polled, after its children, and not at all while its
    /// stream has nothing to hand out: a child pushed between the timer's end and the poll
    /// that sees it is polled once by that poll.) See [`Gather::deadline`]. The
    /// timer is boxed, so that the group stays `Unpin` (and [`push`](Self::push) takes
    /// `&mut self`) whatever the timer.
    ///
    /// # Panics
    ///
    /// If the group has been polled already.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use gather::{Group, TimedOut};
    /// # use core::future::{pending, ready, Future};
    /// # use std::pin::Pin;
    /// # futures::executor::block_on(async {
    ///
    /// type Call = Pin<Box<dyn Future<Output = Result<u8, TimedOut>>>>;
    /// let mut group: Group<Call, _> = Group::new().deadline(ready(()));
    /// group.push(Box::pin(pending()));
    /// assert_eq!(group.next().await, Some((0, Err(TimedOut { index: 0 }))));
    /// # });
    /// ```
    pub fn deadline<T: Future>(self, timer: T) -> Group<F, L::With<Pin<Box<T>>>>
    where
        L: AddDeadline,
        GroupSlots<F>: CutOff<TimedOut>,
    {
        assert_fresh("deadline", &self.gather);
        Group {
            gather: self.gather.deadline(Box::pin(timer)),
            handed_out: self.handed_out,
            terminated: self.terminated,
        }
    }

    /// Catches a child's panic: the child is dropped and counts as
    /// `Err(E::from(Panicked { index, payload }))`, its siblings go on. See
    /// [`Gather::catch_panics`]. Feature `std`.
    ///
    /// # Panics
    ///
    /// If the group has been polled already.
    #[cfg(feature = "std")]
    pub fn catch_panics(self) -> Group<F, CatchPanics<L>>
    where
        GroupSlots<F>: CutOff<Panicked>,
    {
        assert_fresh("catch_panics", &self.gather);
        Group {
            gather: self.gather.catch_panics(),
            handed_out: self.handed_out,
            terminated: self.terminated,
        }
    }

    /// Adds `future` to the group and returns its index: how many were pushed before it.
    ///
    /// The child is first polled at the group's next poll (under a [`limit`](Self::limit),
    /// once a place is free).
    ///
    /// # Panics
    ///
    /// If the group needs more than 4,294,967,296 slots (the per-child wakers number a
    /// chunk's slots in 32 bits): a slot is reused once its outcome was handed out, so
    /// only a group that holds that many children at once, or is awaited whole after that
    /// many pushes, gets there.
    pub fn push(&mut self, future: F) -> usize {
        let index = self.gather.storage_mut().push(future);
        self.gather.reopen();
        self.terminated = false;
        index
    }

    /// A handle that pushes children into this group from anywhere: from inside its
    /// children (the `TaskGroup.create_task` case, a crawler's), or from another task or
    /// thread. See [`Handle`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::Future;
    /// use std::pin::Pin;
    ///
    /// use gather::{Group, Handle};
    /// # futures::executor::block_on(async {
    ///
    /// // A child that finds more work pushes it into its own group. (The children are
    /// // boxed: each holds a handle to a group of children of its own type.)
    /// type Job<'a> = Pin<Box<dyn Future<Output = u32> + 'a>>;
    /// fn job<'a>(n: u32, group: Handle<Job<'a>>) -> Job<'a> {
    ///     Box::pin(async move {
    ///         if n < 4 {
    ///             group.push(job(n + 1, group.clone())).ok().expect("the group runs");
    ///         }
    ///         n
    ///     })
    /// }
    /// let mut group = Group::new();
    /// let handle = group.handle();
    /// group.push(job(0, handle));
    /// let gathered = group.await;
    /// assert_eq!(gathered.into_results(), [0, 1, 2, 3, 4]);
    /// # });
    /// ```
    pub fn handle(&mut self) -> Handle<F> {
        Handle {
            inbox: self.gather.storage_mut().inbox(),
        }
    }

    /// How many children were pushed in all (through a [`Handle`]: counted from the
    /// group's next poll, or the owner's next push).
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

/// A builder method of a group must come before its first poll.
fn assert_fresh<F: Future, L>(method: &str, gather: &Gather<Pushed<F>, L>) {
    assert!(
        gather.is_fresh(),
        "`Group::{method}` called after the group was first polled"
    );
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
        // Children pushed through handles are taken in by the poll below (where a panic of
        // the executor's waker, registered there, poisons the group as any other would).
        if this.gather.remaining() == 0 && !this.gather.storage().has_pushed() {
            // Empty for now: ended, until the next push.
            *this.terminated = true;
            return Poll::Ready(None);
        }
        // Children to wait for (a handle's pushes among them): not ended, even if this
        // poll leaves them pending.
        *this.terminated = false;
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
        // Until the next push: the owner's resets the flag, a handle's shows in the inbox.
        self.terminated && !self.gather.storage().has_pushed()
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

/// Pushes children into a [`Group`] while it runs, from inside its children or from
/// anywhere else: what `TaskGroup.create_task` is to a running `asyncio.TaskGroup`.
/// Made by [`Group::handle`]; cheap to clone.
///
/// A pushed child joins the group at its next poll (the push wakes the group's task) and
/// gets the next index in push order, shared with [`Group::push`]. Settle-all and
/// fail-fast cover it like any other child, and so do the limit, the deadline (a child
/// pushed after it fired is cut off unpolled) and `catch_panics`.
///
/// **How borrowing works.** A handle owns a reference-counted share of the group's inbox,
/// not a borrow of the group: children hold it without `'static` (its type carries their
/// own lifetime) and without `Send` unless they need it (a handle is `Send` and `Sync`
/// when the children are `Send`). This is `moro`'s answer rather than `async-scoped`'s:
/// the children run only inside the group, polled by it, never spawned, so nothing
/// pushed can run after the group is gone and no unsafe "block on drop" is needed. Since
/// a child's type then names the group's child type, children that push are boxed (a
/// `Pin<Box<dyn Future + 'a>>`), as `moro`'s spawned futures are.
///
/// Once the group has completed (awaited whole), failed (fail-fast) or been dropped, a
/// push is refused: [`push`](Self::push) hands the future back. A child pushed just before
/// a fail-fast group fails is dropped with the children still running.
pub struct Handle<F> {
    inbox: Arc<Inbox<F>>,
}

impl<F> Handle<F> {
    /// Pushes `future` into the group: its index, or `Err(future)` if the group is done.
    pub fn push(&self, future: F) -> Result<usize, F> {
        self.inbox.push(future)
    }
}

impl<F> Clone for Handle<F> {
    fn clone(&self) -> Self {
        Handle {
            inbox: self.inbox.clone(),
        }
    }
}

impl<F> fmt::Debug for Handle<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handle")
    }
}
