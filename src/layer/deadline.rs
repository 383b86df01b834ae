//! The deadline layer: a timer future beside the children; when it fires, every child
//! still running is dropped and counts as `Err(E::from(TimedOut { index }))`.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::Context;

use super::{Cause, Layer, NoDeadline};
use crate::engine::slots::CutOff;

/// The error of a child that was still running when a gather's
/// [`deadline`](crate::Gather::deadline) passed. Children's error types take it through
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

/// Layers to which a deadline can be added: what [`Gather::deadline`] turns them into.
///
/// [`Gather::deadline`]: crate::Gather::deadline
pub trait AddDeadline: crate::sealed::Layers {
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

impl<F> crate::sealed::Layers for Deadline<F> {}

impl<F: Future, S: CutOff<TimedOut> + ?Sized> Layer<S> for Deadline<F> {
    const CUTS_OFF: bool = true;

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

    fn cut_off(slots: Pin<&mut S>, slot: usize, _: Cause) -> bool {
        let index = slots.input_index(slot);
        slots.cut_off(slot, || TimedOut { index })
    }
}

impl<F> fmt::Debug for Deadline<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("fired", &self.cut_off_from.is_some())
            .finish()
    }
}
