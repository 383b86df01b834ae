//! The graceful layer: when a child fails or the deadline fires, the children still
//! running are asked to stop (a [`StopSignal`] they borrow is raised), polled until they
//! finish or a grace timer fires, and only then dropped.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};

use super::deadline::AddDeadline;
use super::{Cause, Layer};
use crate::engine::slots::{CompoundErrorOf, CutOff, ErrorOf, ResultSlots, Slots};
use crate::raw::slot::Step;
use crate::results::gathered::Outcomes;
use crate::results::stopped::{StopError, Stopped};

/// A request to stop, that a gather under [`graceful`](crate::Gather::graceful) raises
/// and its children see: the Rust form of the cancellation a Python `TaskGroup` delivers
/// to its tasks (without the exception: a child checks the signal, or awaits it, and
/// decides how to wind down).
///
/// The caller makes it before the gather and lends it to the children (`&StopSignal` is
/// `Copy`, `Send` and `Sync`); the gather raises it once, when its first child fails or its
/// deadline fires. It needs no allocator and no runtime, and costs one byte.
///
/// # How a waiting child hears of it
///
/// [`raised`](Self::raised) does not register a waker with the signal: the signal keeps no
/// list of waiters (that is what lets it work without an allocator, a lock or an atomic
/// read-modify-write, on a Cortex-M0 as on a server). Instead, the gather that raises it
/// polls every child still running right after: a child waiting on `raised()` directly,
/// or inside any combinator that polls it whenever it is polled itself (`select`, `join`,
/// an `async` block), resumes then. A future polled only when its own waker fires (one
/// inside a `FuturesUnordered`, or in another task) does not hear of the raise; check
/// [`is_raised`](Self::is_raised) there instead.
///
/// A signal is raised once and stays raised: make one per gather. (Children of a second
/// gather lent the same signal see it raised too, and may stop.)
///
/// # Examples
///
/// ```
/// use gather::{gather, StopSignal, Stopped};
/// # use futures::executor::block_on;
/// # use core::future::ready;
///
/// let stop = StopSignal::new();
/// assert!(!stop.is_raised());
///
/// async fn step(stop: &StopSignal, fails: bool) -> Result<&'static str, Stopped> {
///     if fails {
///         return Err(Stopped); // any error: it starts the stop
///     }
///     stop.raised().await; // waits until the gather asks it to stop
///     Ok("wound down")
/// }
/// let gathered = block_on(gather([step(&stop, false), step(&stop, true)]).graceful(&stop, || ready(())));
/// assert!(stop.is_raised());
/// assert_eq!(gathered.into_results(), [Ok("wound down"), Err(Stopped)]);
/// ```
#[derive(Default)]
pub struct StopSignal {
    raised: AtomicBool,
}

impl StopSignal {
    /// A signal not raised yet.
    pub const fn new() -> Self {
        StopSignal {
            raised: AtomicBool::new(false),
        }
    }

    /// Whether the gather has asked its children to stop.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// A future that resolves (to [`Stopped`], ready to return as an error) once the
    /// signal is raised. See "How a waiting child hears of it" on [`StopSignal`].
    pub fn raised(&self) -> Raised<'_> {
        Raised { signal: self }
    }

    /// Raises the signal: only the gather does, once.
    fn raise(&self) {
        self.raised.store(true, Ordering::Release);
    }
}

impl fmt::Debug for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopSignal")
            .field("raised", &self.is_raised())
            .finish()
    }
}

/// Future for [`StopSignal::raised`]: resolves to [`Stopped`] once the signal is raised.
///
/// It registers no waker: the gather that raises the signal polls its running children
/// right after (see [`StopSignal`]).
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug, Clone, Copy)]
pub struct Raised<'a> {
    signal: &'a StopSignal,
}

impl Future for Raised<'_> {
    type Output = Stopped;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Stopped> {
        if self.signal.is_raised() {
            Poll::Ready(Stopped)
        } else {
            Poll::Pending
        }
    }
}

/// Slots whose children can stop on request: their outputs are `Result<_, E>` with
/// `E:` [`StopError`].
///
/// Plumbing, not API: it shows in the bounds of public items, and only this crate
/// implements it (it is not exported, so users never name it).
#[diagnostic::on_unimplemented(
    message = "`.graceful()` needs children whose error type can say they stopped on request",
    label = "the children's outputs are not `Result<_, E>` with `E: gather::StopError`",
    note = "implement `From<gather::Stopped>` and `gather::StopError` for the children's error type"
)]
pub trait StopSlots:
    ResultSlots + CutOff<Stopped> + Slots<Outputs: Outcomes<Error: StopError>>
{
}

