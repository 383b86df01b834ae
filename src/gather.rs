//! The [`Gather`] future: the entry points ([`gather`], [`gather_iter`], [`gather_stream`]), the builder
//! methods of the layers (`deadline`, `catch_panics`, `limit`), and settle-all, the default
//! mode, whose driver is the future itself. The other modes add their builder methods in
//! `mode/`.
//!
//! It may use the engine, the inputs, the layers and the results; the modes use it.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use futures_core::FusedFuture;

use crate::engine::limit::Limit;
use crate::engine::slots::{CutOff, Slots};
use crate::engine::{After, Engine, Pass};
use crate::input::Input;
#[cfg(feature = "std")]
use crate::layer::catch_panics::{CatchPanics, Panicked};
use crate::layer::deadline::{AddDeadline, TimedOut};
use crate::layer::graceful::{Graceful, StopSignal, StopSlots};
use crate::layer::{Layer, NoDeadline};
use crate::results::gathered::Gathered;

/// Panics unless `$gather` was never polled: builder methods come before the first poll.
macro_rules! assert_fresh {
    ($gather:expr, $method:literal) => {
        assert!(
            $gather.is_fresh(),
            concat!("`Gather::", $method, "` called after the first poll")
        )
    };
}
pub(crate) use assert_fresh;

/// The outputs a gather over `I` collects, in input order.
pub(crate) type Outputs<I> = <<I as Input>::Slots as Slots>::Outputs;

/// Runs every future of `futures` concurrently and resolves to every outcome, in input
/// order, once all of them have finished.
///
/// `futures` is an array `[F; N]` (no allocation), a tuple of up to 12 futures with
/// different output types, or (feature `alloc`) a `Vec<F>` or `SmallVec<[F; K]>`. The
/// futures may borrow local data; they need not be `Send` or `'static`. Nothing runs until
/// the returned [`Gather`] is first polled, and no runtime is involved: the `Gather` polls
/// its children itself, inside whatever executor polls it.
///
/// By default (settle all) it resolves to a [`Gathered`] holding every output, however
/// many failed. [`fail_fast`](Gather::fail_fast) instead stops at the first error. An
/// empty input resolves at the first poll.
///
/// This is Python's `asyncio.gather(*aws, return_exceptions=True)`.
///
/// # Examples
///
/// ```
/// use gather::gather;
/// # use core::future::ready;
/// # use futures::executor::block_on;
///
/// let names = ["ada", "grace", "barbara"];
/// let lengths = names.map(|name| async move { name.len() });
/// assert_eq!(block_on(gather(lengths)).into_results(), [3, 5, 7]);
///
/// // Tuples may mix output types.
/// let (n, s) = block_on(gather((ready(1), ready("one")))).into_results();
/// assert_eq!((n, s), (1, "one"));
/// ```
///
/// # See also
///
/// [`gather_iter`] for any iterator of futures.
pub fn gather<I: Input>(futures: I) -> Gather<I> {
    Gather::from_slots(futures.into_slots())
}

/// The type of a gather over an iterator `I` of futures ([`gather_iter`]), with layers
/// `L`.
///
/// # Examples
///
/// ```
/// use gather::{gather_iter, GatherIter};
/// # use core::future::{ready, Ready};
/// # use futures::executor::block_on;
///
/// fn squares(n: u32) -> GatherIter<impl Iterator<Item = Ready<u32>>> {
///     gather_iter((0..n).map(|i| ready(i * i)))
/// }
/// assert_eq!(block_on(squares(4)).into_results().into_vec(), [0, 1, 4, 9]);
/// ```
#[cfg(feature = "alloc")]
pub type GatherIter<I, L = NoDeadline> = Gather<crate::input::lazy::FromIter<I>, L>;

/// The type of a gather over a stream `S` of futures ([`gather_stream`]), with layers
/// `L`.
#[cfg(feature = "alloc")]
pub type GatherStream<S, L = NoDeadline> = Gather<crate::input::lazy::FromStream<S>, L>;

