//! The storage of a [`Group`](crate::Group): children pushed at any time, in chunks that
//! double in size and never move (`engine/chunked.rs` numbers them), with per-child
//! wakers in blocks of the same shape.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::Context;

use super::Input;
use crate::engine::chunked::{chunk_len, locate, Chunks};
use crate::engine::limit::{Limit, Window};
use crate::engine::per_child::{per_child_pass, stop_per_child};
use crate::engine::readiness::{Readiness, Visit};
use crate::engine::slot::{Slot, Step};
use crate::engine::slots::{CutOff, ResultSlots, Slots, UniformSlots};
use crate::raw::inbox::Inbox;
use crate::raw::pin as pinned;

/// The input of a group's gather: no children yet; they are pushed into its slots.
pub struct Pushed<F>(PhantomData<F>);

impl<F> Pushed<F> {
    pub(crate) fn new() -> Self {
        Pushed(PhantomData)
    }
}

impl<F> fmt::Debug for Pushed<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pushed")
    }
}

impl<F: Future> crate::sealed::Input for Pushed<F> {}

impl<F: Future> Input for Pushed<F> {
    type Slots = GroupSlots<F>;

    fn into_slots(self) -> GroupSlots<F> {
        GroupSlots {
            chunks: Vec::new(),
            len: 0,
            cut_from: None,
            inbox: None,
        }
    }
}

/// Children in push order: slot `i` is the `i`-th child pushed, and its input index.
pub struct GroupSlots<F: Future> {
    /// Chunk `k` has `chunk_len(k)` slots, each boxed slice made whole (its slots empty)
    /// and never moved or resized after.
    chunks: Vec<Pin<Box<[Slot<F>]>>>,
    /// How many children were pushed.
    len: usize,
    /// Once the deadline has fired: the children from here on were pushed after it and
    /// are still to be cut off (unpolled).
    cut_from: Option<usize>,
    /// Where handles push (made by the first [`handle`](Self::handle)): taken in at the
    /// start of each pass. Once it exists, every push goes through it, so that indices
    /// follow the order pushes were made in.
    inbox: Option<Arc<Inbox<F>>>,
}

// The children live in boxed chunks that never move: moving the storage moves only the
// boxes' pointers.
impl<F: Future> Unpin for GroupSlots<F> {}

impl<F: Future> Drop for GroupSlots<F> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<F: Future> fmt::Debug for GroupSlots<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupSlots")
            .field("len", &self.len)
            .finish()
    }
}

impl<F: Future> GroupSlots<F> {
    /// Adds a child; returns its index (its place in push order). Takes in what handles
    /// pushed before it, too.
    pub(crate) fn push(&mut self, future: F) -> usize {
        match &self.inbox {
            None => self.store(future),
            Some(inbox) => {
                let (index, pushed) = inbox.push_own(future);
                self.store_all(pushed);
                index
            }
        }
    }

    /// The inbox handles push into (made at the first call, numbering from here on).
    pub(crate) fn inbox(&mut self) -> Arc<Inbox<F>> {
        let len = self.len;
        self.inbox
            .get_or_insert_with(|| Arc::new(Inbox::new(len)))
            .clone()
    }

    /// Whether children pushed through handles wait to be taken in. Runs no user code.
    pub(crate) fn has_pushed(&self) -> bool {
        self.inbox.as_ref().is_some_and(|inbox| !inbox.is_empty())
    }

    /// Stores `pushed`, the futures that came through the inbox, in order.
    fn store_all(&mut self, pushed: Vec<F>) {
        for future in pushed {
            self.store(future);
        }
    }

    /// Puts a child in the next slot; returns its index.
    fn store(&mut self, future: F) -> usize {
        let index = self.len;
        let (chunk, place) = locate(index);
        if chunk == self.chunks.len() {
            // Per-child wakers number a chunk's slots in 32 bits.
            assert!(
                u32::try_from(chunk_len(chunk)).is_ok(),
                "gather: more than 4,294,967,232 futures pushed into one group"
            );
            let empty: Box<[Slot<F>]> = (0..chunk_len(chunk)).map(|_| Slot::Taken).collect();
            self.chunks.push(Box::into_pin(empty));
        }
        pinned::index(self.chunks[chunk].as_mut(), place).set(Slot::new(future));
        self.len += 1;
        index
    }

    /// The group is done (completed, failed, or gone): its handles' pushes are refused
    /// from now on, and what waited in the inbox is dropped unrun.
    fn close(&mut self) {
        if let Some(inbox) = self.inbox.take() {
            drop(inbox.close());
        }
    }

    fn slot(&self, index: usize) -> &Slot<F> {
        assert!(index < self.len, "gather: slot out of bounds");
        let (chunk, place) = locate(index);
        &self.chunks[chunk][place]
    }

    fn slot_pinned(&mut self, index: usize) -> Pin<&mut Slot<F>> {
        assert!(index < self.len, "gather: slot out of bounds");
        let (chunk, place) = locate(index);
        pinned::index(self.chunks[chunk].as_mut(), place)
    }
}

impl<F: Future> Slots for GroupSlots<F> {
    /// Every output, in push order.
    type Outputs = Vec<F::Output>;
    type Readiness = GroupWakers;

    fn readiness(&self) -> GroupWakers {
        GroupWakers::default()
    }

    /// Children may be pushed between polls: the engine asks how many there are at each.
    const GROWS: bool = true;

    #[inline]
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn poll_step(self: Pin<&mut Self>, index: usize, cx: &mut Context<'_>) -> Step {
        self.get_mut().slot_pinned(index).poll_step(cx)
    }

