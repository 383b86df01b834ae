//! The deadline layer: a timer future beside the children; when it fires, every child
//! still running is dropped and counts as `Err(E::from(TimedOut { index }))`.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::Context;

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

/// Slots whose children can be cut off: their outputs are `Result<_, E>` with
/// `E: From<TimedOut>`.
pub trait Expire: Slots {
    /// If child `index` is still running, drops it and stores
    /// `Err(E::from(TimedOut { index }))` as its output; returns whether it did.
    fn expire(self: Pin<&mut Self>, index: usize) -> bool;
}

/// The timer of a gather: [`NoDeadline`] or [`Deadline`]. Sealed.
pub trait Timer<S: ?Sized>: sealed::Sealed {
    #[doc(hidden)]
    /// Whether the deadline has passed: polls the timer, once, after a pass that left
    /// children pending.
    fn poll_passed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool;
    #[doc(hidden)]
    /// Whether the deadline has passed already (no poll).
    fn passed(&self) -> bool;
    #[doc(hidden)]
    /// The next child to cut off (each index once, in input order), and cuts it off;
    /// `None` when done.
    fn expire_next(self: Pin<&mut Self>, slots: Pin<&mut S>) -> Option<(usize, bool)>;
}

mod sealed {
    pub trait Sealed {}
}

/// No deadline: what a gather has unless [`deadline`](super::Gather::deadline) gives it
/// one. It takes no space and is never polled.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDeadline;

impl sealed::Sealed for NoDeadline {}

impl<S: ?Sized> Timer<S> for NoDeadline {
    #[inline]
    fn poll_passed(self: Pin<&mut Self>, _: &mut Context<'_>) -> bool {
        false
    }

    #[inline]
    fn passed(&self) -> bool {
        false
    }

    fn expire_next(self: Pin<&mut Self>, _: Pin<&mut S>) -> Option<(usize, bool)> {
        None
    }
}

pin_project_lite::pin_project! {
    /// A deadline: the timer future, and how far cutting off the children has come.
    pub struct Deadline<F> {
        #[pin]
        timer: F,
        passed: bool,
        next: usize,
    }
}

impl<F> Deadline<F> {
    pub(super) fn new(timer: F) -> Self {
        Deadline {
            timer,
            passed: false,
            next: 0,
        }
    }
}

impl<F> sealed::Sealed for Deadline<F> {}

impl<F: Future, S: Expire + ?Sized> Timer<S> for Deadline<F> {
    fn poll_passed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        let this = self.project();
        if !*this.passed && this.timer.poll(cx).is_ready() {
            *this.passed = true;
        }
        *this.passed
    }

    fn passed(&self) -> bool {
        self.passed
    }

    fn expire_next(self: Pin<&mut Self>, slots: Pin<&mut S>) -> Option<(usize, bool)> {
        let this = self.project();
        let index = *this.next;
        if index >= slots.len() {
            return None;
        }
        *this.next += 1;
        Some((index, slots.expire(index)))
    }
}

impl<F> fmt::Debug for Deadline<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("passed", &self.passed)
            .finish()
    }
}
