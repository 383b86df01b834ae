//! `SmallVec<[F; K]>`: up to `K`
//! children inline; past that, spilled to the heap. Inline or few, they are swept with the
//! gather's own waker; many and spilled, they get per-child wakers in a block of their own.

use core::fmt;
use core::future::Future;
use core::pin::Pin;

use smallvec::SmallVec;

use super::Input;
use crate::engine::per_child::{Adaptive, Tentative, Wakers, SWEEP_UP_TO};
use crate::engine::slots::SlotSlice;
use crate::engine::sweep::Sweep;
use crate::raw::pin as pinned;
use crate::raw::slot::Slot;

impl<F: Future, const K: usize> crate::sealed::Input for SmallVec<[F; K]> {}

impl<F: Future, const K: usize> Input for SmallVec<[F; K]> {
    type Slots = SmallVecSlots<[Slot<F>; K]>;

    fn into_slots(self) -> Self::Slots {
        SmallVecSlots::new(self)
    }
}

pin_project_lite::pin_project! {
    /// Slots inline up to `K` children, on the heap past that (a `SmallVec` input).
    pub struct SmallVecSlots<A>
    where
        A: smallvec::Array,
    {
        #[pin]
        slots: SmallVec<A>,
    }
}

impl<A: smallvec::Array> fmt::Debug for SmallVecSlots<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmallVecSlots")
            .field("len", &self.slots.len())
            .finish()
    }
}

impl<F: Future, const K: usize> SmallVecSlots<[Slot<F>; K]> {
    pub(crate) fn new(futures: impl IntoIterator<Item = F>) -> Self {
        SmallVecSlots {
            slots: futures.into_iter().map(Slot::new).collect(),
        }
    }
}

impl<F: Future, const K: usize> SlotSlice for SmallVecSlots<[Slot<F>; K]> {
    type Future = F;
    type Outputs = SmallVec<[F::Output; K]>;
    type Readiness = Adaptive;

    fn readiness(&self) -> Adaptive {
        if !self.slots.spilled() {
            Adaptive::Sweep(Sweep::default())
        } else if self.slots.len() <= SWEEP_UP_TO {
            Adaptive::Tentative(Tentative::default())
        } else {
            Adaptive::Wakers(Wakers::default())
        }
    }

    fn slots(&self) -> &[Slot<F>] {
        &self.slots
    }

    fn slots_pinned(self: Pin<&mut Self>) -> Pin<&mut [Slot<F>]> {
        pinned::small_vec(self.project().slots)
    }

    fn collect_outputs(
        len: usize,
        output: impl FnMut(usize) -> F::Output,
    ) -> SmallVec<[F::Output; K]> {
        (0..len).map(output).collect()
    }
}
