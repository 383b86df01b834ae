//! Review of `raw/marks.rs`: the wakers of a growing set's blocks, which point into the
//! mask they mark. Groups of 65+ children (two blocks or more), wakers kept past the
//! group, the executor's waker panicking or dropping the group inside its wake, wakes from
//! other threads racing polls and the drop. Miri checks the pointer arithmetic and leaks.
mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use common::test_waker::TestWaker;
use common::{manual, quiet, Handle, Manual};
use futures::Stream;
use gather::Group;

fn message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

fn poll_group<F: std::future::Future>(
    group: &mut Group<F>,
    waker: &Waker,
) -> Poll<Option<(usize, F::Output)>> {
    Pin::new(group).poll_next(&mut Context::from_waker(waker))
}

/// A group of `n` manual children, each polled once with `waker` (so `n > 64` makes the
/// blocks wake the mask's wakers, and the mask holds a clone of `waker`).
fn started(n: usize, waker: &Waker) -> (Group<Manual<usize>>, Vec<Handle<usize>>) {
    let (children, handles): (Vec<_>, Vec<_>) = (0..n).map(|_| manual()).unzip();
    let mut group = Group::new();
    for child in children {
        group.push(child);
    }
    while handles.iter().any(|h| h.polls() == 0) {
        assert!(poll_group(&mut group, waker).is_pending());
    }
    (group, handles)
}

static KEPT: Mutex<Vec<Waker>> = Mutex::new(Vec::new());

/// Wakers of three blocks kept in a static past the group: the mask is freed with the
/// group (the executor's waker with it), later wakes, clones and drops on another thread
/// reach nothing and free the blocks.
#[test]
fn wakers_kept_in_a_static_outlive_a_group_of_three_blocks() {
    let tw = TestWaker::new();
    let waker = tw.waker();
    let (mut group, handles) = started(130, &waker);
    KEPT.lock()
        .unwrap()
        .extend(handles.iter().map(|h| h.take_waker().unwrap()));
    // Wakes through the mask of blocks 1 and 2 before the drop (bits 1, 2 marked).
    let before = tw.wakes();
    KEPT.lock().unwrap()[100].wake_by_ref();
    KEPT.lock().unwrap()[129].wake_by_ref();
    assert!(tw.wakes() > before, "the mask's wakers woke the task");
    assert!(poll_group(&mut group, &waker).is_pending());
    KEPT.lock().unwrap()[70].wake_by_ref();
    let wakes = tw.wakes();
    drop(group);
    assert_eq!(
        tw.live(),
        1,
        "the mask (and its clone of the task's waker) is gone"
    );
    std::thread::spawn(|| {
        for w in KEPT.lock().unwrap().drain(..) {
            let c = w.clone();
            w.wake_by_ref();
            c.wake();
            drop(w.clone());
        }
    })
    .join()
    .unwrap();
    assert_eq!(tw.wakes(), wakes);
    drop((waker, handles));
    assert_eq!(tw.live(), 0);
}

/// The executor's waker panics in the wake the mask passes on (by reference and by value
/// of the child's waker, in blocks 0..2): the panic reaches the child's waker's caller,
/// the next wake pays the owed one, and every child still comes out; nothing leaks.
#[test]
fn the_executors_wake_panicking_through_the_mask_loses_nothing() {
    quiet();
    let tw = TestWaker::new();
    let waker = tw.waker();
    let (mut group, handles) = started(200, &waker);
    let mut kept: Vec<Option<Waker>> = handles.iter().map(|h| h.take_waker()).collect();
    for (i, by_value) in [(100, false), (150, true), (5, true), (198, false)] {
        tw.panic_on_wakes(1);
        let w = kept[i].take().unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            if by_value {
                w.wake()
            } else {
                w.wake_by_ref()
            }
        }));
        assert_eq!(r.map_err(message), Err("boom: wake".into()), "child {i}");
        let before = tw.wakes();
        // Another child of the same block, already queued or not: the owed wake is paid.
        kept[i + 1].take().unwrap().wake();
        assert_eq!(tw.wakes(), before + 1, "child {i}: the owed wake is paid");
        assert!(poll_group(&mut group, &waker).is_pending());
        assert_eq!(
            (handles[i].polls(), handles[i + 1].polls()),
            (2, 2),
            "child {i}"
        );
    }
    for (i, h) in handles.iter().enumerate() {
        h.complete(i);
    }
    for w in kept.into_iter().flatten() {
        w.wake();
    }
    let mut got = Vec::new();
    for _ in 0..1000 {
        match poll_group(&mut group, &waker) {
            Poll::Ready(Some((i, out))) => {
                assert_eq!(i, out);
                got.push(i)
            }
            Poll::Ready(None) => break,
            Poll::Pending => {}
        }
    }
    got.sort_unstable();
    assert_eq!(got, (0..200).collect::<Vec<_>>());
    drop(group);
    drop(waker);
    assert_eq!(tw.live(), 0);
}

