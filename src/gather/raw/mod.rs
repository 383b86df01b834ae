//! Every `unsafe` block of the crate, in three small modules: pin projection into slot
//! storage (`pin`), the storage of `Vec` gathers (`heap`) and the shared per-child wakers
//! (`wakers`). Each block carries a
//! `// SAFETY:` comment; Miri runs the no-runtime tests over both.

#[cfg(feature = "alloc")]
pub(crate) mod heap;
pub(crate) mod pin;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub(crate) mod wakers;
