//! Storage that grows in chunks that never move: chunk 0 holds elements `0..64`, and chunk
//! `k >= 1` holds `64 << (k - 1)..64 << k` (as many as all the chunks before it), so `n`
//! elements take `O(log n)` chunks, an element's chunk is the position of its highest bit,
//! and an element keeps its address from the moment it is made until the storage drops it.
//! A [`Group`](crate::Group) keeps its children's slots here, and its per-child wakers
//! ([`BlockChunks`]) are numbered the same way.
//!
//! The `unsafe` here buys one thing, measured: an access checks its index once, against the
//! length, instead of once against the list of chunks and again against the chunk (with
//! both checks, a `Group` of `yield_once` children took 1.10x the time per child, and
//! 1.05x with them on the wakers' side only).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::mem::ManuallyDrop;
use core::pin::Pin;
use core::task::Waker;

use super::block::Block;

/// Elements in the first chunk (and in the second).
pub(crate) const FIRST: usize = 64;

/// Room for this many chunks when the first is made (8 hold 8,192 elements), rather
/// than a `Vec`'s 4 then 8: one allocation fewer for a group of 257 to 8,192.
const CHUNKS_AT_FIRST: usize = 8;

/// The chunk of element `index`, and its place in that chunk.
#[inline]
pub(crate) fn locate(index: usize) -> (usize, usize) {
    if index < FIRST {
        // The first chunk: where a group that runs a few children at a time keeps them.
        return (0, index);
    }
    // Chunk `k >= 1` starts at `2^(k + 5)`: the highest bit names the chunk, the rest is
    // the place.
    let high = index.ilog2();
    ((high - FIRST.ilog2() + 1) as usize, index ^ (1 << high))
}

/// The first element of chunk `chunk`; for `chunk` past the last, how many elements the
/// chunks before it hold.
#[inline]
pub(crate) fn start(chunk: usize) -> usize {
    if chunk == 0 {
        0
    } else {
        FIRST << (chunk - 1)
    }
}

/// How many elements chunk `chunk` holds.
#[inline]
pub(crate) fn chunk_len(chunk: usize) -> usize {
    start(chunk).max(FIRST)
}

/// Elements `0..len`, in chunks that are made whole (every element of a chunk exists from
/// the chunk's making on) and never move or resize.
///
/// Invariant: `len <= start(chunks.len())`, and chunk `k` has `chunk_len(k)` elements. So
/// for `index < len`, `locate(index)` names a chunk that exists and a place inside it.
pub(crate) struct Chunked<T> {
    chunks: Vec<Box<[T]>>,
    len: usize,
}

// Moving the storage moves only the chunks' pointers: the elements stay where they are, so
// handing them out pinned (`get_pinned`) holds whatever `T` is.
impl<T> Unpin for Chunked<T> {}

impl<T> Chunked<T> {
    pub(crate) const fn new() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// How many elements are in use: `0..len`.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Takes element `len` into use, making the next chunk (each of its elements by
    /// `fill`) if the last is full; returns its index.
    ///
    /// # Panics
    ///
    /// If the next chunk would hold more than `u32::MAX` elements (4,294,967,296 in use
    /// before it), or if `fill` panics (then nothing changes).
    #[inline]
    pub(crate) fn grow(&mut self, fill: impl FnMut() -> T) -> usize {
        if self.len == start(self.chunks.len()) {
            self.add_chunk(fill);
        }
        self.len += 1;
        self.len - 1
    }

    #[cold]
    fn add_chunk(&mut self, mut fill: impl FnMut() -> T) {
        let len = chunk_len(self.chunks.len());
        // Per-child wakers number a chunk's elements in 32 bits.
        assert!(
            u32::try_from(len).is_ok(),
            "gather: more than 4,294,967,296 futures in one group at once"
        );
        let chunk: Box<[T]> = (0..len).map(|_| fill()).collect();
        if self.chunks.capacity() == 0 {
            self.chunks.reserve_exact(CHUNKS_AT_FIRST);
        }
        self.chunks.push(chunk);
    }

    /// Element `index`.
    ///
    /// # Panics
    ///
    /// If `index` is not below [`len`](Self::len).
    #[inline]
    pub(crate) fn get(&self, index: usize) -> &T {
        assert!(index < self.len, "gather: slot out of bounds");
        let (chunk, place) = locate(index);
        // SAFETY: `index < len <= start(chunks.len())`, so its chunk exists (`locate` gives
        // a chunk below `k` exactly for the indices below `start(k)`), and `place` is below
        // `chunk_len(chunk)`, the length every chunk is made with (the invariant).
        unsafe { self.chunks.get_unchecked(chunk).get_unchecked(place) }
    }

