//! [`CompoundError`]: every error of a gather at once.

use core::fmt;
use core::iter::{Chain, Flatten, FusedIterator};
use core::option;

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

#[cfg(feature = "alloc")]
use super::dyn_error::{of_type, DynError};

/// Every error of a gather, each with the index of the future that returned it.
///
/// A `CompoundError` is never empty: APIs that might have nothing to report return
/// `Option<CompoundError<..>>` instead. Entries are kept in input order (ascending index),
/// whatever order the futures failed in. It is the Rust form of Python's
/// `asyncio_tools.CompoundException` and of PEP 654's `ExceptionGroup`, with
/// [`split`](Self::split) and [`subgroup`](Self::subgroup).
///
/// The first error is kept by value, so [`first`](Self::first) reads a field and one
/// error (a fail-fast gather's) needs nothing more. The second parameter says where the
/// errors after it live, once there is a second: [`Inline<N>`] keeps them in an array of
/// `N` places (what array and tuple gathers produce, no allocator needed), [`Heap`] in a
/// list on the heap (what `Vec`, `SmallVec` and iterator gathers produce; feature `alloc`,
/// and the default).
///
/// # Examples
///
/// ```
/// use gather::gather;
/// # use core::future::ready;
/// # use futures::executor::block_on;
///
/// let gathered = block_on(gather([
///     ready(Ok(1)),
///     ready(Err("connection refused")),
///     ready(Ok(3)),
///     ready(Err("timed out")),
///     ready(Ok(5)),
/// ]));
/// let error = gathered.into_compound_error().unwrap();
/// assert_eq!(error.len(), 2);
/// assert_eq!(error.first(), (1, &"connection refused"));
/// assert_eq!(
///     error.to_string(),
///     "2 of 5 futures failed: [1] connection refused; [3] timed out",
/// );
/// ```
pub struct CompoundError<E, S: ErrorStore<E> = DefaultStore> {
    /// The first error in input order, with its index: a compound error is never empty, and
    /// [`first`](Self::first) reads a field.
    first: (usize, E),
    /// The errors after the first, each at a higher index; `None` while there is only one
    /// (so a fail-fast gather's error has no store to fill).
    rest: Option<S::Entries>,
    /// How many errors, the first included; never zero.
    len: usize,
    /// How many futures the gather ran.
    total: usize,
}

/// Where a [`CompoundError`] keeps its errors after the first: [`Inline`] or [`Heap`].
///
/// This trait is sealed: it cannot be implemented outside this crate. It appears in
/// bounds; the gather picks the store for you.
///
/// # Examples
///
/// ```
/// use gather::{CompoundError, ErrorStore};
///
/// fn describe<E: std::fmt::Display, S: ErrorStore<E>>(error: &CompoundError<E, S>) -> String {
///     format!("{} failures, first at {}", error.len(), error.first().0)
/// }
/// # use core::future::ready;
/// # use futures::executor::block_on;
/// let gathered = block_on(gather::gather([ready(Ok(0)), ready(Err("x"))]));
/// assert_eq!(describe(&gathered.into_compound_error().unwrap()), "1 failures, first at 1");
/// ```
pub trait ErrorStore<E>: crate::sealed::ErrorStore {
    #[doc(hidden)]
    type Entries;
    #[doc(hidden)]
    type Iter<'a>: Iterator<Item = (usize, &'a E)>
    where
        E: 'a;
    #[doc(hidden)]
    type IntoIter: Iterator<Item = (usize, E)>;
    /// No entries, with room for about `capacity`.
    #[doc(hidden)]
    fn empty(capacity: usize) -> Self::Entries;
    /// Adds the error of the future at `index`, above every index added before.
    #[doc(hidden)]
    fn push(entries: &mut Self::Entries, index: usize, error: E);
    #[doc(hidden)]
    fn iter(entries: &Self::Entries) -> Self::Iter<'_>;
    #[doc(hidden)]
    fn get(entries: &Self::Entries, index: usize) -> Option<&E>;
    #[doc(hidden)]
    fn into_iter(entries: Self::Entries) -> Self::IntoIter;
}