/// Gathers every future of an iterator, taking each out of the iterator only when it
/// may start; see [`gather`].
///
/// Nothing is taken out before the first poll. Without a [`limit`](Gather::limit), every
/// future is taken out at the first poll and all run at once: up to four are stored
/// inline, more in one heap allocation. Under `limit(n)`, the first `n` are taken out at
/// the first poll and one more each time a child finishes, into the place it leaves: at
/// most `n` futures exist at once, however long the iterator (its `size_hint` is only a
/// hint; it may be wrong or say nothing). So a batch of a million jobs under `limit(8)`
/// holds eight jobs and the outputs, not a million jobs; consumed
/// [`as_completed`](Gather::as_completed), it holds no outputs either.
///
/// The outputs come back in input order as a [`SmallVec`](crate::SmallVec)`<[T; 4]>`,
/// which derefs to a slice and turns into a `Vec` with `into_vec` (no copy once spilled).
/// The gather's type is [`GatherIter<I>`](crate::GatherIter), nameable without a
/// dependency on `smallvec`.
///
/// Under a [`deadline`](Gather::deadline), once the timer fires the iterator is read to
/// its end: each future still in it is made and dropped without a poll, and counts as
/// `Err(TimedOut { index })`, like the children cut off, so every job has an outcome. (An
/// endless iterator under a deadline never ends this way: consume it
/// [`as_completed`](Gather::as_completed), which hands the `TimedOut`s out one at a time.)
///
/// # Examples
///
/// ```
/// use gather::gather_iter;
/// # use futures::executor::block_on;
///
/// let gathered = block_on(gather_iter((1..=10).map(|n| async move {
///     if n % 4 == 0 { Err(n) } else { Ok(n * n) }
/// })));
/// assert_eq!(gathered.errors().map(|(_, e)| *e).collect::<Vec<_>>(), [4, 8]);
/// assert_eq!(gathered.success_count(), 8);
///
/// // A million jobs, eight at a time: eight futures exist at any time.
/// let sum: u64 = block_on(gather_iter((0..1_000_000u64).map(|n| async move { n })).limit(8))
///     .into_results()
///     .iter()
///     .sum();
/// assert_eq!(sum, 499_999_500_000);
/// ```
#[cfg(feature = "alloc")]
pub fn gather_iter<I>(futures: I) -> GatherIter<I::IntoIter>
where
    I: IntoIterator,
    I::Item: Future,
{
    gather(crate::input::lazy::FromIter::new(futures.into_iter()))
}

/// Gathers every future a stream yields, polling the stream for one only when a child
/// may start; see [`gather`] and [`gather_iter`].
///
/// The stream is not polled before the first poll. Its children live in a window of
/// slots made at the first poll, which never moves: under [`limit`](Gather::limit)`(n)`,
/// `n` slots (made then, whatever the stream holds), so at most `n` children run (and
/// exist) at once, and the stream is polled for the next one when a child finishes.
/// Without a limit, 64 slots: a stream gather runs at most 64 children at once unless
/// told otherwise (a stream may be endless, and slots that never move cannot be added
/// later). The stream's `size_hint` plays no part. A stream that is pending wakes the gather when it has an item, like a child.
/// Indices are the items' positions in the stream; the outputs come back in that order.
/// Every mode and layer applies; when a [`deadline`](Gather::deadline) fires, the items
/// the stream has ready are made and time out, and it is not polled again after one is
/// not ready.
///
/// # Examples
///
/// ```
/// use gather::gather_stream;
/// # use futures::executor::block_on;
/// use futures::{stream, StreamExt};
///
/// let jobs = stream::iter(1..=5).map(|n| async move { n * 10 });
/// let gathered = block_on(gather_stream(jobs).limit(2));
/// assert_eq!(gathered.into_results().into_vec(), [10, 20, 30, 40, 50]);
/// ```
#[cfg(feature = "alloc")]
pub fn gather_stream<S>(futures: S) -> GatherStream<S>
where
    S: futures_core::Stream,
    S::Item: Future,
{
    gather(crate::input::lazy::FromStream::new(futures))
}

