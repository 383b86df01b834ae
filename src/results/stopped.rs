//! [`Stopped`] and [`StopError`]: how a child says it stopped on request, under a
//! [graceful](crate::Gather::graceful) gather.

use core::fmt;

/// "Stopped on request": what a child returns (as its error, through `From<Stopped>`)
/// when it wound down because the gather asked it to, and what a child that never got to
/// finish is recorded as (see [`Gather::graceful`](crate::Gather::graceful)). Not a
/// failure: fail-fast leaves it out of its error, as `asyncio.TaskGroup` leaves
/// `CancelledError` out of its `ExceptionGroup`.
///
/// # Examples
///
/// ```
/// assert_eq!(gather::Stopped.to_string(), "stopped on request");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stopped on request")
    }
}

impl core::error::Error for Stopped {}

/// An error type that can say "stopped on request": the children's error type under
/// [`Gather::graceful`](crate::Gather::graceful).
///
/// Implemented for [`Stopped`] itself and (feature `alloc`) for `Box<dyn Error>` and
/// `Box<dyn Error + Send + Sync>` (a boxed `Stopped`); an
/// error enum of your own implements it with a variant for it:
///
/// ```
/// use gather::{StopError, Stopped};
///
/// #[derive(Debug)]
/// enum TxError { Conflict, RolledBack }
///
/// impl From<Stopped> for TxError {
///     fn from(_: Stopped) -> Self { TxError::RolledBack }
/// }
/// impl StopError for TxError {
///     fn is_stopped(&self) -> bool { matches!(self, TxError::RolledBack) }
/// }
/// assert!(TxError::from(Stopped).is_stopped());
/// assert!(!TxError::Conflict.is_stopped());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot say that a child stopped on request",
    label = "the children's error type does not implement `gather::StopError`",
    note = "`.graceful()` needs `impl From<gather::Stopped> for {Self}` and `impl gather::StopError for {Self}` (`is_stopped`: whether an error is the one made from `Stopped`)"
)]
pub trait StopError: From<Stopped> {
    /// Whether this error says "stopped on request" (it was made from [`Stopped`]).
    fn is_stopped(&self) -> bool;
}

impl StopError for Stopped {
    fn is_stopped(&self) -> bool {
        true
    }
}

#[cfg(feature = "alloc")]
macro_rules! boxed_stop_error {
    ($($ty:ty),*) => {$(
        impl StopError for alloc::boxed::Box<$ty> {
            fn is_stopped(&self) -> bool {
                self.is::<Stopped>()
            }
        }
    )*};
}

#[cfg(feature = "alloc")]
boxed_stop_error!(dyn core::error::Error, dyn core::error::Error + Send + Sync);
