//! [`Gathered`]: every outcome of a settled gather, in input order.

use super::compound::{CompoundError, ErrorStore, Inline};
#[cfg(feature = "alloc")]
use super::dyn_error::{of_type, DynError};
use super::stopped::StopError;

/// Every outcome of a gather, in input order.
///
/// This is what [`Gather`](crate::Gather) resolves to. It wraps the outputs of the futures,
/// `O`: `[T; N]` for an array, `(A, B, ..)` for a tuple, `Vec<T>` for a `Vec`,
/// `SmallVec<[T; K]>` for a `SmallVec` or an iterator. [`results`](Self::results) and
/// [`into_results`](Self::into_results) give them back whatever they are.
///
/// When the futures return `Result`s (sharing one error type `E`), `Gathered` is the Rust
/// form of Python's `asyncio_tools.GatheredResults`: [`successes`](Self::successes),
/// [`errors`](Self::errors) with the index of each failed future, counts, predicate
/// filters, type filters for boxed errors ([`errors_of`](Self::errors_of),
/// [`has_error`](Self::has_error)), and [`into_result`](Self::into_result), which turns it
/// into every success or a [`CompoundError`] holding every error.
///
/// # Examples
///
/// ```
/// use gather::gather;
/// # use core::future::ready;
/// # use futures::executor::block_on;
///
/// let gathered = block_on(gather([ready(Ok(1)), ready(Err("refused")), ready(Ok(3))]));
///
/// assert_eq!(gathered.successes().collect::<Vec<_>>(), [&1, &3]);
/// assert_eq!(gathered.errors().collect::<Vec<_>>(), [(1, &"refused")]);
/// assert_eq!((gathered.success_count(), gathered.error_count()), (2, 1));
/// assert!(!gathered.is_all_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Gathered<O> {
    outputs: O,
}

impl<O> Gathered<O> {
    pub(crate) fn new(outputs: O) -> Self {
        Gathered { outputs }
    }

    /// Every output, in input order.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather((ready(1), ready("two"))));
    /// assert_eq!(gathered.results(), &(1, "two"));
    /// ```
    pub fn results(&self) -> &O {
        &self.outputs
    }

    /// Every output, in input order, by value.
    ///
    /// A `Vec` of outputs may have room to spare, never more than it holds: where the
    /// outputs fit in the input `Vec`'s buffer, they take it rather than a new one (as
    /// `collect` does in place). The successes of [`into_result`](Self::into_result) and
    /// of [`fail_fast`](crate::Gather::fail_fast) keep the same bound.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(1), ready(2), ready(3)]));
    /// assert_eq!(gathered.into_results(), [1, 2, 3]);
    /// ```
    pub fn into_results(self) -> O {
        self.outputs
    }
}

/// Outputs that are all `Result<_, E>` with one error type: the shapes [`Gathered`] can
/// split into successes and errors.
///
/// Implemented for `[Result<T, E>; N]`, `Vec<Result<T, E>>`, `SmallVec<[Result<T, E>; K]>`
/// and tuples `(Result<A, E>, Result<B, E>, ..)` of up to 12 elements. This trait is sealed.
///
/// # Examples
///
/// ```
/// use gather::{Gathered, Outcomes};
///
/// fn report<O: Outcomes>(gathered: &Gathered<O>) -> String
/// where
///     O::Error: std::fmt::Display,
/// {
///     gathered.errors().map(|(i, e)| format!("#{i}: {e}")).collect::<Vec<_>>().join(", ")
/// }
/// # use core::future::ready;
/// # use futures::executor::block_on;
/// let gathered = block_on(gather::gather((ready(Ok(1)), ready(Err::<(), _>("down")))));
/// assert_eq!(report(&gathered), "#1: down");
/// ```
#[allow(clippy::len_without_is_empty)] // `len` is hidden plumbing for `Gathered::len`
#[diagnostic::on_unimplemented(
    message = "`{Self}` are not outcomes with one error type",
    label = "every output must be a `Result<_, E>` with the same `E`",
    note = "the error-aware methods of `Gathered` (successes, errors, `into_result`, ...) need `Result` outputs with one error type"
)]
pub trait Outcomes: crate::sealed::Outcomes {
    /// The error type every future shares.
    type Error;
    /// Every success, in input order: `[T; N]`, `Vec<T>`, `(A, B, ..)`, ...
    type Successes;
    /// Where the [`CompoundError`] of these outcomes keeps its entries.
    type Store: ErrorStore<Self::Error>;