    /// Element `index`, pinned.
    ///
    /// # Panics
    ///
    /// If `index` is not below [`len`](Self::len).
    #[inline]
    pub(crate) fn get_pinned(&mut self, index: usize) -> Pin<&mut T> {
        assert!(index < self.len, "gather: slot out of bounds");
        let (chunk, place) = locate(index);
        // SAFETY: in bounds, as in `get`. Pinned: an element is never moved out, and its
        // chunk is never moved or resized (chunks are only pushed, boxed, and dropped
        // whole with the storage, which drops each element in place); this module hands
        // out no `&mut T` but this pinned one.
        unsafe {
            let element = self
                .chunks
                .get_unchecked_mut(chunk)
                .get_unchecked_mut(place);
            Pin::new_unchecked(element)
        }
    }
}

/// One block of per-child wakers per chunk: element `start(k) + i`'s waker is slot `i` of
/// block `k`. A waker is found with one check, against the capacity.
///
/// Invariant: block `k` has `chunk_len(k)` slots, and `capacity == start(blocks.len())`.
pub(crate) struct BlockChunks<P> {
    blocks: Vec<Block<P>>,
    capacity: usize,
}

impl<P> Default for BlockChunks<P> {
    fn default() -> Self {
        BlockChunks {
            blocks: Vec::new(),
            capacity: 0,
        }
    }
}

impl<P> BlockChunks<P> {
    /// How many elements the blocks have room for.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds the block of the next chunk.
    ///
    /// # Panics
    ///
    /// If `block` does not have the next chunk's length.
    pub(crate) fn push(&mut self, block: Block<P>) {
        assert_eq!(
            block.len(),
            chunk_len(self.blocks.len()),
            "gather: a block of the wrong length"
        );
        if self.blocks.capacity() == 0 {
            self.blocks.reserve_exact(CHUNKS_AT_FIRST);
        }
        self.blocks.push(block);
        self.capacity = start(self.blocks.len());
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[Block<P>] {
        &self.blocks
    }

    /// [`Block::collect_woken`] on block `chunk`. (No `&mut` to a block leaves the module:
    /// one could swap it for a block of another length and break the invariant.)
    #[inline]
    pub(crate) fn collect_woken(&mut self, chunk: usize) {
        self.blocks[chunk].collect_woken();
    }

    /// [`Block::next_woken`] on block `chunk` (a slot of that block), and whether the block
    /// has woken children left after it ([`Block::has_left`]).
    #[inline]
    pub(crate) fn next_woken(&mut self, chunk: usize) -> (Option<usize>, bool) {
        let block = &mut self.blocks[chunk];
        let next = block.next_woken();
        (next, block.has_left(false))
    }

    /// Element `index`'s waker (see [`Block::waker`]).
    ///
    /// # Panics
    ///
    /// If `index` is not below [`capacity`](Self::capacity).
    #[inline]
    pub(crate) fn waker(&self, index: usize) -> ManuallyDrop<Waker> {
        assert!(index < self.capacity, "gather: slot out of bounds");
        let (chunk, place) = locate(index);
        // SAFETY: `index < capacity == start(blocks.len())`, so block `chunk` exists, and
        // `place < chunk_len(chunk)`, its length (both by the invariant `push` keeps).
        unsafe { self.blocks.get_unchecked(chunk).waker_unchecked(place) }
    }
}

#[cfg(test)]
mod tests {
    use super::{chunk_len, locate, start, Chunked};
    use alloc::vec::Vec;

    #[test]
    fn chunks_double_and_tile_the_indices() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(63), (0, 63));
        assert_eq!(locate(64), (1, 0));
        assert_eq!(locate(127), (1, 63));
        assert_eq!(locate(128), (2, 0));
        assert_eq!(locate(255), (2, 127));
        assert_eq!(locate(256), (3, 0));
        assert_eq!(
            locate(usize::MAX),
            (usize::BITS as usize - 6, usize::MAX >> 1)
        );
        assert_eq!((chunk_len(0), chunk_len(1), chunk_len(2)), (64, 64, 128));
        for chunk in 0..50 {
            assert_eq!(start(chunk + 1), start(chunk) + chunk_len(chunk));
            assert_eq!(locate(start(chunk)), (chunk, 0));
            assert_eq!(locate(start(chunk + 1) - 1), (chunk, chunk_len(chunk) - 1));
        }
    }

    #[test]
    fn elements_keep_their_index_and_address_as_chunks_are_added() {
        let mut chunks = Chunked::new();
        let mut addresses = Vec::new();
        for i in 0..1000usize {
            assert_eq!(chunks.grow(|| usize::MAX), i);
            chunks.get_pinned(i).set(i);
            addresses.push(chunks.get(i) as *const usize);
        }
        assert_eq!(chunks.len(), 1000);
        for (i, &address) in addresses.iter().enumerate() {
            assert_eq!(*chunks.get(i), i);
            assert_eq!(chunks.get(i) as *const usize, address);
        }
    }

    #[test]
    #[should_panic(expected = "slot out of bounds")]
    fn an_index_past_the_length_panics_even_inside_the_last_chunk() {
        let mut chunks = Chunked::new();
        chunks.grow(|| 0u8);
        // Places 1..64 exist in the chunk but are not in use.
        let _ = chunks.get(1);
    }
}
