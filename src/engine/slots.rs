//! Slot storage: where a gather keeps its children and their outputs.
//!
//! Every input shape (array, tuple, `Vec`, `SmallVec`; see `input/`) becomes one storage
//! type that the engine and the modes see only through [`Slots`]: poll child `i`, look at
//! or take what it left, take every output at the end. Arrays and `SmallVec`s are a pinned
//! slice of [`Slot`]s underneath and share one implementation through [`SlotSlice`];
//! tuples get theirs from a macro in `input/tuple.rs`; `Vec`s keep their children in the
//! heap block of their wakers (`raw/vec_slots.rs`) and write outputs in place.

use core::future::Future;
use core::pin::Pin;
use core::task::Context;

use super::readiness::{Readiness, Visit};
use crate::raw::for_each_to_the_end;
use crate::raw::pin as pinned;
use crate::raw::slot::{Slot, Step};
use crate::results::compound::CompoundError;
use crate::results::gathered::{unwrap_ok, Outcomes, SliceOutcomes};

/// The engine's view of a gather's children.
///
/// Plumbing, not API: it shows in the bounds of public items, and only this crate
/// implements it (it is not exported, so users never name it).
pub trait Slots {
    /// Every child's output, in input order: `[O; N]`, `(A, B, ..)`, `Vec<O>`, ...
    type Outputs;
    /// How the engine picks which children to poll (see `readiness.rs`).
    type Readiness: Readiness<Self>;

    /// The readiness for this storage, before the first poll.
    fn readiness(&self) -> Self::Readiness;

    /// Whether the storage may take children in after the first poll (a lazy input):
    /// only then does the engine ask [`children`](Self::children) and
    /// [`exhausted`](Self::exhausted) whether a pass that finished every child running
    /// has finished the gather.
    const GROWS: bool = false;

    /// How many slots the storage has: the engine's and the readiness's range of slot
    /// numbers. For every storage but a lazy input's, one per child.
    fn len(&self) -> usize;

    /// How many children the storage has had so far: every storage holds them all from
    /// the start, but a lazy input's, which takes them in as slots free up (its slots
    /// are reused, so this may be more than [`len`](Self::len)).
    #[inline]
    fn children(&self) -> usize {
        self.len()
    }

    /// Whether no more children will come: always, but for a lazy input whose source
    /// has not ended (nor been stopped, by a deadline).
    #[inline]
    fn exhausted(&self) -> bool {
        true
    }

    /// [`exhausted`](Self::exhausted), asked by the engine when the answer completes the
    /// gather: a storage whose children also come from elsewhere (a group's handles)
    /// stops taking them in, in the same step, if it says yes.
    #[inline]
    fn ends_intake(self: Pin<&mut Self>) -> bool {
        self.exhausted()
    }

    /// What a poll that unwinds leaves behind: the gather is poisoned, and a storage that
    /// takes children in from elsewhere stops (nothing pushed later would run).
    #[inline]
    fn poisoned(self: Pin<&mut Self>) {}

    /// Takes in the children pushed since the last pass (a growing set's, through its
    /// handles), before the engine counts them; `cx` is the gather's, for the pushes to
    /// come to wake. Called only for a storage that [grows](Self::GROWS).
    #[inline]
    fn take_in_pushed(self: Pin<&mut Self>, cx: &mut Context<'_>) {
        let _ = cx;
    }

    /// Takes no more children in to run: the deadline has fired. (Nothing to do but for
    /// a lazy input, whose children left are then [taken in to be cut
    /// off](Self::take_in_to_cut_off).)
    #[inline]
    fn stop_intake(self: Pin<&mut Self>) {}

    /// After the deadline: takes the next child the input still holds into a slot that
    /// holds nothing (or, if `heard`, one whose output the driver has heard of, which then
    /// moves out of the way), for the engine to cut it off; returns the slot, or `None`
    /// once the input has ended (or, a stream, has no item ready). Only a lazy input
    /// ([`GROWS`](Self::GROWS)) has any.
    #[inline]
    fn take_in_to_cut_off(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        heard: bool,
    ) -> Option<usize> {
        let _ = (cx, heard);
        None
    }

