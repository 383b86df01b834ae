//! One heap block per gather: a header, and one entry per child holding that child's
//! waker node next to a payload (the child itself, for `Vec` inputs).
//!
//! The waker handed to child `i` is a pointer to entry `i`'s node. The block is
//! reference-counted, so a waker that a child keeps (or sends to another thread) stays
//! valid after the gather is gone: the payloads are dropped with the gather's handle, and
//! the memory is freed with the last reference.
//!
//! Waking child `i` sets its node's `queued` flag; only the `false -> true` transition
//! pushes the node onto an intrusive lock-free stack in the header, and only the push onto
//! an empty stack wakes the gather's own waker. A wake is therefore O(1) whatever the
//! number of children, a child woken many times before the gather runs is queued once, and
//! many children woken between two polls wake the gather once. The gather (the single consumer)
//! takes the whole stack with one swap, so there is no ABA problem; it clears a node's
//! flag just before polling its child, after it has read the node's link, so a wake
//! during that poll queues the node again for the next pass.
//!
//! Keeping the node next to the child means a wake, the poll that follows and the
//! bookkeeping all touch the same cache line or two: at 65,536 children woken in random
//! order, that is most of the cost.

use alloc::alloc::{alloc, dealloc, handle_alloc_error};
use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::mem::{align_of, size_of, ManuallyDrop};
use core::pin::Pin;
use core::ptr::{self, NonNull};
use core::task::{RawWaker, RawWakerVTable, Waker};

use super::atomic_waker::AtomicWaker;
use super::for_each_to_the_end;
use super::sync::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// The shared part of the block: reference count, ready stack, the gather's waker.
#[repr(C)]
struct Header {
    /// The gather's reference plus one per live waker clone.
    refs: AtomicUsize,
    /// Top of the stack of woken nodes (null when empty).
    ready: AtomicPtr<Node>,
    /// The waker of the task polling the gather.
    parent: AtomicWaker,
    /// How many entries follow the header.
    len: usize,
}

/// The waker's part of an entry.
#[repr(C)]
struct Node {
    /// The next node down the ready stack, or in the consumer's local list.
    next: AtomicPtr<Node>,
    /// The entry's slot: its place in the block, which is how a waker finds the header
    /// (not the input index: a storage that reuses slots maps the two). `u32` keeps a node
    /// at two words: a gather with per-child wakers takes at most `u32::MAX` futures.
    slot: u32,
    /// Whether the node is on the stack or in the consumer's local list.
    queued: AtomicBool,
}

impl Node {
    /// Writes the node of entry `slot` at `node`: on no stack, not queued.
    ///
    /// `slot`, `queued` and the padding after them go in one 8-byte store, where a write
    /// of the `Node` takes three (the compiler does not merge them): a block is written
    /// entry by entry when it is made, and at 1,024-65,536 ready children that store less
    /// per child makes the whole gather about 5 % faster (30 children: 3-4 %).
    ///
    /// # Safety
    ///
    /// `node` is valid for writes of a `Node` and nothing refers to it.
    #[inline(always)]
    unsafe fn write(node: *mut Node, slot: usize) {
        // `len` fits in `u32` (checked in `layout`), so `slot` does.
        let slot = slot as u32;
        #[cfg(not(gather_loom))]
        // SAFETY: the caller's contract; each write is within the node (the `const`
        // below checks the layout).
        unsafe {
            ptr::addr_of_mut!((*node).next).write(AtomicPtr::new(ptr::null_mut()));
            // Bytes `SLOT..SLOT + 8` of the node: `slot` in its own byte order, then
            // `queued` (0 is `false`) and padding, all zero. Unaligned: on a 32-bit
            // target the field is aligned to 4 only.
            let mut bytes = [0u8; 8];
            bytes[..4].copy_from_slice(&slot.to_ne_bytes());
            ptr::addr_of_mut!((*node).slot)
                .cast::<u64>()
                .write_unaligned(u64::from_ne_bytes(bytes));
        }
        #[cfg(gather_loom)]
        // SAFETY: the caller's contract. (loom's atomics are not plain bytes: a typed
        // write.)
        unsafe {
            node.write(Node {
                next: AtomicPtr::new(ptr::null_mut()),
                slot,
                queued: AtomicBool::new(false),
            });
        }
    }
}

