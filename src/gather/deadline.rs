//! The deadline layer: a timer future beside the children; when it fires, every child
//! still running is dropped and counts as `Err(E::from(TimedOut { index }))`.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::Context;

use super::slot::Step;
use super::slots::Slots;

/// The error of a child that was still running when a gather's
/// [`deadline`](super::Gather::deadline) passed. Children's error types take it through
/// `From<TimedOut>`.
///
/// # Examples
///
/// ```
/// let timed_out = gather::TimedOut { index: 3 };
/// assert_eq!(timed_out.to_string(), "future 3 timed out");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimedOut {
    /// The index of the child that timed out.
    pub index: usize,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "future {} timed out", self.index)
    }
}

impl core::error::Error for TimedOut {}

/// Slots whose children can be cut off for cause `X` ([`TimedOut`], or a caught panic):
/// their outputs are `Result<_, E>` with `E: From<X>`.
pub trait CutOff<X>: Slots {
    /// If child `index` is still running, drops it and stores `Err(E::from(cause()))` as
    /// its output; returns whether it did. If the drop panics, the panic goes on (the
    /// slot then holds nothing, or the error).
    fn cut_off(self: Pin<&mut Self>, index: usize, cause: impl FnOnce() -> X) -> bool;

    /// Stores `Err(E::from(cause))` for child `index`, whose slot holds nothing (it
    /// panicked and was [discarded](Slots::discard)).
    fn fail(self: Pin<&mut Self>, index: usize, cause: X);
}

/// Layers to which a deadline can be added: what [`Gather::deadline`] turns them into.
///
/// [`Gather::deadline`]: super::Gather::deadline
pub trait AddDeadline: sealed::Sealed {
    /// The layers with the deadline.
    type With<F>;
    #[doc(hidden)]
    fn add_deadline<F>(self, timer: F) -> Self::With<F>;
}

impl AddDeadline for NoDeadline {
    type With<F> = Deadline<F>;

    fn add_deadline<F>(self, timer: F) -> Deadline<F> {
        Deadline::new(timer)
    }
}

/// The layers over a gather's poll loop: its deadline ([`NoDeadline`] or [`Deadline`]),
/// and whether it catches its children's panics ([`CatchPanics`](crate::CatchPanics)).
/// Sealed.
pub trait Layer<S: ?Sized>: sealed::Sealed {
    #[doc(hidden)]
    /// Polls child `index` once (the engine's step): as is, or catching a panic.
    #[inline]
    fn poll_child(slots: Pin<&mut S>, index: usize, cx: &mut Context<'_>) -> Step
    where
        S: Slots,
    {
        slots.poll_step(index, cx)
    }
    #[doc(hidden)]
    /// Polls the timer, once, after a pass that left children pending; returns whether
    /// it has fired. Called only while [`cut_off_from`](Self::cut_off_from) is `None`.
    fn poll_timer(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool;
    #[doc(hidden)]
    /// `None` until the timer has fired; then the index from which the cut-off children
    /// are still to be handed to the driver.
    fn cut_off_from(self: Pin<&mut Self>) -> Option<&mut usize>;
    #[doc(hidden)]
    /// If child `index` is still running, drops it and stores `Err(TimedOut)` for it;
    /// returns whether it did.
    fn cut_off(slots: Pin<&mut S>, index: usize) -> bool;
}

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// No deadline: what a gather has unless [`deadline`](super::Gather::deadline) gives it
/// one. It takes no space and is never polled.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDeadline;

impl sealed::Sealed for NoDeadline {}

impl<S: ?Sized> Layer<S> for NoDeadline {
    #[inline]
    fn poll_timer(self: Pin<&mut Self>, _: &mut Context<'_>) -> bool {
        false
    }

    #[inline]
    fn cut_off_from(self: Pin<&mut Self>) -> Option<&mut usize> {
        None
    }

    fn cut_off(_: Pin<&mut S>, _: usize) -> bool {
        false
    }
}

pin_project_lite::pin_project! {
    /// A deadline: the timer future, and once it has fired, how far handing the cut-off
    /// children to the driver has come.
    pub struct Deadline<F> {
        #[pin]
        timer: F,
        cut_off_from: Option<usize>,
    }
}

impl<F> Deadline<F> {
    pub(super) fn new(timer: F) -> Self {
        Deadline {
            timer,
            cut_off_from: None,
        }
    }
}

impl<F> sealed::Sealed for Deadline<F> {}

impl<F: Future, S: CutOff<TimedOut> + ?Sized> Layer<S> for Deadline<F> {
    fn poll_timer(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        let this = self.project();
        debug_assert!(
            this.cut_off_from.is_none(),
            "gather: timer polled after it fired"
        );
        if this.timer.poll(cx).is_pending() {
            return false;
        }
        *this.cut_off_from = Some(0);
        true
    }

    #[inline]
    fn cut_off_from(self: Pin<&mut Self>) -> Option<&mut usize> {
        self.project().cut_off_from.as_mut()
    }

    fn cut_off(slots: Pin<&mut S>, index: usize) -> bool {
        slots.cut_off(index, || TimedOut { index })
    }
}

impl<F> fmt::Debug for Deadline<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("fired", &self.cut_off_from.is_some())
            .finish()
    }
}