/// Errors inline, one place per future: `[Option<E>; N]` (the first error is kept beside
/// it). No allocator needed.
///
/// Array and tuple gathers use it: their compound errors work in `no_std` without
/// `alloc`.
///
/// # Examples
///
/// ```
/// use gather::{gather, CompoundError, Inline};
/// # use core::future::ready;
/// # use futures::executor::block_on;
///
/// let gathered = block_on(gather([ready(Err::<(), _>(1)), ready(Err(2)), ready(Ok(()))]));
/// let error: CompoundError<i32, Inline<3>> = gathered.into_compound_error().unwrap();
/// assert_eq!(error.len(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Inline<const N: usize>;

impl<const N: usize> crate::sealed::ErrorStore for Inline<N> {}

impl<E, const N: usize> ErrorStore<E> for Inline<N> {
    type Entries = [Option<E>; N];
    type IntoIter = InlineIntoIter<E, N>;

    fn empty(_capacity: usize) -> [Option<E>; N] {
        [const { None }; N]
    }

    /// `index` must be below `N`.
    fn push(entries: &mut [Option<E>; N], index: usize, error: E) {
        entries[index] = Some(error);
    }

    type Iter<'a>
        = InlineIter<'a, E>
    where
        E: 'a;

    fn iter(entries: &[Option<E>; N]) -> InlineIter<'_, E> {
        InlineIter {
            inner: entries.iter().enumerate(),
        }
    }

    fn get(entries: &[Option<E>; N], index: usize) -> Option<&E> {
        entries.get(index)?.as_ref()
    }

    fn into_iter(entries: [Option<E>; N]) -> InlineIntoIter<E, N> {
        InlineIntoIter {
            inner: entries.into_iter().enumerate(),
        }
    }
}

#[doc(hidden)]
#[derive(Debug)]
pub struct InlineIter<'a, E> {
    inner: core::iter::Enumerate<core::slice::Iter<'a, Option<E>>>,
}

impl<'a, E> Iterator for InlineIter<'a, E> {
    type Item = (usize, &'a E);

    fn next(&mut self) -> Option<(usize, &'a E)> {
        self.inner
            .by_ref()
            .find_map(|(i, e)| e.as_ref().map(|e| (i, e)))
    }
}

#[doc(hidden)]
#[derive(Debug)]
pub struct InlineIntoIter<E, const N: usize> {
    inner: core::iter::Enumerate<core::array::IntoIter<Option<E>, N>>,
}

impl<E, const N: usize> Iterator for InlineIntoIter<E, N> {
    type Item = (usize, E);

    fn next(&mut self) -> Option<(usize, E)> {
        self.inner.by_ref().find_map(|(i, e)| e.map(|e| (i, e)))
    }
}

/// Errors as a list of `(index, error)`: the first error is kept beside it, so one error
/// (a fail-fast gather's) costs no allocation; two or more take one.
///
/// The first error's place makes a `CompoundError<E, Heap>` one `(usize, E)` larger than a
/// `Vec` would be (72 bytes for a `String` error, 56 for `std::io::Error`): for a large
/// `E`, box it.
///
/// `Vec`, `SmallVec` and iterator gathers use it. It is the default store, so
/// `CompoundError<E>` means `CompoundError<E, Heap>`.
///
/// # Examples
///
/// ```
/// use gather::{gather, CompoundError, Heap};
/// # use core::future::ready;
/// # use futures::executor::block_on;
///
/// let gathered = block_on(gather(vec![ready(Err::<(), _>("a")), ready(Err("b"))]));
/// let error: CompoundError<&str, Heap> = gathered.into_compound_error().unwrap();
/// let same: CompoundError<&str> = error;
/// assert_eq!(same.len(), 2);
/// ```
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Heap;

#[cfg(feature = "alloc")]
impl crate::sealed::ErrorStore for Heap {}

#[cfg(feature = "alloc")]
impl<E> ErrorStore<E> for Heap {
    type Entries = Vec<(usize, E)>;
    type IntoIter = alloc::vec::IntoIter<(usize, E)>;

