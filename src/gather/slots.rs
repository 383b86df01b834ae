//! Slot storage: where a gather keeps its children and their outputs.
//!
//! Every input shape (array, tuple, `Vec`, `SmallVec`) becomes one storage type that the
//! drivers see only through [`Slots`]: poll child `i`, look at or take what it left, take
//! every output at the end. Arrays and `SmallVec`s are a pinned slice of [`Slot`]s
//! underneath and share one implementation through [`SlotSlice`]; tuples get theirs from a
//! macro in `tuple.rs`; `Vec`s keep their children in the heap block of their wakers
//! (`raw/heap.rs`) and write outputs in place.

use core::future::Future;
use core::pin::Pin;
use core::task::Context;

use super::deadline::CutOff;
use super::raw::pin as pinned;
use super::readiness::{Readiness, Sweep};
use super::slot::{Slot, Step};
use crate::gathered::Outcomes;

/// The engine's view of a gather's children.
pub trait Slots {
    /// Every child's output, in input order: `[O; N]`, `(A, B, ..)`, `Vec<O>`, ...
    type Outputs;
    /// How the engine picks which children to poll (see `readiness.rs`).
    type Readiness: Readiness<Self>;

    /// The readiness for this storage, before the first poll.
    fn readiness(&self) -> Self::Readiness;

    /// How many children the gather was given.
    fn len(&self) -> usize;

    /// Polls child `index` once if it is still running.
    fn poll_step(self: Pin<&mut Self>, index: usize, cx: &mut Context<'_>) -> Step;

    /// Whether child `index` has finished and its output is still in its slot.
    fn has_output(&self, index: usize) -> bool;

    /// Drops whatever child `index` holds after a step of it panicked: the child itself
    /// (its poll panicked), or the output it had just finished with (its drop panicked).
    /// The slot holds nothing afterwards, even if this drop panics too.
    fn discard(self: Pin<&mut Self>, index: usize);

    /// Moves every output out, in input order. Called once, after every child finished.
    fn take_outputs(self: Pin<&mut Self>) -> Self::Outputs;

    /// Drops every child still running and every output still stored.
    fn clear(self: Pin<&mut Self>);
}

/// Slots whose children all return `Result`s with one error type.
pub trait ResultSlots: Slots<Outputs: Outcomes> {
    /// Whether child `index` finished with an `Err`.
    fn is_err(&self, index: usize) -> bool;

    /// Moves child `index`'s `Err` out, if it finished with one.
    fn take_err(self: Pin<&mut Self>, index: usize) -> Option<ErrorOf<Self>>;
}

/// The error type of the children of `S`.
pub(crate) type ErrorOf<S> = <<S as Slots>::Outputs as Outcomes>::Error;

/// Slots whose children all have one output type (arrays, `Vec`s, `SmallVec`s): the
/// shapes that can hand out outputs one at a time, as they finish.
pub trait UniformSlots: Slots {
    /// Every child's output type.
    type Output;

    /// Moves child `index`'s output out. Called once, right after it finished.
    fn take_one(self: Pin<&mut Self>, index: usize) -> Self::Output;
}

impl<S: SlotSlice> UniformSlots for S {
    type Output = <S::Future as Future>::Output;

    fn take_one(self: Pin<&mut Self>, index: usize) -> Self::Output {
        pinned::index(self.slots_pinned(), index).take_output()
    }
}

impl<S, T, E, X> CutOff<X> for S
where
    S: SlotSlice,
    S::Future: Future<Output = Result<T, E>>,
    E: From<X>,
{
    fn cut_off(self: Pin<&mut Self>, index: usize, cause: impl FnOnce() -> X) -> bool {
        pinned::index(self.slots_pinned(), index).cut_off(|| E::from(cause()))
    }

    fn fail(self: Pin<&mut Self>, index: usize, cause: X) {
        pinned::index(self.slots_pinned(), index).fail(E::from(cause));
    }
}

/// Storage that is a slice of slots of one future type underneath.
pub trait SlotSlice {
    /// The children's future type.
    type Future: Future;
    /// See [`Slots::Outputs`].
    type Outputs;
    /// See [`Slots::Readiness`].
    type Readiness: Readiness<Self>;

    fn readiness(&self) -> Self::Readiness;

    fn slots(&self) -> &[Slot<Self::Future>];
    fn slots_pinned(self: Pin<&mut Self>) -> Pin<&mut [Slot<Self::Future>]>;
    /// Builds the output collection from the output of each index in turn.
    fn collect_outputs(
        len: usize,
        output: impl FnMut(usize) -> <Self::Future as Future>::Output,
    ) -> Self::Outputs;
}

impl<S: SlotSlice> Slots for S {
    type Outputs = S::Outputs;
    type Readiness = S::Readiness;

    fn readiness(&self) -> S::Readiness {
        SlotSlice::readiness(self)
    }

    #[inline]
    fn len(&self) -> usize {
        self.slots().len()
    }

    #[inline]
    fn poll_step(self: Pin<&mut Self>, index: usize, cx: &mut Context<'_>) -> Step {
        pinned::index(self.slots_pinned(), index).poll_step(cx)
    }

    fn has_output(&self, index: usize) -> bool {
        self.slots()[index].is_finished()
    }

    fn discard(self: Pin<&mut Self>, index: usize) {
        pinned::index(self.slots_pinned(), index).clear();
    }

