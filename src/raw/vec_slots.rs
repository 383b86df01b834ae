//! Slot storage for `Vec` inputs: each child lives in the gather's block next to its waker
//! node; each output goes where it is cheapest to write.
//!
//! - The block (see `block.rs`) holds one [`Child`] per input: the running future; then
//!   its output, either in the entry itself (`Held`) or in its place in the output `Vec`
//!   (`Stored`); or `Empty`.
//! - `outputs` is a `Vec<O>` with room for every output (in the input's buffer where they
//!   fit: [`outputs_in`]) and length 0 until the end. Place
//!   `i` holds an initialised output exactly while child `i` is `Stored` and the slots
//!   are `owning` (not once the outputs were taken: then every child is `Stored`, and
//!   none of them counts; nor after a `clear` of children and outputs that need no drop,
//!   which leaves the entries as they were, owning nothing, and the `Vec` its room).
//!
//! Outputs that come in input order (children ready at their first poll: the first pass
//! goes in input order) stream into the output `Vec`, and handing them back is O(1). An
//! output that comes out of order (after a wake) stays in its child's entry, the memory
//! the wake and the poll have just touched, rather than costing a write to a random place
//! of a large `Vec`; one sequential pass moves such outputs into place at the end. So a
//! wake touches the child's entry and nothing else of the gather.

use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::mem;
use core::task::{Context, Poll};

use super::block::Block;
use super::for_each_to_the_end;