pin_project_lite::pin_project! {
    /// Future for the [`gather`] function.
    ///
    /// Resolves to a [`Gathered`] with every child's outcome in input order, once every
    /// child has finished. Builder methods choose another mode before the first poll.
    ///
    /// # Panics
    ///
    /// Polling it again after it resolved panics. [`FusedFuture::is_terminated`] tells
    /// whether it has resolved.
    ///
    /// A gather runs code it does not control at every step: its children's `poll` and
    /// `Drop`, their outputs' `Drop`, the deadline timer's `poll` and `Drop`, and the
    /// executor's waker (`clone`, `wake`, `drop`). Any of them may panic, anywhere, and
    /// then (for this future, [`FailFast`] and [`AsCompleted`] alike):
    ///
    /// - nothing is read before it was written, and nothing is dropped twice;
    /// - every other child and output is still dropped exactly once: a panicking drop does
    ///   not leak its siblings (a second panic while the first unwinds aborts, as for any
    ///   collection);
    /// - under [`catch_panics`](Self::catch_panics), a panic in a child's `poll`, or in
    ///   the `Drop` of a child that has just finished, becomes that child's
    ///   `Err(Panicked { index, .. })` (the output it finished with is dropped), and its
    ///   siblings go on. The executor's waker called from inside a child's `poll` counts
    ///   as that child's code;
    /// - every other panic (and, without `catch_panics`, those too) reaches the caller: out
    ///   of the poll that made it, which leaves the gather poisoned (a later poll panics
    ///   with a message that says so), or out of the `drop` that made it. This covers a
    ///   child's `Drop` when the deadline cuts it off or fail-fast drops it, the timer's
    ///   `poll`, and the executor's waker when the gather registers it or wakes itself.
    ///   A poisoned gather, dropped, still drops every child and output exactly once.
    ///
    /// # Cancellation
    ///
    /// Dropping a `Gather` drops every child still running and every output already
    /// stored, each exactly once, in input order (a lazy input's: in the order of the
    /// slots of its window, then its outputs; see [`gather_iter`]).
    ///
    /// # Wakes and fairness
    ///
    /// Which children a poll polls depends on the input and its size:
    ///
    /// - **A few children** (a `Vec`, `SmallVec` or [`gather_iter`](crate::gather_iter) of
    ///   up to 30, without a limit) start by sharing the gather's own waker: a wake of any
    ///   of them polls every child still running, in input order. For a handful of
    ///   children that are ready at once or wake themselves, that costs less than a waker
    ///   each (it is what `futures::join_all` does below 31). Once a poll finds that fewer
    ///   than one in eight of the children it polled finished (they wake one by one), the
    ///   gather switches to per-child wakers for good: its next poll polls every child
    ///   still running once, with its own waker. (A `SmallVec` still inline keeps
    ///   sweeping: the switch would allocate.) [`per_child_wakers`](Self::per_child_wakers)
    ///   skips the sweep.
    /// - **Many children** (a `Vec` of more than 30; a `SmallVec` of more than 30 once it
    ///   has spilled to the heap), **a limit**, or `per_child_wakers`: each child gets a
    ///   waker of its own (one shared allocation for all of them; a `Vec`'s children live
    ///   in it too): a wake re-polls only the child that was woken, in O(1) whatever the
    ///   number of children, in the order they were woken. A lazy input under a limit (and
    ///   a stream gather) has one waker per slot of its window, each reused by the children
    ///   that take the slot in turn: a waker a finished child kept and wakes later causes
    ///   at most one spurious poll of the slot's next child.
    /// - **Arrays and tuples** allocate nothing, so their children always share the
    ///   gather's own waker (a `SmallVec` still inline too, whatever its size): a wake polls
    ///   every child still running. For large gathers of children that wake one by one,
    ///   use a `Vec`.
    ///
    /// One poll polls each child at most once, and at most 128 children: past that the
    /// gather wakes itself and returns `Pending`, so a large gather does not starve the
    /// other tasks of its executor. (tokio's multi-thread runtime takes such a return for
    /// a yield and unparks an idle worker to look for work: a gather of thousands of
    /// children that are ready at once pays for that in CPU time; see the README.)
    ///
    /// # Examples
    ///
    /// ```
    /// use gather::{gather, Gather};
    /// use futures_core::FusedFuture;
    /// # use core::future::{ready, Ready};
    /// # use futures::executor::block_on;
    ///
    /// let mut both: Gather<[Ready<u8>; 2]> = gather([ready(1), ready(2)]);
    /// assert_eq!(both.len(), 2);
    /// assert!(!both.is_terminated());
    /// assert_eq!(block_on(&mut both).into_results(), [1, 2]);
    /// assert!(both.is_terminated());
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Gather<I, L = NoDeadline>
    where
        I: Input,
    {
        #[pin]
        slots: I::Slots,
        // The layers over the poll loop: deadline, panic capture (`NoDeadline` by default:
        // nothing, no space).
        #[pin]
        layers: L,
        engine: Engine<<I::Slots as Slots>::Readiness>,
    }
}