    fn take_outputs(mut self: Pin<&mut Self>) -> Self::Outputs {
        let len = self.len();
        // Every slot is checked first: the copy below then reads each output on its own.
        // Checked one by one, the compiler merges the copies into wide loads that straddle
        // the state words the last pass has just written, a store-forwarding stall each.
        assert!(
            self.slots().iter().all(Slot::is_finished),
            "gather: outputs taken before every child finished"
        );
        S::collect_outputs(len, |i| {
            pinned::index(self.as_mut().slots_pinned(), i).take_output()
        })
    }

    fn clear(mut self: Pin<&mut Self>) {
        for i in 0..self.len() {
            pinned::index(self.as_mut().slots_pinned(), i).clear();
        }
    }
}

impl<S, T, E> ResultSlots for S
where
    S: SlotSlice,
    S::Future: Future<Output = Result<T, E>>,
    S::Outputs: Outcomes<Error = E>,
{
    fn is_err(&self, index: usize) -> bool {
        self.slots()[index].is_err()
    }

    fn take_err(self: Pin<&mut Self>, index: usize) -> Option<E> {
        pinned::index(self.slots_pinned(), index).take_err()
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

    fn collect_outputs(_len: usize, output: impl FnMut(usize) -> F::Output) -> [F::Output; N] {
        core::array::from_fn(output)
    }
}

#[cfg(feature = "alloc")]
pub(super) use super::raw::heap::HeapSlots;
#[cfg(feature = "alloc")]
pub(super) use heap::InlineSlots;

#[cfg(feature = "alloc")]
mod heap {
    use alloc::vec::Vec;
    use core::fmt;
    use core::future::Future;
    use core::pin::Pin;
    use core::task::Context;

    use smallvec::SmallVec;

    use super::{CutOff, ResultSlots, SlotSlice, Slots, UniformSlots};
    use crate::gather::raw::heap::{HeapSlots, OwnWakers};
    use crate::gather::raw::pin as pinned;
    use crate::gather::readiness::{Adaptive, Sweep, Wakers};
    use crate::gather::slot::Slot;
    use crate::gather::slot::Step;

    impl<F: Future> Slots for HeapSlots<F> {
        type Outputs = Vec<F::Output>;
        type Readiness = OwnWakers;

        fn readiness(&self) -> OwnWakers {
            OwnWakers::default()
        }

        #[inline]
        fn len(&self) -> usize {
            HeapSlots::len(self)
        }

        #[inline]
        fn poll_step(self: Pin<&mut Self>, index: usize, cx: &mut Context<'_>) -> Step {
            self.get_mut().poll_step(index, cx)
        }

        fn has_output(&self, index: usize) -> bool {
            self.output(index).is_some()
        }

        fn discard(self: Pin<&mut Self>, index: usize) {
            self.get_mut().discard(index);
        }

        fn take_outputs(self: Pin<&mut Self>) -> Vec<F::Output> {
            self.get_mut().take_outputs()
        }

        fn clear(self: Pin<&mut Self>) {
            self.get_mut().clear();
        }
    }

    impl<F, T, E, X> CutOff<X> for HeapSlots<F>
    where
        F: Future<Output = Result<T, E>>,
        E: From<X>,
    {
        fn cut_off(self: Pin<&mut Self>, index: usize, cause: impl FnOnce() -> X) -> bool {
            self.get_mut().cut_off(index, || Err(E::from(cause())))
        }

        fn fail(self: Pin<&mut Self>, index: usize, cause: X) {
            self.get_mut().fail(index, Err(E::from(cause)));
        }
    }

    impl<F: Future> UniformSlots for HeapSlots<F> {
        type Output = F::Output;

        fn take_one(self: Pin<&mut Self>, index: usize) -> F::Output {
            let taken = self.get_mut().take_output_if(index, |_| true);
            taken.expect("gather: the output of a child that just finished")
        }
    }

    impl<F, T, E> ResultSlots for HeapSlots<F>
    where
        F: Future<Output = Result<T, E>>,
    {
        fn is_err(&self, index: usize) -> bool {
            self.output(index).is_some_and(Result::is_err)
        }

        fn take_err(self: Pin<&mut Self>, index: usize) -> Option<E> {
            self.get_mut().take_output_if(index, Result::is_err)?.err()
        }
    }

    pin_project_lite::pin_project! {
        /// Slots inline up to `K` children, on the heap past that (a `SmallVec` input or
        /// [`gather_iter`](crate::gather_iter)).
        pub struct InlineSlots<A>
        where
            A: smallvec::Array,
        {
            #[pin]
            slots: SmallVec<A>,
        }
    }

    impl<A: smallvec::Array> fmt::Debug for InlineSlots<A> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("InlineSlots")
                .field("len", &self.slots.len())
                .finish()
        }
    }

    impl<F: Future, const K: usize> InlineSlots<[Slot<F>; K]> {
        pub(crate) fn new(futures: impl IntoIterator<Item = F>) -> Self {
            InlineSlots {
                slots: futures.into_iter().map(Slot::new).collect(),
            }
        }
    }

    impl<F: Future, const K: usize> SlotSlice for InlineSlots<[Slot<F>; K]> {
        type Future = F;
        type Outputs = SmallVec<[F::Output; K]>;
        type Readiness = Adaptive;

        fn readiness(&self) -> Adaptive {
            if self.slots.spilled() {
                Adaptive::Wakers(Wakers::default())
            } else {
                Adaptive::Sweep(Sweep::default())
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
}
