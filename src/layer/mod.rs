//! The layers over the poll loop, one file each: `deadline.rs` (a timer; when it fires,
//! every child still running is cut off) and `catch_panics.rs` (a child's panic becomes
//! its error). `limit` is a property of the readiness (`engine/limit.rs`).
//!
//! This file holds what the engine polls through: the [`Layer`] trait, and
//! [`NoDeadline`], the layers a gather has by default. A layer may use the engine's storage
//! traits; never the `Gather` future or the modes.

#[cfg(feature = "std")]
pub(crate) mod catch_panics;
pub(crate) mod deadline;

use core::pin::Pin;
use core::task::Context;

use crate::engine::slot::Step;
use crate::engine::slots::Slots;

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
    /// If child `index` is still running, drops it and stores `Err(TimedOut)` for it;
    /// returns whether it did.
    fn cut_off(slots: Pin<&mut S>, index: usize) -> bool;
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

    fn cut_off(_: Pin<&mut S>, _: usize) -> bool {
        false
    }
}
