//! Lazy inputs (feature `alloc`): [`gather_iter`](crate::gather_iter) and
//! [`gather_stream`](crate::gather_stream) take their children in only when one may start.
//!
//! Nothing is taken in before the first poll. Without a limit, an iterator's children are
//! all taken in at the first poll, into slots that then stay put, and run as a
//! `SmallVec`'s would (swept while few, with per-child wakers when many). Under
//! `limit(n)` (and always for a stream, whose items come when they come), the gather
//! keeps a window of at most `n` slots: a child is taken in when a slot is free, runs in
//! it, and once it has finished (and the mode has heard of it) its output moves to the
//! ordered outputs and the slot takes the next child. So at most `n` children exist at
//! once, whatever the length of the input.
//!
//! Slot numbers are not input indices here: [`Slots::input_index`] maps them.

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::{Ordering, Reverse};
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::Stream;
use smallvec::SmallVec;

use super::Input;
use crate::engine::limit::Limit;
use crate::engine::per_child::{Adaptive, Tentative, Wakers, FRESH_SHARE, SWEEP_UP_TO};
use crate::engine::readiness::{Readiness, Visit, BUDGET};
use crate::engine::slots::{CompoundErrorOf, CutOff, ResultSlots, Slots, UniformSlots};
use crate::engine::sweep::Sweep;
use crate::raw::block::Block;
use crate::raw::pin as pinned;
use crate::raw::slot::{Slot, Step};
use crate::results::compound::CompoundError;

/// How many children a lazy input keeps inline before it allocates its window.
const INLINE: usize = 4;

/// Where a lazy input's children come from: an iterator, or a stream.
///
/// Plumbing, not API: it shows in the bounds of public items, and only this crate
/// implements it (it is not exported, so users never name it).
pub trait Intake: crate::sealed::Input {
    /// The children's type.
    type Future: Future;
    /// Whether every child can be taken in at the first poll (an iterator's can: it
    /// never waits).
    const EAGER: bool;

    /// The next child, `None` once the source has ended. Not called again after `None`.
    fn next_child(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Future>>;

    /// The source's own guess at how many children are left (`size_hint`).
    fn size_hint(&self) -> (usize, Option<usize>);
}

pin_project_lite::pin_project! {
    /// The input of [`gather_iter`](crate::gather_iter): an iterator of futures, taken
    /// in only when a child may start.
    pub struct FromIter<I> {
        iter: I,
    }
}

pin_project_lite::pin_project! {
    /// The input of [`gather_stream`](crate::gather_stream): a stream of futures, polled
    /// only when a child may start.
    pub struct FromStream<S> {
        #[pin]
        stream: S,
    }
}

impl<I> FromIter<I> {
    pub(crate) fn new(iter: I) -> Self {
        FromIter { iter }
    }
}

impl<S> FromStream<S> {
    pub(crate) fn new(stream: S) -> Self {
        FromStream { stream }
    }
}

impl<I> fmt::Debug for FromIter<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FromIter")
    }
}

impl<S> fmt::Debug for FromStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FromStream")
    }
}

impl<I> crate::sealed::Input for FromIter<I> {}
impl<S> crate::sealed::Input for FromStream<S> {}

