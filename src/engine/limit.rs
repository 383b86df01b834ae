//! The limit window: how many children may run at once ([`Gather::limit`]).
//!
//! [`Gather::limit`]: crate::Gather::limit

/// Readiness that can cap how many children run at once: that of `Vec` and `SmallVec`
/// gathers ([`Gather::limit`](crate::Gather::limit)). Sealed.
pub trait Limit {
    #[doc(hidden)]
    fn set_limit(&mut self, limit: usize);
}

/// How many children a per-child-waker gather runs at once ([`Gather::limit`]), and
/// how many it runs now.
///
/// [`Gather::limit`]: crate::Gather::limit
#[derive(Debug, Clone, Copy)]
#[cfg(feature = "alloc")]
pub(crate) struct Window {
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
}
