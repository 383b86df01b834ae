//! The drivers of the modes other than settle-all (which is the `Gather` future itself, in
//! `gather.rs`): one file each, a few lines around the engine's poll, plus the builder
//! method that chooses the mode.
//!
//! - `fail_fast.rs`: resolves at the first error, the children still running dropped;
//! - `as_completed.rs`: a stream of `(index, outcome)` in completion order.
//!
//! A mode may use the `Gather` future, the engine, the layers' trait and the results.

pub(crate) mod as_completed;
pub(crate) mod fail_fast;
