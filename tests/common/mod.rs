//! Helpers shared by the integration tests, and the behaviour cases that every runtime
//! runs (`cases`, through `runtime_cases!`).
#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

pub mod cases;
pub mod graceful;
pub mod test_waker;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

/// A waker that counts its wakes.
#[derive(Default)]
pub struct CountingWaker {
    wakes: AtomicUsize,
}

impl CountingWaker {
    pub fn new() -> (Arc<Self>, Waker) {
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        (counter, waker)
    }

    pub fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A fixed pseudo-random permutation of `0..len`, different for each `seed`.
pub fn shuffled_with(len: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..len).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// A fixed pseudo-random permutation of `0..len`.
pub fn shuffled(len: usize) -> Vec<usize> {
    shuffled_with(len, 1)
}

/// Polls `future` once with `waker`.
pub fn poll_with<F: Future + ?Sized>(future: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(waker))
}

/// Polls until ready with a counting waker, re-polling only when the gather was woken.
/// Panics if the future stays pending without having been woken (a lost wakeup), or needs
/// more than `max_polls` polls.
#[track_caller]
pub fn drive<F: Future>(future: F, max_polls: usize) -> F::Output {
    let (counter, waker) = CountingWaker::new();
    let mut future = std::pin::pin!(future);
    for _ in 0..max_polls {
        let before = counter.wakes();
        if let Poll::Ready(output) = poll_with(future.as_mut(), &waker) {
            return output;
        }
        assert!(
            counter.wakes() > before,
            "pending without a wake: the gather would hang"
        );
    }
    panic!("not ready after {max_polls} polls");
}

/// Runs a future on the current thread with nothing but a thread-parking waker.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut future = std::pin::pin!(future);
    loop {
        match poll_with(future.as_mut(), &waker) {
            Poll::Ready(output) => return output,
            Poll::Pending => thread::park(),
        }
    }
}

/// Shared state of a [`Manual`] child: the test decides when it finishes.
struct ManualState<T> {
    output: Option<T>,
    waker: Option<Waker>,
    polls: usize,
    finished: bool,
}

/// A child that stays pending until its [`Handle`] completes it.
pub struct Manual<T> {
    state: Arc<Mutex<ManualState<T>>>,
}

/// The test's side of a [`Manual`] child.
pub struct Handle<T> {
    state: Arc<Mutex<ManualState<T>>>,
}

pub fn manual<T>() -> (Manual<T>, Handle<T>) {
    let state = Arc::new(Mutex::new(ManualState {
        output: None,
        waker: None,
        polls: 0,
        finished: false,
    }));
    (
        Manual {
            state: state.clone(),
        },
        Handle { state },
    )
}

