//! Boxed errors that can be downcast (feature `alloc`): what [`Gathered::errors_of`] and
//! [`CompoundError::errors_of`] filter by type.
//!
//! [`Gathered::errors_of`]: crate::Gathered::errors_of
//! [`CompoundError::errors_of`]: crate::CompoundError::errors_of

use alloc::boxed::Box;
use core::error::Error;

/// Errors that can be downcast to their concrete type: `Box<dyn Error>`,
/// `Box<dyn Error + Send>` and `Box<dyn Error + Send + Sync>`.
///
/// This trait is sealed.
///
/// # Examples
///
/// ```
/// use gather::DynError;
/// use std::error::Error;
///
/// let boxed: Box<dyn Error + Send + Sync> = std::fmt::Error.into();
/// assert!(boxed.as_dyn_error().is::<std::fmt::Error>());
/// ```
pub trait DynError: crate::sealed::DynError {
    /// The error as a trait object, ready for `downcast_ref`.
    fn as_dyn_error(&self) -> &(dyn core::error::Error + 'static);
}

/// The errors of `errors` whose concrete type is `T`.
pub(crate) fn of_type<'a, E, T>(
    errors: impl Iterator<Item = (usize, &'a E)> + 'a,
) -> impl Iterator<Item = (usize, &'a T)> + 'a
where
    E: DynError + 'a,
    T: core::error::Error + 'static,
{
    errors.filter_map(|(i, e)| e.as_dyn_error().downcast_ref::<T>().map(|t| (i, t)))
}

macro_rules! dyn_error {
    ($($ty:ty),*) => {$(
        impl crate::sealed::DynError for Box<$ty> {}
        impl DynError for Box<$ty> {
            fn as_dyn_error(&self) -> &(dyn Error + 'static) {
                &**self
            }
        }
    )*};
}

dyn_error!(dyn Error, dyn Error + Send, dyn Error + Send + Sync);