    fn empty(capacity: usize) -> Vec<(usize, E)> {
        Vec::with_capacity(capacity)
    }

    fn push(entries: &mut Vec<(usize, E)>, index: usize, error: E) {
        entries.push((index, error));
    }

    type Iter<'a>
        = HeapIter<'a, E>
    where
        E: 'a;

    fn iter(entries: &Vec<(usize, E)>) -> HeapIter<'_, E> {
        HeapIter {
            inner: entries.iter(),
        }
    }

    fn get(entries: &Vec<(usize, E)>, index: usize) -> Option<&E> {
        let at = entries.binary_search_by_key(&index, |(i, _)| *i).ok()?;
        Some(&entries[at].1)
    }

    fn into_iter(entries: Vec<(usize, E)>) -> Self::IntoIter {
        entries.into_iter()
    }
}

#[cfg(feature = "alloc")]
#[doc(hidden)]
#[derive(Debug)]
pub struct HeapIter<'a, E> {
    inner: core::slice::Iter<'a, (usize, E)>,
}

#[cfg(feature = "alloc")]
impl<'a, E> Iterator for HeapIter<'a, E> {
    type Item = (usize, &'a E);

    fn next(&mut self) -> Option<(usize, &'a E)> {
        self.inner.next().map(|(i, e)| (*i, e))
    }
}

/// The store a bare `CompoundError<E>` uses: [`Heap`] with the `alloc` feature.
///
/// # Examples
///
/// ```
/// use gather::{CompoundError, DefaultStore, Heap};
/// let _: Option<CompoundError<std::io::Error, DefaultStore>> = None::<CompoundError<std::io::Error, Heap>>;
/// ```
#[cfg(feature = "alloc")]
pub type DefaultStore = Heap;

/// The store a bare `CompoundError<E>` uses. Without the `alloc` feature there is no heap
/// store, so name the store explicitly: `CompoundError<E, Inline<N>>`.
#[cfg(not(feature = "alloc"))]
pub type DefaultStore = Inline<0>;

/// A compound error being built, one error at a time in input order.
struct Builder<E, S: ErrorStore<E>> {
    first: Option<(usize, E)>,
    rest: Option<S::Entries>,
    len: usize,
    /// About how many errors there will be.
    capacity: usize,
}

impl<E, S: ErrorStore<E>> Builder<E, S> {
    /// Room for about `errors` errors.
    fn new(errors: usize) -> Self {
        Builder {
            first: None,
            rest: None,
            len: 0,
            capacity: errors,
        }
    }

    /// Adds the error of the future at `index`, above every index added before.
    fn push(&mut self, index: usize, error: E) {
        match self.first {
            None => self.first = Some((index, error)),
            Some(_) => {
                let rest = self
                    .rest
                    .get_or_insert_with(|| S::empty(self.capacity.saturating_sub(1)));
                S::push(rest, index, error);
            }
        }
        self.len += 1;
    }

    /// The errors added, of `total` futures, or `None` if there are none.
    fn finish(self, total: usize) -> Option<CompoundError<E, S>> {
        Some(CompoundError {
            first: self.first?,
            rest: self.rest,
            len: self.len,
            total,
        })
    }
}

impl<E, S: ErrorStore<E>> CompoundError<E, S> {
    /// Collects the errors of `total` futures, about `errors` of them (a capacity hint);
    /// `None` when none failed. `error_at` is called once per index, in ascending order.
    pub(crate) fn collect(
        total: usize,
        errors: usize,
        mut error_at: impl FnMut(usize) -> Option<E>,
    ) -> Option<Self> {
        let entries = (0..total).filter_map(|index| Some((index, error_at(index)?)));
        Self::build(total, errors, entries)
    }