impl<T> Handle<T> {
    /// Gives the child its output and wakes whoever polled it last.
    pub fn complete(&self, output: T) {
        let waker = {
            let mut state = self.state.lock().unwrap();
            state.output = Some(output);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Takes the waker the child registered at its last poll, as a reactor would.
    pub fn take_waker(&self) -> Option<Waker> {
        self.state.lock().unwrap().waker.take()
    }

    /// How many times the child was polled.
    pub fn polls(&self) -> usize {
        self.state.lock().unwrap().polls
    }

    /// Whether the child future still exists (not dropped).
    pub fn alive(&self) -> bool {
        Arc::strong_count(&self.state) > 1
    }
}

impl<T> Future for Manual<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.state.lock().unwrap();
        assert!(!state.finished, "child polled after it finished");
        state.polls += 1;
        match state.output.take() {
            Some(output) => {
                state.finished = true;
                Poll::Ready(output)
            }
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Counts drops of [`Tracked`] values and [`TrackedFuture`]s.
#[derive(Clone, Default)]
pub struct DropLog {
    drops: Arc<Mutex<Vec<String>>>,
}

impl DropLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every drop so far, by label, in order.
    pub fn drops(&self) -> Vec<String> {
        self.drops.lock().unwrap().clone()
    }

    /// How many times `label` was dropped.
    pub fn count(&self, label: &str) -> usize {
        self.drops
            .lock()
            .unwrap()
            .iter()
            .filter(|l| *l == label)
            .count()
    }

    /// Asserts that each of `{prefix}0` to `{prefix}{n - 1}` was dropped exactly once (one
    /// count of the log for all of them: the log is read once, not once per label).
    #[track_caller]
    pub fn assert_each_dropped_once(&self, prefix: &str, n: usize) {
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        let drops = self.drops.lock().unwrap();
        for label in drops.iter() {
            *counts.entry(label.as_str()).or_default() += 1;
        }
        for i in 0..n {
            let label = format!("{prefix}{i}");
            let count = counts.get(label.as_str()).copied().unwrap_or(0);
            assert_eq!(count, 1, "{label} dropped {count} times");
        }
    }

    /// Asserts that nothing was dropped more than once (`context` names the case).
    #[track_caller]
    pub fn assert_none_dropped_twice(&self, context: &str) {
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        let drops = self.drops.lock().unwrap();
        for label in drops.iter() {
            *counts.entry(label.as_str()).or_default() += 1;
        }
        for (label, count) in counts {
            assert_eq!(count, 1, "{label} dropped {count} times: {context}");
        }
    }

    /// A value that records its drop under `label`.
    pub fn value(&self, label: impl Into<String>) -> Tracked {
        Tracked {
            label: label.into(),
            log: self.clone(),
        }
    }

    /// Wraps `future` so that its drop is recorded under `label`.
    pub fn future<F>(&self, label: impl Into<String>, future: F) -> TrackedFuture<F> {
        TrackedFuture {
            future: Box::pin(future),
            _tracked: self.value(label),
        }
    }
}

/// A value that records its drop.
#[derive(Debug)]
pub struct Tracked {
    label: String,
    log: DropLog,
}

impl Tracked {
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl std::fmt::Debug for DropLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.drops().iter()).finish()
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log
            .drops
            .lock()
            .unwrap()
            .push(std::mem::take(&mut self.label));
    }
}

/// A future that records its drop.
pub struct TrackedFuture<F> {
    future: Pin<Box<F>>,
    _tracked: Tracked,
}

impl<F: Future> Future for TrackedFuture<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.future.as_mut().poll(cx)
    }
}

/// A runtime-agnostic timer: the first poll starts a thread that sleeps for `duration`
/// and then wakes the child from that thread.
pub fn delay(duration: Duration) -> Delay {
    Delay {
        duration,
        shared: None,
        log: None,
    }
}

pub fn delay_ms(ms: u64) -> Delay {
    delay(Duration::from_millis(ms))
}

/// Wake order as the timer threads wake their children: each fires (marks itself done,
/// appends its label and wakes its child) while holding this lock, so the log's order is
/// the order of the wakes, whatever the clock did (under Miri the clock is virtual and
/// other tests run between polls, so timer gaps alone do not fix an order).
pub type WakeLog = Arc<Mutex<Vec<usize>>>;

/// `delay_ms` that appends `label` to `log` when it wakes its child.
pub fn delay_ms_logged(ms: u64, label: usize, log: WakeLog) -> Delay {
    Delay {
        log: Some((label, log)),
        ..delay_ms(ms)
    }
}

struct DelayShared {
    done: bool,
    waker: Waker,
}

pub struct Delay {
    duration: Duration,
    shared: Option<Arc<Mutex<DelayShared>>>,
    log: Option<(usize, WakeLog)>,
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &self.shared {
            Some(shared) => {
                let mut shared = shared.lock().unwrap();
                if shared.done {
                    return Poll::Ready(());
                }
                shared.waker.clone_from(cx.waker());
                Poll::Pending
            }
            None => {
                let shared = Arc::new(Mutex::new(DelayShared {
                    done: false,
                    waker: cx.waker().clone(),
                }));
                let timer = shared.clone();
                let duration = self.duration;
                let log = self.log.take();
                thread::spawn(move || {
                    thread::sleep(duration);
                    let fire = || {
                        let waker = {
                            let mut timer = timer.lock().unwrap();
                            timer.done = true;
                            timer.waker.clone()
                        };
                        waker.wake();
                    };
                    match log {
                        Some((label, log)) => {
                            let mut log = log.lock().unwrap();
                            fire();
                            log.push(label);
                        }
                        None => fire(),
                    }
                });
                self.shared = Some(shared);
                Poll::Pending
            }
        }
    }
}

