//! What a gather hands back: [`Gathered`](crate::Gathered) (every outcome, in input order,
//! with successes, errors and counts), [`CompoundError`](crate::CompoundError) (every
//! error at once), [`Stopped`](crate::Stopped) (what a child stopped on request reports)
//! and, with `alloc`, the downcastable boxed errors they filter by type.
//!
//! Results use nothing else of the crate: they are plain data, built by the modes.

pub(crate) mod compound;
#[cfg(feature = "alloc")]
pub(crate) mod dyn_error;
pub(crate) mod gathered;
pub(crate) mod stopped;
