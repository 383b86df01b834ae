//! What [`gather`](crate::gather) accepts, one file per input shape, each turned into the
//! slot storage the engine polls (`engine/slots.rs`):
//!
//! - `array.rs`: `[F; N]`, a fixed array of [`Slot`](crate::raw::slot::Slot)s, no
//!   allocation, swept with the gather's own waker;
//! - `tuple.rs`: tuples of up to 12 futures with different output types, one named slot
//!   each;
//! - `vec.rs` (`alloc`): `Vec<F>`, every child in the heap block of its waker
//!   (`raw/vec_slots.rs`);
//! - `small_vec.rs` (`alloc`): `SmallVec<[F; K]>`, inline and swept up to `K`, with
//!   per-child wakers once spilled;
//! - `lazy.rs` (`alloc`): [`gather_iter`](crate::gather_iter) and
//!   [`gather_stream`](crate::gather_stream), which take children in only when one may
//!   start: under a limit, a window of reused slots.
//!
//! An input may use the engine's storage traits, `raw` and `results`; never the `Gather`
//! future, the modes or the layers.

pub(crate) mod array;
#[cfg(feature = "alloc")]
pub(crate) mod group;
#[cfg(feature = "alloc")]
pub(crate) mod lazy;
#[cfg(feature = "alloc")]
pub(crate) mod small_vec;
pub(crate) mod tuple;
#[cfg(feature = "alloc")]
pub(crate) mod vec;

use crate::engine::slots::Slots;

/// What [`gather`](crate::gather) accepts: an array `[F; N]`, a tuple `(F1, .., F12)` of
/// futures, and with the `alloc` feature a `Vec<F>` or a `SmallVec<[F; K]>`.
///
/// This trait is sealed: it cannot be implemented outside this crate.
///
/// # Examples
///
/// ```
/// use gather::{gather, Gather, Input};
/// # use core::future::ready;
/// # use futures::executor::block_on;
///
/// fn first_ready<I: Input>(futures: I) -> Gather<I> {
///     gather(futures)
/// }
/// assert_eq!(block_on(first_ready([ready('a')])).into_results(), ['a']);
/// ```
pub trait Input: crate::sealed::Input {
    #[doc(hidden)]
    type Slots: Slots;
    #[doc(hidden)]
    fn into_slots(self) -> Self::Slots;
}
