//! Per-child wakers for a set that grows while it runs (a [`Group`](crate::Group)): a
//! heap block of wakers per chunk of children (`raw/chunks.rs`: 64, 64, then each chunk as
//! large as all the ones before it), so that growing never moves a waker (or, in the group's storage, a child) and
//! `n` children take `O(log n)` blocks.
//!
//! Each block keeps its own ready set; what wakes the gather is one waker per block
//! ([`Marks::waker`]), which marks its block in a shared mask and wakes the gather's
//! task. So a wake stays O(1) (it touches its block, and the mask when its block's set was
//! empty), and a pass registers the task once and reads the ready sets of the marked
//! blocks only. While there is one block (a group that never ran more than 64 children at
//! once, the usual long-lived set), it wakes the task itself: no mask, one waker fewer per
//! wake.

use alloc::sync::Arc;
use core::mem::ManuallyDrop;
use core::ops::Range;
use core::task::Waker;

use super::per_child::Queue;
use crate::raw::block::Block;
use crate::raw::chunks::{chunk_len, locate, start, BlockChunks};
use crate::raw::marks::Marks;
use crate::raw::sync::Ordering;

/// The wakers of a growing set: one [`Block`] per chunk, made when the first child of
/// its chunk arrives.
pub(crate) struct Chunks {
    /// The mask of blocks with children woken, and the task; block `k` wakes its bit's
    /// waker ([`Marks::waker`]).
    shared: Arc<Marks>,
    blocks: BlockChunks<()>,
    /// How many slots there are (`0..len`): each child is polled as it takes its slot, so
    /// none of them is never polled.
    len: usize,
    /// Bit `k`: block `k` has woken children taken off its ready set and not polled yet.
    listed: usize,
    /// The block whose woken children come first in this pass: each pass starts one
    /// further on, so that the children woken in one block do not starve those of another
    /// under the budget.
    turn: u32,
    /// Block 0's waker of the mask, while it could not be stored in block 0: a wake of
    /// block 0 (made while it was alone, to the task's waker) was under way when the
    /// second block came. Until a pass stores it, block 0's wakes wake the waker it had
    /// (the task's then) without marking it, so every pass reads block 0 as if marked,
    /// and a pass under another waker than that one keeps the task coming.
    first_unregistered: Option<Waker>,
}

impl Chunks {
    /// Makes room for `len` slots (never fewer than before).
    #[inline]
    pub(crate) fn grow_to(&mut self, len: usize) {
        debug_assert!(len >= self.len);
        if len > self.blocks.capacity() {
            self.add_blocks(len);
        }
        self.len = len;
    }

    /// Adds the blocks up to the one that holds slot `len - 1`.
    #[cold]
    fn add_blocks(&mut self, len: usize) {
        let (last, _) = locate(len - 1);
        while self.blocks.as_slice().len() <= last {
            let chunk = self.blocks.as_slice().len();
            // At most `usize::BITS` chunks: far more slots than memory.
            assert!(
                chunk < usize::BITS as usize,
                "gather: too many futures in a group"
            );
            let block = Block::new(chunk_len(chunk), |_| ());
            if chunk == 1 {
                // The first block woke the task itself while it was alone: from now on it
                // wakes its bit's waker, as the others do. Marked woken after that, so
                // that this pass reads what it queued before (a wake after the mark marks
                // it again, or is on its ready set when this pass reads it). If a wake
                // of it is under way, the waker cannot be stored now, and block 0's wakes
                // mark nothing until it is: the passes try again and read block 0
                // meanwhile (see `first_unregistered`).
                let first = self.dirty(0);
                if !self.blocks.as_slice()[0].register(&first) {
                    self.first_unregistered = Some(first);
                }
                self.shared.woken.fetch_or(1, Ordering::AcqRel);
            }
            if chunk > 0 {
                // Registered once: the block's wakes go to its bit's waker from now on.
                // (Always stored: no waker of a new block exists yet, so no wake of it is
                // under way.)
                let stored = block.register(&self.dirty(chunk));
                debug_assert!(stored);
            }
            self.blocks.push(block);
        }
    }

    /// The waker block `chunk` wakes once there are two blocks or more: it marks the
    /// block's bit and wakes the task.
    fn dirty(&self, chunk: usize) -> Waker {
        self.shared.waker(chunk)
    }
}