impl<I: Input> Gather<I> {
    fn from_slots(slots: I::Slots) -> Self {
        let engine = Engine::new(slots.readiness());
        Gather {
            slots,
            layers: NoDeadline,
            engine,
        }
    }
}

impl<I: Input, L> Gather<I, L> {
    /// Gives the gather a deadline: `timer` is any future (a `tokio::time::sleep`, an
    /// embassy `Timer`, a smol `Timer`, ...). If it finishes first, every child still
    /// running is dropped in the poll that sees the timer fire, and counts as
    /// `Err(E::from(TimedOut { index }))`; a child that finishes in the same poll as the
    /// timer counts as finished. Combines with every mode: settle all,
    /// [`fail_fast`](Self::fail_fast) (a timeout is an error) and
    /// [`as_completed`](Self::as_completed) (the cut-off children, already dropped, are
    /// handed out last, one per item, in input order). This is `asyncio.wait_for` and
    /// `asyncio.wait(timeout=...)`.
    ///
    /// The children's outputs must be `Result<_, E>` with `E: From<`[`TimedOut`](crate::TimedOut)`>`.
    ///
    /// # Panics
    ///
    /// Panics if the gather was already polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use gather::{gather, TimedOut};
    /// # use core::future::{pending, ready, Future};
    /// # use futures::executor::block_on;
    /// # type Call = std::pin::Pin<Box<dyn Future<Output = Result<u8, TimedOut>>>>;
    ///
    /// // A hand-made timer that has already passed; any future will do.
    /// let timer = ready(());
    /// let calls: Vec<Call> = vec![Box::pin(ready(Ok(1))), Box::pin(pending())];
    /// let gathered = block_on(gather(calls).deadline(timer));
    /// assert_eq!(gathered.into_results(), [Ok(1), Err(TimedOut { index: 1 })]);
    /// ```
    pub fn deadline<F: Future>(self, timer: F) -> Gather<I, L::With<F>>
    where
        L: AddDeadline,
        I::Slots: CutOff<TimedOut>,
    {
        assert_fresh!(self, "deadline");
        let layers = self.layers.add_deadline(timer);
        Gather {
            slots: self.slots,
            layers,
            engine: self.engine,
        }
    }

    /// Catches a child's panic: the child is dropped and counts as
    /// `Err(E::from(Panicked { index, payload }))`, its siblings go on. Caught are the
    /// panics of the child's own code as the gather polls it: its `poll` (then, if its
    /// drop panics too, that second panic is caught and dropped), and its `Drop` right
    /// after it finished (then the output it returned is dropped, and the outcome is the
    /// drop's panic). A child's drop at other times (cut off by the deadline, dropped by
    /// fail-fast or with the gather) is not caught. Combines with every mode and with
    /// [`deadline`](Self::deadline). Feature `std`.
    ///
    /// Without it, a child's panic unwinds out of the gather's poll and the gather is
    /// poisoned: polling it again panics, and dropping it drops every child exactly once.
    ///
    /// The children's outputs must be `Result<_, E>` with `E: From<`[`Panicked`](crate::Panicked)`>`.
    ///
    /// # Panics
    ///
    /// Panics if the gather was already polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use gather::{gather, Panicked};
    /// # use futures::executor::block_on;
    ///
    /// async fn risky(n: u32) -> Result<u32, Panicked> {
    ///     if n == 2 {
    ///         panic!("two is right out");
    ///     }
    ///     Ok(n)
    /// }
    /// # std::panic::set_hook(Box::new(|_| {}));
    /// let gathered = block_on(gather([1, 2, 3].map(risky)).catch_panics());
    /// let results = gathered.into_results();
    /// assert_eq!(results[0].as_ref().ok(), Some(&1));
    /// assert_eq!(results[1].as_ref().unwrap_err().message(), Some("two is right out"));
    /// assert_eq!(results[2].as_ref().ok(), Some(&3));
    /// ```
    #[cfg(feature = "std")]
    pub fn catch_panics(self) -> Gather<I, CatchPanics<L>>
    where
        I::Slots: CutOff<Panicked>,
    {
        assert_fresh!(self, "catch_panics");
        Gather {
            slots: self.slots,
            layers: CatchPanics::new(self.layers),
            engine: self.engine,
        }
    }

