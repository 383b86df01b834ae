//! The layers over the poll loop, one file each: `deadline.rs` (a timer; when it fires,
//! every child still running is cut off), `catch_panics.rs` (a child's panic becomes its
//! error) and `graceful.rs` (when a child fails or the deadline fires, the children still
//! running are asked to stop and get a grace period before they are cut off). `limit` is a
//! property of the readiness (`engine/limit.rs`).
//!
//! This file holds what the engine polls through: the [`Layer`] trait, and
//! [`NoDeadline`], the layers a gather has by default. A layer may use the engine's storage
//! traits; never the `Gather` future or the modes.

#[cfg(feature = "std")]
pub(crate) mod catch_panics;
pub(crate) mod deadline;
pub(crate) mod graceful;

use core::pin::Pin;
use core::task::Context;

use crate::engine::slots::{CompoundErrorOf, ResultSlots, Slots};
use crate::raw::slot::Step;

/// Why the children still running are stopped: what they are cut off as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The deadline fired: they time out (`TimedOut`).
    Deadline,
    /// A child failed, under a graceful layer: they are stopped (`Stopped`).
    Failure,
}

/// The layers over a gather's poll loop: its deadline ([`NoDeadline`] or [`Deadline`]),
/// and whether it catches its children's panics ([`CatchPanics`](crate::CatchPanics)).
///
/// Plumbing, not API: it shows in the bounds of public items, and only this crate
/// implements it (it is not exported, so users never name it).
pub trait Layer<S: ?Sized>: crate::sealed::Layers {
    #[doc(hidden)]
    /// Whether these layers can cut children off (a deadline): only then can one pass end
    /// with more than one child failed.
    const CUTS_OFF: bool = false;
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
    /// If child `index` is still running, drops it and stores its error for `cause`
    /// (`Err(TimedOut)`, or under a graceful layer `Err(Stopped)` after a failure); returns
    /// whether it did.
    fn cut_off(slots: Pin<&mut S>, index: usize, cause: Cause) -> bool;

    // A graceful layer's stop (see `graceful.rs`); the engine asks only if `GRACEFUL`.

    #[doc(hidden)]
    /// Whether these layers stop gracefully: a failure or the deadline raises a signal,
    /// and the children still running get a grace period before they are cut off.
    const GRACEFUL: bool = false;
    #[doc(hidden)]
    /// Whether child `slot`, which has just finished, failed: what starts the stop.
    #[inline]
    fn failed(slots: &S, slot: usize) -> bool {
        let _ = (slots, slot);
        false
    }
    #[doc(hidden)]
    /// Why the stop began, once it has.
    #[inline]
    fn stopping(self: Pin<&mut Self>) -> Option<Cause> {
        None
    }
    #[doc(hidden)]
    /// Begins the stop: raises the signal, makes the grace timer; `running` children are
    /// to see the signal before the grace timer is first polled.
    #[inline]
    fn start_stop(self: Pin<&mut Self>, cause: Cause, running: usize) {
        let _ = (cause, running);
    }
    #[doc(hidden)]
    /// Counts `polled` children of a pass of the grace period as shown the signal;
    /// returns whether every child running at the raise has been (or the pass polled
    /// none: nothing is left to show).
    #[inline]
    fn shown(self: Pin<&mut Self>, polled: usize) -> bool {
        let _ = polled;
        true
    }
    #[doc(hidden)]
    /// Polls the grace timer; returns whether it has fired.
    #[inline]
    fn poll_grace(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        let _ = cx;
        true
    }
    #[doc(hidden)]
    /// Ends the grace period: the children left are cut off now (`cut_off_from` is
    /// `Some` from here on).
    #[inline]
    fn end_grace(self: Pin<&mut Self>) {}
    #[doc(hidden)]
    /// Moves the errors fail-fast reports out of `slots` (`failed` is a capacity hint):
    /// every error, or under a graceful layer the failures without the children that
    /// stopped on request.
    #[inline]
    fn take_failures(slots: Pin<&mut S>, failed: usize) -> Option<CompoundErrorOf<S>>
    where
        S: ResultSlots,
    {
        slots.take_errors(failed)
    }
}

/// No deadline: what a gather has unless [`deadline`](crate::Gather::deadline) gives it
/// one. It takes no space and is never polled.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDeadline;

impl crate::sealed::Layers for NoDeadline {}

impl<S: ?Sized> Layer<S> for NoDeadline {
    #[inline]
    fn poll_timer(self: Pin<&mut Self>, _: &mut Context<'_>) -> bool {
        false
    }

    #[inline]
    fn cut_off_from(self: Pin<&mut Self>) -> Option<&mut usize> {
        None
    }

    fn cut_off(_: Pin<&mut S>, _: usize, _: Cause) -> bool {
        false
    }
}