    /// The error of child `index` alone, of `total` children.
    pub(crate) fn one(total: usize, index: usize, error: E) -> Self {
        debug_assert!(index < total);
        CompoundError {
            first: (index, error),
            rest: None,
            len: 1,
            total,
        }
    }

    /// The errors of `entries` (in input order, each index below `total`), or `None` if
    /// there are none.
    #[cfg(feature = "alloc")]
    pub(crate) fn from_entries(
        total: usize,
        entries: impl Iterator<Item = (usize, E)>,
    ) -> Option<Self> {
        Self::build(total, entries.size_hint().0, entries)
    }

    /// The errors of `entries`, about `errors` of them (a capacity hint).
    fn build(
        total: usize,
        errors: usize,
        entries: impl Iterator<Item = (usize, E)>,
    ) -> Option<Self> {
        let mut builder = Builder::new(errors);
        for (index, error) in entries {
            builder.push(index, error);
        }
        builder.finish(total)
    }

    /// How many futures failed. Never zero.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Err::<(), _>(1)), ready(Err(2))]));
    /// assert_eq!(gathered.into_compound_error().unwrap().len(), 2);
    /// ```
    #[allow(clippy::len_without_is_empty)] // never empty, by construction
    pub fn len(&self) -> usize {
        self.len
    }

    /// How many futures the gather ran, failed or not.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Ok(0)), ready(Err("no"))]));
    /// assert_eq!(gathered.into_compound_error().unwrap().total(), 2);
    /// ```
    pub fn total(&self) -> usize {
        self.total
    }

    /// The first error in input order (the lowest index), with its index.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Ok(0)), ready(Err("b")), ready(Err("c"))]));
    /// assert_eq!(gathered.into_compound_error().unwrap().first(), (1, &"b"));
    /// ```
    pub fn first(&self) -> (usize, &E) {
        (self.first.0, &self.first.1)
    }

    /// The first error in input order (the lowest index), with its index, by value: "the"
    /// error of a fail-fast gather.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let checks = [ready(Ok(0)), ready(Err("disk full")), ready(Err("no network"))];
    /// let error = block_on(gather::gather(checks).fail_fast()).unwrap_err();
    /// assert_eq!(error.into_first(), (1, "disk full"));
    /// ```
    pub fn into_first(self) -> (usize, E) {
        let CompoundError { first, rest, .. } = self;
        // Dropped before the return, as a local: if a drop of the rest panics, the first
        // error is dropped while it unwinds.
        drop(rest);
        first
    }

    /// Every error with its index, in input order.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Err("a")), ready(Ok(1)), ready(Err("c"))]));
    /// let error = gathered.into_compound_error().unwrap();
    /// let all: Vec<_> = error.iter().collect();
    /// assert_eq!(all, [(0, &"a"), (2, &"c")]);
    /// ```
    pub fn iter(&self) -> Iter<'_, E, S> {
        // (A closure, not `S::iter` itself: Rust 1.81 cannot tell that `E` outlives the
        // borrow through the function's path.)
        let rest = self.rest.as_ref().map(|rest| S::iter(rest));
        Iter {
            inner: Some((self.first.0, &self.first.1))
                .into_iter()
                .chain(rest.into_iter().flatten()),
            left: self.len,
        }
    }

    /// The error of the future at `index`, if that future failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Ok(0)), ready(Err("b"))]));
    /// let error = gathered.into_compound_error().unwrap();
    /// assert_eq!(error.error_at(1), Some(&"b"));
    /// assert_eq!(error.error_at(0), None);
    /// ```
    pub fn error_at(&self, index: usize) -> Option<&E> {
        if index == self.first.0 {
            Some(&self.first.1)
        } else {
            S::get(self.rest.as_ref()?, index)
        }
    }

