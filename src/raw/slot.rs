//! One child's place in a gather: the running future, then its output, then nothing.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

pin_project_lite::pin_project! {
    /// The state of one child.
    ///
    /// A child is dropped in place the moment it finishes and its output takes its place;
    /// the output is moved out when the gather hands back its result.
    ///
    /// On a bare-metal target (no OS: a microcontroller) the variant is a whole word, so
    /// that a child, word-aligned like nearly every future there, starts on a word after
    /// it and moves into its slot as words: left to itself, the compiler widens the
    /// variant only to the output's alignment, and a `u16` output makes every child's move
    /// a call to `memcpy` (32 bytes more code for `gather([F; 4])`, 56 for its fail-fast,
    /// `tests/embedded/size.sh`). The price, a few bytes of RAM for a child aligned below
    /// a word and no niche to share, is not worth paying where flash is not counted.
    #[project = SlotProj]
    #[cfg_attr(target_os = "none", repr(u32))]
    pub enum Slot<F>
    where
        F: Future,
    {
        Running { #[pin] future: F },
        Finished { output: F::Output },
        Taken,
    }
}

/// What one poll of one slot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The child was not running (it had finished, or was cut off): nothing was polled.
    NotRunning,
    /// The child was polled and is still pending.
    Pending,
    /// The child was polled and finished; its output is stored in the slot.
    Finished,
}

impl<F: Future> Slot<F> {
    pub(crate) fn new(future: F) -> Self {
        Slot::Running { future }
    }

    /// Polls the child if it is still running; when it finishes, drops it and keeps the
    /// output. If the poll panics, the child is still running; if its drop panics, the
    /// output is in the slot all the same (the assignment writes it on the way out).
    #[inline]
    pub(crate) fn poll_step(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Step {
        let output = match self.as_mut().project() {
            SlotProj::Running { future } => match future.poll(cx) {
                Poll::Ready(output) => output,
                Poll::Pending => return Step::Pending,
            },
            SlotProj::Finished { .. } | SlotProj::Taken => return Step::NotRunning,
        };
        self.set(Slot::Finished { output });
        Step::Finished
    }

    /// Whether the child is still running.
    pub(crate) fn is_running(&self) -> bool {
        matches!(self, Slot::Running { .. })
    }

    /// Whether the child finished and its output is still here.
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self, Slot::Finished { .. })
    }

    /// Moves the stored output out, leaving the slot empty.
    ///
    /// (`pin-project-lite`'s `project_replace` would do it safely, but it hands the old
    /// value back as another enum, laid out unlike the slot, and checking that one again
    /// costs code at every place an output is taken: 12 bytes of a microcontroller's
    /// settle-all gather over four children, `tests/embedded/size.sh`. Here the one check
    /// comes first and the compiler knows the variant after it.)
    ///
    /// # Panics
    ///
    /// Panics if the child has not finished, or its output was already taken: the engine
    /// only takes outputs once every child has finished, exactly once. The slot is then
    /// untouched.
    pub(crate) fn take_output(self: Pin<&mut Self>) -> F::Output {
        assert!(
            self.is_finished(),
            "gather: output taken from a slot that has none"
        );
        // SAFETY: the slot holds an output, which is not structurally pinned (`Finished`'s
        // field is not `#[pin]`): moving it out moves nothing pinned, and no child is in
        // the slot to be moved or forgotten. `Taken` is written in its place. The other
        // arm cannot run (checked above), so no child is dropped away from its place.
        let slot = unsafe { self.get_unchecked_mut() };
        match core::mem::replace(slot, Slot::Taken) {
            Slot::Finished { output } => output,
            _ => unreachable!("gather: the slot was checked to hold an output"),
        }
    }

    /// Drops whatever the slot holds: the running child or the stored output. The slot
    /// is empty afterwards even if that drop panics.
    pub(crate) fn clear(mut self: Pin<&mut Self>) {
        self.set(Slot::Taken);
    }
}

impl<T, E, F: Future<Output = Result<T, E>>> Slot<F> {
    /// Whether the child finished with an `Err`.
    pub(crate) fn is_err(&self) -> bool {
        matches!(self, Slot::Finished { output: Err(_) })
    }

    /// If the child is still running, drops it and stores `Err(error())`; returns whether
    /// it did (the deadline). If the drop panics, the error is stored all the same (an
    /// assignment writes its new value even when the old one's drop panics).
    pub(crate) fn cut_off(mut self: Pin<&mut Self>, error: impl FnOnce() -> E) -> bool {
        if !matches!(*self, Slot::Running { .. }) {
            return false;
        }
        self.set(Slot::Finished {
            output: Err(error()),
        });
        true
    }

    /// Stores `Err(error)` in a slot that holds nothing (its child panicked and was
    /// discarded).
    pub(crate) fn fail(mut self: Pin<&mut Self>, error: E) {
        debug_assert!(matches!(*self, Slot::Taken));
        self.set(Slot::Finished { output: Err(error) });
    }

    /// Moves a stored `Err` for which `pred` holds out, leaving the slot empty; anything
    /// else stays.
    pub(crate) fn take_err_if(self: Pin<&mut Self>, pred: impl FnOnce(&E) -> bool) -> Option<E> {
        match &*self {
            Slot::Finished { output: Err(error) } if pred(error) => self.take_output().err(),
            _ => None,
        }
    }
}