impl<I> Intake for FromIter<I>
where
    I: Iterator,
    I::Item: Future,
{
    type Future = I::Item;
    const EAGER: bool = true;

    fn next_child(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
        Poll::Ready(self.project().iter.next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}

impl<S> Intake for FromStream<S>
where
    S: Stream,
    S::Item: Future,
{
    type Future = S::Item;
    const EAGER: bool = false;

    fn next_child(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.project().stream.poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.stream.size_hint()
    }
}

impl<I> Input for FromIter<I>
where
    I: Iterator,
    I::Item: Future,
{
    type Slots = LazySlots<Self>;

    fn into_slots(self) -> LazySlots<Self> {
        LazySlots::new(self)
    }
}

impl<S> Input for FromStream<S>
where
    S: Stream,
    S::Item: Future,
{
    type Slots = LazySlots<Self>;

    fn into_slots(self) -> LazySlots<Self> {
        LazySlots::new(self)
    }
}

type OutputOf<In> = <<In as Intake>::Future as Future>::Output;

pin_project_lite::pin_project! {
    /// The slots of a lazy input: a window of slots (all the children, for an iterator
    /// without a limit), each reused once its child has finished, and the outputs of the
    /// children that have left the window, in input order.
    pub struct LazySlots<In>
    where
        In: Intake,
    {
        #[pin]
        intake: In,
        // Empty until the first poll; then made once, at its final size, and never grown,
        // shrunk or reordered (only its elements are replaced, in place).
        #[pin]
        window: SmallVec<[Slot<In::Future>; INLINE]>,
        // The input index of the child in each slot.
        inputs: SmallVec<[usize; INLINE]>,
        // How many children were taken in.
        taken_in: usize,
        // Whether the intake has ended (for a stream under a deadline: had no item ready
        // once the deadline had fired).
        exhausted: bool,
        // Whether the deadline has fired: children are then taken in only to be cut off.
        stopped: bool,
        // After the deadline, the slots in the input order of their children.
        order: Vec<usize>,
        // Whether a slot was ever reused: until then slot numbers are input indices.
        reused: bool,
        outputs: Ordered<OutputOf<In>>,
    }
}

impl<In: Intake> fmt::Debug for LazySlots<In> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazySlots")
            .field("window", &self.window.len())
            .field("taken_in", &self.taken_in)
            .field("exhausted", &self.exhausted)
            .finish()
    }
}

/// What [`LazySlots::take_in`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intook {
    /// A child is in the slot, never polled.
    Child,
    /// The source has nothing yet (a stream that is pending): it will wake the gather.
    Waiting,
    /// The source has ended, or was stopped.
    Ended,
}

impl<In: Intake> LazySlots<In> {
    fn new(intake: In) -> Self {
        LazySlots {
            intake,
            window: SmallVec::new(),
            inputs: SmallVec::new(),
            taken_in: 0,
            exhausted: false,
            stopped: false,
            order: Vec::new(),
            reused: false,
            outputs: Ordered::default(),
        }
    }

