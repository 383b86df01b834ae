//! Allocation counts, with a counting global allocator: an array or tuple gather allocates
//! nothing; a `Vec` gather allocates a fixed number of times whatever its length.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::{ready, Future};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use gather::gather;

struct Counting;

thread_local! {
    /// Allocations made by this thread: the test harness allocates on other threads.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through `alloc` above, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations `f` makes on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let value = f();
    (value, ALLOCATIONS.with(Cell::get) - before)
}

/// A waker that does nothing, built before the measuring starts (it allocates once).
fn noop_waker() -> Waker {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    Waker::from(std::sync::Arc::new(Noop))
}

fn poll_once<F: Future>(future: F, waker: &Waker) -> Poll<F::Output> {
    let mut future = pin!(future);
    future.as_mut().poll(&mut Context::from_waker(waker))
}

#[test]
fn gathering_an_array_of_ready_children_allocates_nothing() {
    let waker = noop_waker();
    let (poll, count) = allocations(|| {
        let children: [_; 64] =
            std::array::from_fn(|i| ready(if i % 7 == 0 { Err(i) } else { Ok(i) }));
        let gathered = match poll_once(gather(children), &waker) {
            Poll::Ready(gathered) => gathered,
            Poll::Pending => panic!("ready children"),
        };
        let error_count = gathered.error_count();
        let compound = gathered.into_compound_error().map(|e| e.len());
        (error_count, compound)
    });
    assert_eq!(poll, (10, Some(10)));
    assert_eq!(count, 0);
}

#[test]
fn gathering_a_tuple_allocates_nothing() {
    let waker = noop_waker();
    let (result, count) = allocations(|| {
        let gather = gather((
            ready(Ok::<_, u8>(1)),
            ready(Err::<u16, _>(2)),
            ready(Ok("three")),
        ));
        match poll_once(gather, &waker) {
            Poll::Ready(gathered) => gathered.into_result().map_err(|e| e.first().0),
            Poll::Pending => panic!("ready children"),
        }
    });
    assert_eq!(result, Err(1));
    assert_eq!(count, 0);
}

#[test]
fn fail_fast_on_an_array_allocates_nothing() {
    let waker = noop_waker();
    let (result, count) = allocations(|| {
        let children = [ready(Ok(1)), ready(Err("no")), ready(Ok(3))];
        match poll_once(gather(children).fail_fast(), &waker) {
            Poll::Ready(result) => result.map_err(|e| e.first().0),
            Poll::Pending => panic!("ready children"),
        }
    });
    assert_eq!(result, Err(1));
    assert_eq!(count, 0);
}

#[test]
fn a_vec_gather_allocates_the_same_number_of_times_whatever_its_length() {
    let waker = noop_waker();
    let count_for = |n: usize| {
        allocations(|| {
            let children: Vec<_> = (0..n).map(|i| ready(Ok::<_, ()>(i))).collect();
            let mut gather = pin!(gather(children).fail_fast());
            loop {
                if let Poll::Ready(result) = gather.as_mut().poll(&mut Context::from_waker(&waker))
                {
                    break result.unwrap().len();
                }
            }
        })
    };
    let (len, small) = count_for(10);
    assert_eq!(len, 10);
    // (Fewer under Miri, which is slow.)
    let n = if cfg!(miri) { 1_000 } else { 10_000 };
    let (len, large) = count_for(n);
    assert_eq!(len, n);
    assert_eq!(small, large);
    // The input Vec and the block of children and their wakers. A `Result<usize, ()>` is
    // laid out as a `Ready` of it, so the outputs go in the input's buffer, and the
    // successes, which fill half of it, stay there.
    assert_eq!(small, 2);
}

/// A child of 8 bytes that outputs a `u64` of 8 bytes.
struct Child(u64);

impl Future for Child {
    type Output = u64;
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u64> {
        Poll::Ready(self.0)
    }
}

fn run_to_end<F: Future>(future: F, waker: &Waker) -> F::Output {
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(waker)) {
            return output;
        }
    }
}