// The layout `Node::write` counts on: `queued` (one byte) right after `slot` (a `u32`),
// and 8 bytes from `slot` within the node.
#[cfg(not(gather_loom))]
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(Node, queued) == offset_of!(Node, slot) + 4);
    assert!(size_of::<AtomicBool>() == 1);
    assert!(offset_of!(Node, slot) + 8 <= size_of::<Node>());
};

/// One child's entry: its node, then its payload, which only the consumer touches.
#[repr(C)]
struct Entry<P> {
    node: Node,
    payload: UnsafeCell<P>,
}

/// The layout of a block of `len` entries, and where the entries start.
fn layout<P>(len: usize) -> (Layout, usize) {
    assert!(
        u32::try_from(len).is_ok(),
        "gather: more than u32::MAX futures in one gather"
    );
    Layout::new::<Header>()
        .extend(Layout::array::<Entry<P>>(len).expect("gather: too many futures"))
        .map(|(layout, offset)| (layout.pad_to_align(), offset))
        .expect("gather: too many futures")
}

/// Where entries start in a block of `P` payloads (the same for every length).
fn entries_offset<P>() -> usize {
    let align = align_of::<Entry<P>>();
    size_of::<Header>().div_ceil(align) * align
}

/// The gather's handle on its block: owns the payloads and the consumer side of the
/// ready set.
pub(crate) struct Block<P> {
    header: NonNull<Header>,
    /// Woken nodes taken off the stack and not yet polled, oldest first; consumer-only.
    local_head: *mut Node,
    local_tail: *mut Node,
    /// Children `fresh..len` have never been handed out by `next`.
    fresh: usize,
    /// The header's `len`, kept here so that the hot path reads no shared memory for it.
    len: usize,
    /// Whether the payloads still need dropping (see [`Block::forget_payloads`]): 1 or 0.
    /// A word, not a `bool`: with a `bool`, the handle ends in 7 bytes of padding, which,
    /// in the layout the compiler picks today for a `Vec` gather, it copies together with
    /// the zero fields that follow (from a zeroed copy on the stack, at an odd offset): a
    /// store the loads of the next move cannot be served from. (With [`Block::allocate`]:
    /// settle-all and fail-fast of 2 children 3-7 % faster, in a scratch harness.)
    drop_payloads: usize,
    /// The block owns `P`s (for drop check and auto traits).
    _payloads: PhantomData<P>,
}

// SAFETY: the shared state (header, nodes' `next` and `queued`) is atomics and an
// `AtomicWaker`; the payloads and the consumer-only fields are only reached through this
// handle, so sending it sends them: it is `Send` when `P` is.
unsafe impl<P: Send> Send for Block<P> {}
// SAFETY: `&Block` reaches the shared state and, through `payload`, `&P`: it is `Sync` when
// `P` is.
unsafe impl<P: Sync> Sync for Block<P> {}

/// A block whose memory is made and written, not yet owned by a handle
/// ([`Block::allocate`]). Dropped, it is adopted and dropped as a block: its payloads are
/// dropped and its memory freed.
pub(crate) struct Unadopted<P> {
    header: NonNull<Header>,
    len: usize,
    _payloads: PhantomData<P>,
}

impl<P> Unadopted<P> {
    /// The handle of the block.
    #[inline]
    pub(crate) fn adopt(self) -> Block<P> {
        let block = self.handle();
        core::mem::forget(self);
        block
    }

    /// A handle on the block; the caller makes sure that only one exists.
    #[inline]
    fn handle(&self) -> Block<P> {
        Block {
            header: self.header,
            local_head: ptr::null_mut(),
            local_tail: ptr::null_mut(),
            fresh: 0,
            len: self.len,
            drop_payloads: 1,
            _payloads: PhantomData,
        }
    }
}

impl<P> Drop for Unadopted<P> {
    fn drop(&mut self) {
        // The only handle: an adopted block is forgotten, not dropped.
        drop(self.handle());
    }
}

impl<P> Block<P> {
    /// Allocates a block of `len` entries with payload `i` from `payload(i)`.
    ///
    /// Every node is written now, even for a few children that a gather sweeps with its
    /// own waker and may never hand a node's waker. Writing them only at the first
    /// per-child pass was measured (same-run A/B): settle-all of 30 ready children 11 %
    /// faster, of 8 3 %; but the proof that a node is written before its waker is handed
    /// out then costs the large gathers' per-child loop 2-3 % (a check per waker) or 11 %
    /// (a check per pass, which changes how the loop is compiled), and settle-all of 2
    /// self-waking children ran 8-11 % slower for no reason found.
    #[inline]
    pub(crate) fn new(len: usize, payload: impl FnMut(usize) -> P) -> Self {
        Self::allocate(len, payload).adopt()
    }

