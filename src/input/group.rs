//! The storage of a [`Group`](crate::Group): children pushed at any time, in chunks that
//! never move (`raw/chunks.rs`: 64, 64, 128, 256, ... slots), with per-child wakers in
//! blocks of the same shape (`engine/chunked.rs`).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::Context;

use super::Input;
use crate::engine::chunked::Chunks;
use crate::engine::limit::{Limit, Window};
use crate::engine::per_child::{stop_per_child, Queue, FRESH_SHARE};
use crate::engine::readiness::{Readiness, Visit, BUDGET};
use crate::engine::slots::{CutOff, ResultSlots, Slots, UniformSlots};
use crate::raw::chunks::Chunked;
use crate::raw::inbox::Inbox;
use crate::raw::slot::{Slot, Step};

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
            slots: Chunked::new(),
            pushed: 0,
            started: 0,
            next_new: 0,
            restart: Fifo::default(),
            free: Vec::new(),
            inputs: Vec::new(),
            stopped: false,
            late: VecDeque::new(),
            order: Vec::new(),
            inbox: None,
        }
    }
}

/// A group's children, each in a slot of its own from its push on: slots that never move,
/// in chunks; a slot whose output was handed out takes the next child pushed.
///
/// Children start (are first polled) in push order: those in new slots in slot order,
/// those in reused slots in the order of [`restart`](Self::restart); whichever holds the
/// next push index goes next. Slots are the engine's numbering, not push indices: until a
/// slot is reused, slot `i` holds child `i`; from then on, [`Slots::input_index`] maps them.
pub struct GroupSlots<F: Future> {
    /// The slots in use or that were (`0..slots.len()`), in chunks that never move.
    slots: Chunked<Slot<F>>,
    /// How many children were pushed (taken in, for a handle's).
    pushed: usize,
    /// How many children have started: children `started..pushed` wait for their first
    /// poll.
    started: usize,
    /// The new slots from here on hold children not started yet.
    next_new: usize,
    /// The reused slots that hold children not started yet, in push order.
    restart: Fifo,
    /// Slots whose output was handed out, free for the next child pushed: the most
    /// recently freed last (its memory is the warmest).
    free: Vec<usize>,
    /// The push index of the child in each slot: empty until a slot is first reused (until
    /// then, slot `i` holds child `i`).
    inputs: Vec<usize>,
    /// Whether the deadline has fired (or a graceful stop began).
    stopped: bool,
    /// Once stopped, the slots of the children pushed since, still to be cut off
    /// (unpolled), in push order.
    late: VecDeque<usize>,
    /// Once stopped, if slots were reused: the slots in the push order of their children
    /// (the order the cut-off children are handed out in), then the slots made since.
    order: Vec<usize>,
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
            .field("pushed", &self.pushed)
            .field("started", &self.started)
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl<F: Future> GroupSlots<F> {
    /// Adds a child; returns its index (its place in push order). Takes in what handles
    /// pushed before it, too.
    #[inline]
    pub(crate) fn push(&mut self, future: F) -> usize {
        if self.inbox.is_none() {
            return self.store(future);
        }
        self.push_after_handles(future)
    }

    /// [`push`](Self::push) once handles exist: through the inbox, after what they pushed.
    /// (Out of line, so that a push with no handles is a few instructions.)
    #[inline(never)]
    fn push_after_handles(&mut self, future: F) -> usize {
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
        let pushed = self.pushed;
        self.inbox
            .get_or_insert_with(|| Arc::new(Inbox::new(pushed)))
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

    /// Gives the list of free slots room for every slot there is (it never holds more):
    /// so it grows at most once per chunk of slots, not by doubling from 4 (a group of
    /// 1,024 read to the end reallocated it 8 times).
    #[cold]
    fn make_room_to_free(&mut self) {
        let slots = self.slots.len();
        self.free.reserve_exact(slots - self.free.len());
    }

    /// Puts a child in a free slot, or a new one; returns its index.
    #[inline(always)]
    fn store(&mut self, future: F) -> usize {
        let index = self.pushed;
        let slot = if self.stopped {
            self.store_late(index)
        } else {
            match self.free.pop() {
                Some(slot) => {
                    if self.inputs.is_empty() {
                        self.first_reuse();
                    }
                    self.inputs[slot] = index;
                    self.restart.push(slot);
                    slot
                }
                None => self.new_slot(index),
            }
        };
        self.slot_pinned(slot).set(Slot::new(future));
        self.pushed += 1;
        index
    }

    /// The slot for child `index`, pushed once stopped: it is only to be cut off, so it
    /// joins `late`. (A slot freed since the stop was handed out already, so the cut-off
    /// children still to come, in `order`, are elsewhere; a free slot from before the stop
    /// holds nothing, and the cut-off skips it, or the child now in it, which has no output
    /// yet.)
    #[cold]
    fn store_late(&mut self, index: usize) -> usize {
        let slot = match self.free.pop() {
            Some(slot) => {
                if self.inputs.is_empty() {
                    self.first_reuse();
                }
                self.inputs[slot] = index;
                slot
            }
            None => self.new_slot(index),
        };
        self.late.push_back(slot);
        slot
    }

    /// The first reuse of a slot: until now, slot `i` held child `i`.
    #[cold]
    fn first_reuse(&mut self) {
        self.inputs = (0..self.slots.len()).collect();
        if self.stopped {
            self.order = (0..self.slots.len()).collect();
        }
    }

    /// Adds a slot (in a new chunk, of empty slots, if the last is full) for child `index`.
    #[inline]
    fn new_slot(&mut self, index: usize) -> usize {
        let slot = self.slots.grow(|| Slot::Taken);
        if !self.inputs.is_empty() {
            self.inputs.push(index);
            if self.stopped {
                self.order.push(slot);
            }
        }
        slot
    }

    /// The slot of the next child to start (its first poll is to follow at once), if one
    /// waits.
    fn start_next(&mut self) -> Option<usize> {
        if self.started == self.pushed {
            return None;
        }
        let slot = match self.restart.front() {
            Some(slot) if self.inputs[slot] == self.started => {
                self.restart.pop_front();
                slot
            }
            _ => {
                self.next_new += 1;
                self.next_new - 1
            }
        };
        self.started += 1;
        Some(slot)
    }

    /// Whether children wait to start.
    fn has_waiting(&self) -> bool {
        self.started < self.pushed
    }

    /// Whether the child in `slot` waits for its first poll: it is not running yet, and
    /// a wake of its slot is a stale one, of the child that was there before.
    fn waits(&self, slot: usize) -> bool {
        self.input_index(slot) >= self.started
    }

    /// The group is done (completed, failed, or gone): its handles' pushes are refused
    /// from now on, and what waited in the inbox is dropped unrun.
    fn close(&mut self) {
        if let Some(inbox) = self.inbox.take() {
            drop(inbox.close());
        }
    }

    #[inline]
    fn slot(&self, index: usize) -> &Slot<F> {
        self.slots.get(index)
    }

    #[inline]
    fn slot_pinned(&mut self, index: usize) -> Pin<&mut Slot<F>> {
        self.slots.get_pinned(index)
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
        self.slots.len()
    }

    #[inline]
    fn children(&self) -> usize {
        self.pushed
    }

    #[inline]
    fn in_input_order(&self, place: usize) -> usize {
        if self.inputs.is_empty() {
            place
        } else {
            self.order[place]
        }
    }

    #[inline]
    fn input_index(&self, slot: usize) -> usize {
        if self.inputs.is_empty() {
            slot
        } else {
            self.inputs[slot]
        }
    }

    #[inline]
    fn poll_step(self: Pin<&mut Self>, index: usize, cx: &mut Context<'_>) -> Step {
        self.get_mut().slot_pinned(index).poll_step(cx)
    }

    #[inline]
    fn take_in_pushed(self: Pin<&mut Self>, cx: &mut Context<'_>) {
        let this = self.get_mut();
        if this.stopped {
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
        // Every child pushed so far is cut off by the engine now, in push order; later
        // ones, one by one (`take_in_to_cut_off`).
        let this = self.get_mut();
        this.stopped = true;
        if !this.inputs.is_empty() {
            let inputs = &this.inputs;
            this.order = (0..this.slots.len()).collect();
            this.order.sort_unstable_by_key(|&slot| inputs[slot]);
        }
    }

    fn take_in_to_cut_off(self: Pin<&mut Self>, cx: &mut Context<'_>, _: bool) -> Option<usize> {
        let this = self.get_mut();
        if !this.stopped {
            return None;
        }
        if this.late.is_empty() && !Pin::new(&mut *this).ends_intake() {
            // Pushed through a handle after the deadline: each is cut off too.
            let pushed = this.inbox.as_ref().map(|inbox| inbox.take(cx.waker()));
            this.store_all(pushed.unwrap_or_default());
        }
        this.late.pop_front()
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
        // Awaited whole, no output was handed out: no slot was reused, slot `i` holds
        // child `i`.
        debug_assert!(this.inputs.is_empty());
        (0..this.slots.len())
            .map(|index| this.slot_pinned(index).take_output())
            .collect()
    }

    fn clear(self: Pin<&mut Self>) {
        let this = self.get_mut();
        this.close();
        // Every slot, even if one's drop panics (the rest go while it unwinds).
        crate::raw::for_each_to_the_end(0..this.slots.len(), |index| {
            this.slot_pinned(index).clear()
        });
    }
}

impl<F: Future> UniformSlots for GroupSlots<F> {
    type Output = F::Output;

    /// Takes the output handed out (a stream item): the slot may take the next child.
    #[inline]
    fn take_one(self: Pin<&mut Self>, index: usize) -> F::Output {
        let this = self.get_mut();
        let output = this.slot_pinned(index).take_output();
        if this.free.len() == this.free.capacity() {
            this.make_room_to_free();
        }
        this.free.push(index);
        output
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

/// The slots of reused children waiting to start, first in first out: a `Vec` read from
/// `head` on. It is emptied when read to the end (a refill's queue, of a child or two,
/// is), and what was read is dropped once it is more than half of it and at least 64, so
/// that a queue that never empties holds at most twice what waits, or what waits and 63
/// more. (Fewer instructions than a `VecDeque`'s wrap-around, on the path that starts
/// every reused child.)
#[derive(Debug, Default)]
struct Fifo {
    items: Vec<usize>,
    head: usize,
}

impl Fifo {
    #[inline]
    fn push(&mut self, slot: usize) {
        self.items.push(slot);
    }

    #[inline]
    fn front(&self) -> Option<usize> {
        self.items.get(self.head).copied()
    }

    /// Drops the front (there is one).
    #[inline]
    fn pop_front(&mut self) {
        debug_assert!(self.head < self.items.len());
        self.head += 1;
        if self.head == self.items.len() {
            self.items.clear();
            self.head = 0;
        } else if self.head > self.items.len() / 2 && self.head >= 64 {
            self.compact();
        }
    }

    #[cold]
    fn compact(&mut self) {
        self.items.drain(..self.head);
        self.head = 0;
    }
}

/// Polls the child in `slot` with its own waker, counting it in `polled` and `active`;
/// returns whether the pass must end. (A function of its own, always inlined: the pass
/// calls it from two loops.)
#[inline(always)]
fn poll_one<F: Future>(
    chunks: &Chunks,
    slots: Pin<&mut GroupSlots<F>>,
    slot: usize,
    visit: &mut impl FnMut(Pin<&mut GroupSlots<F>>, usize, &mut Context<'_>) -> Visit,
    polled: &mut usize,
    active: &mut usize,
) -> bool {
    let waker = chunks.waker(slot);
    match visit(slots, slot, &mut Context::from_waker(&waker)) {
        Visit::Skipped => false,
        Visit::Pending => {
            *polled += 1;
            false
        }
        Visit::Finished => {
            *polled += 1;
            *active -= 1;
            false
        }
        Visit::Stop => {
            *active -= 1;
            true
        }
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
    /// The children woken since the last pass, then the children waiting for their first
    /// poll, in push order (while the limit, if any, has room), within the budget. While
    /// children wait to start, the woken take at most `BUDGET - FRESH_SHARE` of the budget
    /// first, so that children that keep waking themselves cannot keep new ones from
    /// starting; then the woken take what is left.
    #[inline]
    fn pass<const YIELDS: bool>(
        &mut self,
        mut slots: Pin<&mut GroupSlots<F>>,
        len: usize,
        cx: &mut Context<'_>,
        mut visit: impl FnMut(Pin<&mut GroupSlots<F>>, usize, &mut Context<'_>) -> Visit,
    ) {
        let chunks = &mut self.chunks;
        chunks.grow_to(len);
        // Register before reading the ready sets: a wake after that point wakes us.
        chunks.register(cx.waker());
        chunks.collect_woken();
        let limit = self.window.limit();
        let mut active = self.window.active();
        let mut polled = 0;
        // While children wait to start, the woken get `BUDGET - FRESH_SHARE` first; then
        // the waiting start; then the woken get what is left, and waiting ones start again
        // in the room that made.
        let mut share = if slots.has_waiting() && active < limit {
            BUDGET - FRESH_SHARE
        } else {
            BUDGET
        };
        let ended = 'pass: loop {
            // Whether the woken ran out before their share: the list is read once per
            // pass, so a second round would find none.
            let mut woken_out = false;
            while polled < share {
                let Some(slot) = chunks.next_woken() else {
                    woken_out = true;
                    break;
                };
                // (A stale wake, of the child a reused slot held before.)
                if slots.waits(slot) {
                    continue;
                }
                if poll_one(
                    chunks,
                    slots.as_mut(),
                    slot,
                    &mut visit,
                    &mut polled,
                    &mut active,
                ) {
                    break 'pass true;
                }
            }
            while polled < BUDGET && active < limit {
                let Some(slot) = slots.as_mut().get_mut().start_next() else {
                    break;
                };
                active += 1;
                if poll_one(
                    chunks,
                    slots.as_mut(),
                    slot,
                    &mut visit,
                    &mut polled,
                    &mut active,
                ) {
                    break 'pass true;
                }
            }
            if share == BUDGET || woken_out {
                break false;
            }
            share = BUDGET;
        };
        self.window.set_active(active);
        let left = || chunks.has_left(false) || (active < limit && slots.has_waiting());
        if !ended && polled == BUDGET && left() {
            // Children woken, or waiting to start, are left: come back for them.
            cx.waker().wake_by_ref();
        }
    }

    fn stop(&mut self, slots: Pin<&mut GroupSlots<F>>, cx: &mut Context<'_>) {
        let slots = &*slots;
        stop_per_child(&self.chunks, &mut self.window, cx, |i| {
            slots.is_running(i) && !slots.waits(i)
        });
    }

    #[inline]
    fn running(&self, unfinished: usize) -> usize {
        self.window.running(unfinished)
    }
}