    fn take_in_pushed(self: Pin<&mut Self>, cx: &mut Context<'_>) {
        let this = self.get_mut();
        if this.cut_from.is_some() {
            // A graceful stop is under way: what is pushed now never runs; it waits in the
            // inbox to be cut off when the stop is over.
            return;
        }
        if let Some(inbox) = &this.inbox {
            let pushed = inbox.take(cx.waker());
            this.store_all(pushed);
        }
    }

    /// Whether no child waits in the inbox (a query: it changes nothing).
    fn exhausted(&self) -> bool {
        !self.has_pushed()
    }

    /// Asked by the engine when it would complete: if no child waits in the inbox, the
    /// inbox closes in the same step (later pushes are refused, not lost); if one does,
    /// the gather goes on (the push woke it).
    fn ends_intake(self: Pin<&mut Self>) -> bool {
        self.inbox
            .as_ref()
            .map_or(true, |inbox| inbox.close_if_empty())
    }

    fn poisoned(self: Pin<&mut Self>) {
        // Refuse pushes from now on; what waits goes with the group's drop (not here,
        // during the unwind, where a panicking drop would abort).
        if let Some(inbox) = &self.inbox {
            inbox.refuse();
        }
    }

    fn stop_intake(self: Pin<&mut Self>) {
        // Every child pushed so far is cut off by the engine now; later ones, here.
        let this = self.get_mut();
        this.cut_from = Some(this.len);
    }

    fn take_in_to_cut_off(self: Pin<&mut Self>, cx: &mut Context<'_>, _: bool) -> Option<usize> {
        let this = self.get_mut();
        let next = this.cut_from?;
        if next == this.len && !Pin::new(&mut *this).ends_intake() {
            // Pushed through a handle after the deadline: each is cut off too.
            let pushed = this.inbox.as_ref().map(|inbox| inbox.take(cx.waker()));
            this.store_all(pushed.unwrap_or_default());
        }
        if next == this.len {
            return None;
        }
        this.cut_from = Some(next + 1);
        Some(next)
    }

    fn has_output(&self, index: usize) -> bool {
        self.slot(index).is_finished()
    }

    fn is_running(&self, index: usize) -> bool {
        self.slot(index).is_running()
    }

    fn discard(self: Pin<&mut Self>, index: usize) {
        self.get_mut().slot_pinned(index).clear();
    }

    fn take_outputs(self: Pin<&mut Self>) -> Vec<F::Output> {
        let this = self.get_mut();
        this.close();
        (0..this.len)
            .map(|index| this.slot_pinned(index).take_output())
            .collect()
    }

    fn clear(self: Pin<&mut Self>) {
        let this = self.get_mut();
        this.close();
        // Every slot, even if one's drop panics (the rest go while it unwinds).
        crate::raw::for_each_to_the_end(0..this.len, |index| this.slot_pinned(index).clear());
    }
}

impl<F: Future> UniformSlots for GroupSlots<F> {
    type Output = F::Output;

    fn take_one(self: Pin<&mut Self>, index: usize) -> F::Output {
        self.get_mut().slot_pinned(index).take_output()
    }
}

impl<F, T, E> ResultSlots for GroupSlots<F>
where
    F: Future<Output = Result<T, E>>,
{
    fn is_err(&self, index: usize) -> bool {
        self.slot(index).is_err()
    }

    fn take_err_if(self: Pin<&mut Self>, index: usize, pred: impl FnOnce(&E) -> bool) -> Option<E> {
        self.get_mut().slot_pinned(index).take_err_if(pred)
    }
}

impl<F, T, E, X> CutOff<X> for GroupSlots<F>
where
    F: Future<Output = Result<T, E>>,
    E: From<X>,
{
    fn cut_off(self: Pin<&mut Self>, index: usize, cause: impl FnOnce() -> X) -> bool {
        self.get_mut()
            .slot_pinned(index)
            .cut_off(|| E::from(cause()))
    }

    fn fail(self: Pin<&mut Self>, index: usize, cause: X) {
        self.get_mut().slot_pinned(index).fail(E::from(cause));
    }
}

/// A group's readiness: per-child wakers in chunks, and the limit window.
#[derive(Debug, Default)]
pub struct GroupWakers {
    chunks: Chunks,
    window: Window,
}

impl Limit for GroupWakers {
    fn set_limit(&mut self, limit: usize) {
        self.window.set_limit(limit);
    }

    fn use_per_child_wakers(&mut self) {}
}

impl<F: Future> Readiness<GroupSlots<F>> for GroupWakers {
    #[inline]
    fn pass<const YIELDS: bool>(
        &mut self,
        slots: Pin<&mut GroupSlots<F>>,
        len: usize,
        cx: &mut Context<'_>,
        mut visit: impl FnMut(Pin<&mut GroupSlots<F>>, usize, &mut Context<'_>) -> Visit,
    ) {
        self.chunks.grow_to(len);
        let mut target = (&mut self.chunks, slots);
        per_child_pass(
            &mut target,
            |(chunks, _)| &mut **chunks,
            &mut self.window,
            cx,
            |(_, slots), index, cx| visit(slots.as_mut(), index, cx),
        );
    }

    fn stop(&mut self, slots: Pin<&mut GroupSlots<F>>, cx: &mut Context<'_>) {
        let slots = &*slots;
        stop_per_child(&self.chunks, &mut self.window, cx, |i| slots.is_running(i));
    }

    #[inline]
    fn running(&self, unfinished: usize) -> usize {
        self.window.running(unfinished)
    }
}