    /// [`new`](Self::new) in two steps: the block's memory, with its header, nodes and
    /// payloads written; then, with [`Unadopted::adopt`], the handle, built where it goes.
    /// Only two words come out of the first (in registers): a caller that makes calls of
    /// its own before it adopts the block (a `Vec` gather frees or reuses its input's
    /// buffer) does not keep a handle in memory across them, to be moved afterwards with
    /// wider loads than the stores that wrote it, each of which then stalls. (Settle-all
    /// of 2 to 30 children: 8-16 % faster.)
    pub(crate) fn allocate(len: usize, mut payload: impl FnMut(usize) -> P) -> Unadopted<P> {
        let (layout, offset) = layout::<P>(len);
        debug_assert_eq!(offset, entries_offset::<P>());
        // SAFETY: the layout has a non-zero size (the header is not zero-sized).
        let base = unsafe { alloc(layout) };
        let Some(base) = NonNull::new(base) else {
            handle_alloc_error(layout)
        };
        let header = base.cast::<Header>();
        // SAFETY: the block is freshly allocated with room and alignment for the header
        // and `len` entries at `offset`; each write initialises memory we own. If
        // `payload` panics, the block leaks: nothing is dropped that was not written.
        unsafe {
            header.as_ptr().write(Header {
                refs: AtomicUsize::new(1),
                ready: AtomicPtr::new(ptr::null_mut()),
                parent: AtomicWaker::new(),
                len,
            });
            let entries = base.as_ptr().add(offset).cast::<Entry<P>>();
            for slot in 0..len {
                let entry = entries.add(slot);
                Node::write(ptr::addr_of_mut!((*entry).node), slot);
                ptr::addr_of_mut!((*entry).payload).write(UnsafeCell::new(payload(slot)));
            }
        }
        Unadopted {
            header,
            len,
            _payloads: PhantomData,
        }
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the block lives at least as long as this handle's reference to it.
        unsafe { self.header.as_ref() }
    }

    #[inline]
    fn entry(&self, slot: usize) -> *mut Entry<P> {
        assert!(slot < self.len(), "gather: slot out of bounds");
        // SAFETY: just checked.
        unsafe { self.entry_unchecked(slot) }
    }

    /// Entry `slot`, unchecked.
    ///
    /// # Safety
    ///
    /// `slot < self.len()`.
    #[inline]
    unsafe fn entry_unchecked(&self, slot: usize) -> *mut Entry<P> {
        // SAFETY: `slot < len` (the caller's contract), so the offset stays inside the
        // block.
        unsafe {
            self.header
                .as_ptr()
                .cast::<u8>()
                .add(entries_offset::<P>())
                .cast::<Entry<P>>()
                .add(slot)
        }
    }

    /// How many entries the block has.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Payload `slot`, shared.
    #[inline]
    pub(crate) fn payload(&self, slot: usize) -> &P {
        // SAFETY: the entry is initialised; payloads are only ever reached through this
        // handle, and `&self` rules out a `&mut` to it.
        unsafe { &*(*self.entry(slot)).payload.get() }
    }

    /// Payload `slot`, pinned: the block never moves its entries.
    #[inline]
    pub(crate) fn payload_pinned(&mut self, slot: usize) -> Pin<&mut P> {
        // SAFETY: the entry is initialised and only reached through this handle, which we
        // hold exclusively. The block is never reallocated and entries never move until
        // they are dropped in place (in `drop`), so the payload is pinned.
        unsafe { Pin::new_unchecked(&mut *(*self.entry(slot)).payload.get()) }
    }

    /// Tells the block that its payloads own nothing any more (every child has finished
    /// and its output has moved out), so that its drop skips them instead of visiting
    /// every entry again. Leaking is safe: a payload that did own something would leak.
    #[inline]
    pub(crate) fn forget_payloads(&mut self) {
        self.drop_payloads = 0;
    }