/// A wake of block 1 is inside the executor's waker (held at a gate) while the group is
/// dropped; then the executor's wake panics (`panic_wake`) or the executor's waker's drop
/// panics as the wake lets go of the last reference to the mask. Either way the panic
/// reaches the waking thread only, the mask is freed, and nothing leaks.
fn wake_held_while_the_group_drops(panic_wake: bool) {
    quiet();
    let tw = TestWaker::new();
    let waker = tw.waker();
    let (group, handles) = started(130, &waker);
    let w = handles[100].take_waker().unwrap();
    let gate = Arc::new(Barrier::new(2));
    tw.gate(Some(gate.clone()));
    let t = std::thread::spawn(move || catch_unwind(AssertUnwindSafe(|| w.wake())));
    gate.wait(); // the thread is inside the executor's wake
    tw.gate(None);
    drop(group);
    assert_eq!(tw.live(), 2, "the wake under way holds the mask");
    if panic_wake {
        tw.panic_on_wakes(1);
    } else {
        tw.panic_on_drop(true);
    }
    gate.wait();
    let r = t.join().unwrap();
    tw.panic_on_drop(false);
    let expected = if panic_wake {
        "boom: wake"
    } else {
        "boom: waker drop"
    };
    assert_eq!(r.map_err(message), Err(expected.into()));
    assert_eq!(tw.live(), 1, "the mask is gone");
    drop((waker, handles));
    assert_eq!(tw.live(), 0);
}

#[test]
fn a_wake_held_in_the_executor_while_the_group_drops_then_panics() {
    wake_held_while_the_group_drops(true);
}

#[test]
fn a_wake_held_in_the_executor_while_the_group_drops_frees_the_mask_whose_waker_drop_panics() {
    wake_held_while_the_group_drops(false);
}

/// The executor's waker drops the group inside its wake (the wake came through the mask):
/// the mask outlives the drop until the wake returns, then goes with the executor's waker.
#[test]
fn the_executor_drops_the_group_inside_a_wake_through_the_mask() {
    #[derive(Default)]
    struct Exec {
        group: Mutex<Option<Group<Manual<usize>>>>,
        wakes: std::sync::atomic::AtomicUsize,
    }
    impl Wake for Exec {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref()
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.wakes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let group = self.group.lock().unwrap().take();
            drop(group);
        }
    }
    let exec = Arc::new(Exec::default());
    let waker = Waker::from(exec.clone());
    let (group, handles) = started(130, &waker);
    let kept: Vec<Waker> = handles.iter().map(|h| h.take_waker().unwrap()).collect();
    *exec.group.lock().unwrap() = Some(group);
    let wakes = || exec.wakes.load(std::sync::atomic::Ordering::SeqCst);
    let before = wakes();
    kept[100].wake_by_ref(); // through block 1's mask waker: the group goes
    assert!(exec.group.lock().unwrap().is_none());
    assert_eq!(wakes(), before + 1);
    assert_eq!(Arc::strong_count(&exec), 2, "the mask's clone is gone");
    for w in &kept {
        w.wake_by_ref();
    }
    assert_eq!(wakes(), before + 1, "no wake after the drop");
    drop((kept, waker, handles));
    assert_eq!(Arc::strong_count(&exec), 1);
}

