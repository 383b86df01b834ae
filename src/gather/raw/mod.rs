//! Every `unsafe` block of the crate, in two small modules: pin projection into slot
//! storage (`pin`) and the shared per-child wakers (`wakers`). Each block carries a
//! `// SAFETY:` comment; Miri runs the no-runtime tests over both.

pub(crate) mod pin;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub(crate) mod wakers;
