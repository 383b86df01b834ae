//! `Vec<F>`: each child moves into the heap block of its waker (`raw/vec_slots.rs`), so
//! that a wake, the poll that follows and the bookkeeping touch the same memory.
//!
//! One storage for every length, on purpose. A second one for a few children (polled in
//! the input's own buffer where a child's place holds its output too, in cells that hold
//! the child and then its output, with per-child wakers only after a switch: one
//! allocation fewer per gather) was built and measured (commit e614764): settle-all of 2
//! and 8 self-waking children took 0.66x and 0.87x the time (separate runs of one
//! session, not a same-run A/B), but the choice between two
//! storages is a check in every per-child poll and every access to the block, large
//! gathers included, and `ready` at 1,024-65,536 children went from 2.42 to 2.80 ns per
//! child. Only a storage fixed by the input's type keeps the large gathers' loop free of it.

use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::Input;
use crate::engine::limit::{Limit, Window};
use crate::engine::per_child::{per_child_pass, stop_per_child, Tentative, SWEEP_UP_TO};
use crate::engine::readiness::{Readiness, Visit};
use crate::engine::slots::{CutOff, ResultSlots, Slots, UniformSlots};
use crate::raw::slot::Step;
use crate::raw::vec_slots::VecSlots;

impl<F: Future> crate::sealed::Input for Vec<F> {}

impl<F: Future> Input for Vec<F> {
    type Slots = VecSlots<F>;

    fn into_slots(self) -> Self::Slots {
        VecSlots::new(self)
    }
}

impl<F: Future> Slots for VecSlots<F> {
    type Outputs = Vec<F::Output>;
    type Readiness = OwnWakers;

    fn readiness(&self) -> OwnWakers {
        if VecSlots::len(self) <= SWEEP_UP_TO {
            OwnWakers::Sweep(Tentative::default())
        } else {
            OwnWakers::PerChild(Window::default())
        }
    }

    #[inline]
    fn len(&self) -> usize {
        VecSlots::len(self)
    }

    #[inline]
    fn poll_step(self: Pin<&mut Self>, index: usize, cx: &mut Context<'_>) -> Step {
        match self.get_mut().poll(index, cx) {
            None => Step::NotRunning,
            Some(Poll::Pending) => Step::Pending,
            Some(Poll::Ready(())) => Step::Finished,
        }
    }

    fn has_output(&self, index: usize) -> bool {
        self.output(index).is_some()
    }

    fn is_running(&self, index: usize) -> bool {
        VecSlots::is_running(self, index)
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

impl<F, T, E, X> CutOff<X> for VecSlots<F>
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

impl<F: Future> UniformSlots for VecSlots<F> {
    type Output = F::Output;

    fn take_one(self: Pin<&mut Self>, index: usize) -> F::Output {
        let taken = self.get_mut().take_output_if(index, |_| true);
        taken.expect("gather: the output of a child that just finished")
    }
}

impl<F, T, E> ResultSlots for VecSlots<F>
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

/// Readiness of a `Vec` gather: a sweep with the gather's own waker for a few children
/// (up to [`SWEEP_UP_TO`], without a limit) while it pays off; per-child wakers, which live
/// in the gather's block beside the children, for more, or once the sweep wastes polls.
#[derive(Debug)]
pub enum OwnWakers {
    /// A few children, no limit.
    Sweep(Tentative),
    /// Many children, a limit, or children that wake one by one.
    PerChild(Window),
}

impl Limit for OwnWakers {
    /// A limit needs the per-child window, even for a gather small enough to sweep.
    fn set_limit(&mut self, limit: usize) {
        self.use_per_child_wakers();
        if let OwnWakers::PerChild(window) = self {
            window.set_limit(limit);
        }
    }

    fn use_per_child_wakers(&mut self) {
        if let OwnWakers::Sweep(_) = self {
            *self = OwnWakers::PerChild(Window::default());
        }
    }
}

impl<F: Future> Readiness<VecSlots<F>> for OwnWakers {
    #[inline]
    fn pass<const YIELDS: bool>(
        &mut self,
        slots: Pin<&mut VecSlots<F>>,
        len: usize,
        cx: &mut Context<'_>,
        mut visit: impl FnMut(Pin<&mut VecSlots<F>>, usize, &mut Context<'_>) -> Visit,
    ) {
        match self {
            OwnWakers::Sweep(sweep) => sweep.pass::<YIELDS, _>(slots, len, cx, visit),
            OwnWakers::PerChild(window) => per_child_pass(
                slots.get_mut(),
                VecSlots::block,
                window,
                cx,
                |slots, index, cx| visit(Pin::new(slots), index, cx),
            ),
        }
    }

    fn stop(&mut self, slots: Pin<&mut VecSlots<F>>, cx: &mut Context<'_>) {
        match self {
            OwnWakers::Sweep(_) => cx.waker().wake_by_ref(),
            OwnWakers::PerChild(window) => {
                let slots = &*slots;
                stop_per_child(slots.block_ref(), window, cx, |i| slots.is_running(i));
            }
        }
    }

    #[inline]
    fn running(&self, unfinished: usize) -> usize {
        match self {
            OwnWakers::Sweep(_) => unfinished,
            OwnWakers::PerChild(window) => window.running(unfinished),
        }
    }

    #[inline]
    fn after_pass(&mut self, running: usize, finished: usize) {
        if let OwnWakers::Sweep(sweep) = self {
            if sweep.wasteful(running, finished) {
                // No child has a waker of its own yet, so the block counts every one as
                // never polled: the next pass polls each child still running, with its
                // own waker.
                *self = OwnWakers::PerChild(Window::default());
            }
        }
    }
}
