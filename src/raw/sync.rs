//! The atomics and the cell the other raw modules share: `core`'s, or loom's when the
//! crate is built with `--cfg gather_loom` for the model tests in `tests/loom.rs`.

#[cfg(gather_loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(gather_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize};

#[cfg(not(gather_loom))]
pub(crate) use core::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize};

pub(crate) use core::sync::atomic::Ordering;

/// What a spin lock does while it waits: a hint to the processor, or under loom a yield
/// to another modelled thread (loom would otherwise explore the spin forever).
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(gather_loom)]
    loom::thread::yield_now();
    #[cfg(not(gather_loom))]
    core::hint::spin_loop();
}

/// `core::cell::UnsafeCell` behind the closure-based access of loom's, so that loom can
/// check every access to the cell for races.
#[cfg(not(gather_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(gather_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(core::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a pointer to the value, for reading.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a pointer to the value, for writing.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
