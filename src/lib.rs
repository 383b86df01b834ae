//! Run many futures at once, inside one future, and keep every outcome.
//!
//! `gather` is the Rust answer to Python's `asyncio.gather(..., return_exceptions=True)`
//! and to the `GatheredResults` / `CompoundException` pair of `asyncio_tools`. A
//! [`Gather`] holds its child futures in place and polls them itself: no runtime, no
//! spawning, no `'static` or `Send` bound on the children, and no allocation for arrays
//! and tuples. It works in `no_std`.
//!
//! | You want | Call | Resolves to |
//! |---|---|---|
//! | every outcome, in input order | `gather(fs).await` | [`Gathered`] |
//! | every success, or every error at once | `gather(fs).await.into_result()` | `Result<successes, CompoundError>` |
//! | every success, or stop at the first error | `gather(fs).fail_fast().await` | `Result<successes, CompoundError>` |
//!
//! [`gather`] takes an array `[F; N]`, a tuple of up to 12 futures with different output
//! types, and with the `alloc` feature a `Vec<F>` or a `SmallVec<[F; K]>`;
//! [`gather_iter`] takes any iterator and [`gather_stream`] any stream of futures, each
//! future taken out only when it may start (under [`Gather::limit`], at most `n` exist at
//! once, however long the input).
//!
//! Other modes: [`Gather::as_completed`], a stream of `(index, outcome)` in completion
//! order (with [`AsCompleted::next_completed`] and [`AsCompleted::until_error`] for
//! `asyncio.wait`'s `FIRST_COMPLETED` and `FIRST_EXCEPTION`). Layers that combine with
//! every mode: [`Gather::deadline`] (any future as the timer), [`Gather::limit`] (at most
//! `n` children running) and [`Gather::catch_panics`].
//!
//! ```
//! use gather::{gather, Panicked, TimedOut};
//! # use futures::executor::block_on;
//!
//! #[derive(Debug)]
//! enum Error { TimedOut, Panicked }
//! impl From<TimedOut> for Error { fn from(_: TimedOut) -> Self { Error::TimedOut } }
//! impl From<Panicked> for Error { fn from(_: Panicked) -> Self { Error::Panicked } }
//!
//! async fn call(id: u32) -> Result<u32, Error> { Ok(id) }
//!
//! let timer = core::future::pending::<()>(); // any future: a runtime's sleep, say
//! let calls: Vec<_> = (0..100).map(call).collect();
//! let all = block_on(gather(calls).limit(8).catch_panics().deadline(timer).fail_fast());
//! assert_eq!(all.unwrap().len(), 100);
//! ```
//!
//! # Examples
//!
//! ```
//! use gather::gather;
//! # use futures::executor::block_on;
//!
//! async fn fetch(id: u32) -> Result<String, String> {
//!     if id % 3 == 0 {
//!         Err(format!("user {id}: not found"))
//!     } else {
//!         Ok(format!("user {id}"))
//!     }
//! }
//!
//! let gathered = block_on(gather([1, 2, 3, 4].map(fetch)));
//!
//! assert_eq!(gathered.successes().collect::<Vec<_>>(), ["user 1", "user 2", "user 4"]);
//! assert_eq!(gathered.errors().collect::<Vec<_>>(), [(2, &"user 3: not found".to_string())]);
//!
//! let error = gathered.into_result().unwrap_err();
//! assert_eq!(error.to_string(), "1 of 4 futures failed: [2] user 3: not found");
//! ```
//!
//! # Features
//!
//! - `std` (default): implies `alloc`; also what the doc examples use.
//! - `alloc`: `Vec` and `SmallVec` inputs, [`gather_iter`], [`gather_stream`], the
//!   [`Heap`] error store, and
//!   [`errors_of`](Gathered::errors_of) / [`has_error`](Gathered::has_error) for boxed
//!   errors.
//! - no features: `core` only; arrays and tuples, [`Gathered`] and [`CompoundError`] with
//!   the [`Inline`] store.

#![no_std]
// The library is `no_std`: reach for `core` and `alloc` first. (Tests and examples use std.)
#![warn(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]
#![doc(test(attr(deny(warnings))))]
// `unsafe` lives in `gather::raw` only.
#![deny(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(all(feature = "alloc", not(target_has_atomic = "ptr")))]
compile_error!(
    "gather's `alloc` feature needs pointer-sized atomics (its per-child wakers do); \
     on this target, use `default-features = false` (arrays and tuples)"
);
#[cfg(feature = "std")]
extern crate std;

// The layers a reader meets, top down (each module's docs say what it holds and what it
// may use; `tests/layout.rs` checks that no file imports another in a cycle):
/// The one poll loop, slot storage traits, readiness (sweep, per-child wakers, limit).
mod engine;
/// The `Gather` future, its entry points and its builder methods.
mod gather;
/// `Group`: a set that grows while it runs, over the same engine.
#[cfg(feature = "alloc")]
mod group;
/// What `gather` accepts: one file per input shape, each turned into slot storage.
mod input;
/// The layers over the poll loop: deadline and panic capture.
mod layer;
/// The drivers of the modes other than settle-all: fail-fast and as-completed.
mod mode;
/// Every `unsafe` block of the crate; depends on nothing else of it.
#[allow(unsafe_code)]
mod raw;
/// What a gather hands back: `Gathered` and `CompoundError`.
mod results;

/// The supertraits that seal the public traits users may name but not implement.
mod sealed;

/// A storage that grows, with slots apart from input indices: the seam, under test.
#[cfg(all(test, feature = "std"))]
mod growing;

pub use crate::gather::{gather, Gather, GatherExt};
#[cfg(feature = "alloc")]
pub use crate::gather::{gather_iter, gather_stream, GatherIter, GatherStream};
#[cfg(feature = "alloc")]
pub use crate::group::{Group, Handle};
#[cfg(feature = "alloc")]
pub use crate::input::group::Pushed;
#[cfg(feature = "alloc")]
pub use crate::input::lazy::{FromIter, FromStream};
pub use crate::input::Input;
#[cfg(feature = "std")]
pub use crate::layer::catch_panics::{CatchPanics, Panicked};
pub use crate::layer::deadline::{AddDeadline, Deadline, TimedOut};
pub use crate::layer::graceful::{Graceful, Raised, StopSignal};
pub use crate::layer::NoDeadline;
pub use crate::mode::as_completed::{AsCompleted, Done, ForEach, NextCompleted, UntilError};
pub use crate::mode::fail_fast::FailFast;
#[cfg(feature = "alloc")]
pub use crate::results::compound::Heap;
pub use crate::results::compound::{
    CompoundError, DefaultStore, ErrorStore, Inline, IntoIter, Iter,
};
#[cfg(feature = "alloc")]
pub use crate::results::dyn_error::DynError;
pub use crate::results::gathered::{Gathered, Outcomes, SliceOutcomes};
pub use crate::results::stopped::{StopError, Stopped};
/// `smallvec`'s `SmallVec`: the input and output type of [`gather_iter`] gathers (and an
/// input of [`gather`]), re-exported so that naming them needs no dependency of your own.
#[cfg(feature = "alloc")]
pub use smallvec::SmallVec;

/// The README's code compiles (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