    /// The slot of the `place`-th child in input order, among those in slots now: the
    /// order in which the deadline's cut-off children are handed to the driver.
    #[inline]
    fn in_input_order(&self, place: usize) -> usize {
        place
    }

    /// The input index of the child in slot `slot`: the index the caller sees (in an
    /// as-completed item, a `TimedOut`, a `Panicked`) and its place in an ordered result.
    ///
    /// Slots are the storage's own numbering: the engine and the readiness work on
    /// them, and only this tells them apart from input indices. Every storage today keeps
    /// one slot per input, in input order, so the two are the same number; a storage
    /// that reuses slots (a window over lazy inputs) maps them here.
    #[inline]
    fn input_index(&self, slot: usize) -> usize {
        slot
    }

    /// Visits every slot once, in order, until `visit` says [`Stop`](Visit::Stop);
    /// returns the slot it stopped at. (A sweep within the budget: tuples unroll it.)
    #[inline]
    fn visit_all(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut visit: impl FnMut(Pin<&mut Self>, usize, &mut Context<'_>) -> Visit,
    ) -> Option<usize> {
        (0..self.len()).find(|&index| visit(self.as_mut(), index, cx) == Visit::Stop)
    }

    /// Polls child `index` once if it is still running.
    fn poll_step(self: Pin<&mut Self>, index: usize, cx: &mut Context<'_>) -> Step;

    /// Whether child `index` has finished and its output is still in its slot.
    fn has_output(&self, index: usize) -> bool;

    /// Whether slot `index` holds a child still running (or not started yet): whom a
    /// graceful stop wakes. (A storage that cannot tell says yes: a wake too many costs
    /// one skip.)
    #[inline]
    fn is_running(&self, index: usize) -> bool {
        let _ = index;
        true
    }

    /// Drops whatever child `index` holds after a step of it panicked: the child itself
    /// (its poll panicked), or the output it had just finished with (its drop panicked).
    /// The slot holds nothing afterwards, even if this drop panics too.
    fn discard(self: Pin<&mut Self>, index: usize);

    /// Moves every output out, in input order. Called once, after every child finished.
    fn take_outputs(self: Pin<&mut Self>) -> Self::Outputs;

    /// Drops every child still running and every output still stored.
    fn clear(self: Pin<&mut Self>);
}

/// Slots whose children all return `Result`s with one error type.
///
/// Plumbing, not API: it shows in the bounds of public items, and only this crate
/// implements it (it is not exported, so users never name it).
#[diagnostic::on_unimplemented(
    message = "every child of this gather must return a `Result` with one error type",
    label = "its children's outputs are not all `Result<_, E>` with the same `E`",
    note = "fail-fast and the error-aware results need `Result` outputs; a tuple's children may differ in success type, not in error type (map them to one, with `map_err`)"
)]
pub trait ResultSlots: Slots<Outputs: Outcomes> {
    /// Whether child `index` finished with an `Err`.
    fn is_err(&self, index: usize) -> bool;

    /// Moves child `index`'s `Err` out, if it finished with one for which `pred` holds.
    fn take_err_if(
        self: Pin<&mut Self>,
        index: usize,
        pred: impl FnOnce(&ErrorOf<Self>) -> bool,
    ) -> Option<ErrorOf<Self>>;

    /// Moves every output out, in input order, once every child finished with an `Ok`:
    /// the successes. (Panics if one is an `Err`.)
    #[inline]
    fn take_successes(self: Pin<&mut Self>) -> SuccessesOf<Self> {
        self.take_outputs().into_successes()
    }

    /// Moves child `index`'s `Err` out, if it finished with one.
    #[inline]
    fn take_err(self: Pin<&mut Self>, index: usize) -> Option<ErrorOf<Self>> {
        self.take_err_if(index, |_| true)
    }

    /// Moves every `Err` still in a slot out, into one group in input order (`failed`
    /// of them, as the caller counted), or `None` if there is none.
    #[inline]
    fn take_errors(mut self: Pin<&mut Self>, failed: usize) -> Option<CompoundErrorOf<Self>> {
        // Slots are input indices here; a storage that maps them overrides this.
        CompoundError::collect(self.children(), failed, |i| self.as_mut().take_err(i))
    }