    #[doc(hidden)]
    fn len(&self) -> usize;
    #[doc(hidden)]
    fn error_at(&self, index: usize) -> Option<&Self::Error>;
    #[doc(hidden)]
    fn into_split(self) -> Result<Self::Successes, CompoundError<Self::Error, Self::Store>>;
    #[doc(hidden)]
    /// Every success, once the caller knows that no outcome is an error (panics if one is).
    fn into_successes(self) -> Self::Successes;
}

/// [`Outcomes`] of one success type, stored as a slice of `Result`s: arrays, `Vec`s and
/// `SmallVec`s. This trait is sealed.
///
/// # Examples
///
/// ```
/// use gather::{Gathered, SliceOutcomes};
///
/// fn total<O: SliceOutcomes<Success = u32>>(gathered: &Gathered<O>) -> u32 {
///     gathered.successes().sum()
/// }
/// # use core::future::ready;
/// # use futures::executor::block_on;
/// let gathered = block_on(gather::gather(vec![ready(Ok::<u32, ()>(2)), ready(Ok(3))]));
/// assert_eq!(total(&gathered), 5);
/// ```
pub trait SliceOutcomes:
    Outcomes + IntoIterator<Item = Result<Self::Success, Self::Error>>
{
    /// The success type every future shares.
    type Success;

    #[doc(hidden)]
    fn as_slice(&self) -> &[Result<Self::Success, Self::Error>];

    #[doc(hidden)]
    /// Every success, made one by one in input order (`len` of them).
    fn successes_from(len: usize, success: impl FnMut(usize) -> Self::Success) -> Self::Successes;
}

impl<O: Outcomes> Gathered<O> {
    /// How many futures were gathered.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Ok::<_, ()>(1)), ready(Ok(2))]));
    /// assert_eq!(gathered.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    /// Whether no future was gathered.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::Ready;
    /// # use futures::executor::block_on;
    /// let none: [Ready<Result<u8, ()>>; 0] = [];
    /// assert!(block_on(gather::gather(none)).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every error with the index of the future that returned it, in input order.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather((ready(Ok(1)), ready(Err::<bool, _>('x')), ready(Ok("three")))));
    /// assert_eq!(gathered.errors().collect::<Vec<_>>(), [(1, &'x')]);
    /// ```
    pub fn errors(&self) -> impl Iterator<Item = (usize, &O::Error)> + '_ {
        (0..self.len()).filter_map(|i| self.outputs.error_at(i).map(|e| (i, e)))
    }

    /// The errors for which `pred` holds, with their indices, in input order.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Err(404)), ready(Ok(())), ready(Err(503))]));
    /// let server: Vec<_> = gathered.errors_where(|code| *code >= 500).collect();
    /// assert_eq!(server, [(2, &503)]);
    /// ```
    pub fn errors_where<'a>(
        &'a self,
        mut pred: impl FnMut(&O::Error) -> bool + 'a,
    ) -> impl Iterator<Item = (usize, &'a O::Error)> + 'a {
        self.errors().filter(move |(_, e)| pred(e))
    }

    /// How many futures failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Err(1)), ready(Ok(())), ready(Err(3))]));
    /// assert_eq!(gathered.error_count(), 2);
    /// ```
    pub fn error_count(&self) -> usize {
        self.errors().count()
    }

    /// How many futures succeeded.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Err(1)), ready(Ok(())), ready(Err(3))]));
    /// assert_eq!(gathered.success_count(), 1);
    /// ```
    pub fn success_count(&self) -> usize {
        self.len() - self.error_count()
    }

    /// Whether every future succeeded (true for an empty gather).
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Ok::<_, ()>(1)), ready(Ok(2))]));
    /// assert!(gathered.is_all_ok());
    /// ```
    pub fn is_all_ok(&self) -> bool {
        self.errors().next().is_none()
    }

    /// Every success in input order if nothing failed; otherwise a [`CompoundError`] with
    /// every error (and the successes are dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let all_ok = block_on(gather::gather((ready(Ok::<_, &str>(1)), ready(Ok("two")))));
    /// assert_eq!(all_ok.into_result(), Ok((1, "two")));
    ///
    /// let some_failed = block_on(gather::gather([ready(Ok(1)), ready(Err("no"))]));
    /// assert_eq!(some_failed.into_result().unwrap_err().first(), (1, &"no"));
    /// ```
    pub fn into_result(self) -> Result<O::Successes, CompoundError<O::Error, O::Store>> {
        self.outputs.into_split()
    }

    /// Every error as a [`CompoundError`], or `None` when nothing failed (never an empty
    /// group).
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Ok::<_, ()>(1))]));
    /// assert!(gathered.into_compound_error().is_none());
    /// ```
    pub fn into_compound_error(self) -> Option<CompoundError<O::Error, O::Store>> {
        if self.is_all_ok() {
            return None;
        }
        self.into_result().err()
    }
}

