//! Edge cases of `Group`, from a review that tried to break it: chunk boundaries, pushes
//! at every point, the limit, settle-all and fail-fast after partial polls, fairness under
//! the poll budget across chunks (and for a `Vec` gather's children never polled), panics
//! everywhere (children, drops, the executor's waker), wakers kept after the group, wakes
//! from other threads, and the stream's bookkeeping.
mod common;

use std::future::{pending, ready, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use common::test_waker::TestWaker;
use common::{manual, poll_with, yield_now, CountingWaker, DropLog, Handle};
use common::{poll_next, quiet, run, size};
use futures::stream::FusedStream;
use futures::{Stream, StreamExt};
use gather::Group;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

fn message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic>".to_string())
}

// ---------------------------------------------------------------------------------------
// Children used below.
// ---------------------------------------------------------------------------------------

/// Wakes itself and returns `Pending` forever, counting its polls.
struct Busy(Arc<AtomicUsize>);

impl Future for Busy {
    type Output = usize;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.0.fetch_add(1, SeqCst);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Counts polls; panics if polled after it finished; stays pending until its handle fires.
struct Event {
    state: Arc<EventState>,
}

#[derive(Default)]
struct EventState {
    fired: AtomicBool,
    finished: AtomicBool,
    polls: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl EventState {
    fn fire(&self) {
        self.fired.store(true, SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
    fn polls(&self) -> usize {
        self.polls.load(SeqCst)
    }
}

fn event() -> (Event, Arc<EventState>) {
    let state = Arc::new(EventState::default());
    (
        Event {
            state: state.clone(),
        },
        state,
    )
}

impl Future for Event {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        assert!(
            !self.state.finished.load(SeqCst),
            "child polled after it finished"
        );
        self.state.polls.fetch_add(1, SeqCst);
        // Checked under the lock `fire` takes the waker under: no wake is lost between
        // the check and the registration.
        let mut waker = self.state.waker.lock().unwrap();
        if self.state.fired.load(SeqCst) {
            self.state.finished.store(true, SeqCst);
            return Poll::Ready(());
        }
        *waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A group of `n` children that stay pending, logged as `kid{i}` when dropped.
fn pending_kids(log: &DropLog, n: usize) -> Group<Boxed<'static, ()>> {
    let mut group: Group<Boxed<'static, ()>> = Group::new();
    for i in 0..n {
        group.push(Box::pin(log.future(format!("kid{i}"), pending())));
    }
    group
}

/// Polls `group` once with `waker` (an executor's, here a `TestWaker`'s).
fn poll_group_with<F: Future>(
    group: &mut Group<F>,
    waker: &Waker,
) -> Poll<Option<(usize, F::Output)>> {
    Pin::new(group).poll_next(&mut Context::from_waker(waker))
}

// =======================================================================================
// Fairness, drops with a panicking waker, order across chunks, messages (each failed
// once, in review)
// =======================================================================================

/// `engine/chunked.rs`: "the pass goes round the blocks, so that the children woken in one
/// block do not starve those of another under the budget". Chunk 1 (children 64..192, 128
/// of them) is full of children that wake themselves at every poll: one budget's worth.
/// Child 0 (chunk 0) is woken once. It must be polled within a few passes.
#[test]
fn a_woken_child_in_chunk_0_is_polled_beside_a_budget_of_self_waking_children_in_chunk_1() {
    let busy_polls = Arc::new(AtomicUsize::new(0));
    let mut group: Group<Boxed<'static, usize>> = Group::new();
    let (child0, state0) = event();
    group.push(Box::pin(async move {
        child0.await;
        0
    }));
    for i in 1..64 {
        group.push(Box::pin(async move {
            pending::<()>().await;
            i
        }));
    }
    for _ in 64..192 {
        let busy = Busy(busy_polls.clone());
        group.push(Box::pin(busy));
    }
    // Start every child (a few passes: 192 children, 128 per pass).
    for _ in 0..4 {
        assert!(poll_next(&mut group).is_pending());
    }
    assert_eq!(state0.polls(), 1);
    state0.fire();
    let mut passes = 0;
    let found = loop {
        if passes == 20 {
            break false;
        }
        passes += 1;
        match poll_next(&mut group) {
            Poll::Ready(Some((0, 0))) => break true,
            Poll::Pending => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(
        found,
        "child 0 was woken but not polled in {passes} passes ({} polls of the self-waking \
         children of chunk 1 meanwhile; child 0 polled {} time(s))",
        busy_polls.load(SeqCst),
        state0.polls()
    );
}

/// The same starvation one chunk up: chunk 2 (192..448) holds 256 self-waking children;
/// a child of chunk 1 woken once must still be polled.
#[test]
fn a_woken_child_in_chunk_1_is_polled_beside_self_waking_children_in_chunk_2() {
    let busy_polls = Arc::new(AtomicUsize::new(0));
    let mut group: Group<Boxed<'static, usize>> = Group::new();
    let mut target = None;
    for i in 0..192 {
        if i == 100 {
            let (child, state) = event();
            target = Some(state);
            group.push(Box::pin(async move {
                child.await;
                100
            }));
        } else {
            group.push(Box::pin(async move {
                pending::<()>().await;
                i
            }));
        }
    }
    for _ in 192..448 {
        group.push(Box::pin(Busy(busy_polls.clone())));
    }
    for _ in 0..8 {
        assert!(poll_next(&mut group).is_pending());
    }
    let target = target.unwrap();
    assert_eq!(target.polls(), 1);
    target.fire();
    let mut found = false;
    for _ in 0..30 {
        match poll_next(&mut group) {
            Poll::Ready(Some((100, 100))) => {
                found = true;
                break;
            }
            Poll::Pending => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(found, "child 100 woken but never polled in 30 passes");
}

/// A child pushed while 128 (one budget) children wake themselves at every poll: it is
/// never polled. The pass polls woken children first and gives the never-polled ones only
/// the budget left (`engine/per_child.rs`, `unlimited_pass`), so a pushed child waits for a
/// pass in which fewer than 128 children were woken. (`FuturesUnordered` polls a pushed
/// future in FIFO order with the woken ones.)
#[test]
fn a_child_pushed_next_to_a_budget_of_self_waking_children_starts() {
    let busy_polls = Arc::new(AtomicUsize::new(0));
    let mut group: Group<Boxed<'static, usize>> = Group::new();
    for _ in 0..128 {
        group.push(Box::pin(Busy(busy_polls.clone())));
    }
    assert!(poll_next(&mut group).is_pending());
    assert!(poll_next(&mut group).is_pending());
    assert_eq!(group.push(Box::pin(ready(7))), 128);
    let mut got = None;
    for pass in 0..20 {
        match poll_next(&mut group) {
            Poll::Ready(Some(item)) => {
                got = Some((pass, item));
                break;
            }
            Poll::Pending => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        got.map(|(_, item)| item),
        Some((128, 7)),
        "the pushed child (ready at its first poll) was never polled in 20 passes"
    );
}

/// The same under a limit that leaves room: a child pushed while the running ones use the
/// whole budget never starts, though `limit(1000)` has a place for it.
#[test]
fn under_a_roomy_limit_a_pushed_child_starts_beside_busy_children() {
    let busy_polls = Arc::new(AtomicUsize::new(0));
    let mut group: Group<Boxed<'static, usize>> = Group::new().limit(1000);
    for _ in 0..128 {
        group.push(Box::pin(Busy(busy_polls.clone())));
    }
    assert!(poll_next(&mut group).is_pending());
    assert!(poll_next(&mut group).is_pending());
    group.push(Box::pin(ready(7)));
    let mut got = None;
    for _ in 0..20 {
        if let Poll::Ready(item) = poll_next(&mut group) {
            got = item;
            break;
        }
    }
    assert_eq!(got, Some((128, 7)), "never started in 20 passes");
}

/// For comparison: the same with a `Vec` gather (one block) panics once, no abort.
#[test]
fn a_vec_gather_whose_executor_waker_drop_panics_panics_once_on_drop() {
    quiet();
    let log = DropLog::new();
    let children: Vec<Boxed<'_, ()>> = (0..65)
        .map(|i| Box::pin(log.future(format!("kid{i}"), pending())) as Boxed<'_, ()>)
        .collect();
    let mut gathered = Box::pin(gather::gather(children));
    let tw = TestWaker::new();
    let waker = tw.waker();
    assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    tw.panic_on_drop(true);
    let dropped = catch_unwind(AssertUnwindSafe(|| drop(gathered)));
    tw.panic_on_drop(false);
    assert_eq!(
        dropped.map_err(message),
        Err("boom: waker drop".to_string())
    );
    drop(waker);
    assert_eq!(tw.live(), 0);
}

/// Order: a `Vec` gather (and the docs of per-child wakers: "in the order they were
/// woken") polls woken children in wake order; a group polls them block by block. Child
/// 100 (chunk 1) finishes, then child 0 (chunk 0): the stream hands out 0 first.
#[test]
fn children_woken_in_different_chunks_between_two_polls_all_come_out() {
    let (children, handles): (Vec<_>, Vec<Handle<usize>>) = (0..101).map(|_| manual()).unzip();
    let mut group = Group::new();
    for child in children {
        group.push(child);
    }
    assert!(poll_next(&mut group).is_pending());
    handles[100].complete(100);
    handles[0].complete(0);
    // Woken between the same two polls, in different chunks: both come out next, in an
    // order the group does not promise (block by block, not wake order).
    let mut both = [poll_next(&mut group), poll_next(&mut group)].map(|item| match item {
        Poll::Ready(Some(item)) => item,
        other => panic!("{other:?}"),
    });
    both.sort_unstable();
    assert_eq!(both, [(0, 0), (100, 100)]);
}

/// The same with a `Vec` gather: wake order.
#[test]
fn a_vec_gather_as_completed_hands_out_woken_children_in_wake_order() {
    let (children, handles): (Vec<_>, Vec<Handle<usize>>) = (0..101).map(|_| manual()).unzip();
    let mut stream = gather::gather(children).as_completed();
    assert!(poll_next(&mut stream).is_pending());
    handles[100].complete(100);
    handles[0].complete(0);
    assert_eq!(poll_next(&mut stream), Poll::Ready(Some((100, 100))));
    assert_eq!(poll_next(&mut stream), Poll::Ready(Some((0, 0))));
}

/// The limit's panic message names `Group::limit`, the method the caller called.
#[test]
fn group_limit_after_a_poll_panics_naming_group_limit() {
    let mut group = Group::new();
    group.push(pending::<()>());
    assert!(poll_next(&mut group).is_pending());
    let panic = catch_unwind(AssertUnwindSafe(|| group.limit(2))).expect_err("polled already");
    let message = message(panic);
    assert!(message.contains("Group::limit"), "message: {message}");
}

// =======================================================================================
// Behaviour pinned by the review
// =======================================================================================

/// Pushes that straddle each chunk boundary, between polls, every one handed out once
/// with its push index.
#[test]
fn pushes_across_chunk_boundaries_between_polls_keep_indices() {
    let n = size(1000, 460);
    let mut group: Group<Boxed<'_, usize>> = Group::new();
    let mut seen = vec![false; n];
    let mut pushed = 0;
    let boundaries = [1, 63, 64, 65, 191, 192, 193, 447, 448, 449, n];
    for &upto in &boundaries {
        let upto = upto.min(n);
        while pushed < upto {
            let i = pushed;
            let index = group.push(Box::pin(async move {
                yield_now(i % 3).await;
                i
            }));
            assert_eq!(index, i);
            pushed += 1;
        }
        assert_eq!(group.len(), pushed);
        // Read a few outcomes between pushes.
        for _ in 0..5 {
            if let Poll::Ready(Some((index, i))) = poll_next(&mut group) {
                assert_eq!(index, i);
                assert!(!seen[i], "{i} twice");
                seen[i] = true;
            }
        }
    }
    let rest = run(group.by_ref().collect::<Vec<_>>());
    for (index, i) in rest {
        assert_eq!(index, i);
        assert!(!seen[i], "{i} twice");
        seen[i] = true;
    }
    assert!(seen.iter().all(|&s| s));
    assert!(group.is_terminated());
    assert_eq!(group.running(), 0);
    assert_eq!(group.size_hint(), (0, None));
}

/// Settle-all of a group pushed across chunk boundaries, partly polled as a stream
/// (pending) first, then more pushed: every outcome in push order.
#[test]
fn settle_all_after_partial_polls_and_pushes_across_chunks() {
    let n = size(500, 200);
    let mut group: Group<Boxed<'_, usize>> = Group::new();
    for i in 0..n / 2 {
        group.push(Box::pin(async move {
            yield_now(1 + i % 2).await;
            i
        }));
    }
    assert!(poll_next(&mut group).is_pending());
    for i in n / 2..n {
        group.push(Box::pin(async move {
            yield_now(i % 4).await;
            i
        }));
    }
    assert_eq!(group.running(), n);
    let gathered = run(group.settle_all());
    assert_eq!(gathered.into_results(), (0..n).collect::<Vec<_>>());
}

/// Fail-fast after pushes and a partial poll, the error in a late chunk: every other child
/// dropped exactly once, the error with its push index.
#[test]
fn fail_fast_after_partial_polls_drops_everything_once() {
    let n = size(300, 200);
    let log = DropLog::new();
    let mut group: Group<Boxed<'_, Result<usize, usize>>> = Group::new();
    for i in 0..n / 2 {
        group.push(Box::pin(log.future(format!("kid{i}"), async move {
            if i % 2 == 0 {
                pending::<()>().await;
            } else {
                yield_now(1).await;
            }
            Ok(i)
        })));
    }
    assert!(poll_next(&mut group).is_pending());
    for i in n / 2..n {
        group.push(Box::pin(log.future(format!("kid{i}"), async move {
            if i == n - 3 {
                yield_now(2).await;
                return Err(i);
            }
            pending::<()>().await;
            Ok(i)
        })));
    }
    let mut fail = Box::pin(group.fail_fast());
    let error = run(fail.as_mut()).unwrap_err();
    assert_eq!(error.first(), (n - 3, &(n - 3)));
    log.assert_each_dropped_once("kid", n);
    drop(fail);
    log.assert_each_dropped_once("kid", n);
}

/// The limit is never exceeded, waiting children are never polled, they start in push
/// order, and pushes at every point (before the first poll, while children wait, after
/// the stream ended) go through the same window.
#[test]
fn limit_is_never_exceeded_across_chunks_and_pushes() {
    const LIMIT: usize = 5;
    let n = size(300, 140);
    let running = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(Mutex::new(Vec::new()));
    let mut group: Group<Boxed<'_, usize>> = Group::new().limit(LIMIT);
    let child = |i: usize| -> Boxed<'static, usize> {
        let (running, max, started) = (running.clone(), max.clone(), started.clone());
        Box::pin(async move {
            started.lock().unwrap().push(i);
            let now = running.fetch_add(1, SeqCst) + 1;
            max.fetch_max(now, SeqCst);
            yield_now(1 + i % 3).await;
            running.fetch_sub(1, SeqCst);
            i
        })
    };
    for i in 0..n / 3 {
        group.push(child(i));
    }
    let mut out = Vec::new();
    // Partial reads with pushes in between.
    for i in n / 3..2 * n / 3 {
        if let Poll::Ready(Some((index, v))) = poll_next(&mut group) {
            assert_eq!(index, v);
            out.push(v);
        }
        group.push(child(i));
        assert!(
            started.lock().unwrap().len() <= out.len() + LIMIT,
            "more started than finished + limit"
        );
    }
    out.extend(
        run(group.by_ref().collect::<Vec<_>>())
            .into_iter()
            .map(|(_, v)| v),
    );
    assert!(group.is_terminated());
    // After the end: more pushes.
    for i in 2 * n / 3..n {
        group.push(child(i));
    }
    assert!(!group.is_terminated());
    out.extend(
        run(group.by_ref().collect::<Vec<_>>())
            .into_iter()
            .map(|(_, v)| v),
    );
    out.sort_unstable();
    assert_eq!(out, (0..n).collect::<Vec<_>>());
    assert!(
        max.load(SeqCst) <= LIMIT,
        "max running {}",
        max.load(SeqCst)
    );
    let started = started.lock().unwrap();
    assert_eq!(*started, (0..n).collect::<Vec<_>>(), "start order");
}

/// Under `limit(2)`, children pushed while two run are not polled until a place frees.
#[test]
fn children_waiting_under_a_limit_are_never_polled() {
    let (children, handles): (Vec<_>, Vec<Handle<usize>>) = (0..70).map(|_| manual()).unzip();
    let mut group = Group::new().limit(2);
    let mut children = children.into_iter();
    group.push(children.next().unwrap());
    group.push(children.next().unwrap());
    assert!(poll_next(&mut group).is_pending());
    for child in children {
        group.push(child);
    }
    for _ in 0..3 {
        assert!(poll_next(&mut group).is_pending());
    }
    let polls: Vec<_> = handles.iter().map(|h| h.polls()).collect();
    assert_eq!(&polls[..2], [1, 1]);
    assert!(polls[2..].iter().all(|&p| p == 0), "{polls:?}");
    // Finish them one by one, in reverse order of push among the running ones.
    let mut out = Vec::new();
    for step in 0..70 {
        // A poll to start the children that may start (the last one stopped at a yield).
        assert!(poll_next(&mut group).is_pending());
        // The running ones are the two lowest not finished.
        let running: Vec<_> = (0..70)
            .filter(|&i| handles[i].polls() > 0 && !out.contains(&i))
            .collect();
        assert!(running.len() <= 2, "step {step}: {running:?}");
        let i = *running.last().unwrap();
        handles[i].complete(i);
        match poll_next(&mut group) {
            Poll::Ready(Some((index, v))) => {
                assert_eq!((index, v), (i, i));
                out.push(i);
            }
            other => panic!("step {step}: {other:?}"),
        }
    }
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
}

/// The stream's bookkeeping at each step.
#[test]
fn len_running_size_hint_and_is_terminated_at_every_step() {
    let mut group: Group<Boxed<'_, u8>> = Group::new();
    assert_eq!(
        (group.len(), group.running(), group.size_hint()),
        (0, 0, (0, None))
    );
    assert!(!group.is_terminated());
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
    assert!(group.is_terminated());
    let (a, ha) = manual::<u8>();
    group.push(Box::pin(a));
    group.push(Box::pin(ready(2)));
    assert!(!group.is_terminated());
    assert_eq!(
        (group.len(), group.running(), group.size_hint()),
        (2, 2, (2, None))
    );
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((1, 2))));
    assert_eq!(
        (group.len(), group.running(), group.size_hint()),
        (2, 1, (1, None))
    );
    assert!(poll_next(&mut group).is_pending());
    assert!(!group.is_terminated());
    ha.complete(1);
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((0, 1))));
    assert_eq!((group.len(), group.running()), (2, 0));
    assert!(!group.is_terminated(), "None not returned yet");
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
    assert!(group.is_terminated());
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
    group.push(Box::pin(ready(3)));
    assert_eq!((group.len(), group.running()), (3, 1));
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((2, 3))));
    assert!(!group.is_empty());
}

/// A child's poll panics: the group is poisoned (a later poll panics, even after a push),
/// and dropping it drops every child and output exactly once.
#[test]
fn a_childs_panic_poisons_and_drop_still_drops_everything_once() {
    quiet();
    let log = DropLog::new();
    let mut group: Group<Boxed<'_, common::Tracked>> = Group::new();
    for i in 0..70 {
        let value = log.value(format!("out{i}"));
        let log2 = log.clone();
        group.push(Box::pin(log.future(format!("kid{i}"), async move {
            if i == 66 {
                yield_now(1).await;
                panic!("boom: child");
            }
            if i % 2 == 0 {
                pending::<()>().await;
            }
            let _ = &log2;
            value
        })));
    }
    // Hand out a few.
    let mut handed = Vec::new();
    let panic = loop {
        match catch_unwind(AssertUnwindSafe(|| poll_next(&mut group))) {
            Ok(Poll::Ready(Some((i, v)))) => handed.push((i, v)),
            Ok(Poll::Pending) => {}
            Ok(Poll::Ready(None)) => panic!("ended"),
            Err(panic) => break message(panic),
        }
    };
    assert_eq!(panic, "boom: child");
    let later = catch_unwind(AssertUnwindSafe(|| poll_next(&mut group))).map_err(message);
    assert!(
        matches!(&later, Err(m) if m.contains("panicked")),
        "a poisoned group polled again: {later:?}"
    );
    group.push(Box::pin(log.future("late", ready(log.value("late out")))));
    let later = catch_unwind(AssertUnwindSafe(|| poll_next(&mut group))).map_err(message);
    assert!(later.is_err(), "poisoned, after a push: {later:?}");
    drop(handed);
    drop(group);
    log.assert_each_dropped_once("kid", 70);
    log.assert_each_dropped_once("out", 70);
    assert_eq!(log.count("late"), 1);
    assert_eq!(log.count("late out"), 1);
}

/// A child's drop panics as it finishes: poisoned; its output is dropped once with the
/// group.
#[test]
fn a_childs_drop_panicking_as_it_finishes_poisons_and_its_output_drops_once() {
    quiet();
    struct PanicDrop;
    impl Drop for PanicDrop {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("boom: child drop");
            }
        }
    }
    let log = DropLog::new();
    let mut group: Group<Boxed<'_, common::Tracked>> = Group::new();
    for i in 0..3 {
        let value = log.value(format!("out{i}"));
        group.push(Box::pin(async move {
            let bomb = (i == 1).then_some(PanicDrop);
            if i != 1 {
                pending::<()>().await;
            }
            let _ = &bomb;
            value
        }));
    }
    let first = catch_unwind(AssertUnwindSafe(|| poll_next(&mut group))).map_err(message);
    assert!(
        matches!(&first, Err(m) if m == "boom: child drop"),
        "{first:?}"
    );
    assert!(catch_unwind(AssertUnwindSafe(|| poll_next(&mut group))).is_err());
    drop(group);
    for i in 0..3 {
        assert_eq!(log.count(&format!("out{i}")), 1, "out{i}");
    }
}

/// The executor's waker panics in `clone` as the group registers it (a second executor):
/// poisoned; dropped, every clone of the waker is released.
#[test]
fn the_executors_waker_clone_panicking_poisons_and_releases_every_clone() {
    quiet();
    let log = DropLog::new();
    let mut group = pending_kids(&log, 100);
    let tw = TestWaker::new();
    let waker = tw.waker();
    assert!(poll_group_with(&mut group, &waker).is_pending());
    // A new executor's waker, whose clone panics.
    let tw2 = TestWaker::new();
    let waker2 = tw2.waker();
    tw2.panic_on_clone(true);
    let second = catch_unwind(AssertUnwindSafe(|| poll_group_with(&mut group, &waker2)));
    assert_eq!(
        second.map_err(message).err(),
        Some("boom: waker clone".to_string())
    );
    tw2.panic_on_clone(false);
    let third = catch_unwind(AssertUnwindSafe(|| poll_group_with(&mut group, &waker2)));
    assert!(third.is_err(), "poisoned");
    drop(group);
    log.assert_each_dropped_once("kid", 100);
    drop((waker, waker2));
    assert_eq!((tw.live(), tw2.live()), (0, 0));
}

/// The executor's waker panics in the self-wake at the end of a pass over budget:
/// poisoned; everything dropped once.
#[test]
fn the_executors_wake_panicking_in_the_self_wake_poisons() {
    quiet();
    let log = DropLog::new();
    let mut group = pending_kids(&log, 200);
    let tw = TestWaker::new();
    let waker = tw.waker();
    tw.panic_on_wakes(1);
    let first = catch_unwind(AssertUnwindSafe(|| poll_group_with(&mut group, &waker)));
    assert_eq!(first.map_err(message).err(), Some("boom: wake".to_string()));
    assert!(catch_unwind(AssertUnwindSafe(|| poll_group_with(&mut group, &waker))).is_err());
    drop(group);
    log.assert_each_dropped_once("kid", 200);
    drop(waker);
    assert_eq!(tw.live(), 0);
}

/// The executor's waker is not kept alive by the children's wakers once the group is gone,
/// and wakes of kept wakers (here and on other threads) after the drop are harmless.
#[test]
fn wakers_kept_in_every_chunk_after_the_group_is_dropped() {
    let n = size(460, 200);
    let (children, handles): (Vec<_>, Vec<Handle<()>>) = (0..n).map(|_| manual()).unzip();
    let mut group = Group::new();
    for child in children {
        group.push(child);
    }
    let tw = TestWaker::new();
    let waker = tw.waker();
    while handles.iter().any(|h| h.polls() == 0) {
        assert!(poll_group_with(&mut group, &waker).is_pending());
    }
    let kept: Vec<Waker> = handles.iter().map(|h| h.take_waker().unwrap()).collect();
    kept[0].wake_by_ref();
    let wakes = tw.wakes();
    drop(group);
    assert_eq!(
        tw.live(),
        1,
        "the group's clones of the executor's waker are gone"
    );
    let (a, b): (Vec<_>, Vec<_>) = kept.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let t = std::thread::spawn(move || {
        for (_, w) in a {
            w.wake_by_ref();
            w.wake();
        }
    });
    for (_, w) in b {
        let w2 = w.clone();
        w.wake();
        w2.wake_by_ref();
    }
    t.join().unwrap();
    assert_eq!(
        tw.wakes(),
        wakes,
        "no wake reaches the executor after the drop"
    );
    drop(waker);
    assert_eq!(tw.live(), 0);
}

/// Children of every chunk woken from other threads, while the group is read: none lost.
#[test]
fn wakes_from_other_threads_across_chunks_are_not_lost() {
    let n = size(2000, 150);
    let states: Vec<_> = (0..n).map(|_| event()).collect();
    let mut group: Group<Event> = Group::new();
    let mut controls = Vec::new();
    for (child, state) in states {
        group.push(child);
        controls.push(state);
    }
    let controls = Arc::new(controls);
    let got = common::block_on(async {
        // Start them all first.
        let mut got = Vec::new();
        let starter = {
            let controls = controls.clone();
            std::thread::spawn(move || {
                for (i, c) in controls.iter().enumerate().rev() {
                    // Wait until polled once (has a waker), then fire.
                    while c.polls() == 0 {
                        std::thread::yield_now();
                    }
                    c.fire();
                    if i % 64 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        };
        while let Some((i, ())) = group.next().await {
            got.push(i);
        }
        starter.join().unwrap();
        got
    });
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..n).collect::<Vec<_>>());
    for c in controls.iter() {
        // Twice (pending, then ready); once if the thread fired it during its first poll,
        // after the count. Never more: a child is polled only when woken.
        assert!((1..=2).contains(&c.polls()), "polled {} times", c.polls());
    }
}

/// Self-referential (async-block) children stay valid as the chunk list grows and the
/// group moves between polls (checked by Miri).
#[test]
fn self_referential_children_survive_growth_and_moves_of_the_group() {
    async fn child(i: usize) -> usize {
        let local = [i; 4];
        let r = &local;
        yield_now(2).await;
        r.iter().sum::<usize>() / 4
    }
    fn make<F: Future<Output = usize>>(f: fn(usize) -> F, n: usize) -> Vec<usize> {
        let mut group: Group<F> = Group::new();
        group.push(f(0));
        assert!(poll_next(&mut group).is_pending());
        // Grow past two chunk boundaries: the chunk list reallocates.
        for i in 1..n {
            group.push(f(i));
        }
        let mut moved = Box::new(group);
        assert!(poll_next(&mut *moved).is_pending());
        let group = *moved;
        let mut out: Vec<_> = run(group.collect::<Vec<_>>())
            .into_iter()
            .map(|(i, v)| {
                assert_eq!(i, v);
                v
            })
            .collect();
        out.sort_unstable();
        out
    }
    let n = size(500, 200);
    assert_eq!(make(child, n), (0..n).collect::<Vec<_>>());
}

/// Children polled exactly once per wake, never after they finished, across chunks, with
/// stale wakes of finished children (kept wakers) in between.
#[test]
fn stale_wakes_of_finished_children_poll_nothing() {
    let n = size(300, 130);
    let states: Vec<_> = (0..n).map(|_| event()).collect();
    let mut group: Group<Event> = Group::new();
    let mut controls = Vec::new();
    for (child, state) in states {
        group.push(child);
        controls.push(state);
    }
    while controls.iter().any(|c| c.polls() == 0) {
        assert!(poll_next(&mut group).is_pending());
    }
    let kept: Vec<Waker> = controls
        .iter()
        .map(|c| c.waker.lock().unwrap().clone().unwrap())
        .collect();
    for (i, c) in controls.iter().enumerate().rev() {
        c.fire();
        assert_eq!(poll_next(&mut group), Poll::Ready(Some((i, ()))));
        // Wake every finished child again: nothing to poll.
        for w in &kept[i..] {
            w.wake_by_ref();
        }
    }
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
    for c in controls.iter() {
        assert_eq!(c.polls(), 2);
    }
}

/// A pending stream is woken by the wake of any child of any chunk (checked with the
/// waker the group was last polled with); pushes do not need a wake (the next poll polls
/// them).
#[test]
fn every_pending_poll_leaves_a_wake_to_come() {
    let n = size(500, 140);
    let states: Vec<_> = (0..n).map(|_| event()).collect();
    let mut group: Group<Event> = Group::new();
    let mut controls = Vec::new();
    for (child, state) in states.into_iter().take(n / 2) {
        group.push(child);
        controls.push(state);
    }
    let (counter, waker) = CountingWaker::new();
    // Every poll that is pending with children not yet polled must self-wake.
    loop {
        let before = counter.wakes();
        assert!(poll_group_with(&mut group, &waker).is_pending());
        if controls.iter().all(|c| c.polls() == 1) {
            break;
        }
        assert!(
            counter.wakes() > before,
            "pending with children left, no wake"
        );
    }
    for i in (0..controls.len()).step_by(37) {
        let before = counter.wakes();
        controls[i].fire();
        assert!(
            counter.wakes() > before,
            "child {i}'s wake did not reach the task"
        );
        assert_eq!(
            poll_group_with(&mut group, &waker),
            Poll::Ready(Some((i, ())))
        );
    }
}

/// Dropping a group with children in every state (never polled, pending, finished and not
/// handed out, handed out, waiting under a limit) drops each exactly once, in every chunk.
#[test]
fn dropping_a_limited_group_in_every_state_drops_each_once() {
    let n = size(300, 140);
    let log = DropLog::new();
    let mut group: Group<Boxed<'_, common::Tracked>> = Group::new().limit(100);
    for i in 0..n {
        let value = log.value(format!("out{i}"));
        group.push(Box::pin(log.future(format!("kid{i}"), async move {
            if i % 3 == 0 {
                pending::<()>().await;
            }
            value
        })));
    }
    let mut handed = Vec::new();
    for _ in 0..10 {
        if let Poll::Ready(Some(item)) = poll_next(&mut group) {
            handed.push(item);
        }
    }
    drop(handed);
    drop(group);
    log.assert_each_dropped_once("kid", n);
    log.assert_each_dropped_once("out", n);
}

/// A group awaited whole via `IntoFuture` with a limit, pushes before the first poll only.
#[test]
fn into_future_with_a_limit_gives_push_order() {
    let n = size(200, 100);
    let mut group: Group<Boxed<'_, usize>> = Group::new().limit(7);
    for i in 0..n {
        group.push(Box::pin(async move {
            yield_now(n - i).await;
            i
        }));
    }
    let out = run(async { group.await }).into_results();
    assert_eq!(out, (0..n).collect::<Vec<_>>());
}

/// Fail-fast with every success, under a limit, across chunks.
#[test]
fn fail_fast_all_ok_under_a_limit_across_chunks() {
    let n = size(300, 130);
    let mut group: Group<Boxed<'_, Result<usize, ()>>> = Group::new().limit(3);
    for i in 0..n {
        group.push(Box::pin(async move {
            yield_now(i % 2).await;
            Ok(i)
        }));
    }
    assert_eq!(run(group.fail_fast()), Ok((0..n).collect::<Vec<_>>()));
}

/// Empty-group edge cases: `settle_all` and `fail_fast` of an empty group after a `None`.
#[test]
fn empty_group_after_a_none_can_still_be_awaited_whole() {
    let mut group: Group<std::future::Ready<Result<u8, u8>>> = Group::new();
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
    assert_eq!(run(group.fail_fast()), Ok(vec![]));
    let mut group: Group<std::future::Ready<u8>> = Group::new();
    assert_eq!(poll_next(&mut group), Poll::Ready(None));
    group.push(ready(4));
    assert_eq!(run(group.settle_all()).into_results(), vec![4]);
}

#[derive(Debug, PartialEq)]
enum Failure {
    TimedOut(usize),
    Panicked(usize),
    Own,
}

impl From<gather::TimedOut> for Failure {
    fn from(t: gather::TimedOut) -> Self {
        Failure::TimedOut(t.index)
    }
}

impl From<gather::Panicked> for Failure {
    fn from(p: gather::Panicked) -> Self {
        Failure::Panicked(p.index)
    }
}

/// A group awaited whole under a deadline (`settle_all().deadline(..)`, before any poll):
/// children still running are cut off across chunks, each with its push index.
#[test]
fn settle_all_under_a_deadline_cuts_off_across_chunks() {
    let n = size(300, 150);
    let log = DropLog::new();
    let mut group: Group<Boxed<'_, Result<usize, Failure>>> = Group::new();
    for i in 0..n {
        group.push(Box::pin(log.future(format!("kid{i}"), async move {
            if i % 3 == 0 {
                pending::<()>().await;
            }
            Ok(i)
        })));
    }
    // The timer fires after a few polls: every child has been polled once by then (a
    // timer that fires at the first poll cuts off the children past the first budget).
    let gathered = run(group.settle_all().deadline(yield_now(4)));
    let results = gathered.into_results();
    for (i, r) in results.iter().enumerate() {
        if i % 3 == 0 {
            assert_eq!(r, &Err(Failure::TimedOut(i)));
        } else {
            assert_eq!(r, &Ok(i));
        }
        assert_eq!(log.count(&format!("kid{i}")), 1);
    }
}

/// `settle_all().catch_panics()` under a limit: a panicking child in each chunk becomes
/// its `Panicked`, siblings go on, the limit holds.
#[test]
fn settle_all_catching_panics_under_a_limit_across_chunks() {
    quiet();
    let n = size(300, 140);
    let mut group: Group<Boxed<'_, Result<usize, Failure>>> = Group::new().limit(10);
    for i in 0..n {
        group.push(Box::pin(async move {
            yield_now(i % 2).await;
            if i == 5 || i == 70 || i == n - 1 {
                panic!("boom: child {i}");
            }
            if i == 100 {
                return Err(Failure::Own);
            }
            Ok(i)
        }));
    }
    let results = run(group.settle_all().catch_panics()).into_results();
    for (i, r) in results.into_iter().enumerate() {
        let expected = if i == 5 || i == 70 || i == n - 1 {
            Err(Failure::Panicked(i))
        } else if i == 100 {
            Err(Failure::Own)
        } else {
            Ok(i)
        };
        assert_eq!(r, expected, "child {i}");
    }
}

/// `settle_all().deadline(..).as_completed()`: the cut-off children come out last, in
/// push order.
#[test]
fn as_completed_of_a_group_under_a_deadline() {
    let n = size(200, 130);
    let mut group: Group<Boxed<'_, Result<usize, Failure>>> = Group::new();
    for i in 0..n {
        group.push(Box::pin(async move {
            if i % 2 == 0 {
                pending::<()>().await;
            }
            Ok(i)
        }));
    }
    let items = run(group
        .settle_all()
        .deadline(yield_now(1))
        .as_completed()
        .collect::<Vec<_>>());
    assert_eq!(items.len(), n);
    let cut: Vec<_> = items
        .iter()
        .filter_map(|(i, r)| match r {
            Err(Failure::TimedOut(j)) => {
                assert_eq!(i, j);
                Some(*i)
            }
            Ok(v) => {
                assert_eq!(i, v);
                None
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(cut, (0..n).step_by(2).collect::<Vec<_>>());
}

/// Auto traits: `Send` with `Send` children, `Unpin` whatever the children.
#[test]
fn auto_traits() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    fn unpin<T: Unpin>() {}
    send::<Group<Pin<Box<dyn Future<Output = u8> + Send>>>>();
    sync::<Group<Pin<Box<dyn Future<Output = u8> + Send + Sync>>>>();
    unpin::<Group<std::future::Pending<u8>>>();
    struct NotUnpin(std::marker::PhantomPinned);
    impl Future for NotUnpin {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            Poll::Ready(())
        }
    }
    unpin::<Group<NotUnpin>>();
    let mut group = Group::new();
    group.push(NotUnpin(std::marker::PhantomPinned));
    assert_eq!(poll_next(&mut group), Poll::Ready(Some((0, ()))));
    // A group sent to another thread, children sent with it.
    let mut group: Group<Pin<Box<dyn Future<Output = u8> + Send>>> = Group::new();
    group.push(Box::pin(async { 3 }));
    let out = std::thread::spawn(move || run(group.collect::<Vec<_>>()))
        .join()
        .unwrap();
    assert_eq!(out, [(0, 3)]);
}

/// Pre-existing (not new in 6cf487a), for context: a `Vec` gather of 200 children that
/// wake themselves forever never polls children 128.. (the woken ones take the whole
/// budget of every pass, `engine/per_child.rs`, `unlimited_pass`).
#[test]
fn a_vec_gather_of_200_busy_children_starts_every_one() {
    let polls: Vec<_> = (0..200).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let children: Vec<Busy> = polls.iter().map(|p| Busy(p.clone())).collect();
    let mut gathered = Box::pin(gather::gather(children));
    let (_, waker) = CountingWaker::new();
    for _ in 0..20 {
        assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    }
    let never: Vec<_> = (0..200).filter(|&i| polls[i].load(SeqCst) == 0).collect();
    assert!(
        never.is_empty(),
        "never polled in 20 passes: {} children ({:?}..)",
        never.len(),
        never.first()
    );
}

// ---------------------------------------------------------------------------------------
// Heap held by a long-lived group (a counting allocator, per thread).
// ---------------------------------------------------------------------------------------

#[path = "common/held_heap.rs"]
mod held_heap;
use held_heap::held;

/// A 1 KiB job held across one yield.
async fn job(n: usize) -> usize {
    let buffer = [n as u8; 1024];
    yield_now(1).await;
    std::hint::black_box(&buffer)[0] as usize + n
}

/// Runs `jobs` more jobs through `group`, keeping `live` of them running at a time: each
/// outcome read pushes the next job, until `jobs` have been pushed, then the rest drain.
fn run_jobs<F: Future<Output = usize>>(
    group: &mut Group<F>,
    make: impl Fn(usize) -> F,
    live: usize,
    jobs: usize,
) {
    let first = group.len();
    let end = first + jobs;
    for n in first..(first + live).min(end) {
        group.push(make(n));
    }
    let mut read = 0;
    while let Some((index, output)) = run(group.next()) {
        assert_eq!(output, index % 256 + index, "job {index}");
        read += 1;
        if group.len() < end {
            group.push(make(group.len()));
        }
    }
    assert_eq!(read, jobs);
}

/// A group used as a long-lived task set, one job at a time (push one, read its outcome,
/// repeat), holds heap for its live children only, as `FuturesUnordered` does: a slot whose
/// outcome was read takes the next child. What it holds does not grow with the jobs run
/// (before slots were reused: over 100 MiB after 100,000 jobs of 1 KiB); it is one chunk of
/// 64 slots and their wakers, which a `FuturesUnordered` does not keep (it holds one task
/// allocation per live child).
#[test]
fn a_long_lived_group_holds_heap_for_its_live_children_only() {
    let chunk = 64 * std::mem::size_of_val(&job(0));
    // (Under Miri, fewer: 10 at a time, so that 100 jobs settle the set's bookkeeping too.)
    let (first, all) = (size(1_000, 100), size(100_000, 300));
    for live in [1, size(100, 10)] {
        let before = held();
        let mut group = Group::new();
        run_jobs(&mut group, job, live, first);
        let after_1k = held() - before;
        run_jobs(&mut group, job, live, all - first);
        let after_100k = held() - before;
        drop(group);

        let before = held();
        let mut unordered = futures::stream::FuturesUnordered::new();
        for n in 0..live {
            unordered.push(job(n));
        }
        let mut pushed = live;
        while run(unordered.next()).is_some() {
            if pushed < all {
                unordered.push(job(pushed));
                pushed += 1;
            }
        }
        let unordered_held = held() - before;
        drop(unordered);
        println!(
            "{live} live: group {after_1k} bytes after {first} jobs, {after_100k} after {all}; \
             FuturesUnordered {unordered_held}"
        );
        assert_eq!(
            after_100k, after_1k,
            "{live} live: the group grew with the jobs run"
        );
        // The chunks that `live` children need (64 slots, then 128, ...), with their
        // wakers and bookkeeping.
        let slots = if live <= 64 { 1 } else { 3 } * chunk;
        assert!(
            after_100k <= slots + 16 * 1024,
            "{live} live: the group holds {after_100k} bytes (its slots: {slots})"
        );
    }
}

/// Dropping a group (of one chunk, two, or four) whose executor waker panics in its drop
/// panics once and drops every child once: the blocks hold wakers of their own, and the
/// group one clone of the executor's (before, each block held a clone, and the second
/// drop's panic during the first one's unwinding aborted the process).
#[test]
fn dropping_a_group_whose_executor_waker_drop_panics_panics_once_and_drops_every_child() {
    quiet();
    for n in [64, 65, size(300, 140)] {
        let log = DropLog::new();
        let mut group = pending_kids(&log, n);
        let tw = TestWaker::new();
        let waker = tw.waker();
        assert!(poll_group_with(&mut group, &waker).is_pending());
        tw.panic_on_drop(true);
        let dropped = catch_unwind(AssertUnwindSafe(|| drop(group)));
        tw.panic_on_drop(false);
        assert_eq!(
            dropped.map_err(message),
            Err("boom: waker drop".to_string()),
            "{n} children"
        );
        log.assert_each_dropped_once("kid", n);
        drop(waker);
        assert_eq!(tw.live(), 0, "{n} children");
    }
}

/// Fail-fast under a deadline: several children time out in one poll, every error kept
/// with its push index.
#[test]
fn fail_fast_under_a_deadline_keeps_every_timed_out_index() {
    let n = size(200, 130);
    let mut group: Group<Boxed<'_, Result<usize, Failure>>> = Group::new();
    for i in 0..n {
        group.push(Box::pin(async move {
            if i % 50 == 7 {
                pending::<()>().await;
            }
            Ok(i)
        }));
    }
    let error = run(group.settle_all().deadline(yield_now(3)).fail_fast()).unwrap_err();
    let indices: Vec<_> = error.iter().map(|(i, _)| i).collect();
    let expected: Vec<_> = (0..n).filter(|i| i % 50 == 7).collect();
    assert_eq!(indices, expected);
    for (i, e) in error.iter() {
        assert_eq!(e, &Failure::TimedOut(i));
    }
}

/// Fail-fast catching panics: the first panic is the error, with its push index.
#[test]
fn fail_fast_catching_panics_in_a_late_chunk() {
    quiet();
    let n = size(200, 130);
    let log = DropLog::new();
    let mut group: Group<Boxed<'_, Result<usize, Failure>>> = Group::new();
    for i in 0..n {
        group.push(Box::pin(log.future(format!("kid{i}"), async move {
            if i == n - 2 {
                yield_now(1).await;
                panic!("boom: late");
            }
            pending::<()>().await;
            Ok(i)
        })));
    }
    let error = run(group.settle_all().catch_panics().fail_fast()).unwrap_err();
    assert_eq!(error.first(), (n - 2, &Failure::Panicked(n - 2)));
    log.assert_each_dropped_once("kid", n);
}
