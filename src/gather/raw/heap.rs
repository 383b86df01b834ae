//! Slot storage for `Vec` inputs: each child lives in the gather's block next to its waker
//! node, and each output is written straight into its place in the output `Vec`.
//!
//! - The block (see `block.rs`) holds one [`Child`] per input: the running future, then
//!   `Stored` once its output has been written, or `Empty`.
//! - `outputs` is a `Vec<O>` with room for every output and length 0 until the end. Place
//!   `i` holds an initialised output exactly while child `i` is `Stored` and the outputs
//!   have not been taken (`taken`: then every child is `Stored`, and none of them counts).
//!
//! When every output is stored, handing them back is O(1): the output `Vec` takes its full
//! length. A wake touches the child's entry (node and future together) and, when the child
//! finishes, its output's place: that is all the memory a wake reaches.

use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::mem;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::block::Block;
use crate::gather::readiness::{per_child_pass, Limit, PassEnd, Readiness, Visit, Window};
use crate::gather::slot::Step;

pin_project_lite::pin_project! {
    /// One child of a `Vec` gather, in its entry of the block.
    #[project = ChildProj]
    pub enum Child<F> {
        Running { #[pin] future: F },
        Stored,
        Empty,
    }
}

/// The children and outputs of a `Vec` gather.
pub struct HeapSlots<F: Future> {
    block: Block<Child<F>>,
    outputs: Vec<F::Output>,
    /// How many outputs are stored (and not taken).
    stored: usize,
    /// Whether the outputs were handed back: every child is `Stored` and owns nothing.
    taken: bool,
}

// Children are polled in place in a heap block that never moves: moving a `HeapSlots`
// moves only the pointer to it.
impl<F: Future> Unpin for HeapSlots<F> {}

impl<F: Future> HeapSlots<F> {
    pub(crate) fn new(children: Vec<F>) -> Self {
        let len = children.len();
        let mut children = children.into_iter();
        let block = Block::new(len, |_| Child::Running {
            future: children.next().expect("an exact-size iterator"),
        });
        HeapSlots {
            block,
            outputs: Vec::with_capacity(len),
            stored: 0,
            taken: false,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.block.len()
    }

    /// Polls child `index` once if it is still running; when it finishes, drops it in
    /// place and stores its output.
    #[inline]
    pub(crate) fn poll_step(&mut self, index: usize, cx: &mut Context<'_>) -> Step {
        let child = self.block.payload_pinned(index);
        let ChildProj::Running { future } = child.project() else {
            return Step::Idle;
        };
        let Poll::Ready(output) = future.poll(cx) else {
            return Step::Pending;
        };
        self.finish(index, output);
        Step::Finished
    }

    /// If child `index` is still running, drops it and stores `output()` as its output
    /// (the deadline layer); returns whether it did.
    pub(crate) fn expire_with(&mut self, index: usize, output: impl FnOnce() -> F::Output) -> bool {
        if !matches!(self.block.payload(index), Child::Running { .. }) {
            return false;
        }
        self.finish(index, output());
        true
    }

    /// Drops running child `index` in place and stores its output.
    fn finish(&mut self, index: usize, output: F::Output) {
        let mut child = self.block.payload_pinned(index);
        debug_assert!(matches!(*child, Child::Running { .. }));
        child.set(Child::Empty);
        // SAFETY: place `index` (< len, the capacity) is empty: its child was running until
        // now, and the outputs have not been taken (a running child means the gather is
        // not done).
        unsafe { self.outputs.as_mut_ptr().add(index).write(output) };
        self.block.payload_pinned(index).set(Child::Stored);
        self.stored += 1;
    }

    /// Child `index`'s output, if it is stored.
    pub(crate) fn output(&self, index: usize) -> Option<&F::Output> {
        let stored = !self.taken && matches!(self.block.payload(index), Child::Stored);
        // SAFETY: `Stored` before the outputs are taken means place `index` is initialised.
        stored.then(|| unsafe { &*self.outputs.as_ptr().add(index) })
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
        self.block.payload_pinned(index).set(Child::Empty);
        self.stored -= 1;
        // SAFETY: the place was initialised (`Stored`) and is now marked empty, so the
        // value is moved out exactly once.
        Some(unsafe { self.outputs.as_ptr().add(index).read() })
    }

    /// Every output, in input order.
    ///
    /// # Panics
    ///
    /// Panics unless every output is stored.
    pub(crate) fn take_outputs(&mut self) -> Vec<F::Output> {
        assert_eq!(
            self.stored,
            self.len(),
            "gather: outputs taken before every child finished"
        );
        // Every child is `Stored` and stays so: `taken` says that they own nothing now,
        // and the block need not visit them again to drop them.
        self.taken = true;
        self.stored = 0;
        self.block.forget_payloads();
        let mut outputs = mem::take(&mut self.outputs);
        // SAFETY: every place below `len` (the capacity) was `Stored`, so initialised;
        // `taken` keeps every other access away, so the outputs belong to the `Vec` alone.
        unsafe { outputs.set_len(self.len()) };
        outputs
    }

    /// Drops every child still running and every output still stored.
    pub(crate) fn clear(&mut self) {
        if self.taken {
            return; // nothing is running or stored
        }
        for index in 0..self.len() {
            let mut child = self.block.payload_pinned(index);
            let was_stored = matches!(*child, Child::Stored);
            child.set(Child::Empty);
            if was_stored {
                self.stored -= 1;
                // SAFETY: `Stored`: the output is initialised; the child is now `Empty`,
                // so it is dropped exactly once.
                unsafe { self.outputs.as_mut_ptr().add(index).drop_in_place() };
            }
        }
    }
}

impl<F: Future> Drop for HeapSlots<F> {
    /// Drops the stored outputs; the block drops the children still running. The outputs'
    /// `Vec` has length 0 unless taken, so it drops nothing itself.
    fn drop(&mut self) {
        if self.stored > 0 {
            self.clear();
        }
    }
}

impl<F: Future> fmt::Debug for HeapSlots<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeapSlots")
            .field("len", &self.len())
            .field("stored", &self.stored)
            .finish()
    }
}

/// Readiness of a `Vec` gather: the per-child wakers live in its own block.
#[derive(Debug, Default)]
pub struct OwnWakers {
    pub(crate) window: Window,
}

impl Limit for OwnWakers {
    fn set_limit(&mut self, limit: usize) {
        self.window.set_limit(limit);
    }
}

impl<F: Future> Readiness<HeapSlots<F>> for OwnWakers {
    #[inline]
    fn pass(
        &mut self,
        slots: Pin<&mut HeapSlots<F>>,
        _len: usize,
        cx: &mut Context<'_>,
        mut visit: impl FnMut(Pin<&mut HeapSlots<F>>, usize, &mut Context<'_>) -> Visit,
    ) -> PassEnd {
        per_child_pass(
            slots.get_mut(),
            |slots| &mut slots.block,
            &mut self.window,
            cx,
            |slots, index, cx| visit(Pin::new(slots), index, cx),
        )
    }
}