impl<O: Outcomes> Gathered<O>
where
    O::Error: StopError,
{
    /// The errors of the children that failed, with their indices, in input order:
    /// [`errors`](Self::errors) without those of the children that stopped on request
    /// (under [`graceful`](crate::Gather::graceful)).
    ///
    /// # Examples
    ///
    /// ```
    /// use gather::Stopped;
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// # type Error = Box<dyn std::error::Error + Send + Sync>;
    /// let gathered = block_on(gather::gather([
    ///     ready(Err::<(), Error>("refused".into())),
    ///     ready(Err(Stopped.into())),
    /// ]));
    /// let failures: Vec<_> = gathered.failures().map(|(i, e)| (i, e.to_string())).collect();
    /// assert_eq!(failures, [(0, "refused".to_string())]);
    /// ```
    pub fn failures(&self) -> impl Iterator<Item = (usize, &O::Error)> + '_ {
        self.errors_where(|e| !e.is_stopped())
    }

    /// The indices of the children that stopped on request, in input order: those that
    /// returned an error made from [`Stopped`](crate::Stopped), and those a graceful stop
    /// cut off after a failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use gather::Stopped;
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Ok(1)), ready(Err(Stopped))]));
    /// assert_eq!(gathered.stopped().collect::<Vec<_>>(), [1]);
    /// ```
    pub fn stopped(&self) -> impl Iterator<Item = usize> + '_ {
        self.errors()
            .filter(|(_, e)| e.is_stopped())
            .map(|(index, _)| index)
    }

    /// The failures as a [`CompoundError`], without the children that stopped on
    /// request; `None` when nothing else failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use gather::Stopped;
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Ok::<(), _>(())), ready(Err(Stopped))]));
    /// assert!(gathered.into_failures().is_none());
    /// ```
    pub fn into_failures(self) -> Option<CompoundError<O::Error, O::Store>> {
        self.into_compound_error()?.subgroup(|e| !e.is_stopped())
    }
}