pin_project_lite::pin_project! {
    /// One child of a `Vec` gather, in its entry of the block.
    #[project = ChildProj]
    #[project_replace = ChildReplace]
    pub(crate) enum Child<F: Future> {
        Running { #[pin] future: F },
        Held { output: F::Output },
        Stored,
        Empty,
    }
}

/// The children and outputs of a `Vec` gather.
pub struct VecSlots<F: Future> {
    block: Block<Child<F>>,
    outputs: Vec<F::Output>,
    /// The next place of `outputs` in input order: an output for it is written there. So
    /// also how many outputs were written in order.
    next_in_order: usize,
    /// How many outputs were held in their entries.
    held: usize,
    /// How many outputs were moved out or dropped, one by one.
    gone: usize,
    /// Whether the slots still own their children and outputs: not once the outputs were
    /// handed back (every child is `Stored`), or everything was cleared where nothing
    /// needed a drop (each child and output left where it was, the output `Vec` keeping
    /// its room). (`true` while owning, so that the three counts above are this struct's
    /// only zero fields: 24 bytes, which, in the layout the compiler picks today, it moves
    /// with stores that loads can be served from; a `false` flag after them made 25, which
    /// it wrote with overlapping stores at an odd offset, and the loads that followed
    /// stalled.)
    owning: bool,
}

// Children are polled in place in a heap block that never moves: moving a `VecSlots`
// moves only the pointer to it.
impl<F: Future> Unpin for VecSlots<F> {}

impl<F: Future> VecSlots<F> {
    // Inlined into `gather`, so that the slots are written where the gather is built (made
    // out of line and returned through memory, they were moved with loads that stalled on
    // the stores that had just written them).
    #[inline(always)]
    pub(crate) fn new(mut children: Vec<F>) -> Self {
        let len = children.len();
        let source = children.as_ptr();
        // Each child moves straight from the input into its entry (no iterator whose
        // position must be kept up to date for a panic that cannot come).
        let block = Block::allocate(len, |i| Child::Running {
            // SAFETY: `i < len`, so the read is of an initialised item of `children`, and
            // each is read once. Until `set_len` below, both the `Vec` and the block hold
            // each item read so far, but nothing can drop either in between: writing an
            // entry does not panic, and `Block::allocate` panics (too many futures, or a
            // failed allocation whose handler panics) only before its first read. From
            // `set_len` on, the unadopted block owns them: if `outputs_in` panics (a failed
            // allocation again), it drops them.
            future: unsafe { source.add(i).read() },
        });
        // SAFETY: every item has moved into the block: the `Vec` owns its buffer only.
        unsafe { children.set_len(0) };
        let outputs = outputs_in(children, len);
        VecSlots {
            block: block.adopt(),
            outputs,
            next_in_order: 0,
            held: 0,
            gone: 0,
            owning: true,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.block.len()
    }

    /// Polls child `index` once if it is still running; when it finishes, drops it in
    /// place and stores its output. If the poll panics, the child is still running; if its
    /// drop panics, the entry is empty and the output is dropped (see [`finish`]).
    ///
    /// Returns `None` if the child is not running, else whether it finished.
    ///
    /// [`finish`]: Self::finish
    #[inline]
    pub(crate) fn poll(&mut self, index: usize, cx: &mut Context<'_>) -> Option<Poll<()>> {
        let child = self.block.payload_pinned(index);
        let ChildProj::Running { future } = child.project() else {
            return None;
        };
        let Poll::Ready(output) = future.poll(cx) else {
            return Some(Poll::Pending);
        };
        self.finish(index, output);
        Some(Poll::Ready(()))
    }

    /// The block of children and their wakers, for the per-child passes.
    #[inline]
    pub(crate) fn block(&mut self) -> &mut Block<Child<F>> {
        &mut self.block
    }

    /// The block, to read: the children's wakers.
    #[inline]
    pub(crate) fn block_ref(&self) -> &Block<Child<F>> {
        &self.block
    }

    /// Whether child `index` is still running.
    #[inline]
    pub(crate) fn is_running(&self, index: usize) -> bool {
        matches!(self.block.payload(index), Child::Running { .. })
    }

    /// If child `index` is still running, drops it and stores `output()` as its output
    /// (the deadline); returns whether it did. If the child's drop panics, the panic goes
    /// on and the entry is left empty, with no output.
    pub(crate) fn cut_off(&mut self, index: usize, output: impl FnOnce() -> F::Output) -> bool {
        if !matches!(self.block.payload(index), Child::Running { .. }) {
            return false;
        }
        self.discard(index);
        self.store(index, output());
        true
    }

    /// Drops child `index` if it is still running; the entry is then empty, whether the
    /// drop returns or panics. For a child whose step panicked: it is either still running
    /// (its poll panicked) or already empty (its drop panicked as it finished).
    pub(crate) fn discard(&mut self, index: usize) {
        let mut child = self.block.payload_pinned(index);
        debug_assert!(matches!(*child, Child::Running { .. } | Child::Empty));
        if let Child::Running { .. } = *child {
            // An assignment writes the new value even when the old one's drop panics.
            child.set(Child::Empty);
        }
    }

    /// Stores `output` for child `index`, whose entry is empty and owns nothing (its child
    /// panicked and was discarded).
    pub(crate) fn fail(&mut self, index: usize, output: F::Output) {
        debug_assert!(matches!(self.block.payload(index), Child::Empty));
        self.store(index, output);
    }

    /// Drops running child `index` in place, then keeps its output.
    ///
    /// The child goes first: if its drop panics, `output` is dropped as the panic unwinds,
    /// the entry is left empty and no count has moved, so nothing claims an output that
    /// was never written.
    #[inline(always)]
    fn finish(&mut self, index: usize, output: F::Output) {
        debug_assert!(matches!(self.block.payload(index), Child::Running { .. }));
        self.block.payload_pinned(index).set(Child::Empty);
        self.store(index, output);
    }

    /// Keeps the output of child `index`, whose entry is empty: in the output `Vec` if it
    /// comes in input order, in the entry otherwise. Calls no user code (the entry's old
    /// value is `Empty`, which owns nothing).
    #[inline(always)]
    fn store(&mut self, index: usize, output: F::Output) {
        let mut child = self.block.payload_pinned(index);
        if index != self.next_in_order {
            child.set(Child::Held { output });
            self.held += 1;
            return;
        }
        // SAFETY: place `index` (< len) is within the capacity: the outputs have not been
        // taken, or only by a `clear` that kept the `Vec`'s room (after `take_outputs`
        // every entry is `Stored`, and this one was running). It is empty: its entry is
        // `Empty`, not `Stored` (after such a `clear`, it may hold a value that needs no
        // drop).
        unsafe { self.outputs.as_mut_ptr().add(index).write(output) };
        child.set(Child::Stored);
        self.next_in_order += 1;
    }

    /// How many outputs are stored or held, not moved out.
    fn stored(&self) -> usize {
        self.next_in_order + self.held - self.gone
    }

    /// Child `index`'s output, if it is stored or held.
    pub(crate) fn output(&self, index: usize) -> Option<&F::Output> {
        if !self.owning {
            return None;
        }
        match self.block.payload(index) {
            Child::Held { output } => Some(output),
            // SAFETY: `Stored` before the outputs are taken means place `index` is
            // initialised.
            Child::Stored => Some(unsafe { &*self.outputs.as_ptr().add(index) }),
            Child::Running { .. } | Child::Empty => None,
        }
    }

    /// Moves child `index`'s output out, if it is stored or held and `take` says so.
    pub(crate) fn take_output_if(
        &mut self,
        index: usize,
        take: impl FnOnce(&F::Output) -> bool,
    ) -> Option<F::Output> {
        if !take(self.output(index)?) {
            return None;
        }
        self.gone += 1;
        let mut child = self.block.payload_pinned(index);
        if let Child::Stored = *child {
            child.set(Child::Empty);
            // SAFETY: the place was initialised (`Stored`) and is now marked empty, so the
            // value is moved out exactly once.
            return Some(unsafe { self.outputs.as_ptr().add(index).read() });
        }
        match child.project_replace(Child::Empty) {
            ChildReplace::Held { output } => Some(output),
            _ => unreachable!("gather: an output was neither stored nor held"),
        }
    }

    /// Every output, in input order.
    ///
    /// # Panics
    ///
    /// Panics unless every output is stored or held.
    pub(crate) fn take_outputs(&mut self) -> Vec<F::Output> {
        assert_eq!(
            self.stored(),
            self.len(),
            "gather: outputs taken before every child finished"
        );
        if self.held > 0 {
            self.store_held();
        }
        // Every child is now `Stored` and stays so: not `owning` says that they own nothing
        // now, and the block need not visit them again to drop them.
        self.owning = false;
        (self.next_in_order, self.held, self.gone) = (0, 0, 0);
        self.block.forget_payloads();
        let mut outputs = mem::take(&mut self.outputs);
        // SAFETY: every place below `len` (within the capacity) was `Stored`, so
        // initialised; not `owning` keeps every other access away, so the outputs belong to
        // the `Vec` alone.
        unsafe { outputs.set_len(self.len()) };
        outputs
    }

    /// Moves every held output into its place, in one pass in input order.
    fn store_held(&mut self) {
        for index in 0..self.len() {
            let child = self.block.payload_pinned(index);
            if !matches!(*child, Child::Held { .. }) {
                continue;
            }
            let ChildReplace::Held { output } = child.project_replace(Child::Stored) else {
                unreachable!()
            };
            // SAFETY: place `index` is empty: its child held its output until now.
            unsafe { self.outputs.as_mut_ptr().add(index).write(output) };
        }
    }

    /// Drops every child still running and every output still stored or held, in input
    /// order. If one of those drops panics, the rest are still dropped (while the panic
    /// unwinds) and the panic goes on.
    pub(crate) fn clear(&mut self) {
        if !self.owning {
            return; // nothing is running or stored
        }
        (self.next_in_order, self.held, self.gone) = (0, 0, 0);
        if !mem::needs_drop::<F>() && !mem::needs_drop::<F::Output>() {
            // Dropping them would do nothing: let go of every child and output where it
            // is, without a pass over the entries. They own nothing, as after
            // `take_outputs`, and nothing reads them again (the gather is done).
            self.owning = false;
            self.block.forget_payloads();
            return;
        }
        // Every entry is `Empty` once the loop is through, panic or not.
        for_each_to_the_end(0..self.len(), |index| {
            let mut child = self.block.payload_pinned(index);
            let was_stored = matches!(*child, Child::Stored);
            // Drops a running child or a held output in place; `Empty` is written even if
            // that drop panics.
            child.set(Child::Empty);
            if was_stored {
                // SAFETY: `Stored`: the output is initialised; the child is now `Empty`,
                // so it is dropped exactly once (a drop that panics counts as done).
                unsafe { self.outputs.as_mut_ptr().add(index).drop_in_place() };
            }
        });
        // Every entry is `Empty` and owns nothing, and a `Vec` gather never takes a child
        // in again: the block's drop need not visit them a second time. (An output stored
        // later, if any, is dropped by `clear` again, from `drop`, which counts it.)
        self.block.forget_payloads();
    }
}

/// (Made with the slots, before the driver is known. Making it only at the first poll
/// of a settle-all, and for fail-fast or as completed never, the outputs held in their
/// entries, was measured: fail-fast of 8 and 30 ready children with an error 10-21 %
/// faster, one allocation fewer; settle-all of 2 ready children 5-7 % slower, where it
/// is level with `join_all`. Not kept.)
///
/// An empty `Vec` with room for `len` outputs: the input's buffer, now empty, when it is
/// laid out for outputs (same alignment, a whole number of them) and they fill at least
/// half of it, as a `Vec` grown by doubling would; a new `Vec` of exactly `len` otherwise.
/// Reusing the buffer saves an allocation and a free per gather (as `collect` does in
/// place), and the outputs stream into memory the children have just left.
#[inline]
fn outputs_in<F, O>(children: Vec<F>, len: usize) -> Vec<O> {
    debug_assert!(children.is_empty());
    let bytes = children.capacity() * mem::size_of::<F>();
    let size = mem::size_of::<O>();
    if size > mem::size_of::<F>() {
        // (Known at compile time: the check below is left out.)
        return Vec::with_capacity(len);
    }
    let laid_out = size != 0
        && bytes != 0
        && mem::align_of::<O>() == mem::align_of::<F>()
        && bytes % size == 0;
    if !laid_out || !(len..=len.saturating_mul(2)).contains(&(bytes / size)) {
        return Vec::with_capacity(len);
    }
    let mut children = mem::ManuallyDrop::new(children);
    // SAFETY: the buffer was allocated by the global allocator (`bytes != 0`) with the
    // alignment of `F`, which is `O`'s, and a size of `bytes`, which is `bytes / size`
    // outputs exactly: what `from_raw_parts` asks for a `Vec<O>` of that capacity. It
    // holds no item (length 0), and the `Vec<F>` that owned it is forgotten, so the new
    // `Vec` is its only owner.
    unsafe { Vec::from_raw_parts(children.as_mut_ptr().cast::<O>(), 0, bytes / size) }
}

impl<F: Future> Drop for VecSlots<F> {
    /// Drops the stored outputs; the block drops the children still running. The outputs'
    /// `Vec` has length 0 unless taken, so it drops nothing itself.
    fn drop(&mut self) {
        if self.stored() > 0 {
            self.clear();
        }
    }
}

impl<F: Future> fmt::Debug for VecSlots<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VecSlots")
            .field("len", &self.len())
            .field("stored", &self.stored())
            .finish()
    }
}
