//! The limit window: how many children may run at once ([`Gather::limit`]).
//!
//! [`Gather::limit`]: crate::Gather::limit

/// Readiness that can cap how many children run at once, and give each child a waker of
/// its own: that of `Vec` and `SmallVec` gathers ([`Gather::limit`](crate::Gather::limit),
/// [`Gather::per_child_wakers`](crate::Gather::per_child_wakers)).
///
/// Plumbing, not API: it shows in the bounds of public items, and only this crate
/// implements it (it is not exported, so users never name it).
#[diagnostic::on_unimplemented(
    message = "`.limit()` and `.per_child_wakers()` need a `Vec`, `SmallVec`, `gather_iter` or `gather_stream` input",
    label = "this gather's input runs every child at once, with the gather's own waker",
    note = "an array or a tuple allocates nothing and starts every child at its first poll; gather a `Vec` (or use `gather_iter`, `gather_stream`) to run at most `n` at a time, or to give each child a waker of its own"
)]
pub trait Limit {
    #[doc(hidden)]
    /// Caps the children running at once (per-child wakers, whatever the size).
    fn set_limit(&mut self, limit: usize);
    #[doc(hidden)]
    /// Gives each child a waker of its own, whatever the size.
    fn use_per_child_wakers(&mut self);
}

/// How many children a per-child-waker gather runs at once ([`Gather::limit`]), and
/// how many it runs now.
///
/// [`Gather::limit`]: crate::Gather::limit
#[derive(Debug, Clone, Copy)]
#[cfg(feature = "alloc")]
pub struct Window {
    limit: usize,
    active: usize,
}

#[cfg(feature = "alloc")]
impl Default for Window {
    fn default() -> Self {
        Window {
            limit: usize::MAX,
            active: 0,
        }
    }
}

#[cfg(feature = "alloc")]
impl Window {
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Whether a limit was set.
    #[inline]
    pub(crate) fn limited(&self) -> bool {
        self.limit != usize::MAX
    }

    /// The most children that may run at once.
    #[inline]
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// How many run now.
    #[inline]
    pub(crate) fn active(&self) -> usize {
        self.active
    }

    #[inline]
    pub(crate) fn set_active(&mut self, active: usize) {
        self.active = active;
    }

    /// A graceful stop: the children waiting for a place never start.
    pub(crate) fn stop_starting(&mut self) {
        if self.limited() {
            self.limit = 0;
        }
    }

    /// How many of the `unfinished` children run: under a limit, those that started.
    pub(crate) fn running(&self, unfinished: usize) -> usize {
        if self.limited() {
            self.active
        } else {
            unfinished
        }
    }
}