impl Default for Chunks {
    fn default() -> Self {
        Chunks {
            shared: Marks::new(),
            blocks: BlockChunks::default(),
            len: 0,
            listed: 0,
            turn: 0,
            first_unregistered: None,
        }
    }
}

impl Queue for Chunks {
    #[inline]
    fn register(&self, waker: &Waker) {
        // (At every pass: a registration that a wake under way kept out is made by the
        // next, which `register` asks for by waking `waker` itself.)
        let _ = match self.blocks.as_slice() {
            // One block (a group that never ran more than 64 children at once): its wakes
            // wake the task directly, with no mask to mark.
            [only] => only.register(waker),
            [first, ..] => {
                // Block 0 without its waker of the mask yet (see `first_unregistered`):
                // its wakes reach the task, and the next pass reads them, only while the
                // waker it has is this task's. Otherwise come back until it is replaced.
                if self.first_unregistered.is_some() && !first.wakes(waker) {
                    waker.wake_by_ref();
                }
                self.shared.task.register(waker)
            }
            [] => true,
        };
    }

    #[inline]
    fn collect_woken(&mut self) {
        if let [only] = self.blocks.as_slice() {
            // (Alone, the block keeps its own list: `listed` is for two blocks or more. The
            // second block's arrival marks this one, so that its list is read from then on.)
            if only.has_woken() {
                self.blocks.collect_woken(0);
            }
            return;
        }
        // Block 0's waker of the mask not stored yet: try again (before its ready set is
        // read, so that a wake after this read marks it, once stored); until then, and in
        // the pass that stores it, block 0 is read as if marked (its wakes so far reached
        // the task only).
        // (If a wake under way keeps it out again, that wake reaches the waker block 0
        // has, which `register` has made sure is the task's, or woken the task itself.)
        let mut first = 0;
        if let Some(waker) = &self.first_unregistered {
            first = 1;
            if self.blocks.as_slice()[0].register_or_leave(waker) {
                self.first_unregistered = None;
            }
        }
        // A block's wake marks it after pushing onto its ready set: a block marked after
        // this swap is read by the next pass, which its wake has asked for.
        // (A load first: a pass that finds no block marked writes nothing shared.)
        if self.shared.woken.load(Ordering::Relaxed) == 0 && first == 0 {
            return;
        }
        let mut woken = self.shared.woken.swap(0, Ordering::AcqRel) | first;
        self.listed |= woken;
        while woken != 0 {
            let chunk = woken.trailing_zeros() as usize;
            woken &= woken - 1;
            self.blocks.collect_woken(chunk);
        }
        // Each pass starts one block further on (round to the first after the last).
        self.turn += 1;
        if self.turn as usize >= self.blocks.as_slice().len() {
            self.turn = 0;
        }
    }

    #[inline]
    fn next_woken(&mut self) -> Option<usize> {
        if self.blocks.as_slice().len() == 1 {
            return self.blocks.next_woken(0).0;
        }
        loop {
            if self.listed == 0 {
                return None;
            }
            // The first listed block from `turn` on, round to the start.
            let from_turn = self.listed & (usize::MAX << self.turn);
            let chunk = if from_turn != 0 {
                from_turn
            } else {
                self.listed
            }
            .trailing_zeros();
            let (next, left) = self.blocks.next_woken(chunk as usize);
            if !left {
                self.listed &= !(1 << chunk);
            }
            if let Some(local) = next {
                return Some(start(chunk as usize) + local);
            }
        }
    }

    fn never_polled(&self) -> Range<usize> {
        self.len..self.len
    }

    fn polled_up_to(&mut self, end: usize) {
        debug_assert_eq!(end, self.len);
    }

    #[inline]
    fn has_left(&self, _: bool) -> bool {
        match self.blocks.as_slice() {
            [only] => only.has_left(false),
            _ => self.listed != 0,
        }
    }

    #[inline]
    fn waker(&self, slot: usize) -> ManuallyDrop<Waker> {
        self.blocks.waker(slot)
    }
}

impl core::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Chunks")
            .field("blocks", &self.blocks.as_slice().len())
            .field("len", &self.len)
            .finish()
    }
}
