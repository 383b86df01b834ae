//! Per-child wakers that share one allocation, and the ready set they push onto.
//!
//! One heap block holds a [`Header`] and one [`Node`] per child. The waker handed to child
//! `i` is a pointer to node `i`; the block is reference-counted, so a waker that a child
//! keeps (or sends to another thread) stays valid after the gather is gone.
//!
//! Waking child `i` sets its node's `queued` flag; only the `false -> true` transition
//! pushes the node onto an intrusive lock-free stack in the header and wakes the gather's
//! own waker. A wake is therefore O(1) whatever the number of children, and a child woken
//! many times before the gather runs is queued once. The gather (the single consumer)
//! takes the whole stack with one swap, so there is no ABA problem; it clears a node's
//! flag just before polling its child, after it has read the node's link, so a wake
//! during that poll queues the node again for the next pass.
//!
//! Nodes are pushed only by wakers, and the gather reads them only through the set's
//! consumer methods, which take `&mut self`.

use alloc::alloc::{alloc, dealloc, handle_alloc_error};
use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::mem::{align_of, size_of, ManuallyDrop};
use core::ptr::{self, NonNull};
use core::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use core::task::{RawWaker, RawWakerVTable, Waker};

/// The shared part of the block: reference count, ready stack, the gather's waker.
#[repr(C)]
struct Header {
    /// The gather's reference plus one per live waker clone.
    refs: AtomicUsize,
    /// Top of the stack of woken nodes (null when empty).
    ready: AtomicPtr<Node>,
    /// The waker of the task polling the gather.
    parent: AtomicWaker,
    /// How many nodes follow the header.
    len: usize,
}

/// One child's entry in the block.
#[repr(C)]
struct Node {
    /// The next node down the ready stack, or in the consumer's local list.
    next: AtomicPtr<Node>,
    /// The child's index; also how a waker finds the header. (`u32` keeps a node at two
    /// words: a gather with per-child wakers takes at most `u32::MAX` futures.)
    index: u32,
    /// Whether the node is on the stack or in the consumer's local list.
    queued: AtomicBool,
}

// A node is two words on 64-bit targets.
const _: () = assert!(size_of::<usize>() != 8 || size_of::<Node>() == 16);

/// Where the nodes start, from the start of the block.
const NODES: usize = {
    let align = align_of::<Node>();
    (size_of::<Header>() + align - 1) / align * align
};

fn layout(len: usize) -> Layout {
    assert!(u32::try_from(len).is_ok(), "gather: more than u32::MAX futures in one gather");
    let size = size_of::<Node>()
        .checked_mul(len)
        .and_then(|nodes| nodes.checked_add(NODES))
        .expect("gather: too many futures for one waker set");
    let align = align_of::<Header>().max(align_of::<Node>());
    Layout::from_size_align(size, align).expect("gather: too many futures for one waker set")
}

/// The gather's handle on its waker block: the consumer side of the ready set.
pub(crate) struct ReadySet {
    header: NonNull<Header>,
    /// Woken nodes taken off the stack and not yet polled, oldest first; consumer-only.
    local_head: *mut Node,
    local_tail: *mut Node,
    /// Children `fresh..len` have never been polled.
    fresh: usize,
}

// SAFETY: the block's shared state is atomics and an `AtomicWaker` (all `Send + Sync`),
// and the consumer-only fields (`local_*`, `fresh`, and nodes while they are queued) are
// only touched through `&mut self`. Moving the handle to another thread moves that access
// with it.
unsafe impl Send for ReadySet {}
// SAFETY: `&ReadySet` only reaches the shared, atomic state (`register`, `waker`).
unsafe impl Sync for ReadySet {}

impl ReadySet {
    /// Allocates the block for `len` children, every one of them not yet polled. Node `i`
    /// is initialised just before child `i`'s first poll (see [`next`](Self::next)): no
    /// waker can reach it before then.
    pub(crate) fn new(len: usize) -> Self {
        let layout = layout(len);
        // SAFETY: the layout has a non-zero size (the header is not zero-sized).
        let base = unsafe { alloc(layout) };
        let Some(base) = NonNull::new(base) else {
            handle_alloc_error(layout)
        };
        let header = base.cast::<Header>();
        // SAFETY: the block is freshly allocated with room and alignment for a header at
        // its start; writing it initialises memory we own.
        unsafe {
            header.as_ptr().write(Header {
                refs: AtomicUsize::new(1),
                ready: AtomicPtr::new(ptr::null_mut()),
                parent: AtomicWaker::new(),
                len,
            });
        }
        ReadySet {
            header,
            local_head: ptr::null_mut(),
            local_tail: ptr::null_mut(),
            fresh: 0,
        }
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the block lives at least as long as this handle's reference to it.
        unsafe { self.header.as_ref() }
    }

    /// Node `index`; initialised once child `index` has been handed out by `next`.
    #[inline]
    fn node(&self, index: usize) -> *mut Node {
        debug_assert!(index < self.header().len);
        // SAFETY: `index < len`, so the offset stays inside the block.
        unsafe {
            self.header
                .as_ptr()
                .cast::<u8>()
                .add(NODES)
                .cast::<Node>()
                .add(index)
        }
    }

