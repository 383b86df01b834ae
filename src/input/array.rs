//! `[F; N]`: a fixed array of slots, polled in place; no allocation.

use core::future::Future;
use core::pin::Pin;

use super::Input;
use crate::engine::slots::SlotSlice;
use crate::engine::sweep::Sweep;
use crate::raw::pin as pinned;
use crate::raw::slot::Slot;

impl<F: Future, const N: usize> crate::sealed::Input for [F; N] {}

impl<F: Future, const N: usize> Input for [F; N] {
    type Slots = [Slot<F>; N];

    fn into_slots(self) -> Self::Slots {
        self.map(Slot::new)
    }
}

impl<F: Future, const N: usize> SlotSlice for [Slot<F>; N] {
    type Future = F;
    type Outputs = [F::Output; N];
    type Readiness = Sweep;

    fn readiness(&self) -> Sweep {
        Sweep::default()
    }

    fn slots(&self) -> &[Slot<F>] {
        self
    }

    fn slots_pinned(self: Pin<&mut Self>) -> Pin<&mut [Slot<F>]> {
        pinned::array(self)
    }

    #[inline]
    fn collect_outputs(_len: usize, output: impl FnMut(usize) -> F::Output) -> [F::Output; N] {
        core::array::from_fn(output)
    }
}
