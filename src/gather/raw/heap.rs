//! Slot storage for `Vec` inputs: the children stay in the input's own buffer, and each
//! output is written straight into its place in the output `Vec`.
//!
//! Three buffers, each allocated once:
//!
//! - `children`: the input `Vec<F>`'s buffer, reused as is, with the `Vec`'s length set to
//!   0 at once so that the `Vec` never drops a child itself. Child `i` is live exactly
//!   while `state[i]` is `Running`; it is polled in place (the buffer never grows, shrinks
//!   or moves, so its elements are pinned) and dropped in place when it finishes.
//! - `outputs`: a `Vec<O>` with room for every output and length 0 until the end. Place
//!   `i` holds an initialised output exactly while `state[i]` is `Stored`.
//! - `state`: one byte per child.
//!
//! When every output is stored, handing them back is O(1): the output `Vec` takes its full
//! length. Compared with a slot enum per child, this saves copying the input, a second
//! pass that moves every output out, and the memory of both.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::mem;
use core::pin::Pin;
use core::ptr;
use core::task::{Context, Poll};

use crate::gather::slot::Step;

/// Where child `i` is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `children[i]` is live.
    Running,
    /// `outputs[i]` is initialised.
    Stored,
    /// Neither: the output was taken, or dropped.
    Empty,
}

/// The children and outputs of a `Vec` gather.
pub struct HeapSlots<F: Future> {
    children: Vec<F>,
    outputs: Vec<F::Output>,
    state: Box<[State]>,
    /// How many children are running or have their output stored: `clear` has nothing
    /// to do at 0.
    live: usize,
}

// Children are polled in place in a heap buffer that never moves: moving a `HeapSlots`
// moves only the pointer to it.
impl<F: Future> Unpin for HeapSlots<F> {}

impl<F: Future> HeapSlots<F> {
    pub(crate) fn new(mut children: Vec<F>) -> Self {
        let len = children.len();
        // SAFETY: shrinking the length only forgets the elements: from now on `state`
        // says which are live, and they are reached through the pointer, below `len`.
        unsafe { children.set_len(0) };
        HeapSlots {
            children,
            outputs: Vec::with_capacity(len),
            state: alloc::vec![State::Running; len].into_boxed_slice(),
            live: len,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.state.len()
    }

    /// Polls child `index` once if it is still running; when it finishes, drops it in
    /// place and stores its output.
    #[inline]
    pub(crate) fn poll_step(&mut self, index: usize, cx: &mut Context<'_>) -> Step {
        if self.state[index] != State::Running {
            return Step::Idle;
        }
        // SAFETY: child `index` is live (`Running`, and `index < len` was checked by the
        // indexing above). The buffer is never reallocated and its elements never moved
        // (module docs), so the child stays at this address until it is dropped in place:
        // it is pinned.
        let child = unsafe { Pin::new_unchecked(&mut *self.children.as_mut_ptr().add(index)) };
        let Poll::Ready(output) = child.poll(cx) else { return Step::Pending };
        // Marked first: if the child's drop panics, it is not dropped again.
        self.state[index] = State::Empty;
        // SAFETY: the child was live (`Running`) and is now marked dead; it is dropped
        // exactly once, in place.
        unsafe { ptr::drop_in_place(self.children.as_mut_ptr().add(index)) };
        // SAFETY: place `index` is within the capacity (`len` outputs) and empty
        // (its state was `Running`, never `Stored`).
        unsafe { self.outputs.as_mut_ptr().add(index).write(output) };
        self.state[index] = State::Stored;
        Step::Finished
    }

    /// Child `index`'s output, if it is stored.
    pub(crate) fn output(&self, index: usize) -> Option<&F::Output> {
        (self.state[index] == State::Stored).then(|| {
            // SAFETY: `Stored` means place `index` is initialised.
            unsafe { &*self.outputs.as_ptr().add(index) }
        })
    }

    /// Moves child `index`'s output out, if it is stored and `take` says so.
    pub(crate) fn take_output_if(
        &mut self,
        index: usize,
        take: impl FnOnce(&F::Output) -> bool,
    ) -> Option<F::Output> {
        if !take(self.output(index)?) {
            return None;
        }
        self.state[index] = State::Empty;
        self.live -= 1;
        // SAFETY: the place was `Stored` (initialised) and is now marked empty, so the
        // value is moved out exactly once.
        Some(unsafe { self.outputs.as_ptr().add(index).read() })
    }

    /// Every output, in input order.
    ///
    /// # Panics
    ///
    /// Panics unless every output is stored.
    pub(crate) fn take_outputs(&mut self) -> Vec<F::Output> {
        assert!(
            self.state.iter().all(|s| *s == State::Stored),
            "gather: outputs taken before every child finished"
        );
        self.state.fill(State::Empty);
        self.live = 0;
        let mut outputs = mem::take(&mut self.outputs);
        // SAFETY: every place below `len` (the capacity) was `Stored`, so initialised; the
        // states are now `Empty`, so the outputs now belong to the `Vec` alone.
        unsafe { outputs.set_len(self.state.len()) };
        outputs
    }

    /// Drops every child still running and every output still stored.
    pub(crate) fn clear(&mut self) {
        if self.live == 0 {
            return;
        }
        self.live = 0;
        for index in 0..self.state.len() {
            let state = mem::replace(&mut self.state[index], State::Empty);
            match state {
                // SAFETY: `Running`: the child is live; it is now marked dead and dropped
                // once, in place.
                State::Running => unsafe {
                    ptr::drop_in_place(self.children.as_mut_ptr().add(index));
                },
                // SAFETY: `Stored`: the output is initialised; it is now marked empty
                // and dropped once.
                State::Stored => unsafe {
                    ptr::drop_in_place(self.outputs.as_mut_ptr().add(index));
                },
                State::Empty => {}
            }
        }
    }
}

impl<F: Future> Drop for HeapSlots<F> {
    /// Drops what is live; the buffers themselves are freed by their `Vec`s, whose
    /// lengths are 0 (children) or 0 unless taken (outputs), so nothing is dropped twice,
    /// even if a drop here panics.
    fn drop(&mut self) {
        self.clear();
    }
}

impl<F: Future> fmt::Debug for HeapSlots<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeapSlots").field("len", &self.len()).finish()
    }
}