    /// Makes `waker` the one that child wakes wake; returns whether it is now (see
    /// [`AtomicWaker::register`]: not while a wake reads the old one).
    #[inline]
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        self.header().parent.register(waker)
    }

    /// [`AtomicWaker::register_or_leave`] on the waker that child wakes wake.
    pub(crate) fn register_or_leave(&self, waker: &Waker) -> bool {
        self.header().parent.register_or_leave(waker)
    }

    /// Whether child wakes wake the same task as `waker` (the registrant's question).
    pub(crate) fn wakes(&self, waker: &Waker) -> bool {
        self.header().parent.holds(waker)
    }

    /// Whether nodes were woken since the last [`collect_woken`](Self::collect_woken): a
    /// load, where taking them is a read-modify-write. (A wake that comes after it is on
    /// the stack for the next pass, and has woken the gather's waker for it.)
    #[inline]
    pub(crate) fn has_woken(&self) -> bool {
        !self.header().ready.load(Ordering::Relaxed).is_null()
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

    /// The next child to poll, and whether it was never polled: woken ones first, in wake
    /// order, then (if `may_start`) the never-polled ones in input order. A woken child's
    /// node is unqueued, so a wake from now on queues it again.
    #[inline]
    pub(crate) fn next(&mut self, may_start: bool) -> Option<(usize, bool)> {
        if let Some(slot) = self.next_woken() {
            return Some((slot, false));
        }
        if self.fresh == self.len() || !may_start {
            return None;
        }
        self.fresh += 1;
        // Never polled, never queued: no waker for it exists yet.
        Some((self.fresh - 1, true))
    }

    /// The children never polled, in input order. Polling some of them from the start
    /// of the range is for the caller, which then says how far it came
    /// ([`polled_up_to`](Self::polled_up_to)).
    #[inline]
    pub(crate) fn never_polled(&self) -> core::ops::Range<usize> {
        self.fresh..self.len()
    }

    /// Records that the children before `end` have been polled at least once.
    #[inline]
    pub(crate) fn polled_up_to(&mut self, end: usize) {
        debug_assert!(self.fresh <= end && end <= self.len());
        self.fresh = end;
    }

    /// The next woken child to poll, in wake order; its node is unqueued, so a wake from
    /// now on queues it again.
    #[inline]
    pub(crate) fn next_woken(&mut self) -> Option<usize> {
        if self.local_head.is_null() {
            return None;
        }
        let node = self.local_head;
        // SAFETY: `node` is a queued node of our local list, in the block we hold a
        // reference to. We read its link before clearing its flag, after which a waker may
        // reuse the link. Acquire pairs with the waker's release, so whatever the waker
        // did before waking is visible to the poll that follows.
        unsafe {
            self.local_head = (*node).next.load(Ordering::Relaxed);
            if self.local_head.is_null() {
                self.local_tail = ptr::null_mut();
            }
            (*node).queued.swap(false, Ordering::AcqRel);
            Some((*node).slot as usize)
        }
    }

    /// Whether a pass left children it could have polled: woken ones taken off the stack
    /// but not polled, or (if `may_start`) ones never polled. (Children woken since the
    /// pass began are on the stack, and their wake has woken the gather already.)
    #[inline]
    pub(crate) fn has_left(&self, may_start: bool) -> bool {
        !self.local_head.is_null() || (may_start && self.fresh < self.len())
    }

    /// Child `slot`'s waker, borrowing this handle's reference: cloning it takes a
    /// reference of its own; dropping the borrow does nothing.
    #[inline]
    pub(crate) fn waker(&self, slot: usize) -> ManuallyDrop<Waker> {
        assert!(slot < self.len(), "gather: slot out of bounds");
        // SAFETY: just checked.
        unsafe { self.waker_unchecked(slot) }
    }

    /// [`waker`](Self::waker) for a slot known to be in the block.
    ///
    /// # Safety
    ///
    /// `slot < self.len()`.
    #[inline]
    pub(crate) unsafe fn waker_unchecked(&self, slot: usize) -> ManuallyDrop<Waker> {
        // SAFETY: `slot < len` (the caller's contract): the entry is live, and the node is
        // its first field (`repr(C)`).
        let node = unsafe { ptr::addr_of!((*self.entry_unchecked(slot)).node) };
        let raw = RawWaker::new(node.cast(), &Self::VTABLE);
        // SAFETY: `raw` points at a live node and uses the vtable below, whose functions
        // uphold the `RawWaker` contract (see each); `ManuallyDrop` keeps the borrow from
        // releasing the handle's reference.
        ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
    }

    const VTABLE: RawWakerVTable =
        RawWakerVTable::new(Self::clone, Self::wake, Self::wake_by_ref, Self::drop_waker);

    /// Finds the block's header from one of its nodes.
    ///
    /// # Safety
    ///
    /// `node` points at the node of an entry of a live `Block<P>`.
    unsafe fn header_of(node: *const Node) -> *mut Header {
        // SAFETY: entry `slot` sits `entries_offset + slot * size_of::<Entry>()` bytes
        // into its block and starts with its node, so stepping back that far lands on the
        // header, in the same allocation.
        unsafe {
            let slot = (*node).slot as usize;
            let back = entries_offset::<P>() + slot * size_of::<Entry<P>>();
            node.cast::<u8>().sub(back).cast::<Header>().cast_mut()
        }
    }

    /// Drops one reference to the block; frees it with the last. The payloads were
    /// dropped with the gather's handle.
    ///
    /// # Safety
    ///
    /// `header` is the start of a live `Block<P>` and the caller owns one of its
    /// references.
    ///
    /// `LIKELY_LAST` says whether the reference is likely to be the last: the handle's is,
    /// as the gather goes (its children have usually dropped their wakers by then), and a
    /// load then spares the read-modify-write. A waker's seldom is: it goes straight to the
    /// read-modify-write (with the load first, `external_wake` of 1,024-65,536 children
    /// was 1-4 % slower, in a scratch harness).
    unsafe fn release<const LIKELY_LAST: bool>(header: *mut Header) {
        // SAFETY: the block is live while the caller's reference is.
        let refs = unsafe { &(*header).refs };
        // (The handle's.) A count of 1 is the caller's reference alone, and no one can add
        // to it without a reference of their own: the block is ours to free, with no
        // read-modify-write. (Acquire pairs with every other release, as the fence below.)
        if !(LIKELY_LAST && refs.load(Ordering::Acquire) == 1) {
            if refs.fetch_sub(1, Ordering::Release) != 1 {
                return;
            }
            // Pairs with every other release: all their accesses happen before the free.
            fence(Ordering::Acquire);
        }
        /// Frees the block even if the drop of the gather's waker, still in the header,
        /// panics.
        struct Free(*mut u8, Layout);
        impl Drop for Free {
            fn drop(&mut self) {
                // SAFETY: the block was allocated with this layout, and is freed once,
                // here, after the header's drop.
                unsafe { dealloc(self.0, self.1) }
            }
        }
        // SAFETY: this was the last reference: nothing else can reach the block. Nodes
        // need no drop and payloads are gone; the header's `AtomicWaker` needs its drop.
        unsafe {
            let _free = Free(header.cast(), layout::<P>((*header).len).0);
            ptr::drop_in_place(header);
        }
    }

    /// # Safety
    ///
    /// `data` comes from a waker of this vtable, so it points at a node of a live block.
    unsafe fn clone(data: *const ()) -> RawWaker {
        // SAFETY: see the function's contract; the waker being cloned holds a reference,
        // so the block is live. Relaxed is enough to take a reference from one we hold.
        let old = unsafe {
            (*Self::header_of(data.cast()))
                .refs
                .fetch_add(1, Ordering::Relaxed)
        };
        assert!(
            old <= isize::MAX as usize,
            "gather: waker reference count overflow"
        );
        RawWaker::new(data, &Self::VTABLE)
    }

    /// # Safety
    ///
    /// As for [`clone`](Self::clone); the waker owns a reference, which this consumes.
    unsafe fn wake(data: *const ()) {
        /// Releases the waker's reference even if the gather's waker panics.
        struct Release<P>(*const (), PhantomData<P>);
        impl<P> Drop for Release<P> {
            #[inline]
            fn drop(&mut self) {
                // SAFETY: the reference `wake` owns, released exactly once, here.
                unsafe { Block::<P>::drop_waker(self.0) }
            }
        }
        let _release = Release::<P>(data, PhantomData);
        // SAFETY: see the function's contract; the reference is released after.
        unsafe { Self::wake_by_ref(data) };
    }

    /// # Safety
    ///
    /// As for [`clone`](Self::clone).
    unsafe fn wake_by_ref(data: *const ()) {
        let node = data.cast::<Node>().cast_mut();
        // SAFETY: the block is live (the waker holds a reference). Wakers only touch a
        // node's `next` after winning its `queued` flag, and never a payload.
        unsafe {
            if (*node).queued.swap(true, Ordering::AcqRel) {
                return; // already queued: the gather will poll the child
            }
            let header = Self::header_of(node);
            let ready = &(*header).ready;
            let mut top = ready.load(Ordering::Relaxed);
            loop {
                (*node).next.store(top, Ordering::Relaxed);
                match ready.compare_exchange_weak(top, node, Ordering::AcqRel, Ordering::Relaxed) {
                    Ok(_) => break,
                    Err(current) => top = current,
                }
            }
            // Only the push that made the stack non-empty wakes the gather: whoever pushed
            // before us woke it after their push, and the gather has not taken the stack
            // since (it would be empty), so the poll that wake causes takes our node too.
            // Unless that wake panicked in the gather's waker: then it is owed, and we pay.
            if top.is_null() || (*header).parent.is_owed() {
                (*header).parent.wake();
            }
        }
    }

    /// # Safety
    ///
    /// As for [`clone`](Self::clone); the waker owns a reference, which this releases.
    unsafe fn drop_waker(data: *const ()) {
        // SAFETY: see the function's contract.
        unsafe { Self::release::<false>(Self::header_of(data.cast())) };
    }
}