    /// Makes `waker` the one that child wakes wake.
    #[inline]
    pub(crate) fn register(&self, waker: &Waker) {
        self.header().parent.register(waker);
    }

    /// Moves every node woken since the last call onto the end of the local list, in the
    /// order they were woken. Nodes woken after this call wait for the next one.
    #[inline]
    pub(crate) fn collect_woken(&mut self) {
        let newest = self.header().ready.swap(ptr::null_mut(), Ordering::Acquire);
        if newest.is_null() {
            return;
        }
        // The stack is newest first: reverse it, so that the newest ends up last.
        let (mut rest, mut oldest) = (newest, ptr::null_mut::<Node>());
        while !rest.is_null() {
            // SAFETY: the nodes of the stack we took are in the block and stay queued, so
            // no waker writes their links: only the consumer does, now.
            unsafe {
                let next = (*rest).next.load(Ordering::Relaxed);
                (*rest).next.store(oldest, Ordering::Relaxed);
                oldest = rest;
                rest = next;
            }
        }
        if self.local_tail.is_null() {
            self.local_head = oldest;
        } else {
            // SAFETY: the tail is a queued node of our local list.
            unsafe { (*self.local_tail).next.store(oldest, Ordering::Relaxed) };
        }
        self.local_tail = newest;
    }

    /// The next child to poll: woken ones first, in wake order, then the never-polled ones
    /// in input order. Its node is unqueued, so a wake from now on queues it again.
    #[inline]
    pub(crate) fn next(&mut self) -> Option<usize> {
        let node = if !self.local_head.is_null() {
            let node = self.local_head;
            // SAFETY: `node` is a queued node of our local list; we read its link before
            // clearing its flag, after which a waker may reuse the link.
            self.local_head = unsafe { (*node).next.load(Ordering::Relaxed) };
            if self.local_head.is_null() {
                self.local_tail = ptr::null_mut();
            }
            node
        } else if self.fresh < self.header().len {
            let index = self.fresh;
            self.fresh += 1;
            let node = self.node(index);
            // SAFETY: node `index` lies inside the block and has not been initialised or
            // reached by any waker yet (no waker for it exists before this poll). It starts
            // unqueued, so the first wake from the poll to come queues it.
            unsafe {
                node.write(Node {
                    next: AtomicPtr::new(ptr::null_mut()),
                    // `len` fits in `u32` (checked in `layout`), so `index` does.
                    index: index as u32,
                    queued: AtomicBool::new(false),
                });
            }
            return Some(index);
        } else {
            return None;
        };
        // SAFETY: `node` points into the block, which we hold a reference to. Acquire pairs
        // with the waker's release, so whatever the waker did before waking is visible to
        // the poll that follows.
        let index = unsafe {
            (*node).queued.swap(false, Ordering::AcqRel);
            (*node).index
        };
        Some(index as usize)
    }

    /// Whether any child is waiting to be polled (woken, or never polled).
    #[inline]
    pub(crate) fn has_ready(&self) -> bool {
        !self.local_head.is_null()
            || self.fresh < self.header().len
            || !self.header().ready.load(Ordering::Relaxed).is_null()
    }

    /// Child `index`'s waker, borrowing this handle's reference: cloning it takes a
    /// reference of its own, dropping the borrow does nothing. `index` has been handed out
    /// by [`next`](Self::next), so its node is initialised.
    #[inline]
    pub(crate) fn waker(&self, index: usize) -> ManuallyDrop<Waker> {
        let raw = RawWaker::new(self.node(index).cast_const().cast(), &VTABLE);
        // SAFETY: `raw` points at a live node and uses the vtable below, whose functions
        // uphold the `RawWaker` contract (see each); `ManuallyDrop` keeps the borrow from
        // releasing the handle's reference.
        ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
    }
}

impl Drop for ReadySet {
    fn drop(&mut self) {
        // SAFETY: this handle owns one reference, released exactly once here.
        unsafe { release(self.header.as_ptr()) };
    }
}

impl core::fmt::Debug for ReadySet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReadySet")
            .field("len", &self.header().len)
            .finish()
    }
}

/// Drops one reference to the block; frees it with the last.
///
/// # Safety
///
/// `header` is the start of a live block and the caller owns one of its references.
unsafe fn release(header: *mut Header) {
    // SAFETY: the block is live while the caller's reference is.
    if unsafe { (*header).refs.fetch_sub(1, Ordering::Release) } != 1 {
        return;
    }
    // Pairs with every other release: all their accesses happen before the free.
    fence(Ordering::Acquire);
    // SAFETY: this was the last reference: nothing else can reach the block. Nodes need
    // no drop; the header's `AtomicWaker` does.
    unsafe {
        let len = (*header).len;
        ptr::drop_in_place(header);
        dealloc(header.cast(), layout(len));
    }
}