impl<O: SliceOutcomes> Gathered<O> {
    /// Every success, in input order.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Ok(1)), ready(Err(())), ready(Ok(3))]));
    /// assert_eq!(gathered.successes().sum::<i32>(), 4);
    /// ```
    pub fn successes(&self) -> impl Iterator<Item = &O::Success> + '_ {
        self.outputs
            .as_slice()
            .iter()
            .filter_map(|r| r.as_ref().ok())
    }

    /// Every success with the index of the future that returned it, in input order: the
    /// counterpart of [`errors`](Self::errors).
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Ok('a')), ready(Err(())), ready(Ok('c'))]));
    /// assert_eq!(gathered.indexed_successes().collect::<Vec<_>>(), [(0, &'a'), (2, &'c')]);
    /// ```
    pub fn indexed_successes(&self) -> impl Iterator<Item = (usize, &O::Success)> + '_ {
        let outcomes = self.outputs.as_slice().iter().enumerate();
        outcomes.filter_map(|(index, r)| r.as_ref().ok().map(|success| (index, success)))
    }

    /// Splits every outcome by value: the successes with their indices, in input order,
    /// and every error as a [`CompoundError`] (`None` when nothing failed). Feature
    /// `alloc`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Ok('a')), ready(Err(7)), ready(Ok('c'))]));
    /// let (successes, errors) = gathered.into_parts();
    /// assert_eq!(successes, [(0, 'a'), (2, 'c')]);
    /// assert_eq!(errors.unwrap().into_first(), (1, 7));
    /// ```
    #[cfg(feature = "alloc")]
    #[allow(clippy::type_complexity)] // two plain parts
    pub fn into_parts(
        self,
    ) -> (
        alloc::vec::Vec<(usize, O::Success)>,
        Option<CompoundError<O::Error, O::Store>>,
    ) {
        let total = self.len();
        let mut successes = alloc::vec::Vec::new();
        let outcomes = self.outputs.into_iter().enumerate();
        let errors = CompoundError::from_entries(
            total,
            outcomes.filter_map(|(index, outcome)| match outcome {
                Ok(success) => {
                    successes.push((index, success));
                    None
                }
                Err(error) => Some((index, error)),
            }),
        );
        (successes, errors)
    }

    /// The successes for which `pred` holds, in input order.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Ok::<_, ()>(1)), ready(Ok(20)), ready(Ok(3))]));
    /// assert_eq!(gathered.successes_where(|n| *n > 2).collect::<Vec<_>>(), [&20, &3]);
    /// ```
    pub fn successes_where<'a>(
        &'a self,
        mut pred: impl FnMut(&O::Success) -> bool + 'a,
    ) -> impl Iterator<Item = &'a O::Success> + 'a {
        self.successes().filter(move |s| pred(s))
    }
}

#[cfg(feature = "alloc")]
impl<O: Outcomes> Gathered<O>
where
    O::Error: DynError,
{
    /// The errors of concrete type `T`, with their indices, in input order: asyncio_tools'
    /// `exceptions_of_type`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::error::Error;
    /// use std::num::ParseIntError;
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    ///
    /// let gathered = block_on(gather::gather([
    ///     ready("7".parse::<u8>().map_err(Box::<dyn Error + Send + Sync>::from)),
    ///     ready("x".parse::<u8>().map_err(Into::into)),
    ///     ready(Err(std::fmt::Error.into())),
    /// ]));
    /// let parse_errors: Vec<usize> = gathered.errors_of::<ParseIntError>().map(|(i, _)| i).collect();
    /// assert_eq!(parse_errors, [1]);
    /// ```
    pub fn errors_of<T: core::error::Error + 'static>(
        &self,
    ) -> impl Iterator<Item = (usize, &T)> + '_ {
        of_type(self.errors())
    }

    /// Whether any error is of concrete type `T`: asyncio_tools'
    /// `ValueError in response.exception_types`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::error::Error;
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    ///
    /// let gathered = block_on(gather::gather([
    ///     ready(Err::<(), Box<dyn Error + Send + Sync>>(std::fmt::Error.into())),
    /// ]));
    /// assert!(gathered.has_error::<std::fmt::Error>());
    /// assert!(!gathered.has_error::<std::io::Error>());
    /// ```
    pub fn has_error<T: core::error::Error + 'static>(&self) -> bool {
        self.errors_of::<T>().next().is_some()
    }
}