/// Two threads wake (by reference, by value of clones) children of every block while the
/// group is polled, completes children and is dropped half-way: no lost mask, no leak.
#[test]
fn threads_waking_every_block_race_the_polls_and_the_drop() {
    let rounds = if cfg!(miri) { 3 } else { 200 };
    for round in 0..rounds {
        let tw = TestWaker::new();
        let waker = tw.waker();
        let (mut group, handles) = started(140, &waker);
        let kept: Vec<Waker> = handles.iter().map(|h| h.take_waker().unwrap()).collect();
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let mine: Vec<Waker> = kept.iter().skip(t).step_by(7).cloned().collect();
                std::thread::spawn(move || {
                    for w in mine {
                        w.wake_by_ref();
                        // A clone, woken by value (the clone and the wake are tested).
                        let clone = w.clone();
                        clone.wake();
                        w.wake();
                    }
                })
            })
            .collect();
        for (i, h) in handles.iter().enumerate().step_by(3) {
            h.complete(i);
        }
        for w in kept.iter().step_by(3) {
            w.wake_by_ref();
        }
        for _ in 0..(round % 3) {
            let _ = poll_group(&mut group, &waker);
        }
        drop(group);
        for t in threads {
            t.join().unwrap();
        }
        drop((kept, handles));
        assert_eq!(tw.live(), 1, "round {round}");
        drop(waker);
    }
}

/// An executor waker that, once armed, stops inside its first wake until let go.
struct Gate {
    armed: std::sync::atomic::AtomicBool,
    entered: Barrier,
    leave: Barrier,
    /// Wakes that did not stop.
    wakes: std::sync::atomic::AtomicUsize,
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.entered.wait();
            self.leave.wait();
        } else {
            self.wakes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// A wake of the first block under way (inside the executor's waker) when the second
/// block arrives: block 0's waker of the mask cannot be stored then. Wakes of block 0
/// after that must still reach a pass, before and after the waker is stored. (Before the
/// fix, block 0 kept the executor's waker: its later wakes woke the task without marking
/// the block, and no pass read it again. `chunks_review` lost them about once in 20 runs.)
#[test]
fn wakes_of_the_first_block_are_read_after_a_wake_under_way_kept_its_new_waker_out() {
    let gate = Arc::new(Gate {
        armed: std::sync::atomic::AtomicBool::new(false),
        entered: Barrier::new(2),
        leave: Barrier::new(2),
        wakes: std::sync::atomic::AtomicUsize::new(0),
    });
    let waker = Waker::from(gate.clone());
    // One block: its wakes reach the executor's waker directly.
    let (mut group, mut handles) = started(64, &waker);
    let third = handles[3].take_waker().expect("polled");
    gate.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let thread = std::thread::spawn(move || third.wake());
    gate.entered.wait();
    // The wake holds block 0's waker slot; the second block comes now.
    let (child, handle) = manual();
    group.push(child);
    handles.push(handle);
    let before = handles[3].polls();
    assert!(poll_group(&mut group, &waker).is_pending());
    assert_eq!(handles[3].polls(), before + 1, "the wake under way is read");
    assert_eq!(handles[64].polls(), 1);
    // While that wake is held, a pass under the same waker does not wake the task again
    // (the wake under way will), so the group is not polled over and over; a pass under
    // another waker does (block 0's wakes would not reach it).
    assert!(poll_group(&mut group, &waker).is_pending());
    // (`Waker::will_wake` is best-effort: Miri gives a vtable a new address at each use,
    // so there the same waker does not look the same, and the pass wakes it.)
    let woken = std::sync::atomic::Ordering::SeqCst;
    if !cfg!(miri) {
        assert_eq!(gate.wakes.load(woken), 0, "no wake while one is held");
    }
    let (other, other_waker) = common::CountingWaker::new();
    assert!(poll_group(&mut group, &other_waker).is_pending());
    assert!(other.wakes() >= 1, "a pass under another waker comes back");
    gate.leave.wait();
    thread.join().unwrap();
    // Woken after the wake under way is over: read by the next pass (which stores the
    // waker), and so is a wake after that.
    for id in [5, 6] {
        let before = handles[id].polls();
        handles[id].take_waker().expect("polled").wake();
        assert!(poll_group(&mut group, &waker).is_pending());
        assert_eq!(handles[id].polls(), before + 1, "child {id}'s wake is read");
    }
    drop(group);
}
