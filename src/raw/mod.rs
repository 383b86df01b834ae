//! Every `unsafe` block of the crate, in eight small modules: pin projection into slot
//! storage (`pin`); the chunks that never move a growing set's slots live in, checked once
//! per access (`chunks`); the slot of one child of an array, tuple or `SmallVec` gather, whose
//! output moves out without a second check (`slot`); the heap block of per-child wakers
//! and payloads (`block`) and the
//! waker slot it wakes the gather through (`atomic_waker`); the storage of `Vec` gathers,
//! whose outputs are written in place (`vec_slots`); the inbox a growing set's handles
//! push into (`inbox`, a spin lock around a `Vec`); the wakers of a growing set's blocks,
//! which point into the mask they mark (`marks`). Each block carries a `// SAFETY:`
//! comment; Miri runs the no-runtime tests over all of them.
//!
//! This module uses nothing else of the crate (`tests/layout.rs` checks it): it offers
//! storage and wakers, and knows nothing of modes, layers or the engine's protocol.
//!
//! # Where user code runs, and what holds if it panics
//!
//! A gather calls code it does not control: its children's `poll` and `Drop`, its
//! outputs' `Drop`, and the executor's waker (`clone`, `wake_by_ref`, `drop`). Each call
//! below may unwind; the state around it is written so that an unwind leaves nothing
//! half-done that a later access (a poll of the poisoned gather, its drop, a waker) could
//! misread:
//!
//! - `vec_slots::VecSlots::poll`, a child's `poll`: the child stays `Running` in its
//!   entry; no count has moved. `finish`, the child's `Drop` as it finishes: the entry is
//!   set to `Empty` *before* the output is written anywhere or counted, so an unwind
//!   drops the output (a local) once and leaves an entry that claims nothing.
//! - `vec_slots::VecSlots::cut_off` / `discard`, a running child's `Drop`: the same `Empty`
//!   first, nothing counted.
//! - `vec_slots::VecSlots::clear`, children's and outputs' `Drop`: the counts are reset
//!   first, and [`for_each_to_the_end`] drops the remaining entries while the panic
//!   unwinds, so none leaks.
//! - `block::Block`'s `Drop`, the payloads' `Drop` and the executor's waker's `drop`: the
//!   payloads go first, through [`for_each_to_the_end`]; guards then let go of the
//!   executor's waker and release the block's reference, whatever panics.
//! - `block::Block::wake`, the executor's `wake_by_ref` (through `AtomicWaker::wake`): a
//!   guard releases the waker's reference if it unwinds. `AtomicWaker::wake` lets go of
//!   its `WAKING` state through a guard too, which marks the wake `OWED` (the next child's
//!   wake reaches the executor even if an earlier push would otherwise stand for it), and
//!   drops the executor's waker if the gather went meanwhile (`CLEAR`).
//! - `block::Block::release`, the executor's waker's `drop` when the last reference frees
//!   a block that still holds it: a guard frees the memory whatever the drop does.
//! - `atomic_waker::AtomicWaker::register` / `store`, the executor's `clone`, `drop` and
//!   `wake_by_ref`: called while the slot is not being written (before taking
//!   `REGISTERING`, or after letting go of it).
//! - `inbox::Inbox`: no user code under its lock (a `Vec` push, a swap); the executor's
//!   waker (`wake`, `register`) is called after the lock is let go, and a panic in it
//!   leaves the pushed future queued for the next take.
//! - `pin`, `chunks`: no user code (a new chunk's elements are made by a closure of the
//!   crate's, before the chunk joins the storage; a chunk's elements are dropped by `Box`'s
//!   drop, which drops the rest if one panics).
//! - `slot::Slot::take_output`: no user code (the output moves out, nothing is dropped).
//! - `marks`, the executor's `wake_by_ref` (through `AtomicWaker::wake`): a guard gives
//!   the waker's reference back if it unwinds; the executor's waker's `drop`, when the
//!   last reference drops the mask: `Arc`'s drop (the memory leaks if that drop panics).
//!
//! Nothing else in the module calls user code: between two of these calls, only
//! the module's own bookkeeping runs, and no `// SAFETY:` argument spans one of them.

use core::ops::Range;

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub(crate) mod atomic_waker;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub(crate) mod block;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub(crate) mod chunks;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub(crate) mod inbox;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub(crate) mod marks;
pub(crate) mod pin;
pub(crate) mod slot;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub(crate) mod sync;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub(crate) mod vec_slots;

/// Calls `each(i)` for every `i` of `range`, in order, even if one of the calls panics:
/// the rest are made while the panic unwinds, and then the panic goes on. (A second panic
/// during that unwinding aborts the process, as it does for a slice's drop.)
///
/// This is how a drop loop over user values drops every value whatever one of them does.
#[cfg_attr(not(feature = "alloc"), allow(dead_code))]
pub(crate) fn for_each_to_the_end(range: Range<usize>, mut each: impl FnMut(usize)) {
    struct Rest<'a, F: FnMut(usize)> {
        next: usize,
        end: usize,
        each: &'a mut F,
    }
    impl<F: FnMut(usize)> Drop for Rest<'_, F> {
        fn drop(&mut self) {
            // Runs only if a call panicked: the loop below leaves nothing otherwise.
            while self.next < self.end {
                self.next += 1;
                (self.each)(self.next - 1);
            }
        }
    }
    let mut rest = Rest {
        next: range.start,
        end: range.end,
        each: &mut each,
    };
    while rest.next < rest.end {
        rest.next += 1;
        (rest.each)(rest.next - 1);
    }
}
