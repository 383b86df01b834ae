//! Every `unsafe` block of the crate, in four small modules: pin projection into slot
//! storage (`pin`); the heap block of per-child wakers and payloads (`block`) and the
//! waker slot it wakes the gather through (`atomic_waker`); the storage of `Vec` gathers,
//! whose outputs are written in place (`heap`). Each block carries a `// SAFETY:` comment;
//! Miri runs the no-runtime tests over all of them.

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
mod atomic_waker;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub(crate) mod block;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub(crate) mod heap;
pub(crate) mod pin;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
mod sync;
