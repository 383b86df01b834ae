//! The catch-panics layer (feature `std`): a child's panic becomes its error.

use alloc::boxed::Box;
use alloc::string::String;
use core::any::Any;
use core::fmt;
use core::panic::AssertUnwindSafe;
use core::pin::Pin;
use core::task::Context;
use std::panic::catch_unwind;

use super::deadline::AddDeadline;
use super::{Cause, Layer};
use crate::engine::slots::{CompoundErrorOf, CutOff, ResultSlots, Slots};
use crate::raw::slot::Step;

/// The error of a child that panicked in a gather that
/// [catches panics](crate::Gather::catch_panics). Children's error types take it through
/// `From<Panicked>`.
///
/// # Examples
///
/// ```
/// let panicked = gather::Panicked { index: 2, payload: Box::new("disk on fire") };
/// assert_eq!(panicked.message(), Some("disk on fire"));
/// assert_eq!(panicked.to_string(), "future 2 panicked: disk on fire");
/// ```
pub struct Panicked {
    /// The index of the child that panicked.
    pub index: usize,
    /// What it panicked with, as `std::panic::catch_unwind` hands it over.
    pub payload: Box<dyn Any + Send>,
}

impl Panicked {
    /// The panic message, when the payload is a string (as with `panic!("...")`).
    pub fn message(&self) -> Option<&str> {
        self.payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| self.payload.downcast_ref::<String>().map(String::as_str))
    }
}

impl fmt::Debug for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panicked")
            .field("index", &self.index)
            .field("message", &self.message())
            .finish()
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(message) => write!(f, "future {} panicked: {message}", self.index),
            None => write!(f, "future {} panicked", self.index),
        }
    }
}

impl core::error::Error for Panicked {}

pin_project_lite::pin_project! {
    /// The catch-panics layer over the layers `L` (its deadline, if any).
    #[derive(Debug)]
    pub struct CatchPanics<L> {
        #[pin]
        inner: L,
    }
}

impl<L> CatchPanics<L> {
    pub(crate) fn new(inner: L) -> Self {
        CatchPanics { inner }
    }
}

impl<L> crate::sealed::Layers for CatchPanics<L> {}

impl<L: Layer<S>, S: CutOff<Panicked> + ?Sized> Layer<S> for CatchPanics<L> {
    const CUTS_OFF: bool = L::CUTS_OFF;
    const GRACEFUL: bool = L::GRACEFUL;

    fn poll_child(mut slots: Pin<&mut S>, slot: usize, cx: &mut Context<'_>) -> Step
    where
        S: Slots,
    {
        // Unwind safety: after a panic the child is dropped without being polled again,
        // and nothing else was borrowed across the poll.
        let payload = match catch_unwind(AssertUnwindSafe(|| slots.as_mut().poll_step(slot, cx))) {
            Ok(step) => return step,
            Err(payload) => payload,
        };
        // The poll panicked, or the child's drop as it finished: drop the child, or the
        // output it finished with. A panic in that drop is caught as well, and goes with
        // it: the child's outcome is the first panic.
        if let Err(second) = catch_unwind(AssertUnwindSafe(|| slots.as_mut().discard(slot))) {
            drop_quietly(second);
        }
        let index = slots.input_index(slot);
        slots.fail(slot, Panicked { index, payload });
        Step::Finished
    }

    fn poll_timer(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        self.project().inner.poll_timer(cx)
    }

    fn cut_off_from(self: Pin<&mut Self>) -> Option<&mut usize> {
        self.project().inner.cut_off_from()
    }

    fn cut_off(slots: Pin<&mut S>, index: usize, cause: Cause) -> bool {
        L::cut_off(slots, index, cause)
    }

    #[inline]
    fn failed(slots: &S, slot: usize) -> bool {
        L::failed(slots, slot)
    }

    #[inline]
    fn stopping(self: Pin<&mut Self>) -> Option<Cause> {
        self.project().inner.stopping()
    }

    fn start_stop(self: Pin<&mut Self>, cause: Cause, running: usize) {
        self.project().inner.start_stop(cause, running);
    }

    fn shown(self: Pin<&mut Self>, polled: usize) -> bool {
        self.project().inner.shown(polled)
    }

    fn poll_grace(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        self.project().inner.poll_grace(cx)
    }

    fn end_grace(self: Pin<&mut Self>) {
        self.project().inner.end_grace();
    }

    fn take_failures(slots: Pin<&mut S>, failed: usize) -> Option<CompoundErrorOf<S>>
    where
        S: ResultSlots,
    {
        L::take_failures(slots, failed)
    }
}

/// Drops a panic's payload whose own drop may panic: such a panic is caught too, and its
/// payload dropped in turn, until one drops quietly (a plain message always does).
fn drop_quietly(payload: Box<dyn Any + Send>) {
    let mut next = payload;
    while let Err(again) = catch_unwind(AssertUnwindSafe(|| drop(next))) {
        next = again;
    }
}

impl<L: AddDeadline> AddDeadline for CatchPanics<L> {
    type With<F> = CatchPanics<L::With<F>>;

    fn add_deadline<F>(self, timer: F) -> Self::With<F> {
        CatchPanics::new(self.inner.add_deadline(timer))
    }
}