    /// Moves the errors for which `prefer` holds out (about `failed` of them), or if none
    /// does, every error; `None` if there is none. (Under a graceful stop: the failures,
    /// without the children that stopped on request, unless nothing else failed.) The
    /// errors left behind stay in their slots.
    fn take_errors_preferring(
        mut self: Pin<&mut Self>,
        failed: usize,
        mut prefer: impl FnMut(&ErrorOf<Self>) -> bool,
    ) -> Option<CompoundErrorOf<Self>> {
        let children = self.children();
        CompoundError::collect(children, failed, |i| {
            self.as_mut().take_err_if(i, &mut prefer)
        })
        .or_else(|| self.take_errors(failed))
    }
}

/// The group of errors of the children of `S`.
pub(crate) type CompoundErrorOf<S> =
    CompoundError<ErrorOf<S>, <<S as Slots>::Outputs as Outcomes>::Store>;

/// Every success of the children of `S`.
pub(crate) type SuccessesOf<S> = <<S as Slots>::Outputs as Outcomes>::Successes;

/// The error type of the children of `S`.
pub(crate) type ErrorOf<S> = <<S as Slots>::Outputs as Outcomes>::Error;

/// Slots whose children all have one output type (arrays, `Vec`s, `SmallVec`s): the
/// shapes that can hand out outputs one at a time, as they finish.
///
/// Plumbing, not API: it shows in the bounds of public items, and only this crate
/// implements it (it is not exported, so users never name it).
#[diagnostic::on_unimplemented(
    message = "`as_completed` needs children with one output type",
    label = "a tuple's children have outputs of different types",
    note = "gather an array, a `Vec`, a `SmallVec` or an iterator (`gather_iter`) as completed; for a tuple, await the gather and read its `Gathered`"
)]
pub trait UniformSlots: Slots {
    /// Every child's output type.
    type Output;

    /// Moves child `index`'s output out. Called once, right after it finished.
    fn take_one(self: Pin<&mut Self>, index: usize) -> Self::Output;
}

/// Slots whose children can be cut off for cause `X` ([`TimedOut`], or a caught panic):
/// their outputs are `Result<_, E>` with `E: From<X>`.
///
/// [`TimedOut`]: crate::TimedOut
///
/// Plumbing, not API: it shows in the bounds of public items, and only this crate
/// implements it (it is not exported, so users never name it).
#[diagnostic::on_unimplemented(
    message = "the children's error type must convert from `{X}`",
    label = "the children's outputs are not `Result<_, E>` with `E: From<{X}>`",
    note = "`.deadline()` needs `E: From<gather::TimedOut>` and `.catch_panics()` needs `E: From<gather::Panicked>`: implement `From` for your error type (or add the bound, in generic code)"
)]
pub trait CutOff<X>: Slots {
    /// If child `index` is still running, drops it and stores `Err(E::from(cause()))` as
    /// its output; returns whether it did. If the drop panics, the panic goes on (the
    /// slot then holds nothing, or the error).
    fn cut_off(self: Pin<&mut Self>, index: usize, cause: impl FnOnce() -> X) -> bool;

    /// Stores `Err(E::from(cause))` for child `index`, whose slot holds nothing (it
    /// panicked and was [discarded](Slots::discard)).
    fn fail(self: Pin<&mut Self>, index: usize, cause: X);
}

impl<S: SlotSlice> UniformSlots for S {
    type Output = <S::Future as Future>::Output;

    fn take_one(self: Pin<&mut Self>, index: usize) -> Self::Output {
        pinned::index(self.slots_pinned(), index).take_output()
    }
}

impl<S, T, E, X> CutOff<X> for S
where
    S: SlotSlice,
    S::Future: Future<Output = Result<T, E>>,
    E: From<X>,
{
    fn cut_off(self: Pin<&mut Self>, index: usize, cause: impl FnOnce() -> X) -> bool {
        pinned::index(self.slots_pinned(), index).cut_off(|| E::from(cause()))
    }

    fn fail(self: Pin<&mut Self>, index: usize, cause: X) {
        pinned::index(self.slots_pinned(), index).fail(E::from(cause));
    }
}