#[test]
fn a_vec_gathers_outputs_reuse_its_input_buffer_when_they_fill_at_least_half_of_it() {
    let waker = noop_waker();
    // `u64` outputs of 8-byte children: the outputs fill the input's buffer exactly.
    let (outputs, count) = allocations(|| {
        let children: Vec<Child> = (0..10).map(Child).collect();
        run_to_end(gather(children), &waker).into_results()
    });
    assert_eq!(outputs, (0..10).collect::<Vec<_>>());
    assert_eq!(count, 2, "the input (then the outputs) and the block");
    assert!(outputs.capacity() <= 2 * outputs.len());

    // Children of 16 bytes whose `u64` outputs fill half of the buffer: reused too.
    let (outputs, count) = allocations(|| {
        let children: Vec<_> = (0..10u64).map(ready).collect();
        run_to_end(gather(children), &waker).into_results()
    });
    assert_eq!(outputs, (0..10).collect::<Vec<_>>());
    assert_eq!(count, 2);
    assert_eq!(outputs.capacity(), 20, "half of the input's 16-byte places");

    // An input with much room to spare: the outputs get a buffer of their own, of their size.
    let (outputs, count) = allocations(|| {
        let mut children = Vec::with_capacity(100);
        children.extend((0..3).map(Child));
        run_to_end(gather(children), &waker).into_results()
    });
    assert_eq!(outputs, [0, 1, 2]);
    assert_eq!(count, 3);
    assert_eq!(outputs.capacity(), 3);

    // Outputs larger than the children: a buffer of their own.
    let (outputs, count) = allocations(|| {
        let children: Vec<_> = (0..10u64).map(|i| ready([i; 4])).collect();
        run_to_end(gather(children), &waker).into_results()
    });
    assert_eq!(outputs, (0..10u64).map(|i| [i; 4]).collect::<Vec<_>>());
    assert_eq!(count, 3);

    // An empty input has no buffer to reuse, and nothing to allocate either.
    let (outputs, count) =
        allocations(|| run_to_end(gather(Vec::<Child>::new()), &waker).into_results());
    assert!(outputs.is_empty());
    assert_eq!(count, 1, "the block's header only");
}

#[test]
fn fail_fast_successes_keep_the_results_buffer_unless_it_is_more_than_twice_their_size() {
    let waker = noop_waker();
    // `Result<u64, u64>` (16 bytes) to `u64`: half of the buffer, kept.
    let (successes, count) = allocations(|| {
        let children: Vec<_> = (0..10u64).map(|i| ready(Ok::<u64, u64>(i))).collect();
        run_to_end(gather(children).fail_fast(), &waker).unwrap()
    });
    assert_eq!(successes, (0..10).collect::<Vec<_>>());
    assert_eq!(count, 2);
    assert!(successes.capacity() <= 2 * successes.len());
    // `Result<u64, [u64; 8]>` (72 bytes) to `u64`: cut down to the successes' size.
    let (successes, _) = allocations(|| {
        let children: Vec<_> = (0..10u64).map(|i| ready(Ok::<u64, [u64; 8]>(i))).collect();
        run_to_end(gather(children).fail_fast(), &waker).unwrap()
    });
    assert_eq!(successes, (0..10).collect::<Vec<_>>());
    assert_eq!(successes.capacity(), 10);
}

#[test]
fn fail_fast_on_a_vec_allocates_twice_and_stops_at_the_first_error() {
    let waker = noop_waker();
    let (failed, count) = allocations(|| {
        let children: Vec<_> = (0..1000)
            .map(|i| ready(if i % 7 == 6 { Err(i) } else { Ok(i) }))
            .collect();
        match poll_once(gather(children).fail_fast(), &waker) {
            Poll::Ready(result) => result.map_err(|e| (e.len(), e.first().0)),
            Poll::Pending => panic!("an error in the first poll ends it"),
        }
    });
    // The first error (child 6) ends the poll: one error, kept inline in the compound error.
    assert_eq!(failed, Err((1, 6)));
    // The input Vec (whose buffer the outputs take) and the block of children: the error
    // itself allocates nothing.
    assert_eq!(count, 2, "{count} allocations");
}

