//! Slot storage for a few children of a `Vec` gather: each child is polled in a buffer of
//! cells, and its output takes its place there. Where a cell is laid out as a child (the
//! output is no larger and no more aligned), the buffer is the input's own and the children
//! are polled where the input left them: the gather allocates nothing of its own (what
//! `try_join_all` gets by collecting its children in place). Otherwise the children move
//! into a new buffer of cells, and the input's is freed.
//!
//! Each cell is a [`Cell`]: the child while it runs, then its output. Two bit sets say what
//! each cell holds: `running` (an initialised child, pinned where it is) and `stored` (an
//! initialised output); a cell in neither holds nothing. At the end the outputs move down
//! into an output `Vec` over the same buffer when they fill at least half of it (as a
//! `Vec` grown by doubling would), into a new `Vec` otherwise.

use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::mem::{self, ManuallyDrop};
use core::pin::Pin;
use core::ptr;
use core::task::{Context, Poll};

use super::for_each_to_the_end;
use super::vec_slots::reusable_capacity;

/// One place of the buffer: a child, or its output, or (with neither bit set) nothing.
union Cell<F, O> {
    future: ManuallyDrop<F>,
    output: ManuallyDrop<O>,
}

/// The most children an [`InPlace`] takes: one bit each in a `u32`.
pub(crate) const MAX: usize = 32;

/// The children and outputs of a `Vec` gather of up to [`MAX`] children, in a buffer of
/// cells.
pub struct InPlace<F: Future> {
    /// The buffer of cells (length 0, so it drops nothing itself): it frees the buffer
    /// with the layout it was allocated with.
    buffer: Vec<Cell<F, F::Output>>,
    len: usize,
    /// Bit `i`: cell `i` holds its running child.
    running: u32,
    /// Bit `i`: cell `i` holds its output.
    stored: u32,
}

// Children are polled in place in a heap buffer, which never moves (the `Vec` is never
// grown): moving an `InPlace` moves only the pointer to it.
impl<F: Future> Unpin for InPlace<F> {}

/// The bits of cells `0..len`.
fn all(len: usize) -> u32 {
    debug_assert!(len <= MAX);
    if len == 0 {
        0
    } else {
        u32::MAX >> (MAX - len)
    }
}

impl<F: Future> InPlace<F> {
    /// Whether a `Vec` of `len` children can be gathered in cells: 1 to [`MAX`] of them, and
    /// cells that take room (the children or their outputs are not zero-sized).
    #[inline]
    pub(crate) fn fits(len: usize) -> bool {
        mem::size_of::<Cell<F, F::Output>>() != 0 && (1..=MAX).contains(&len)
    }