impl<P> Drop for Block<P> {
    fn drop(&mut self) {
        // Drop every payload now, in input order: they may borrow data that does not
        // outlive the gather, while wakers may outlive it. Then let go of the gather's
        // waker, so that wakers kept by children do not keep its task alive, and of the
        // handle's reference. Guards, so that both happen even if a payload's drop panics
        // (dropped in reverse: the waker first, then the reference).
        struct Release(*mut Header, unsafe fn(*mut Header));
        impl Drop for Release {
            fn drop(&mut self) {
                // SAFETY: the handle's reference, released exactly once, even if a
                // payload's drop or the gather's waker's drop panics.
                unsafe { (self.1)(self.0) }
            }
        }
        struct Clear<'a>(&'a Header);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                // With the handle's reference the only one (the usual end: the children
                // dropped their wakers), no waker is left to be woken, now or later: the
                // waker can go with no read-modify-write. Acquire: every wake made through
                // a waker now gone happens before (it released its reference after).
                if self.0.refs.load(Ordering::Acquire) == 1 {
                    // SAFETY: no waker of the block is left (the handle's reference is the
                    // only one, and a new one is made only from an existing waker), so no
                    // other thread reaches the slot; the acquire load orders every past
                    // access before this one.
                    unsafe { self.0.parent.clear_alone() };
                } else {
                    self.0.parent.clear();
                }
            }
        }
        let _release = Release(self.header.as_ptr(), Self::release::<true>);
        // SAFETY: the header lives until `_release` drops, after `_clear`.
        let _clear = Clear(unsafe { self.header.as_ref() });
        if self.drop_payloads != 0 {
            for_each_to_the_end(0..self.len(), |slot| {
                // SAFETY: every entry's payload is initialised and dropped exactly once,
                // here (a drop that panics counts as done, and the loop goes on past it);
                // the block is freed only after (by `_release`).
                unsafe { ptr::drop_in_place((*self.entry(slot)).payload.get()) };
            });
        }
    }
}

impl<P> core::fmt::Debug for Block<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Block").field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Block;
    use alloc::rc::Rc;

    #[test]
    fn a_block_dropped_before_it_is_adopted_drops_each_payload_once_and_frees_its_memory() {
        let payload = Rc::new(());
        let unadopted = Block::allocate(3, |_| Rc::clone(&payload));
        assert_eq!(Rc::strong_count(&payload), 4);
        drop(unadopted);
        // (Were its memory not freed, Miri would report a leak.)
        assert_eq!(Rc::strong_count(&payload), 1);
    }

    #[test]
    fn an_adopted_block_owns_its_payloads_from_then_on() {
        let payload = Rc::new(());
        let block = Block::allocate(2, |_| Rc::clone(&payload)).adopt();
        assert_eq!((block.len(), Rc::strong_count(&payload)), (2, 3));
        drop(block);
        assert_eq!(Rc::strong_count(&payload), 1);
    }
}