    /// Stops gracefully: when a child fails, or the [`deadline`](Self::deadline) fires, the
    /// gather raises `signal` and lets the children still running wind down (roll back a
    /// transaction, close a connection politely) before it drops what is left. This is
    /// what `asyncio.TaskGroup` does when a task fails (it cancels the others and waits for
    /// them), and `asyncio.wait_for` on a timeout. Without it, a failure (under
    /// [`fail_fast`](Self::fail_fast)) or the deadline drops the children at once, as
    /// `Drop` is all Rust has for them.
    ///
    /// The children borrow `signal` (a [`StopSignal`](crate::StopSignal) made before the
    /// gather) and check it ([`is_raised`](crate::StopSignal::is_raised)) or await it
    /// ([`raised`](crate::StopSignal::raised), in a `select` with their own work, say).
    /// When the stop begins:
    ///
    /// 1. the signal is raised, once, and `grace()` makes the grace timer (any future, like
    ///    the deadline's timer: made now, so that a `sleep` counts from the stop);
    /// 2. no child starts any more: those waiting for a place under a
    ///    [`limit`](Self::limit) (and those a lazy input has not taken out yet) never run.
    ///    Every child still running is polled again (it sees the signal) and from then on
    ///    as it wakes. (Without a limit, every child counts as running from the first poll:
    ///    one that poll had not reached yet, past the budget or after the failure that
    ///    ended it, gets its first poll after the raise, and sees the signal there.)
    /// 3. the grace period ends when every child still running has finished, or when the
    ///    grace timer fires (the deadline's timer is not polled during it); the children
    ///    still running then are dropped, and the gather completes. The grace timer is
    ///    first polled after the poll that showed every running child the signal: each
    ///    gets at least one poll after the raise, however short the grace.
    ///
    /// Children that finish during the grace period keep their outcomes, successes and
    /// errors alike. A child that stopped because it was asked to says so with an error
    /// made from [`Stopped`](crate::Stopped) (the error type implements
    /// [`StopError`](crate::StopError)): it was stopped on request, not a failure. What
    /// the children that never got to finish count as depends on why the stop began:
    ///
    /// | the stop began at | cut off (dropped, or never started) | stopped on request |
    /// |---|---|---|
    /// | the first error (any mode) | `Err(E::from(Stopped))` | its own error (`is_stopped()`) |
    /// | the deadline | `Err(E::from(TimedOut { index }))` | its own error (`is_stopped()`) |
    ///
    /// Per mode:
    ///
    /// - **Settle all** (`.await`): every outcome, in input order, as always; the first
    ///   error now also begins the stop. [`Gathered::failures`] and
    ///   [`Gathered::stopped`] tell the failures from the children that stopped.
    /// - **[`fail_fast`](Self::fail_fast)**: `Ok` with every success if every child
    ///   succeeded (a deadline that fired counts for nothing if every child still running
    ///   then finished with a success in the grace period). Otherwise the
    ///   [`CompoundError`](crate::CompoundError) holds the failures, with their indices:
    ///   the first, those that failed during the grace period, and the children cut off
    ///   by the deadline; the children that stopped on request (and, after a failure, the
    ///   ones cut off: also `Stopped`) are left out, as `CancelledError`s are of a
    ///   `TaskGroup`'s `ExceptionGroup`, unless nothing else failed. Successes that came in
    ///   the grace period are dropped with the rest, as fail-fast's successes always are:
    ///   to learn which children did succeed, settle all.
    /// - **[`as_completed`](Self::as_completed)**: the stopped children's outcomes are
    ///   handed out as they come; once the grace period is over, the children cut off,
    ///   one per item, in input order.
    /// - With **[`catch_panics`](Self::catch_panics)**, a caught panic is a failure like
    ///   any other: it begins the stop, and one during the grace period joins the
    ///   failures.
    ///
    /// Dropping the gather during the grace period drops every child at once, as always:
    /// drop stays synchronous. A gather without this layer pays nothing for it (no space,
    /// no check in its polls); one with it pays, once, a wake per child it stops.
    ///
    /// The children's outputs must be `Result<_, E>` with `E:` [`StopError`](crate::StopError)
    /// (a type of your crate, `Stopped`, or a boxed error; for an `anyhow::Error`, which
    /// only `anyhow` could implement it for, let the children return a boxed error and
    /// convert the results). `E::from(Stopped)` must not panic: a panic there, while the
    /// gather cuts off the children left after a failure, aborts (a second panic while the
    /// first unwinds), as one in `From<TimedOut>` does under a deadline. The other layers
    /// may come before or after it, before the mode.
    ///
    /// # Panics
    ///
    /// Panics if the gather was already polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use gather::{gather, StopSignal};
    /// # use core::future::pending;
    /// # use futures::executor::block_on;
    /// use futures::future::{select, Either};
    /// use std::cell::RefCell;
    ///
    /// type Error = Box<dyn std::error::Error + Send + Sync>;
    ///
    /// let stop = StopSignal::new();
    /// let undone = RefCell::new(Vec::new());
    /// let transfer = |id: u32, fails: bool| {
    ///     let (stop, undone) = (&stop, &undone);
    ///     async move {
    ///         if fails {
    ///             return Err::<u32, Error>("insufficient funds".into());
    ///         }
    ///         // Work that would take long, unless asked to stop.
    ///         match select(pending::<()>(), stop.raised()).await {
    ///             Either::Left(_) => Ok(id),
    ///             Either::Right((stopped, _)) => {
    ///                 undone.borrow_mut().push(id); // roll back
    ///                 Err(stopped.into())
    ///             }
    ///         }
    ///     }
    /// };
    /// let transfers = vec![transfer(0, false), transfer(1, true), transfer(2, false)];
    /// // The grace timer: any future (here, one that never fires).
    /// let gathered = block_on(gather(transfers).graceful(&stop, pending::<()>));
    /// assert_eq!(*undone.borrow(), [0, 2]);
    /// assert_eq!(gathered.stopped().collect::<Vec<_>>(), [0, 2]);
    /// let failure = gathered.into_failures().unwrap();
    /// assert_eq!(failure.to_string(), "1 of 3 futures failed: [1] insufficient funds");
    /// ```
    pub fn graceful<'s, G, T>(
        self,
        signal: &'s StopSignal,
        grace: G,
    ) -> Gather<I, Graceful<'s, L, G, T>>
    where
        G: FnOnce() -> T,
        T: Future,
        I::Slots: StopSlots,
    {
        assert_fresh!(self, "graceful");
        Gather {
            slots: self.slots,
            layers: Graceful::new(self.layers, signal, grace),
            engine: self.engine,
        }
    }

    /// Runs at most `n` children at once: the first `n` start at the first poll, and each
    /// child that finishes lets the next one (in input order) start. Results still come
    /// in input order. This is the semaphore around each task that Python code writes by
    /// hand. For `Vec`, `SmallVec`, [`gather_iter`] and [`gather_stream`] inputs.
    ///
    /// A child counts as running from its first poll to its completion; children not
    /// started yet are not polled (and have not run at all). Once [`fail_fast`] has seen an
    /// error, no further child starts. A lazy input ([`gather_iter`], [`gather_stream`])
    /// does not even make them: a child is taken out of the input when it may start, into
    /// the slot of one that finished, so at most `n` futures exist at once.
    ///
    /// [`gather_stream`]: crate::gather_stream
    ///
    /// [`fail_fast`]: Self::fail_fast
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0 (no child could ever start), or if the gather was already
    /// polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use gather::gather_iter;
    /// use std::cell::Cell;
    /// # use futures::executor::block_on;
    ///
    /// let running = Cell::new(0);
    /// let most = Cell::new(0);
    /// let downloads = (0..20).map(|i| {
    ///     let (running, most) = (&running, &most);
    ///     async move {
    ///         running.set(running.get() + 1);
    ///         most.set(most.get().max(running.get()));
    ///         yield_now().await;
    ///         running.set(running.get() - 1);
    ///         i
    ///     }
    /// });
    /// # async fn yield_now() {
    /// #     let mut yielded = false;
    /// #     core::future::poll_fn(|cx| {
    /// #         if yielded { return core::task::Poll::Ready(()) }
    /// #         yielded = true;
    /// #         cx.waker().wake_by_ref();
    /// #         core::task::Poll::Pending
    /// #     }).await
    /// # }
    /// let gathered = block_on(gather_iter(downloads).limit(3));
    /// assert_eq!(gathered.into_results().into_vec(), (0..20).collect::<Vec<_>>());
    /// assert_eq!(most.get(), 3);
    /// ```
    pub fn limit(mut self, n: usize) -> Self
    where
        <I::Slots as Slots>::Readiness: Limit,
    {
        assert!(n > 0, "`Gather::limit(0)` would never start a future");
        assert_fresh!(self, "limit");
        self.engine.readiness_mut().set_limit(n);
        self
    }

    /// Gives each child a waker of its own, whatever the number of children (a `Vec`,
    /// `SmallVec`, [`gather_iter`](crate::gather_iter) or
    /// [`gather_stream`](crate::gather_stream) input).
    ///
    /// By default, a gather of up to 30 children (or a `SmallVec` still inline) sweeps
    /// them with its own waker: a wake of any child polls every child still running. That
    /// is the cheapest way to run a few children whose polls cost little when they have
    /// nothing to do. Children that do real work in every poll (a poll that re-polls a
    /// nested combinator, or one that checks an expensive condition) are better polled
    /// only when woken: this gives them per-child wakers (one allocation for all of them),
    /// as gathers of more than 30 have anyway. See "Wakes and fairness" on [`Gather`].
    ///
    /// # Panics
    ///
    /// Panics if the gather was already polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use gather::gather;
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    ///
    /// let gathered = block_on(gather(vec![ready(1), ready(2)]).per_child_wakers());
    /// assert_eq!(gathered.into_results(), [1, 2]);
    /// ```
    pub fn per_child_wakers(mut self) -> Self
    where
        <I::Slots as Slots>::Readiness: Limit,
    {
        assert_fresh!(self, "per_child_wakers");
        self.engine.readiness_mut().use_per_child_wakers();
        self
    }

    /// The storage, pinned: for tests of storages that change while the gather runs.
    #[cfg(test)]
    pub(crate) fn slots_mut(self: Pin<&mut Self>) -> Pin<&mut I::Slots> {
        self.project().slots
    }

    /// The storage, to read.
    #[cfg(feature = "alloc")]
    pub(crate) fn storage(&self) -> &I::Slots {
        &self.slots
    }

    /// The storage, to push children into between polls: only for storage that is
    /// `Unpin` (its children live in boxes of their own), so that no pinned child moves.
    #[cfg(feature = "alloc")]
    pub(crate) fn storage_mut(&mut self) -> &mut I::Slots
    where
        I::Slots: Unpin,
    {
        &mut self.slots
    }

    /// After children were added to a storage that grows, a gather that had completed
    /// runs again.
    #[cfg(feature = "alloc")]
    pub(crate) fn reopen(&mut self) {
        self.engine.reopen();
    }

    /// Whether the gather was never polled (builder methods may still be called).
    pub(crate) fn is_fresh(&self) -> bool {
        self.engine.is_fresh()
    }

    /// How many children have not finished (or, as completed, been yielded) yet.
    pub(crate) fn remaining(&self) -> usize {
        self.slots.children() - self.engine.finished()
    }

    /// Whether the gather has handed back its output (or, as completed, its last item).
    /// Whether no more children will be taken in (always, but for a lazy input whose
    /// source has not ended).
    pub(crate) fn intake_ended(&self) -> bool {
        self.slots.exhausted()
    }

    pub(crate) fn is_done(&self) -> bool {
        self.engine.is_terminated()
    }

    /// How many children the gather was given: for [`gather_iter`] and
    /// [`gather_stream`](crate::gather_stream), how many it has taken out of its input so
    /// far (none before the first poll).
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// assert_eq!(gather::gather([ready(1), ready(2)]).len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.slots.children()
    }

    /// Whether the gather was given no children (it then resolves at its first poll); for a
    /// lazy input, whether it has taken none out of its input so far.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::Ready;
    /// let none: [Ready<()>; 0] = [];
    /// assert!(gather::gather(none).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs one poll of the engine over this gather's slots (see [`Engine::poll`]); once
    /// it is ready, `complete` does the driver's work, still inside the poll (so that a
    /// panic there leaves the gather poisoned). `YIELDS`: whether `finished` may return
    /// [`After::Yield`].
    #[inline]
    pub(crate) fn poll_with<const YIELDS: bool, R>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        finished: impl FnMut(Pin<&mut I::Slots>, usize) -> After,
        complete: impl FnOnce(Pin<&mut I::Slots>, Pass) -> R,
    ) -> Poll<R>
    where
        L: Layer<I::Slots>,
    {
        let this = self.project();
        let mut slots = this.slots;
        if I::Slots::GROWS {
            // A storage that takes children in from elsewhere hears if the poll unwinds
            // (the gather is then poisoned, and must take no more in).
            let mut slots = OnUnwind(slots);
            let poll =
                this.engine
                    .poll::<YIELDS, _, _>(slots.0.as_mut(), this.layers, cx, finished);
            let output = poll.map(|pass| (complete(slots.0.as_mut(), pass), pass));
            // Not unwound: nothing to tell.
            core::mem::forget(slots);
            let (output, pass) = ready!(output);
            this.engine.close(pass);
            return Poll::Ready(output);
        }
        let pass =
            ready!(this
                .engine
                .poll::<YIELDS, _, _>(slots.as_mut(), this.layers, cx, finished));
        let output = complete(slots, pass);
        this.engine.close(pass);
        Poll::Ready(output)
    }
}

