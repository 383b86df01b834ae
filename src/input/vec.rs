//! `Vec<F>`: a few children (up to [`SWEEP_UP_TO`]) are polled in a buffer of cells, each
//! output taking its child's place (`raw/in_place.rs`): the input's own buffer where an
//! output fits in a child's place, so that the gather allocates nothing of its own, and
//! per-child wakers only once the children show that they wake one by one. More children
//! each move into the heap block of their waker (`raw/vec_slots.rs`), so that a wake, the
//! poll that follows and the bookkeeping touch the same memory.

use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::Input;
use crate::engine::limit::{Limit, Window};
use crate::engine::per_child::{per_child_pass, stop_per_child, Adaptive, Tentative, SWEEP_UP_TO};
use crate::engine::readiness::{Readiness, Visit};
use crate::engine::slot::Step;
use crate::engine::slots::{CutOff, ResultSlots, Slots, UniformSlots};
use crate::raw::block::Block;
use crate::raw::in_place::{self, InPlace};
use crate::raw::vec_slots::{Child, VecSlots};

impl<F: Future> crate::sealed::Input for Vec<F> {}

impl<F: Future> Input for Vec<F> {
    type Slots = VecStorage<F>;

    fn into_slots(self) -> Self::Slots {
        if self.len() <= SWEEP_UP_TO && InPlace::<F>::fits(self.len()) {
            VecStorage::InPlace(InPlace::new(self))
        } else {
            VecStorage::Block(VecSlots::new(self))
        }
    }
}

/// The children and outputs of a `Vec` gather: in the input's buffer (a few children), or
/// in the block of their wakers.
pub enum VecStorage<F: Future> {
    InPlace(InPlace<F>),
    Block(VecSlots<F>),
}

const _: () = assert!(SWEEP_UP_TO <= in_place::MAX);

impl<F: Future> fmt::Debug for VecStorage<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VecStorage::InPlace(slots) => slots.fmt(f),
            VecStorage::Block(slots) => slots.fmt(f),
        }
    }
}

impl<F: Future> VecStorage<F> {
    /// The block of children and wakers: only a `Block` storage has one, and only its
    /// readiness asks for it.
    #[inline]
    fn block(&mut self) -> &mut Block<Child<F>> {
        match self {
            VecStorage::Block(slots) => slots.block(),
            VecStorage::InPlace(_) => unreachable!("gather: a block asked of in-place slots"),
        }
    }

    /// Child `index`'s output, if it is stored.
    #[inline]
    fn output(&self, index: usize) -> Option<&F::Output> {
        match self {
            VecStorage::InPlace(slots) => slots.output(index),
            VecStorage::Block(slots) => slots.output(index),
        }
    }

    /// Moves child `index`'s output out, if it is stored and `take` says so.
    #[inline]
    fn take_output_if(
        &mut self,
        index: usize,
        take: impl FnOnce(&F::Output) -> bool,
    ) -> Option<F::Output> {
        match self {
            VecStorage::InPlace(slots) => slots.take_output_if(index, take),
            VecStorage::Block(slots) => slots.take_output_if(index, take),
        }
    }

    /// Stores `output` for child `index`, which holds nothing (see `CutOff::fail`).
    fn fail(&mut self, index: usize, output: F::Output) {
        match self {
            VecStorage::InPlace(slots) => slots.fail(index, output),
            VecStorage::Block(slots) => slots.fail(index, output),
        }
    }

    /// See `CutOff::cut_off`.
    fn cut_off(&mut self, index: usize, output: impl FnOnce() -> F::Output) -> bool {
        match self {
            VecStorage::InPlace(slots) => slots.cut_off(index, output),
            VecStorage::Block(slots) => slots.cut_off(index, output),
        }
    }
}

impl<F: Future> Slots for VecStorage<F> {
    type Outputs = Vec<F::Output>;
    type Readiness = VecReadiness;

    fn readiness(&self) -> VecReadiness {
        match self {
            VecStorage::InPlace(_) => {
                VecReadiness::InPlace(Adaptive::Tentative(Tentative::default()))
            }
            VecStorage::Block(slots) if slots.len() <= SWEEP_UP_TO => {
                VecReadiness::Sweep(Tentative::default())
            }
            VecStorage::Block(_) => VecReadiness::PerChild(Window::default()),
        }
    }

    #[inline]
    fn len(&self) -> usize {
        match self {
            VecStorage::InPlace(slots) => slots.len(),
            VecStorage::Block(slots) => slots.len(),
        }
    }

    #[inline]
    fn poll_step(self: Pin<&mut Self>, index: usize, cx: &mut Context<'_>) -> Step {
        let poll = match self.get_mut() {
            VecStorage::InPlace(slots) => slots.poll(index, cx),
            VecStorage::Block(slots) => slots.poll(index, cx),
        };
        match poll {
            None => Step::NotRunning,
            Some(Poll::Pending) => Step::Pending,
            Some(Poll::Ready(())) => Step::Finished,
        }
    }

    fn has_output(&self, index: usize) -> bool {
        self.output(index).is_some()
    }

    fn is_running(&self, index: usize) -> bool {
        match self {
            VecStorage::InPlace(slots) => slots.is_running(index),
            VecStorage::Block(slots) => slots.is_running(index),
        }
    }

    fn discard(self: Pin<&mut Self>, index: usize) {
        match self.get_mut() {
            VecStorage::InPlace(slots) => slots.discard(index),
            VecStorage::Block(slots) => slots.discard(index),
        }
    }