impl<S> StopSlots for S
where
    S: ResultSlots + CutOff<Stopped> + ?Sized,
    ErrorOf<S>: StopError,
{
}

pin_project_lite::pin_project! {
    /// The graceful layer over the layers `L` (a deadline, panic capture): the signal it
    /// raises, and `G`, what makes the grace timer `T` when the stop begins. See
    /// [`Gather::graceful`](crate::Gather::graceful).
    pub struct Graceful<'s, L, G, T> {
        #[pin]
        inner: L,
        signal: &'s StopSignal,
        // Taken (and called) when the stop begins.
        grace: Option<G>,
        #[pin]
        timer: Option<T>,
        // Why the stop began, once it has.
        stopping: Option<Cause>,
        // How many of the children running at the raise may not have seen it yet: child
        // polls since are counted against it (each polls a child not seen yet first: the
        // sweep goes round, per-child wakers queue in order).
        unseen: usize,
        // Once the grace is over: from where the children stopped are handed to the driver.
        cut_off_from: Option<usize>,
    }
}

impl<'s, L, G, T> Graceful<'s, L, G, T> {
    pub(crate) fn new(inner: L, signal: &'s StopSignal, grace: G) -> Self {
        Graceful {
            inner,
            signal,
            grace: Some(grace),
            timer: None,
            stopping: None,
            unseen: 0,
            cut_off_from: None,
        }
    }
}

impl<L, G, T> crate::sealed::Layers for Graceful<'_, L, G, T> {}

impl<L, G, T, S> Layer<S> for Graceful<'_, L, G, T>
where
    L: Layer<S>,
    G: FnOnce() -> T,
    T: Future,
    S: StopSlots + ?Sized,
{
    const CUTS_OFF: bool = true;
    const GRACEFUL: bool = true;

    #[inline]
    fn poll_child(slots: Pin<&mut S>, slot: usize, cx: &mut Context<'_>) -> Step
    where
        S: Slots,
    {
        L::poll_child(slots, slot, cx)
    }

    fn poll_timer(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        self.project().inner.poll_timer(cx)
    }

    #[inline]
    fn cut_off_from(self: Pin<&mut Self>) -> Option<&mut usize> {
        self.project().cut_off_from.as_mut()
    }

    fn cut_off(slots: Pin<&mut S>, slot: usize, cause: Cause) -> bool {
        match cause {
            Cause::Failure => slots.cut_off(slot, || Stopped),
            Cause::Deadline => L::cut_off(slots, slot, cause),
        }
    }

    #[inline]
    fn failed(slots: &S, slot: usize) -> bool {
        slots.is_err(slot)
    }

    #[inline]
    fn stopping(self: Pin<&mut Self>) -> Option<Cause> {
        *self.project().stopping
    }

    fn start_stop(self: Pin<&mut Self>, cause: Cause, running: usize) {
        let mut this = self.project();
        debug_assert!(this.stopping.is_none(), "gather: stopped twice");
        *this.stopping = Some(cause);
        *this.unseen = running;
        this.signal.raise();
        if let Some(grace) = this.grace.take() {
            this.timer.set(Some(grace()));
        }
    }

    fn shown(self: Pin<&mut Self>, polled: usize) -> bool {
        let unseen = self.project().unseen;
        *unseen = unseen.saturating_sub(polled);
        *unseen == 0 || polled == 0
    }

    fn poll_grace(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        match self.project().timer.as_pin_mut() {
            Some(timer) => timer.poll(cx).is_ready(),
            None => true,
        }
    }

    fn end_grace(self: Pin<&mut Self>) {
        *self.project().cut_off_from = Some(0);
    }

    fn take_failures(slots: Pin<&mut S>, failed: usize) -> Option<CompoundErrorOf<S>>
    where
        S: ResultSlots,
    {
        // The failures, without the children that stopped on request; those alone only
        // when nothing else failed (they did not succeed either).
        slots.take_errors_preferring(failed, |error| !error.is_stopped())
    }
}

impl<'s, L: AddDeadline, G, T> AddDeadline for Graceful<'s, L, G, T> {
    type With<F> = Graceful<'s, L::With<F>, G, T>;

    fn add_deadline<F>(self, timer: F) -> Self::With<F> {
        Graceful {
            inner: self.inner.add_deadline(timer),
            signal: self.signal,
            grace: self.grace,
            timer: self.timer,
            stopping: self.stopping,
            unseen: self.unseen,
            cut_off_from: self.cut_off_from,
        }
    }
}

impl<L, G, T> fmt::Debug for Graceful<'_, L, G, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graceful")
            .field("signal", self.signal)
            .field("stopping", &self.stopping.is_some())
            .finish()
    }
}