    /// Makes the window, at the first poll, and takes in the children that may start:
    /// every child of an iterator without a limit, or up to `limit` (those a stream has
    /// ready). Returns how many it took in: they are in slots `0..n`, never polled.
    ///
    /// The window is as large as what was taken in (an iterator that ended before the
    /// limit needs no more), but for a stream, whose items may come later: `limit` slots
    /// ([`STREAM_WINDOW`] without one). The source's `size_hint` plays no part: it may be
    /// wrong.
    fn open(self: Pin<&mut Self>, limit: Option<usize>, cx: &mut Context<'_>) -> usize {
        let mut this = self.project();
        debug_assert!(this.window.is_empty());
        let most = match limit {
            Some(limit) => limit,
            None if In::EAGER => usize::MAX,
            None => STREAM_WINDOW,
        };
        let mut window = SmallVec::new();
        while window.len() < most {
            match this.intake.as_mut().next_child(cx) {
                Poll::Ready(Some(child)) => window.push(Slot::new(child)),
                Poll::Ready(None) => {
                    *this.exhausted = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        let taken_in = window.len();
        let len = if In::EAGER { taken_in } else { most };
        // (A stream with a limit of `usize::MAX` fails here: it asks for that many slots.)
        window.extend((taken_in..len).map(|_| Slot::Taken));
        *this.taken_in = taken_in;
        this.inputs.extend(0..taken_in);
        this.inputs.resize(len, 0);
        // Nothing in the window was ever pinned: it may still be replaced whole.
        this.window.set(window);
        taken_in
    }

    /// Takes the next child in, into slot `slot` (free: its child has finished, and its
    /// output, if the mode left it there, goes to the ordered outputs first).
    fn take_in(mut self: Pin<&mut Self>, slot: usize, cx: &mut Context<'_>) -> Intook {
        if self.stopped {
            return Intook::Ended;
        }
        let child = match self.as_mut().next_child(cx) {
            Poll::Ready(Some(child)) => child,
            Poll::Ready(None) => return Intook::Ended,
            Poll::Pending => return Intook::Waiting,
        };
        self.as_mut().retire(slot);
        self.put(slot, child);
        Intook::Child
    }

    /// The intake's next child; `None` (for good) once it has ended.
    fn next_child(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<In::Future>> {
        let this = self.project();
        if *this.exhausted {
            return Poll::Ready(None);
        }
        let next = this.intake.next_child(cx);
        *this.exhausted = matches!(next, Poll::Ready(None));
        next
    }

    /// Puts `child`, the next of the input, into slot `slot`, which holds nothing.
    fn put(self: Pin<&mut Self>, slot: usize, child: In::Future) {
        let this = self.project();
        *this.reused |= *this.taken_in > slot;
        this.inputs[slot] = *this.taken_in;
        *this.taken_in += 1;
        pinned::index(pinned::small_vec(this.window), slot).set(Slot::new(child));
    }

    /// Moves the output of the child in slot `slot`, if it is still there, to the
    /// ordered outputs: its slot may take the next child.
    fn retire(self: Pin<&mut Self>, slot: usize) {
        let this = self.project();
        let mut place = pinned::index(pinned::small_vec(this.window), slot);
        if place.is_finished() {
            let output = place.as_mut().take_output();
            this.outputs.put(this.inputs[slot], output);
        }
    }
}

impl<In: Intake> Slots for LazySlots<In> {
    type Outputs = SmallVec<[OutputOf<In>; INLINE]>;
    type Readiness = Lazy;
    const GROWS: bool = true;

    fn readiness(&self) -> Lazy {
        Lazy::Fresh {
            limit: None,
            per_child: false,
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.window.len()
    }

    #[inline]
    fn children(&self) -> usize {
        self.taken_in
    }

    #[inline]
    fn exhausted(&self) -> bool {
        self.exhausted
    }

    fn stop_intake(self: Pin<&mut Self>) {
        let this = self.project();
        *this.stopped = true;
        let inputs = &*this.inputs;
        this.order.extend(0..inputs.len());
        this.order.sort_unstable_by_key(|&slot| inputs[slot]);
    }

    fn take_in_to_cut_off(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        heard: bool,
    ) -> Option<usize> {
        debug_assert!(self.stopped);
        let empty = self
            .window
            .iter()
            .position(|slot| matches!(slot, Slot::Taken));
        if empty.is_none() && !heard {
            return None;
        }
        let child = match self.as_mut().next_child(cx) {
            Poll::Ready(Some(child)) => child,
            Poll::Ready(None) => return None,
            // A stream with no item ready after the deadline has ended, for this gather.
            Poll::Pending => {
                *self.project().exhausted = true;
                return None;
            }
        };
        // Nothing runs any more: if no slot is empty, every one holds an output the driver
        // has heard of, which may move to the ordered outputs.
        let slot = empty.unwrap_or(0);
        self.as_mut().retire(slot);
        self.put(slot, child);
        Some(slot)
    }

    #[inline]
    fn in_input_order(&self, place: usize) -> usize {
        match self.order.get(place) {
            Some(&slot) => slot,
            None => place,
        }
    }

    #[inline]
    fn input_index(&self, slot: usize) -> usize {
        self.inputs[slot]
    }

    #[inline]
    fn poll_step(self: Pin<&mut Self>, slot: usize, cx: &mut Context<'_>) -> Step {
        pinned::index(pinned::small_vec(self.project().window), slot).poll_step(cx)
    }

    fn has_output(&self, slot: usize) -> bool {
        self.window[slot].is_finished()
    }

    fn is_running(&self, slot: usize) -> bool {
        self.window[slot].is_running()
    }

    fn discard(self: Pin<&mut Self>, slot: usize) {
        pinned::index(pinned::small_vec(self.project().window), slot).clear();
    }

    fn take_outputs(mut self: Pin<&mut Self>) -> Self::Outputs {
        if !self.reused && self.outputs.is_empty() {
            // Every output is still in its slot, and slots are input indices.
            let this = self.project();
            let mut window = pinned::small_vec(this.window);
            return (0..*this.taken_in)
                .map(|slot| pinned::index(window.as_mut(), slot).take_output())
                .collect();
        }
        for slot in 0..self.window.len() {
            self.as_mut().retire(slot);
        }
        let this = self.project();
        SmallVec::from_vec(this.outputs.take(*this.taken_in))
    }

    fn clear(self: Pin<&mut Self>) {
        let this = self.project();
        let mut window = pinned::small_vec(this.window);
        // Every slot, even if one's drop panics (the rest go while it unwinds).
        let len = window.len();
        crate::raw::for_each_to_the_end(0..len, |slot| {
            pinned::index(window.as_mut(), slot).clear();
        });
        this.outputs.clear();
    }
}

impl<In: Intake> UniformSlots for LazySlots<In> {
    type Output = OutputOf<In>;

    fn take_one(self: Pin<&mut Self>, slot: usize) -> OutputOf<In> {
        pinned::index(pinned::small_vec(self.project().window), slot).take_output()
    }
}

impl<In, T, E, X> CutOff<X> for LazySlots<In>
where
    In: Intake,
    In::Future: Future<Output = Result<T, E>>,
    E: From<X>,
{
    fn cut_off(self: Pin<&mut Self>, slot: usize, cause: impl FnOnce() -> X) -> bool {
        pinned::index(pinned::small_vec(self.project().window), slot).cut_off(|| E::from(cause()))
    }

    fn fail(self: Pin<&mut Self>, slot: usize, cause: X) {
        pinned::index(pinned::small_vec(self.project().window), slot).fail(E::from(cause));
    }
}

impl<In, T, E> ResultSlots for LazySlots<In>
where
    In: Intake,
    In::Future: Future<Output = Result<T, E>>,
{
    fn is_err(&self, slot: usize) -> bool {
        self.window[slot].is_err()
    }

    fn take_err_if(self: Pin<&mut Self>, slot: usize, pred: impl FnOnce(&E) -> bool) -> Option<E> {
        pinned::index(pinned::small_vec(self.project().window), slot).take_err_if(pred)
    }

    fn take_errors_preferring(
        mut self: Pin<&mut Self>,
        _: usize,
        mut prefer: impl FnMut(&E) -> bool,
    ) -> Option<CompoundErrorOf<Self>> {
        // Nothing moves unless there is an error: the successes are the `Ok`'s.
        let in_window = (0..self.window.len()).any(|slot| self.window[slot].is_err());
        if !in_window && !self.outputs.has_error() {
            return None;
        }
        // Every error, the others dropped if any is preferred (fail-fast drops them next).
        let mut errors = self.as_mut().every_error();
        if errors.iter().any(|(_, error)| prefer(error)) {
            errors.retain(|(_, error)| prefer(error));
        }
        CompoundError::from_entries(self.taken_in, errors.into_iter())
    }

    fn take_errors(mut self: Pin<&mut Self>, _: usize) -> Option<CompoundErrorOf<Self>> {
        let errors = self.as_mut().every_error();
        CompoundError::from_entries(self.taken_in, errors.into_iter())
    }
}

impl<In, T, E> LazySlots<In>
where
    In: Intake,
    In::Future: Future<Output = Result<T, E>>,
{
    /// Moves every error out, in input order.
    fn every_error(mut self: Pin<&mut Self>) -> Vec<(usize, E)> {
        // The errors still in slots, and those that left the window (after a deadline,
        // children cut off while the input was drained); slots are not in input order once
        // reused: sort the errors by input index.
        let mut errors = self.as_mut().project().outputs.take_errors();
        for slot in 0..self.window.len() {
            let index = self.input_index(slot);
            if let Some(error) = self.as_mut().take_err(slot) {
                errors.push((index, error));
            }
        }
        errors.sort_unstable_by_key(|&(index, _)| index);
        errors
    }
}

/// Outputs that leave the window, put back in input order: those that come in order
/// append to a `Vec` (so outputs that finish about in order cost one `Vec` of outputs, as
/// a collect would); one that comes early waits in a heap until the outputs before it
/// have come.
struct Ordered<O> {
    in_order: Vec<O>,
    early: BinaryHeap<Early<O>>,
}

impl<O> Default for Ordered<O> {
    fn default() -> Self {
        Ordered {
            in_order: Vec::new(),
            early: BinaryHeap::new(),
        }
    }
}

/// An output that came before some of the outputs before it; ordered by index alone,
/// lowest first out of the (max-)heap.
struct Early<O>(Reverse<usize>, O);

impl<O> PartialEq for Early<O> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<O> Eq for Early<O> {}
impl<O> PartialOrd for Early<O> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<O> Ord for Early<O> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

impl<O> Ordered<O> {
    fn is_empty(&self) -> bool {
        self.in_order.is_empty() && self.early.is_empty()
    }

    fn put(&mut self, index: usize, output: O) {
        if index != self.in_order.len() {
            self.early.push(Early(Reverse(index), output));
            return;
        }
        self.in_order.push(output);
        while self
            .early
            .peek()
            .is_some_and(|early| early.0 .0 == self.in_order.len())
        {
            let Some(Early(_, output)) = self.early.pop() else {
                break;
            };
            self.in_order.push(output);
        }
    }

    /// Every output, `len` of them, in input order.
    fn take(&mut self, len: usize) -> Vec<O> {
        assert!(
            self.in_order.len() == len && self.early.is_empty(),
            "gather: outputs taken before every child finished"
        );
        core::mem::take(&mut self.in_order)
    }

    fn clear(&mut self) {
        // Every output, even if one's drop panics (the rest go while it unwinds).
        let in_order = core::mem::take(&mut self.in_order);
        let early = core::mem::take(&mut self.early);
        drop(in_order);
        drop(early);
    }
}

impl<T, E> Ordered<Result<T, E>> {
    /// Whether any output is an error.
    fn has_error(&self) -> bool {
        self.in_order.iter().any(Result::is_err) || self.early.iter().any(|early| early.1.is_err())
    }

    /// Moves every error out, with its index; the successes are dropped (fail-fast is
    /// about to drop everything else).
    fn take_errors(&mut self) -> Vec<(usize, E)> {
        let in_order = core::mem::take(&mut self.in_order).into_iter().enumerate();
        let early = core::mem::take(&mut self.early)
            .into_vec()
            .into_iter()
            .map(|Early(Reverse(index), output)| (index, output));
        in_order
            .chain(early)
            .filter_map(|(index, output)| Some((index, output.err()?)))
            .collect()
    }
}

/// Readiness of a lazy input: until the first poll, what the builder asked for; then a
/// `SmallVec`'s readiness over every child (an iterator without a limit), or the window
/// of per-child wakers over reused slots.
#[derive(Debug)]
pub enum Lazy {
    /// Not polled yet.
    Fresh {
        /// `limit(n)`, if asked for.
        limit: Option<usize>,
        /// `per_child_wakers()`, if asked for.
        per_child: bool,
    },
    /// Every child taken in at the first poll.
    All(Adaptive),
    /// A window of reused slots.
    Window(Window),
}

impl Limit for Lazy {
    fn set_limit(&mut self, n: usize) {
        if let Lazy::Fresh { limit, .. } = self {
            *limit = Some(n);
        }
    }

    fn use_per_child_wakers(&mut self) {
        if let Lazy::Fresh { per_child, .. } = self {
            *per_child = true;
        }
    }
}

impl<In: Intake> Readiness<LazySlots<In>> for Lazy {
    #[inline]
    fn pass<const YIELDS: bool>(
        &mut self,
        mut slots: Pin<&mut LazySlots<In>>,
        len: usize,
        cx: &mut Context<'_>,
        visit: impl FnMut(Pin<&mut LazySlots<In>>, usize, &mut Context<'_>) -> Visit,
    ) {
        if let Lazy::Fresh { limit, per_child } = *self {
            // A stream's children come when they come: it always runs in a window.
            let windowed = limit.is_some() || !In::EAGER;
            let started = slots.as_mut().open(limit, cx);
            let len = slots.len();
            *self = match () {
                () if windowed => Lazy::Window(Window::new(len, started)),
                () if per_child || len > SWEEP_UP_TO => {
                    Lazy::All(Adaptive::Wakers(Wakers::default()))
                }
                () if len > INLINE => Lazy::All(Adaptive::Tentative(Tentative::default())),
                () => Lazy::All(Adaptive::Sweep(Sweep::default())),
            };
            return self.pass::<YIELDS>(slots, len, cx, visit);
        }
        match self {
            Lazy::Fresh { .. } => unreachable!("opened above"),
            Lazy::All(all) => all.pass::<YIELDS>(slots, len, cx, visit),
            Lazy::Window(window) => window.pass(slots, cx, visit),
        }
    }

    #[inline]
    fn after_pass(&mut self, running: usize, finished: usize) {
        if let Lazy::All(all) = self {
            Readiness::<LazySlots<In>>::after_pass(all, running, finished);
        }
    }

    fn stop(&mut self, slots: Pin<&mut LazySlots<In>>, cx: &mut Context<'_>) {
        match self {
            Lazy::All(all) => all.stop(slots, cx),
            // Every slot of the window with a child running (the intake has stopped, so no
            // child waits for one), but those never polled: they never start.
            Lazy::Window(window) => {
                let never_polled = window.stop();
                for slot in (0..slots.len())
                    .filter(|slot| !never_polled.contains(slot) && slots.is_running(*slot))
                {
                    window.wakers.waker(slot).wake_by_ref();
                }
                cx.waker().wake_by_ref();
            }
            Lazy::Fresh { .. } => cx.waker().wake_by_ref(),
        }
    }

    #[inline]
    fn running(&self, unfinished: usize) -> usize {
        match self {
            Lazy::All(all) => Readiness::<LazySlots<In>>::running(all, unfinished),
            Lazy::Window(window) => window.running(unfinished),
            Lazy::Fresh { .. } => unfinished,
        }
    }
}

/// [`Window::polled`] once a graceful stop began.
const STOPPED: usize = usize::MAX;

/// How many children a stream gather without a limit runs at once: its window is made at
/// the first poll and never grows (see [`gather_stream`](crate::gather_stream)).
pub(crate) const STREAM_WINDOW: usize = 64;

/// Per-child wakers over a window of reused slots: a pass polls the children woken
/// since the last one, then takes new children into the free slots (each polled at
/// once), within the budget.
#[derive(Debug)]
pub struct Window {
    wakers: Block<()>,
    /// Slots `polled..started` hold children taken in at the first poll, never polled.
    /// Once a graceful stop began, `polled` is [`STOPPED`] and `started` counts the
    /// children never polled then: they never start (they are cut off at its end). (No
    /// field of its own: a gather without the layer is no larger for it.)
    polled: usize,
    started: usize,
    /// The slots whose child has finished (or that never had one), the most recently
    /// freed last: the next child goes into the slot whose memory is warmest.
    free: Vec<usize>,
}

impl Window {
    /// A window of `len` slots, the first `started` of which hold children never polled.
    fn new(len: usize, started: usize) -> Self {
        Window {
            wakers: Block::new(len, |_| ()),
            polled: 0,
            started,
            free: (started..len).rev().collect(),
        }
    }

    /// Whether a graceful stop began.
    fn stopped(&self) -> bool {
        self.polled == STOPPED
    }

    /// A graceful stop begins: the slots never polled stay so; returns them.
    fn stop(&mut self) -> core::ops::Range<usize> {
        let never_polled = self.polled..self.started;
        self.started = never_polled.len();
        self.polled = STOPPED;
        never_polled
    }

    /// How many of the `unfinished` children run: after a stop, not those never polled.
    fn running(&self, unfinished: usize) -> usize {
        if self.stopped() {
            unfinished - self.started
        } else {
            unfinished
        }
    }

    fn pass<In: Intake>(
        &mut self,
        mut slots: Pin<&mut LazySlots<In>>,
        cx: &mut Context<'_>,
        mut visit: impl FnMut(Pin<&mut LazySlots<In>>, usize, &mut Context<'_>) -> Visit,
    ) {
        // Register before reading the ready set: a wake after that point wakes us.
        self.wakers.register(cx.waker());
        self.wakers.collect_woken();
        let mut polled = 0;
        // The children woken before this pass (one woken during it waits for the next),
        // then the children taken in at the first poll, until each has been polled once:
        // the woken leave those a share of the budget, so that children that keep waking
        // themselves cannot keep them from starting, and take what the others leave.
        for share in [BUDGET - FRESH_SHARE, BUDGET] {
            while polled < share {
                if share < BUDGET && (self.polled == self.started || self.stopped()) {
                    break; // no share to keep
                }
                let Some(slot) = self.wakers.next_woken() else {
                    break;
                };
                if self.poll(slots.as_mut(), slot, &mut visit, &mut polled) {
                    return;
                }
            }
            // (After a stop, `polled` is past every slot.)
            while polled < BUDGET && self.polled < self.started {
                let slot = self.polled;
                self.polled += 1;
                if self.poll(slots.as_mut(), slot, &mut visit, &mut polled) {
                    return;
                }
            }
        }
        // Then new children, while a slot is free. (The local ready list is empty by now:
        // no child taken in here is polled twice in this pass.)
        while polled < BUDGET {
            let Some(&slot) = self.free.last() else {
                break;
            };
            match slots.as_mut().take_in(slot, cx) {
                Intook::Child => {}
                Intook::Waiting | Intook::Ended => break,
            }
            self.free.pop();
            if self.poll(slots.as_mut(), slot, &mut visit, &mut polled) {
                return;
            }
        }
        if polled == BUDGET {
            // Children woken, or slots to fill, may be left: come back for them.
            cx.waker().wake_by_ref();
        }
    }

    /// Polls the child in `slot` with its own waker, counts it, and frees its slot if it
    /// finished. Returns whether the pass must end now.
    ///
    /// A child that finished and that the mode has heard of without stopping the pass
    /// (settle-all, fail-fast's successes) leaves its output to the ordered outputs at
    /// once, so that outputs reach them in the order children finish: in input order,
    /// for children that finish about in order. (After a stop, the mode takes the output,
    /// or the gather is complete.)
    #[inline(always)]
    fn poll<In: Intake>(
        &mut self,
        mut slots: Pin<&mut LazySlots<In>>,
        slot: usize,
        visit: &mut impl FnMut(Pin<&mut LazySlots<In>>, usize, &mut Context<'_>) -> Visit,
        polled: &mut usize,
    ) -> bool {
        let waker = self.wakers.waker(slot);
        match visit(slots.as_mut(), slot, &mut Context::from_waker(&waker)) {
            Visit::Skipped => false,
            Visit::Pending => {
                *polled += 1;
                false
            }
            Visit::Finished => {
                *polled += 1;
                slots.retire(slot);
                self.free.push(slot);
                false
            }
            Visit::Stop => {
                self.free.push(slot);
                true
            }
        }
    }
}