    /// Splits the group in two after PEP 654: the errors for which `pred` holds, and the
    /// rest. Either side is `None` when it would be empty. Indices and
    /// [`total`](Self::total) are kept.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([
    ///     ready(Err(404)),
    ///     ready(Err(500)),
    ///     ready(Ok("fine")),
    ///     ready(Err(503)),
    /// ]));
    /// let error = gathered.into_compound_error().unwrap();
    /// let (server, client) = error.split(|code| *code >= 500);
    /// assert_eq!(server.unwrap().iter().collect::<Vec<_>>(), [(1, &500), (3, &503)]);
    /// assert_eq!(client.unwrap().first(), (0, &404));
    /// ```
    pub fn split(self, mut pred: impl FnMut(&E) -> bool) -> (Option<Self>, Option<Self>) {
        let total = self.total;
        let (mut matching, mut rest) = (Builder::new(0), Builder::new(0));
        for (index, error) in self {
            if pred(&error) {
                matching.push(index, error);
            } else {
                rest.push(index, error);
            }
        }
        (matching.finish(total), rest.finish(total))
    }

    /// The errors for which `pred` holds, or `None` if there are none (PEP 654's
    /// `subgroup`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// let gathered = block_on(gather::gather([ready(Err::<(), _>(404)), ready(Err(500))]));
    /// let error = gathered.into_compound_error().unwrap();
    /// assert!(error.subgroup(|code| *code == 418).is_none());
    /// ```
    pub fn subgroup(self, pred: impl FnMut(&E) -> bool) -> Option<Self> {
        let (matching, rest) = self.split(pred);
        // Dropped before the return, as a local: if a drop of the rest panics, the
        // matching errors are dropped while it unwinds (a temporary's would leak them).
        drop(rest);
        matching
    }

    /// Re-types every error with `f`, keeping each index: how a library hands its caller
    /// a `CompoundError` of its own error type, or how errors become boxed for `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// #[derive(Debug, PartialEq)]
    /// enum ApiError { Status(u16) }
    ///
    /// let gathered = block_on(gather::gather([ready(Ok("fine")), ready(Err(503))]));
    /// let error = gathered.into_compound_error().unwrap().map(ApiError::Status);
    /// assert_eq!(error.first(), (1, &ApiError::Status(503)));
    /// ```
    pub fn map<F>(self, mut f: impl FnMut(E) -> F) -> CompoundError<F, S>
    where
        S: ErrorStore<F>,
    {
        let CompoundError {
            first: (index, error),
            rest,
            len,
            total,
        } = self;
        let first = (index, f(error));
        let rest = rest.map(|rest| {
            let mut mapped = <S as ErrorStore<F>>::empty(len - 1);
            for (index, error) in <S as ErrorStore<E>>::into_iter(rest) {
                <S as ErrorStore<F>>::push(&mut mapped, index, f(error));
            }
            mapped
        });
        CompoundError {
            first,
            rest,
            len,
            total,
        }
    }
}

/// The first error, then those of the rest's iterator if there is a rest.
type FirstThenRest<Entry, Rest> = Chain<option::IntoIter<Entry>, Flatten<option::IntoIter<Rest>>>;

/// Iterator over the errors of a [`CompoundError`], created by
/// [`CompoundError::iter`]. Yields `(index, &error)` in input order.
///
/// # Examples
///
/// ```
/// # use core::future::ready;
/// # use futures::executor::block_on;
/// let gathered = block_on(gather::gather([ready(Err::<(), _>('a')), ready(Err('b'))]));
/// let error = gathered.into_compound_error().unwrap();
/// let mut iter = error.iter();
/// assert_eq!(iter.len(), 2);
/// assert_eq!(iter.next(), Some((0, &'a')));
/// ```
pub struct Iter<'a, E, S: ErrorStore<E> = DefaultStore> {
    inner: FirstThenRest<(usize, &'a E), S::Iter<'a>>,
    left: usize,
}