/// Tells the storage that the poll unwound (see [`Slots::poisoned`]), unless forgotten.
struct OnUnwind<'a, S: Slots>(Pin<&'a mut S>);

impl<S: Slots> Drop for OnUnwind<'_, S> {
    fn drop(&mut self) {
        // Dropped only by an unwind: a poll that returns forgets it.
        self.0.as_mut().poisoned();
    }
}

impl<I: Input, L: Layer<I::Slots>> Future for Gather<I, L> {
    type Output = Gathered<Outputs<I>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_with::<false, _>(
            cx,
            |_, _| After::Continue,
            |slots, _| Gathered::new(slots.take_outputs()),
        )
    }
}

impl<I: Input, L: Layer<I::Slots>> FusedFuture for Gather<I, L> {
    fn is_terminated(&self) -> bool {
        self.engine.is_terminated()
    }
}

impl<I: Input, L> fmt::Debug for Gather<I, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gather")
            .field("len", &self.len())
            .field("remaining", &self.remaining())
            .field("terminated", &self.engine.is_terminated())
            .finish()
    }
}

/// `.gather()` on anything [`gather`] accepts.
///
/// # Examples
///
/// ```
/// use gather::GatherExt;
/// # use core::future::ready;
/// # use futures::executor::block_on;
///
/// let gathered = block_on([ready(Ok::<_, ()>(1)), ready(Ok(2))].gather());
/// assert_eq!(gathered.into_result(), Ok([1, 2]));
/// ```
pub trait GatherExt: Input + Sized {
    /// Same as [`gather(self)`](gather).
    fn gather(self) -> Gather<Self> {
        gather(self)
    }
}

impl<I: Input> GatherExt for I {}