/// Finds the block's header from one of its nodes.
///
/// # Safety
///
/// `node` points at a node of a live block.
unsafe fn header_of(node: *const Node) -> *mut Header {
    // SAFETY: node `index` sits `NODES + index * size_of::<Node>()` bytes into its block,
    // so stepping back that far lands on the header, in the same allocation.
    unsafe {
        let index = (*node).index as usize;
        node.cast::<u8>()
            .sub(NODES + index * size_of::<Node>())
            .cast::<Header>()
            .cast_mut()
    }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// # Safety
///
/// `data` comes from a waker of this vtable, so it points at a node of a live block.
unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: see the function's contract.
    let header = unsafe { header_of(data.cast()) };
    // Relaxed is enough to take a reference from one we already hold (as `Arc` does).
    // SAFETY: the block is live: the waker being cloned holds a reference.
    let old = unsafe { (*header).refs.fetch_add(1, Ordering::Relaxed) };
    assert!(
        old <= isize::MAX as usize,
        "gather: waker reference count overflow"
    );
    RawWaker::new(data, &VTABLE)
}

/// # Safety
///
/// As for [`clone`]; the waker owns a reference, which this consumes.
unsafe fn wake(data: *const ()) {
    // SAFETY: see the function's contract.
    unsafe {
        wake_by_ref(data);
        drop_waker(data);
    }
}

/// # Safety
///
/// As for [`clone`].
unsafe fn wake_by_ref(data: *const ()) {
    let node = data.cast::<Node>().cast_mut();
    // SAFETY: the block is live (the waker holds a reference); a node and the header are
    // only ever accessed through atomics once wakers exist, apart from the consumer's
    // link writes to nodes that are queued, which we only touch after winning the flag.
    unsafe {
        if (*node).queued.swap(true, Ordering::AcqRel) {
            return; // already queued: the gather will poll the child
        }
        let header = header_of(node);
        let ready = &(*header).ready;
        let mut top = ready.load(Ordering::Relaxed);
        loop {
            (*node).next.store(top, Ordering::Relaxed);
            match ready.compare_exchange_weak(top, node, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(current) => top = current,
            }
        }
        (*header).parent.wake();
    }
}

/// # Safety
///
/// As for [`clone`]; the waker owns a reference, which this releases.
unsafe fn drop_waker(data: *const ()) {
    // SAFETY: see the function's contract.
    unsafe { release(header_of(data.cast())) };
}

/// A waker slot that one registrant (the gather) fills and any thread may wake, without
/// locks: safe to wake from an interrupt handler on a single core.
///
/// `state` is `IDLE`, or holds `REGISTERING` while the registrant writes the slot and/or
/// `WAKING` while a waker takes it. Whoever sets a bit owns the slot until it clears it.
struct AtomicWaker {
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

const IDLE: usize = 0;
const REGISTERING: usize = 1;
const WAKING: usize = 2;

// SAFETY: the slot is only accessed by whoever owns it through `state` (see the type
// docs), and `Waker` is `Send + Sync`.
unsafe impl Send for AtomicWaker {}
// SAFETY: as for `Send`.
unsafe impl Sync for AtomicWaker {}

impl AtomicWaker {
    fn new() -> Self {
        AtomicWaker {
            state: AtomicUsize::new(IDLE),
            waker: UnsafeCell::new(None),
        }
    }

    /// Stores `waker` (cloning only when it would wake another task). One registrant at a
    /// time: the gather, through `&mut` access to its poll.
    fn register(&self, waker: &Waker) {
        match self
            .state
            .compare_exchange(IDLE, REGISTERING, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => {
                // SAFETY: `REGISTERING` gives us the slot: wakers that come now only set
                // `WAKING` and leave the slot to us.
                unsafe {
                    let slot = &mut *self.waker.get();
                    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                        *slot = Some(waker.clone());
                    }
                }
                if let Err(state) = self.state.compare_exchange(
                    REGISTERING,
                    IDLE,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    // A wake came while we held the slot: do it on its behalf.
                    debug_assert_eq!(state, REGISTERING | WAKING);
                    // SAFETY: we still own the slot (our bit is set).
                    let taken = unsafe { (*self.waker.get()).take() };
                    self.state.swap(IDLE, Ordering::AcqRel);
                    if let Some(waker) = taken {
                        waker.wake();
                    }
                }
            }
            Err(WAKING) => {
                // A waker is taking the old waker right now; make sure ours hears of it.
                waker.wake_by_ref();
            }
            Err(_) => {
                // Another registration at once: impossible with one registrant. Waking is
                // the safe answer.
                waker.wake_by_ref();
            }
        }
    }

    /// Takes the stored waker and wakes it.
    fn wake(&self) {
        if self.state.fetch_or(WAKING, Ordering::AcqRel) == IDLE {
            // SAFETY: we set `WAKING` from `IDLE`: the slot is ours until we clear it.
            let taken = unsafe { (*self.waker.get()).take() };
            self.state.fetch_and(!WAKING, Ordering::Release);
            if let Some(waker) = taken {
                waker.wake();
            }
        }
        // Otherwise a registration is under way (it will see `WAKING` and wake), or
        // another waker is taking the waker right now.
    }
}