impl<'a, E, S: ErrorStore<E>> Iterator for Iter<'a, E, S> {
    type Item = (usize, &'a E);

    fn next(&mut self) -> Option<(usize, &'a E)> {
        let next = self.inner.next()?;
        self.left -= 1;
        Some(next)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<E, S: ErrorStore<E>> ExactSizeIterator for Iter<'_, E, S> {}
impl<E, S: ErrorStore<E>> FusedIterator for Iter<'_, E, S> {}

impl<E, S: ErrorStore<E>> fmt::Debug for Iter<'_, E, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("left", &self.left).finish()
    }
}

/// Owning iterator over the errors of a [`CompoundError`]: `(index, error)` in input
/// order.
///
/// # Examples
///
/// ```
/// # use core::future::ready;
/// # use futures::executor::block_on;
/// let gathered = block_on(gather::gather([ready(Err::<(), _>('a')), ready(Err('b'))]));
/// let error = gathered.into_compound_error().unwrap();
/// assert_eq!(error.into_iter().collect::<Vec<_>>(), [(0, 'a'), (1, 'b')]);
/// ```
pub struct IntoIter<E, S: ErrorStore<E> = DefaultStore> {
    inner: FirstThenRest<(usize, E), S::IntoIter>,
    left: usize,
}

impl<E, S: ErrorStore<E>> Iterator for IntoIter<E, S> {
    type Item = (usize, E);

    fn next(&mut self) -> Option<(usize, E)> {
        let next = self.inner.next()?;
        self.left -= 1;
        Some(next)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<E, S: ErrorStore<E>> ExactSizeIterator for IntoIter<E, S> {}
impl<E, S: ErrorStore<E>> FusedIterator for IntoIter<E, S> {}

impl<E, S: ErrorStore<E>> fmt::Debug for IntoIter<E, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter")
            .field("left", &self.left)
            .finish()
    }
}

impl<E, S: ErrorStore<E>> IntoIterator for CompoundError<E, S> {
    type Item = (usize, E);
    type IntoIter = IntoIter<E, S>;

    fn into_iter(self) -> IntoIter<E, S> {
        IntoIter {
            inner: Some(self.first)
                .into_iter()
                .chain(self.rest.map(S::into_iter).into_iter().flatten()),
            left: self.len,
        }
    }
}

impl<'a, E, S: ErrorStore<E>> IntoIterator for &'a CompoundError<E, S> {
    type Item = (usize, &'a E);
    type IntoIter = Iter<'a, E, S>;

    fn into_iter(self) -> Iter<'a, E, S> {
        self.iter()
    }
}

impl<E: fmt::Display, S: ErrorStore<E>> fmt::Display for CompoundError<E, S> {
    /// `2 of 5 futures failed: [1] connection refused; [3] timed out`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let noun = if self.total == 1 { "future" } else { "futures" };
        write!(f, "{} of {} {} failed: ", self.len, self.total, noun)?;
        for (n, (i, e)) in self.iter().enumerate() {
            let separator = if n == 0 { "" } else { "; " };
            write!(f, "{separator}[{i}] {e}")?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug, S: ErrorStore<E>> fmt::Debug for CompoundError<E, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Entries<'a, E, S: ErrorStore<E>>(&'a CompoundError<E, S>);
        impl<E: fmt::Debug, S: ErrorStore<E>> fmt::Debug for Entries<'_, E, S> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map().entries(self.0.iter()).finish()
            }
        }
        f.debug_struct("CompoundError")
            .field("total", &self.total)
            .field("errors", &Entries(self))
            .finish()
    }
}