/// An iterator (or a stream) whose `size_hint` is the second field, whatever it holds:
/// `size_hint` may be wrong.
pub struct Liar<I>(pub I, pub (usize, Option<usize>));

impl<I: Iterator> Iterator for Liar<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.1
    }
}

/// Wakes itself and returns `Pending` `times` times, then finishes.
pub fn yield_now(times: usize) -> YieldNow {
    YieldNow { left: times }
}

pub struct YieldNow {
    left: usize,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.left == 0 {
            return Poll::Ready(());
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Defines one `#[test]` per shared behaviour case, each run with `$run`, a function
/// taking the case's future and driving it to completion; `$sleep` makes the runtime's
/// own timer future from a `Duration` (for the deadline case).
#[macro_export]
macro_rules! runtime_cases {
    ($run:expr, $sleep:expr) => {
        #[test]
        fn deadline_cuts_off_slow_children() {
            let run = $run;
            run($crate::common::cases::deadline_cuts_off_slow_children($sleep));
        }

        #[test]
        fn graceful_fail_fast_lets_the_others_roll_back() {
            let run = $run;
            run($crate::common::cases::graceful_fail_fast_lets_the_others_roll_back($sleep));
        }

        #[test]
        fn graceful_deadline_lets_the_cut_off_children_wind_down() {
            let run = $run;
            run($crate::common::cases::graceful_deadline_lets_the_cut_off_children_wind_down($sleep));
        }

        #[test]
        fn graceful_as_completed_hands_out_the_stops_as_they_come() {
            let run = $run;
            run($crate::common::cases::graceful_as_completed_hands_out_the_stops_as_they_come($sleep));
        }

        #[test]
        fn graceful_under_a_limit_with_a_caught_panic() {
            let run = $run;
            run($crate::common::cases::graceful_under_a_limit_with_a_caught_panic($sleep));
        }

        $crate::runtime_cases!(@cases $run;
            settle_all_keeps_input_order_whatever_order_children_finish,
            settle_all_keeps_every_error_with_its_index,
            settle_all_of_a_tuple_keeps_each_output_type,
            settle_all_of_a_vec_and_an_iterator,
            fail_fast_returns_the_failing_index_and_drops_pending_siblings,
            fail_fast_returns_every_success_in_input_order,
            empty_inputs_resolve_at_once,
            children_may_borrow_local_data,
            many_children_woken_from_other_threads,
            as_completed_yields_in_completion_order,
            catch_panics_keeps_siblings_going,
            limit_caps_running_children,
        );
    };
    (@cases $run:expr; $($case:ident,)*) => {
        $(
            #[test]
            fn $case() {
                let run = $run;
                run($crate::common::cases::$case());
            }
        )*
    };
}

/// A size: `native`, or `miri` under Miri (which is slow).
pub const fn size(native: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        native
    }
}

/// Runs `future` to its end, failing on a lost wake or a hang (see [`drive`]).
pub fn run<F: Future>(future: F) -> F::Output {
    drive(future, 100_000)
}

/// Polls `stream` once with a waker of its own.
pub fn poll_next<S: futures::Stream + Unpin>(stream: &mut S) -> Poll<Option<S::Item>> {
    let (_, waker) = CountingWaker::new();
    futures::StreamExt::poll_next_unpin(stream, &mut Context::from_waker(&waker))
}

/// Silences every panic message, for tests that panic on purpose in many ways (set
/// `REVIEW_LOUD` to see them).
pub fn quiet_all() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("REVIEW_LOUD").is_none() {
        ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    }
}

/// Silences the panics a test raises on purpose (their messages start with "boom").
pub fn quiet() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !msg.starts_with("boom") {
                default(info);
            }
        }));
    });
}
