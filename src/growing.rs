//! A test-only storage that grows while the gather runs, and numbers its slots apart from
//! the input indices the caller sees: the seam that lazy inputs (a window of reused slots)
//! and a growing `Group` will use. The engine reads the number of children at each poll
//! and reports every index through [`Slots::input_index`]; these tests hold it to that.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;
use core::future::{pending, poll_fn, ready, Future};
use core::pin::{pin, Pin};
use core::task::{Context, Poll};

use futures::task::noop_waker_ref;
use futures::StreamExt;

use crate::engine::slots::{CutOff, Slots, UniformSlots};
use crate::engine::sweep::Sweep;
use crate::gather::{gather, Gather};
use crate::input::Input;
use crate::layer::deadline::TimedOut;
use crate::raw::slot::{Slot, Step};

/// Children pushed at any time, each with the input index the caller will see. Slots are
/// numbered in push order; each is boxed, so that growing never moves a child.
struct Growing<F: Future> {
    slots: Vec<Pin<Box<Slot<F>>>>,
    inputs: Vec<usize>,
}

impl<F: Future> Unpin for Growing<F> {}

impl<F: Future> Growing<F> {
    fn push(&mut self, index: usize, future: F) {
        self.slots.push(Box::pin(Slot::new(future)));
        self.inputs.push(index);
    }
}

/// Children with the input indices they will be reported under.
struct Indexed<F>(Vec<(usize, F)>);

impl<F: Future> crate::sealed::Input for Indexed<F> {}

impl<F: Future> Input for Indexed<F> {
    type Slots = Growing<F>;

    fn into_slots(self) -> Growing<F> {
        let mut slots = Growing {
            slots: Vec::new(),
            inputs: Vec::new(),
        };
        for (index, future) in self.0 {
            slots.push(index, future);
        }
        slots
    }
}

impl<F: Future> Slots for Growing<F> {
    /// `(input index, output)`, in input order.
    type Outputs = Vec<(usize, F::Output)>;
    type Readiness = Sweep;

    fn readiness(&self) -> Sweep {
        Sweep::default()
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn input_index(&self, slot: usize) -> usize {
        self.inputs[slot]
    }

    fn poll_step(self: Pin<&mut Self>, slot: usize, cx: &mut Context<'_>) -> Step {
        self.get_mut().slots[slot].as_mut().poll_step(cx)
    }

    fn has_output(&self, slot: usize) -> bool {
        self.slots[slot].is_finished()
    }

    fn discard(self: Pin<&mut Self>, slot: usize) {
        self.get_mut().slots[slot].as_mut().clear();
    }

    fn take_outputs(self: Pin<&mut Self>) -> Self::Outputs {
        let this = self.get_mut();
        let mut outputs: Vec<_> = (0..this.slots.len())
            .map(|slot| (this.inputs[slot], this.slots[slot].as_mut().take_output()))
            .collect();
        outputs.sort_by_key(|(index, _)| *index);
        outputs
    }

    fn clear(self: Pin<&mut Self>) {
        for slot in &mut self.get_mut().slots {
            slot.as_mut().clear();
        }
    }
}

impl<F: Future> UniformSlots for Growing<F> {
    type Output = F::Output;

    fn take_one(self: Pin<&mut Self>, slot: usize) -> F::Output {
        self.get_mut().slots[slot].as_mut().take_output()
    }
}

impl<F, T, E, X> CutOff<X> for Growing<F>
where
    F: Future<Output = Result<T, E>>,
    E: From<X>,
{
    fn cut_off(self: Pin<&mut Self>, slot: usize, cause: impl FnOnce() -> X) -> bool {
        self.get_mut().slots[slot]
            .as_mut()
            .cut_off(|| E::from(cause()))
    }

    fn fail(self: Pin<&mut Self>, slot: usize, cause: X) {
        self.get_mut().slots[slot].as_mut().fail(E::from(cause));
    }
}

type Child<'a> = Pin<Box<dyn Future<Output = char> + 'a>>;

/// A child that finishes with `value` once `open` is set.
fn gated(open: &Cell<bool>, value: char) -> Child<'_> {
    Box::pin(poll_fn(move |_| {
        if open.get() {
            Poll::Ready(value)
        } else {
            Poll::Pending
        }
    }))
}

fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(noop_waker_ref()))
}

#[test]
fn a_storage_that_grows_between_polls_completes_once_every_child_pushed_has_finished() {
    let open = Cell::new(false);
    let mut all: Pin<&mut Gather<Indexed<Child<'_>>>> =
        pin!(gather(Indexed(vec![(0, gated(&open, 'a'))])));
    assert!(poll_once(all.as_mut()).is_pending());

    // Pushed while the gather runs: it finishes at once, the first child still runs.
    all.as_mut()
        .slots_mut()
        .get_mut()
        .push(1, Box::pin(ready('b')));
    assert!(poll_once(all.as_mut()).is_pending());
    assert_eq!(all.len(), 2);

    open.set(true);
    let Poll::Ready(gathered) = poll_once(all.as_mut()) else {
        panic!("every child has finished");
    };
    assert_eq!(gathered.into_results(), [(0, 'a'), (1, 'b')]);
}

#[test]
fn as_completed_reports_input_indices_not_slots() {
    let open = Cell::new(false);
    let children = Indexed(vec![(30, gated(&open, 'a')), (10, Box::pin(ready('b')))]);
    let mut stream = pin!(gather(children).as_completed());
    let mut cx = Context::from_waker(noop_waker_ref());
    assert_eq!(
        stream.poll_next_unpin(&mut cx),
        Poll::Ready(Some((10, 'b')))
    );
    open.set(true);
    assert_eq!(
        stream.poll_next_unpin(&mut cx),
        Poll::Ready(Some((30, 'a')))
    );
    assert_eq!(stream.poll_next_unpin(&mut cx), Poll::Ready(None));
}

#[test]
fn a_cut_off_child_times_out_under_its_input_index() {
    type Call = Pin<Box<dyn Future<Output = Result<(), TimedOut>>>>;
    let children: Indexed<Call> = Indexed(vec![(7, Box::pin(pending())), (3, Box::pin(pending()))]);
    let mut stream = pin!(gather(children).deadline(ready(())).as_completed());
    let mut cx = Context::from_waker(noop_waker_ref());
    for index in [7, 3] {
        assert_eq!(
            stream.poll_next_unpin(&mut cx),
            Poll::Ready(Some((index, Err(TimedOut { index }))))
        );
    }
    assert_eq!(stream.poll_next_unpin(&mut cx), Poll::Ready(None));
}
