//! An executor waker that counts its clones and may panic in any of its functions: in
//! `clone`, in a number of wakes, in `drop`; a gate can hold a wake half-way (for races).

use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{RawWaker, RawWakerVTable, Waker};

#[derive(Default)]
pub struct WakerState {
    /// Clones alive, the test's own included.
    pub live: AtomicIsize,
    /// Wakes that returned normally.
    pub wakes: AtomicUsize,
    pub panic_clone: AtomicBool,
    /// How many of the next wakes panic (`usize::MAX`: all).
    pub panic_wakes: AtomicUsize,
    pub panic_drop: AtomicBool,
    /// If set, a wake meets the test here twice: once on the way in, once to go on.
    pub gate: Mutex<Option<Arc<Barrier>>>,
}

pub struct TestWaker(pub Arc<WakerState>);

impl TestWaker {
    pub fn new() -> Self {
        TestWaker(Arc::default())
    }

    pub fn waker(&self) -> Waker {
        self.0.live.fetch_add(1, SeqCst);
        let data = Arc::into_raw(self.0.clone()).cast::<()>();
        // SAFETY: `data` is an `Arc<WakerState>` reference given to the waker, and the
        // vtable's functions treat it as such (each clone owns one reference).
        unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
    }

    pub fn live(&self) -> isize {
        self.0.live.load(SeqCst)
    }

    pub fn wakes(&self) -> usize {
        self.0.wakes.load(SeqCst)
    }

    pub fn panic_on_clone(&self, on: bool) {
        self.0.panic_clone.store(on, SeqCst);
    }

    pub fn panic_on_wakes(&self, count: usize) {
        self.0.panic_wakes.store(count, SeqCst);
    }

    pub fn panic_on_drop(&self, on: bool) {
        self.0.panic_drop.store(on, SeqCst);
    }

    pub fn gate(&self, barrier: Option<Arc<Barrier>>) {
        *self.0.gate.lock().unwrap() = barrier;
    }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(w_clone, w_wake, w_wake_by_ref, w_drop);

/// # Safety
///
/// `data` is the `Arc<WakerState>` reference of a live waker of [`VTABLE`].
unsafe fn state<'a>(data: *const ()) -> &'a WakerState {
    // SAFETY: see the function's contract.
    unsafe { &*data.cast::<WakerState>() }
}

unsafe fn w_clone(data: *const ()) -> RawWaker {
    // SAFETY: called on a live waker.
    let state = unsafe { state(data) };
    if state.panic_clone.load(SeqCst) {
        panic!("boom: waker clone");
    }
    // SAFETY: the waker being cloned owns a reference, so the count is at least one.
    unsafe { Arc::increment_strong_count(data.cast::<WakerState>()) };
    state.live.fetch_add(1, SeqCst);
    RawWaker::new(data, &VTABLE)
}

unsafe fn w_wake(data: *const ()) {
    struct Release(*const ());
    impl Drop for Release {
        fn drop(&mut self) {
            // SAFETY: the reference the consumed waker owns, released once.
            unsafe { w_drop(self.0) }
        }
    }
    let _release = Release(data);
    // SAFETY: the waker is live until `_release` drops it.
    unsafe { w_wake_by_ref(data) }
}

unsafe fn w_wake_by_ref(data: *const ()) {
    // SAFETY: called on a live waker.
    let state = unsafe { state(data) };
    let gate = state.gate.lock().unwrap().clone();
    if let Some(gate) = gate {
        gate.wait();
        gate.wait();
    }
    let panics = state
        .panic_wakes
        .fetch_update(SeqCst, SeqCst, |n| match n {
            0 => None,
            usize::MAX => Some(n),
            n => Some(n - 1),
        })
        .is_ok();
    if panics {
        panic!("boom: wake");
    }
    state.wakes.fetch_add(1, SeqCst);
}

unsafe fn w_drop(data: *const ()) {
    // SAFETY: the waker owns this reference, given up here.
    let state = unsafe { Arc::from_raw(data.cast::<WakerState>()) };
    state.live.fetch_sub(1, SeqCst);
    let panics = state.panic_drop.load(SeqCst);
    drop(state);
    if panics {
        panic!("boom: waker drop");
    }
}