    /// Takes the children into cells: where they are, when a cell is laid out as a child;
    /// moved into a new buffer otherwise.
    ///
    /// # Panics
    ///
    /// Panics unless [`fits`](Self::fits) says yes (before touching the input).
    pub(crate) fn new(mut children: Vec<F>) -> Self {
        let len = children.len();
        assert!(Self::fits(len), "gather: children that do not fit in cells");
        let in_place = mem::size_of::<Cell<F, F::Output>>() == mem::size_of::<F>()
            && mem::align_of::<Cell<F, F::Output>>() == mem::align_of::<F>();
        let buffer = if in_place {
            let mut children = ManuallyDrop::new(children);
            // SAFETY: the buffer was allocated by the global allocator (a cell, so a child,
            // takes room) for `capacity` children, laid out as cells exactly: it is a
            // buffer of `capacity` cells. The children stay initialised in it, owned by
            // their cells from here on (`running`); the `Vec<F>` is forgotten, so the new
            // `Vec`, of length 0, owns the buffer alone.
            unsafe { Vec::from_raw_parts(children.as_mut_ptr().cast(), 0, children.capacity()) }
        } else {
            // (Allocated before the children move: if this fails, the input still owns
            // them.)
            let mut cells: Vec<Cell<F, F::Output>> = Vec::with_capacity(len);
            let (from, to) = (children.as_ptr(), cells.as_mut_ptr());
            for i in 0..len {
                // SAFETY: `i < len`: child `i` is initialised, and read once; cell `i` is
                // within the new buffer's room, and a union's fields start where it does.
                unsafe { to.add(i).cast::<F>().write(from.add(i).read()) };
            }
            // SAFETY: every child has moved into its cell: the input owns its buffer only,
            // which it frees (nothing above can panic between the reads and this).
            unsafe { children.set_len(0) };
            cells
        };
        InPlace {
            buffer,
            len,
            running: all(len),
            stored: 0,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Cell `index`, to write through.
    #[inline(always)]
    fn cell(&mut self, index: usize) -> *mut Cell<F, F::Output> {
        debug_assert!(index < self.len);
        // SAFETY: `index < len <= capacity`: within the buffer's room.
        unsafe { self.buffer.as_mut_ptr().add(index) }
    }

    /// Polls child `index` once if it is still running; when it finishes, drops it in
    /// place and stores its output. If the poll panics, the child is still running; if its
    /// drop panics, the cell holds nothing and the output is dropped as the panic unwinds.
    ///
    /// Returns `None` if the child is not running, else whether it finished.
    #[inline]
    pub(crate) fn poll(&mut self, index: usize, cx: &mut Context<'_>) -> Option<Poll<()>> {
        let bit = 1 << index;
        if self.running & bit == 0 {
            return None;
        }
        let cell = self.cell(index);
        // SAFETY: a running cell holds its child, initialised; it stays in this place of
        // the buffer until it is dropped there, so it may be pinned.
        let future = unsafe { Pin::new_unchecked(&mut *(*cell).future) };
        let Poll::Ready(output) = future.poll(cx) else {
            return Some(Poll::Pending);
        };
        self.running &= !bit;
        // SAFETY: the child is initialised and no longer counted as running, so it is
        // dropped exactly once (a drop that panics counts as done).
        unsafe { ManuallyDrop::drop(&mut (*cell).future) };
        self.store(index, output);
        Some(Poll::Ready(()))
    }

    /// Stores `output` in cell `index`, which holds nothing.
    #[inline(always)]
    fn store(&mut self, index: usize, output: F::Output) {
        let bit = 1 << index;
        debug_assert_eq!((self.running | self.stored) & bit, 0);
        let cell = self.cell(index);
        // SAFETY: the cell holds nothing (neither bit is set), so writing it drops nothing
        // and loses nothing.
        unsafe { ptr::addr_of_mut!((*cell).output).write(ManuallyDrop::new(output)) };
        self.stored |= bit;
    }

    /// Whether child `index` is still running.
    #[inline]
    pub(crate) fn is_running(&self, index: usize) -> bool {
        self.running & (1 << index) != 0
    }

    /// Drops child `index` if it is still running; the cell then holds nothing, whether
    /// the drop returns or panics.
    pub(crate) fn discard(&mut self, index: usize) {
        let bit = 1 << index;
        if self.running & bit == 0 {
            return;
        }
        self.running &= !bit;
        let cell = self.cell(index);
        // SAFETY: the child was running, so initialised; no longer counted, it is dropped
        // exactly once.
        unsafe { ManuallyDrop::drop(&mut (*cell).future) };
    }

    /// If child `index` is still running, drops it and stores `output()` as its output
    /// (the deadline); returns whether it did. If the drop panics, the cell holds nothing.
    pub(crate) fn cut_off(&mut self, index: usize, output: impl FnOnce() -> F::Output) -> bool {
        if !self.is_running(index) {
            return false;
        }
        self.discard(index);
        self.store(index, output());
        true
    }

    /// Stores `output` for child `index`, whose cell holds nothing (its child panicked and
    /// was discarded).
    pub(crate) fn fail(&mut self, index: usize, output: F::Output) {
        self.store(index, output);
    }

    /// Child `index`'s output, if it is stored.
    #[inline]
    pub(crate) fn output(&self, index: usize) -> Option<&F::Output> {
        if self.stored & (1 << index) == 0 {
            return None;
        }
        // SAFETY: as in `cell` (`index < len`, since only those bits are ever set); the
        // cell holds an initialised output, which stays there while `self` is borrowed.
        Some(unsafe { &(*self.buffer.as_ptr().add(index)).output })
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
        self.stored &= !(1 << index);
        let cell = self.cell(index);
        // SAFETY: the output was stored, so initialised; no longer counted, it is moved
        // out exactly once.
        Some(unsafe { ManuallyDrop::take(&mut (*cell).output) })
    }

    /// Every output, in input order.
    ///
    /// # Panics
    ///
    /// Panics unless every output is stored.
    pub(crate) fn take_outputs(&mut self) -> Vec<F::Output> {
        let len = self.len;
        assert_eq!(
            self.stored,
            all(len),
            "gather: outputs taken before every child finished"
        );
        let reuse = reusable_capacity::<Cell<F, F::Output>, F::Output>(self.buffer.capacity(), len);
        let mut outputs = match reuse {
            Some(_) => Vec::new(),
            None => Vec::with_capacity(len),
        };
        // Nothing below calls user code or panics: the outputs belong to `outputs` alone
        // from here on.
        self.stored = 0;
        let cells = self.cell(0);
        let Some(capacity) = reuse else {
            // SAFETY: every cell `0..len` holds an initialised output, no longer counted:
            // each is moved out exactly once, into room reserved for it.
            outputs.extend(
                (0..len).map(|i| unsafe { ManuallyDrop::take(&mut (*cells.add(i)).output) }),
            );
            return outputs;
        };
        let places = cells.cast::<F::Output>();
        for i in 0..len {
            // SAFETY: cell `i` holds an initialised output, read once. Output `i` goes to
            // place `i` of an array of outputs over the same buffer, which ends where cell
            // `i + 1` begins or before (an output is no larger than a cell): it overwrites
            // only cells already read, and it is read before it is written.
            unsafe {
                let output = ManuallyDrop::into_inner(ptr::addr_of!((*cells.add(i)).output).read());
                places.add(i).write(output);
            }
        }
        let buffer = ManuallyDrop::new(mem::take(&mut self.buffer));
        // SAFETY: the buffer was allocated by the global allocator (cells take room) with
        // a cell's alignment, which `reusable_capacity` checked is an output's, and a size
        // of `capacity` outputs exactly; its first `len` places hold initialised outputs
        // (above). The `Vec` of cells that owned it is forgotten, and `self` holds an
        // empty one: the new `Vec` is its only owner.
        unsafe { Vec::from_raw_parts(buffer.as_ptr().cast_mut().cast(), len, capacity) }
    }

    /// Drops every child still running and every output still stored, in input order. If
    /// one of those drops panics, the rest are still dropped (while the panic unwinds) and
    /// the panic goes on.
    pub(crate) fn clear(&mut self) {
        if self.running | self.stored == 0 {
            return;
        }
        for_each_to_the_end(0..self.len, |index| {
            let bit = 1 << index;
            if self.running & bit != 0 {
                self.discard(index);
            } else if self.stored & bit != 0 {
                self.stored &= !bit;
                let cell = self.cell(index);
                // SAFETY: the output was stored, so initialised; no longer counted, it is
                // dropped exactly once.
                unsafe { ManuallyDrop::drop(&mut (*cell).output) };
            }
        });
    }
}

impl<F: Future> Drop for InPlace<F> {
    /// Drops what the cells hold; the emptied input then frees its buffer (even if one of
    /// those drops panics: the fields are dropped as the panic unwinds).
    fn drop(&mut self) {
        self.clear();
    }
}

impl<F: Future> fmt::Debug for InPlace<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InPlace")
            .field("len", &self.len)
            .field("running", &self.running.count_ones())
            .field("stored", &self.stored.count_ones())
            .finish()
    }
}
