//! Per-child wakers for a set that grows while it runs (a [`Group`](crate::Group)): a
//! heap block of wakers per chunk of children, each chunk twice the size of the one
//! before, so that growing never moves a waker (or, in the group's storage, a child) and
//! `n` children take `O(log n)` blocks.
//!
//! The chunks share nothing: each block keeps its own ready set and its own copy of the
//! gather's waker, so a wake stays O(1) (it touches its block only), and a pass reads the
//! ready set of each block, `O(log n)` atomic swaps per pass however many children were
//! woken.

use alloc::vec::Vec;
use core::mem::ManuallyDrop;
use core::ops::Range;
use core::task::Waker;

use super::per_child::Queue;
use crate::raw::block::Block;

/// Children in the first chunk; chunk `k` holds `FIRST << k`.
const FIRST: usize = 64;

/// The chunk of slot `slot`, and its place in that chunk.
#[inline]
pub(crate) fn locate(slot: usize) -> (usize, usize) {
    // Chunk `k` starts at slot `FIRST * (2^k - 1)`.
    let chunk = (slot / FIRST + 1).ilog2() as usize;
    (chunk, slot - start(chunk))
}

/// The first slot of chunk `chunk`.
#[inline]
fn start(chunk: usize) -> usize {
    FIRST * ((1 << chunk) - 1)
}

/// How many slots chunk `chunk` has.
#[inline]
pub(crate) fn chunk_len(chunk: usize) -> usize {
    FIRST << chunk
}

/// The wakers of a growing set: one [`Block`] per chunk, made when the first child of
/// its chunk arrives.
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    blocks: Vec<Block<()>>,
    /// How many children there are (slots `0..len`).
    len: usize,
    /// Children `fresh..len` have never been polled.
    fresh: usize,
    /// The block whose woken children come next: the pass goes round the blocks, so that
    /// the children woken in one block do not starve those of another under the budget.
    turn: usize,
}

impl Chunks {
    /// Makes room for `len` children (never fewer than before).
    pub(crate) fn grow_to(&mut self, len: usize) {
        debug_assert!(len >= self.len);
        if len > 0 {
            let (last, _) = locate(len - 1);
            while self.blocks.len() <= last {
                let chunk = self.blocks.len();
                self.blocks.push(Block::new(chunk_len(chunk), |_| ()));
            }
        }
        self.len = len;
    }
}

impl Queue for Chunks {
    fn register(&self, waker: &Waker) {
        for block in &self.blocks {
            block.register(waker);
        }
    }

    fn collect_woken(&mut self) {
        for block in &mut self.blocks {
            block.collect_woken();
        }
    }

    fn next_woken(&mut self) -> Option<usize> {
        for _ in 0..self.blocks.len() {
            if let Some(local) = self.blocks[self.turn].next_woken() {
                return Some(start(self.turn) + local);
            }
            self.turn = (self.turn + 1) % self.blocks.len();
        }
        None
    }

    fn never_polled(&self) -> Range<usize> {
        self.fresh..self.len
    }

    fn polled_up_to(&mut self, end: usize) {
        debug_assert!(self.fresh <= end && end <= self.len);
        self.fresh = end;
    }

    fn has_left(&self, may_start: bool) -> bool {
        self.blocks.iter().any(|block| block.has_left(false))
            || (may_start && self.fresh < self.len)
    }

    fn waker(&self, slot: usize) -> ManuallyDrop<Waker> {
        let (chunk, local) = locate(slot);
        self.blocks[chunk].waker(local)
    }
}

#[cfg(test)]
mod tests {
    use super::{chunk_len, locate, start};

    #[test]
    fn chunks_double_and_tile_the_slots() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(63), (0, 63));
        assert_eq!(locate(64), (1, 0));
        assert_eq!(locate(191), (1, 127));
        assert_eq!(locate(192), (2, 0));
        for chunk in 0..20 {
            assert_eq!(start(chunk + 1), start(chunk) + chunk_len(chunk));
            assert_eq!(locate(start(chunk)), (chunk, 0));
            assert_eq!(locate(start(chunk + 1) - 1), (chunk, chunk_len(chunk) - 1));
        }
    }
}
