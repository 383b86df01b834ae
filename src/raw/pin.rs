//! Pin projection into the elements of slot storage.
//!
//! `pin-project-lite` projects named fields, but not the elements of an array or a
//! `SmallVec`, so the projections it cannot give live here, each with the
//! argument for why it is sound.
//!
//! The invariant every caller keeps: slot storage never moves or reallocates its elements
//! once the `Gather` holding it has been pinned. Storage is built once, before the first
//! poll, and afterwards only read or written in place through these functions (no push, no
//! insert, no remove, no swap). Elements are dropped in place when the storage is dropped.

use core::pin::Pin;

/// Projects a pinned slice onto one of its elements.
///
/// # Panics
///
/// Panics if `index` is out of bounds.
pub(crate) fn index<T>(slice: Pin<&mut [T]>, index: usize) -> Pin<&mut T> {
    // SAFETY: an element of a pinned slice lives exactly as long as the slice and at a fixed
    // address inside it; we hand out a pinned reference to it and never a `&mut T` that
    // could move it. Elements are structurally pinned: no code in this crate moves one out.
    unsafe { slice.map_unchecked_mut(|s| &mut s[index]) }
}

/// Views a `SmallVec` held by a pinned owner as a pinned slice.
///
/// Unlike `Vec`, a `SmallVec` may keep its elements inline, so the caller must hold it
/// pinned itself (it is a `#[pin]` field of the slot storage).
#[cfg(feature = "alloc")]
pub(crate) fn small_vec<A: smallvec::Array>(
    v: Pin<&mut smallvec::SmallVec<A>>,
) -> Pin<&mut [A::Item]> {
    // SAFETY: inline or spilled, the elements stay at their address while the `SmallVec` is
    // pinned and never grown, shrunk or reordered (module invariant).
    unsafe { v.map_unchecked_mut(|v| v.as_mut_slice()) }
}

/// Views a pinned array as a pinned slice.
pub(crate) fn array<T, const N: usize>(array: Pin<&mut [T; N]>) -> Pin<&mut [T]> {
    // SAFETY: an unsizing reborrow of the same memory; nothing is moved.
    unsafe { array.map_unchecked_mut(|a| a.as_mut_slice()) }
}