#[test]
fn a_compound_error_allocates_only_from_its_second_error_on() {
    let waker = noop_waker();
    let failing = |failures: usize| {
        allocations(|| {
            let children: Vec<_> = (0..8)
                .map(|i| ready(if i < failures { Err(i) } else { Ok(i) }))
                .collect();
            let Poll::Ready(gathered) = poll_once(gather(children), &waker) else {
                panic!("ready children finish in the first poll");
            };
            let error = gathered.into_compound_error().expect("children failed");
            error
                .iter()
                .map(|(index, &e)| (index, e))
                .collect::<Vec<_>>()
        })
    };
    let (none, baseline) = allocations(|| {
        let children: Vec<_> = (0..8).map(|i| ready(Ok::<_, usize>(i))).collect();
        let Poll::Ready(gathered) = poll_once(gather(children), &waker) else {
            panic!("ready children finish in the first poll");
        };
        assert!(gathered.into_compound_error().is_none());
        Vec::<(usize, usize)>::new()
    });
    assert!(none.is_empty());
    // One error: nothing beyond the gather's own allocations and the test's list of it.
    let (one, one_count) = failing(1);
    assert_eq!(one, [(0, 0)]);
    assert_eq!(one_count, baseline + 1);
    // Two errors: one allocation more, for the list of errors.
    let (two, two_count) = failing(2);
    assert_eq!(two, [(0, 0), (1, 1)]);
    assert_eq!(two_count, baseline + 2);
    // Eight errors: still one, of the size the gather counted.
    let (eight, eight_count) = failing(8);
    assert_eq!(eight.len(), 8);
    assert_eq!(eight_count, baseline + 2);
}

#[test]
fn gather_iter_of_four_allocates_nothing_and_under_a_limit_a_fixed_number_beside_its_outputs() {
    let waker = noop_waker();
    let (outputs, count) =
        allocations(
            || match poll_once(gather::gather_iter((0..4).map(ready)), &waker) {
                Poll::Ready(gathered) => gathered.into_results(),
                Poll::Pending => panic!("ready children finish in the first poll"),
            },
        );
    assert_eq!(outputs.as_slice(), [0, 1, 2, 3]);
    assert_eq!(count, 0, "inline: no allocation");

    // Under limit(8): the window of slots, the input index of each, the block of its
    // wakers and its list of free slots, made once; then only the outputs' `Vec` as it
    // grows (one allocation per doubling), whatever the number of jobs. (Outputs of
    // children that finish in input order never wait aside.)
    let count_for = |n: usize| {
        allocations(|| {
            let jobs = (0..n).map(|i| ready(Ok::<_, ()>(i)));
            let mut gather = pin!(gather::gather_iter(jobs).limit(8));
            loop {
                if let Poll::Ready(gathered) =
                    gather.as_mut().poll(&mut Context::from_waker(&waker))
                {
                    break gathered.len();
                }
            }
        })
    };
    // (Fewer under Miri, which is slow.)
    let large = if cfg!(miri) { 1_000 } else { 10_000 };
    for n in [100, large] {
        let (len, count) = count_for(n);
        assert_eq!(len, n);
        let doublings = n.next_power_of_two().trailing_zeros() as usize;
        println!("{n} jobs: {count} allocations");
        assert!(count <= 4 + doublings, "{n} jobs: {count} allocations");
    }
}

/// Ready at its second poll, after waking itself: a child that needs its waker.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_group_read_to_the_end_allocates_twice_per_chunk_and_four_times_more() {
    use futures_core::Stream;
    let waker = noop_waker();
    // Chunks of 64, 64, 128, ...: 1, 5 and 8 of them. Per chunk: its slots and its block
    // of wakers; once: the mask the blocks mark (their wakers point into it), the lists
    // of chunks and of blocks (room for 8 at first) and the list of free slots (which
    // grows once per chunk of slots at most, and here once: every slot is free at the
    // end). So from 1,024 children on, at most one allocation per 64 children.
    let sizes: &[(usize, usize)] = if cfg!(miri) {
        &[(64, 1), (1024, 5)]
    } else {
        &[(64, 1), (1024, 5), (8192, 8)]
    };
    for &(n, chunks) in sizes {
        let (outcomes, made) = allocations(|| {
            let mut group = gather::Group::new();
            for _ in 0..n {
                group.push(YieldOnce(false));
            }
            let mut cx = Context::from_waker(&waker);
            let mut outcomes = 0;
            loop {
                match std::pin::Pin::new(&mut group).poll_next(&mut cx) {
                    Poll::Ready(Some(_)) => outcomes += 1,
                    Poll::Ready(None) => break outcomes,
                    Poll::Pending => {}
                }
            }
        });
        assert_eq!(outcomes, n);
        assert_eq!(made, 2 * chunks + 4, "{n} children");
        assert!(n < 1024 || made * 64 <= n, "{made} allocations for {n}");
    }
}