/// The `expect` message where a split has checked that some result is an `Err`.
pub(crate) const SOME_ERR: &str = "gather: some result was checked to be an error";

pub(crate) fn unwrap_ok<T, E>(result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(_) => unreachable!("gather: every result was checked to be Ok"),
    }
}

impl<T, E, const N: usize> crate::sealed::Outcomes for [Result<T, E>; N] {}

impl<T, E, const N: usize> Outcomes for [Result<T, E>; N] {
    type Error = E;
    type Successes = [T; N];
    type Store = Inline<N>;

    fn len(&self) -> usize {
        N
    }

    fn error_at(&self, index: usize) -> Option<&E> {
        self.get(index)?.as_ref().err()
    }

    fn into_split(self) -> Result<[T; N], CompoundError<E, Inline<N>>> {
        if self.iter().all(Result::is_ok) {
            return Ok(self.into_successes());
        }
        let mut errors = self.map(Result::err);
        Err(CompoundError::collect(N, N, |i| errors[i].take()).expect(SOME_ERR))
    }

    fn into_successes(self) -> [T; N] {
        self.map(unwrap_ok)
    }
}

impl<T, E, const N: usize> SliceOutcomes for [Result<T, E>; N] {
    type Success = T;

    fn as_slice(&self) -> &[Result<T, E>] {
        self
    }

    #[inline]
    fn successes_from(_: usize, success: impl FnMut(usize) -> T) -> [T; N] {
        core::array::from_fn(success)
    }
}

#[cfg(feature = "alloc")]
mod vec_outcomes {
    use alloc::vec::Vec;

    use smallvec::SmallVec;

    use super::{unwrap_ok, Outcomes, SliceOutcomes, SOME_ERR};
    use crate::results::compound::{CompoundError, Heap};

    macro_rules! vec_outcomes {
        ($(impl[$($generics:tt)*] $list:ty => $successes:ty, in place: $in_place:expr;)*) => {$(
            impl<$($generics)*> crate::sealed::Outcomes for $list {}

            impl<$($generics)*> Outcomes for $list {
                type Error = E;
                type Successes = $successes;
                type Store = Heap;

                fn len(&self) -> usize {
                    self.as_slice().len()
                }

                fn error_at(&self, index: usize) -> Option<&E> {
                    self.as_slice().get(index)?.as_ref().err()
                }

                fn into_split(self) -> Result<$successes, CompoundError<E, Heap>> {
                    let len = self.len();
                    let failed = self.iter().filter(|r| r.is_err()).count();
                    if failed == 0 {
                        return Ok(self.into_successes());
                    }
                    let mut results = self.into_iter();
                    let errors = CompoundError::collect(len, failed, |_| results.next()?.err());
                    Err(errors.expect(SOME_ERR))
                }

                fn into_successes(self) -> $successes {
                    let mut successes: $successes = self.into_iter().map(unwrap_ok).collect();
                    // A `Vec` collects in place (where the layouts allow): the successes
                    // keep the results' buffer as it is while they fill at least half of
                    // it, as a `Vec` grown by doubling would (no allocation), and are cut
                    // down to their size when less (a large `E`). Anything else is cut
                    // down to their size.
                    let keep = if $in_place { successes.len().saturating_mul(2) } else { successes.len() };
                    if successes.capacity() > keep {
                        successes.shrink_to_fit();
                    }
                    successes
                }
            }

            impl<$($generics)*> SliceOutcomes for $list {
                type Success = T;

                fn as_slice(&self) -> &[Result<T, E>] {
                    self
                }

                fn successes_from(len: usize, success: impl FnMut(usize) -> T) -> $successes {
                    (0..len).map(success).collect()
                }
            }
        )*};
    }

    vec_outcomes! {
        impl[T, E] Vec<Result<T, E>> => Vec<T>, in place: true;
        impl[T, E, const K: usize] SmallVec<[Result<T, E>; K]> => SmallVec<[T; K]>, in place: false;
    }
}