/// Storage that is a slice of slots of one future type underneath.
///
/// Plumbing, not API: it shows in the bounds of public items, and only this crate
/// implements it (it is not exported, so users never name it).
pub trait SlotSlice {
    /// The children's future type.
    type Future: Future;
    /// See [`Slots::Outputs`].
    type Outputs;
    /// See [`Slots::Readiness`].
    type Readiness: Readiness<Self>;

    fn readiness(&self) -> Self::Readiness;

    fn slots(&self) -> &[Slot<Self::Future>];
    fn slots_pinned(self: Pin<&mut Self>) -> Pin<&mut [Slot<Self::Future>]>;
    /// Builds the output collection from the output of each index in turn.
    fn collect_outputs(
        len: usize,
        output: impl FnMut(usize) -> <Self::Future as Future>::Output,
    ) -> Self::Outputs;
}

impl<S: SlotSlice> Slots for S {
    type Outputs = S::Outputs;
    type Readiness = S::Readiness;

    fn readiness(&self) -> S::Readiness {
        SlotSlice::readiness(self)
    }

    #[inline]
    fn len(&self) -> usize {
        self.slots().len()
    }

    #[inline]
    fn poll_step(self: Pin<&mut Self>, index: usize, cx: &mut Context<'_>) -> Step {
        pinned::index(self.slots_pinned(), index).poll_step(cx)
    }

    fn has_output(&self, index: usize) -> bool {
        self.slots()[index].is_finished()
    }

    fn is_running(&self, index: usize) -> bool {
        self.slots()[index].is_running()
    }

    fn discard(self: Pin<&mut Self>, index: usize) {
        pinned::index(self.slots_pinned(), index).clear();
    }

    #[inline]
    fn take_outputs(mut self: Pin<&mut Self>) -> Self::Outputs {
        let len = self.len();
        check_all_finished(self.slots());
        S::collect_outputs(len, |i| {
            pinned::index(self.as_mut().slots_pinned(), i).take_output()
        })
    }

    fn clear(mut self: Pin<&mut Self>) {
        // Every slot, even if one's drop panics (the rest go while it unwinds).
        let len = self.len();
        for_each_to_the_end(0..len, |i| {
            pinned::index(self.as_mut().slots_pinned(), i).clear();
        });
    }
}

/// Before the outputs of a slice of slots are moved out: checks that every child finished
/// (each output's move checks its own slot too, so this only moves the check up front).
///
/// The check up front is for speed, not safety: the copies that follow then read each
/// output on its own. Checked one by one, the compiler merges the copies into wide loads
/// that straddle the state words the last pass has just written, a store-forwarding stall
/// each on out-of-order cores. A bare-metal target (no OS: a microcontroller) has no such
/// stall and counts its flash by the byte, so it leaves the loop out.
#[inline(always)]
fn check_all_finished<F: Future>(slots: &[Slot<F>]) {
    if cfg!(not(target_os = "none")) {
        assert!(
            slots.iter().all(Slot::is_finished),
            "gather: outputs taken before every child finished"
        );
    }
}

impl<S, T, E> ResultSlots for S
where
    S: SlotSlice,
    S::Future: Future<Output = Result<T, E>>,
    S::Outputs: SliceOutcomes<Success = T, Error = E>,
{
    #[inline]
    fn take_successes(mut self: Pin<&mut Self>) -> SuccessesOf<Self> {
        let len = self.len();
        check_all_finished(self.slots());
        S::Outputs::successes_from(len, |i| {
            unwrap_ok(pinned::index(self.as_mut().slots_pinned(), i).take_output())
        })
    }

    fn is_err(&self, index: usize) -> bool {
        self.slots()[index].is_err()
    }

    fn take_err_if(self: Pin<&mut Self>, index: usize, pred: impl FnOnce(&E) -> bool) -> Option<E> {
        pinned::index(self.slots_pinned(), index).take_err_if(pred)
    }
}