/// A `CompoundError` is an error whenever its entries can be printed: `E` need not be an
/// [`Error`](core::error::Error) itself, so `CompoundError<anyhow::Error>` and
/// `CompoundError<Box<dyn Error + Send + Sync>>` go into an `anyhow::Result` (or a
/// `Box<dyn Error>`) with `?` as they are.
///
/// Its message names every failure, so [`source`](core::error::Error::source) is `None`:
/// an error either prints its source or returns it, not both (error reporters print the
/// message and then every source, and would name the first failure twice). The errors
/// themselves are in [`iter`](Self::iter).
///
/// # Examples
///
/// ```
/// use std::error::Error;
/// # use core::future::ready;
/// # use futures::executor::block_on;
///
/// fn check_all() -> Result<(), Box<dyn Error>> {
///     let checks = [ready(Ok(())), ready(Err("disk full"))];
///     block_on(gather::gather(checks)).into_result()?;
///     Ok(())
/// }
/// let error = check_all().unwrap_err();
/// assert_eq!(error.to_string(), "1 of 2 futures failed: [1] disk full");
/// assert!(error.source().is_none());
/// ```
impl<E, S> core::error::Error for CompoundError<E, S>
where
    E: fmt::Debug + fmt::Display,
    S: ErrorStore<E>,
{
}

/// The inline entries of an array or tuple gather's error, moved to the heap store: so one
/// `CompoundError<E>` type (the default store) holds the errors of any gather.
///
/// # Examples
///
/// ```
/// use gather::CompoundError;
/// # use core::future::ready;
/// # use futures::executor::block_on;
///
/// let array = block_on(gather::gather([ready(Err::<(), _>("a")), ready(Ok(()))]));
/// let error: CompoundError<&str> = array.into_compound_error().unwrap().into();
/// assert_eq!(error.to_string(), "1 of 2 futures failed: [0] a");
/// ```
#[cfg(feature = "alloc")]
impl<E, const N: usize> From<CompoundError<E, Inline<N>>> for CompoundError<E, Heap> {
    fn from(inline: CompoundError<E, Inline<N>>) -> Self {
        let CompoundError {
            first,
            rest,
            len,
            total,
        } = inline;
        let rest = rest.map(|rest| {
            let mut entries = Vec::with_capacity(len - 1);
            entries.extend(<Inline<N> as ErrorStore<E>>::into_iter(rest));
            entries
        });
        CompoundError {
            first,
            rest,
            len,
            total,
        }
    }
}

impl<E: Clone, S: ErrorStore<E>> Clone for CompoundError<E, S>
where
    S::Entries: Clone,
{
    fn clone(&self) -> Self {
        CompoundError {
            first: (self.first.0, self.first.1.clone()),
            rest: self.rest.clone(),
            len: self.len,
            total: self.total,
        }
    }
}

impl<E: PartialEq, S: ErrorStore<E>> PartialEq for CompoundError<E, S> {
    fn eq(&self, other: &Self) -> bool {
        self.total == other.total && self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<E: Eq, S: ErrorStore<E>> Eq for CompoundError<E, S> {}

#[cfg(feature = "alloc")]
impl<E: DynError, S: ErrorStore<E>> CompoundError<E, S> {
    /// The errors of concrete type `T`, with their indices, in input order.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::error::Error;
    /// # use core::future::ready;
    /// # use futures::executor::block_on;
    /// type BoxError = Box<dyn Error + Send + Sync>;
    ///
    /// let gathered = block_on(gather::gather([
    ///     ready(Err::<(), BoxError>("not a number".parse::<u8>().unwrap_err().into())),
    ///     ready(Err(std::fmt::Error.into())),
    /// ]));
    /// let error = gathered.into_compound_error().unwrap();
    /// assert_eq!(error.errors_of::<std::fmt::Error>().count(), 1);
    /// assert!(error.has_error::<std::num::ParseIntError>());
    /// ```
    pub fn errors_of<T: core::error::Error + 'static>(
        &self,
    ) -> impl Iterator<Item = (usize, &T)> + '_ {
        of_type(self.iter())
    }

    /// Whether any error is of concrete type `T`.
    ///
    /// See [`errors_of`](Self::errors_of) for an example.
    pub fn has_error<T: core::error::Error + 'static>(&self) -> bool {
        self.errors_of::<T>().next().is_some()
    }
}