    fn take_outputs(self: Pin<&mut Self>) -> Vec<F::Output> {
        match self.get_mut() {
            VecStorage::InPlace(slots) => slots.take_outputs(),
            VecStorage::Block(slots) => slots.take_outputs(),
        }
    }

    fn clear(self: Pin<&mut Self>) {
        match self.get_mut() {
            VecStorage::InPlace(slots) => slots.clear(),
            VecStorage::Block(slots) => slots.clear(),
        }
    }
}

impl<F, T, E, X> CutOff<X> for VecStorage<F>
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

impl<F: Future> UniformSlots for VecStorage<F> {
    type Output = F::Output;

    fn take_one(self: Pin<&mut Self>, index: usize) -> F::Output {
        let taken = self.get_mut().take_output_if(index, |_| true);
        taken.expect("gather: the output of a child that just finished")
    }
}

impl<F, T, E> ResultSlots for VecStorage<F>
where
    F: Future<Output = Result<T, E>>,
{
    fn is_err(&self, index: usize) -> bool {
        self.output(index).is_some_and(Result::is_err)
    }

    fn take_err_if(self: Pin<&mut Self>, index: usize, pred: impl FnOnce(&E) -> bool) -> Option<E> {
        let taken = self.get_mut().take_output_if(index, |output| match output {
            Err(error) => pred(error),
            Ok(_) => false,
        });
        taken?.err()
    }
}

/// Readiness of a `Vec` gather. In place: a sweep with the gather's own waker while it
/// pays off, then per-child wakers in a block of their own ([`Adaptive`]). In a block: a
/// sweep for a few children (up to [`SWEEP_UP_TO`], without a limit) while it pays off;
/// per-child wakers, which live in the block beside the children, for more, or once the
/// sweep wastes polls.
#[derive(Debug)]
pub enum VecReadiness {
    /// Children in the input's buffer.
    InPlace(Adaptive),
    /// Children in the block, a few, no limit.
    Sweep(Tentative),
    /// Children in the block: many, a limit, or children that wake one by one.
    PerChild(Window),
}

impl Limit for VecReadiness {
    /// A limit needs the per-child window, even for a gather small enough to sweep.
    fn set_limit(&mut self, limit: usize) {
        match self {
            VecReadiness::InPlace(adaptive) => adaptive.set_limit(limit),
            VecReadiness::Sweep(_) | VecReadiness::PerChild(_) => {
                self.use_per_child_wakers();
                if let VecReadiness::PerChild(window) = self {
                    window.set_limit(limit);
                }
            }
        }
    }

    fn use_per_child_wakers(&mut self) {
        match self {
            VecReadiness::InPlace(adaptive) => adaptive.use_per_child_wakers(),
            VecReadiness::Sweep(_) => *self = VecReadiness::PerChild(Window::default()),
            VecReadiness::PerChild(_) => {}
        }
    }
}

impl<F: Future> Readiness<VecStorage<F>> for VecReadiness {
    #[inline]
    fn pass<const YIELDS: bool>(
        &mut self,
        slots: Pin<&mut VecStorage<F>>,
        len: usize,
        cx: &mut Context<'_>,
        mut visit: impl FnMut(Pin<&mut VecStorage<F>>, usize, &mut Context<'_>) -> Visit,
    ) {
        match self {
            VecReadiness::InPlace(adaptive) => adaptive.pass::<YIELDS>(slots, len, cx, visit),
            VecReadiness::Sweep(sweep) => sweep.pass::<YIELDS, _>(slots, len, cx, visit),
            VecReadiness::PerChild(window) => per_child_pass(
                slots.get_mut(),
                VecStorage::block,
                window,
                cx,
                |slots, index, cx| visit(Pin::new(slots), index, cx),
            ),
        }
    }

    fn stop(&mut self, slots: Pin<&mut VecStorage<F>>, cx: &mut Context<'_>) {
        match (self, slots.get_mut()) {
            (VecReadiness::InPlace(adaptive), slots) => adaptive.stop(Pin::new(slots), cx),
            (VecReadiness::PerChild(window), VecStorage::Block(slots)) => {
                let slots = &*slots;
                stop_per_child(slots.block_ref(), window, cx, |i| slots.is_running(i));
            }
            (VecReadiness::Sweep(_) | VecReadiness::PerChild(_), _) => cx.waker().wake_by_ref(),
        }
    }

    #[inline]
    fn running(&self, unfinished: usize) -> usize {
        match self {
            VecReadiness::InPlace(adaptive) => {
                Readiness::<VecStorage<F>>::running(adaptive, unfinished)
            }
            VecReadiness::Sweep(_) => unfinished,
            VecReadiness::PerChild(window) => window.running(unfinished),
        }
    }

    #[inline]
    fn after_pass(&mut self, running: usize, finished: usize) {
        match self {
            VecReadiness::InPlace(adaptive) => {
                Readiness::<VecStorage<F>>::after_pass(adaptive, running, finished);
            }
            VecReadiness::Sweep(sweep) => {
                if sweep.wasteful(running, finished) {
                    // No child has a waker of its own yet, so the block counts every one
                    // as never polled: the next pass polls each child still running, with
                    // its own waker.
                    *self = VecReadiness::PerChild(Window::default());
                }
            }
            VecReadiness::PerChild(_) => {}
        }
    }
}
