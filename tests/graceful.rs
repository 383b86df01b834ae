//! The graceful layer: a failure or the deadline raises the signal, the children still
//! running wind down in a grace period, and only what is left is cut off.
mod common;

use std::cell::Cell;
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll};

use gather::{gather, gather_iter, StopError, StopSignal, Stopped};

use common::graceful::{ready_items, settle, Error};
use common::{poll_next, poll_with, quiet, run, CountingWaker};

/// What a child does once it sees the signal.
#[derive(Clone, Copy, Debug)]
enum OnSignal {
    /// Nothing: it keeps waiting (and is cut off when the grace ends).
    Ignore,
    /// Cleans up for `polls` more polls (waking itself), then finishes with this.
    Finish { polls: usize, with: Outcome },
}

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Ok(u32),
    Failed(u32),
    Stopped,
}

impl Outcome {
    fn result(self) -> Result<u32, Error> {
        match self {
            Outcome::Ok(n) => Ok(n),
            Outcome::Failed(n) => Err(Error::Failed(n)),
            Outcome::Stopped => Err(Error::Stopped),
        }
    }
}

/// What the test sees of a child: its polls, whether it saw the signal, its drop.
#[derive(Default)]
struct Probe {
    polls: Cell<usize>,
    polls_after_raise: Cell<usize>,
    dropped: Cell<usize>,
}

/// A child: finishes with `first` after `after` polls (waking itself in between), unless
/// `first` is `None`: then it waits for the signal and does what `on_signal` says.
struct Child<'a> {
    signal: &'a StopSignal,
    probe: Rc<Probe>,
    first: Option<(usize, Outcome)>,
    on_signal: OnSignal,
    cleanup_left: Option<usize>,
}

impl Future for Child<'_> {
    type Output = Result<u32, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let probe = self.probe.clone();
        probe.polls.set(probe.polls.get() + 1);
        if self.signal.is_raised() {
            probe
                .polls_after_raise
                .set(probe.polls_after_raise.get() + 1);
        }
        if let Some((after, outcome)) = self.first {
            if probe.polls.get() > after {
                return Poll::Ready(outcome.result());
            }
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if !self.signal.is_raised() {
            // Waits for the gather to raise the signal: it polls us again then.
            return Poll::Pending;
        }
        match self.on_signal {
            OnSignal::Ignore => Poll::Pending,
            OnSignal::Finish { polls, with } => {
                let left = *self.cleanup_left.get_or_insert(polls);
                if left == 0 {
                    return Poll::Ready(with.result());
                }
                self.cleanup_left = Some(left - 1);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

impl Drop for Child<'_> {
    fn drop(&mut self) {
        self.probe.dropped.set(self.probe.dropped.get() + 1);
    }
}

/// Makes children over one signal, keeping their probes.
struct Kids<'a> {
    signal: &'a StopSignal,
    probes: Vec<Rc<Probe>>,
}

impl<'a> Kids<'a> {
    fn new(signal: &'a StopSignal) -> Self {
        Kids {
            signal,
            probes: Vec::new(),
        }
    }

    fn child(&mut self, first: Option<(usize, Outcome)>, on_signal: OnSignal) -> Child<'a> {
        let probe = Rc::new(Probe::default());
        self.probes.push(probe.clone());
        Child {
            signal: self.signal,
            probe,
            first,
            on_signal,
            cleanup_left: None,
        }
    }

    /// Finishes with `outcome` at its `polls + 1`-th poll, whatever the signal.
    fn finishing(&mut self, polls: usize, outcome: Outcome) -> Child<'a> {
        self.child(Some((polls, outcome)), OnSignal::Ignore)
    }

    /// Fails at its first poll.
    fn failing(&mut self, code: u32) -> Child<'a> {
        self.finishing(0, Outcome::Failed(code))
    }

    /// Waits for the signal, then finishes with `with` after `polls` polls of clean-up.
    fn listening(&mut self, polls: usize, with: Outcome) -> Child<'a> {
        self.child(None, OnSignal::Finish { polls, with })
    }

    /// Waits, and goes on waiting after the signal.
    fn ignoring(&mut self) -> Child<'a> {
        self.child(None, OnSignal::Ignore)
    }

    fn polls(&self) -> Vec<usize> {
        self.probes.iter().map(|p| p.polls.get()).collect()
    }

    fn polls_after_raise(&self) -> Vec<usize> {
        self.probes
            .iter()
            .map(|p| p.polls_after_raise.get())
            .collect()
    }

    fn drops(&self) -> Vec<usize> {
        self.probes.iter().map(|p| p.dropped.get()).collect()
    }
}

/// A timer the test fires by hand; it counts its polls.
#[derive(Clone, Default)]
struct Switch {
    fired: Rc<Cell<bool>>,
    polls: Rc<Cell<usize>>,
}

impl Switch {
    fn fire(&self) {
        self.fired.set(true);
    }

    fn timer(&self) -> SwitchTimer {
        SwitchTimer(self.clone())
    }
}

struct SwitchTimer(Switch);

impl Future for SwitchTimer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        let switch = &self.0;
        switch.polls.set(switch.polls.get() + 1);
        if switch.fired.get() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// A grace closure that counts its calls and makes a timer of `switch`.
fn grace<'a>(switch: &'a Switch, made: &'a Cell<usize>) -> impl FnOnce() -> SwitchTimer + 'a {
    move || {
        made.set(made.get() + 1);
        switch.timer()
    }
}

#[test]
fn without_a_failure_the_signal_is_never_raised_and_no_grace_timer_is_made() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![
        kids.finishing(2, Outcome::Ok(1)),
        kids.finishing(0, Outcome::Ok(2)),
    ];
    let (switch, made) = (Switch::default(), Cell::new(0));
    let gathered = run(gather(children).graceful(&signal, grace(&switch, &made)));
    assert_eq!(gathered.into_results(), [Ok(1), Ok(2)]);
    assert!(!signal.is_raised());
    assert_eq!(made.get(), 0);
    assert_eq!(kids.drops(), [1, 1]);
}

#[test]
fn a_failure_raises_the_signal_and_the_running_children_wind_down_in_settle_all() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![
        kids.listening(0, Outcome::Stopped),
        kids.finishing(1, Outcome::Failed(1)),
        kids.listening(2, Outcome::Ok(7)),
        kids.listening(1, Outcome::Failed(3)),
    ];
    let (switch, made) = (Switch::default(), Cell::new(0));
    let gathered = run(gather(children).graceful(&signal, grace(&switch, &made)));
    assert!(signal.is_raised());
    assert_eq!(made.get(), 1);
    assert_eq!(gathered.stopped().collect::<Vec<_>>(), [0]);
    assert_eq!(
        gathered.failures().map(|(i, _)| i).collect::<Vec<_>>(),
        [1, 3]
    );
    assert_eq!(
        gathered.into_results(),
        [
            Err(Error::Stopped),
            Err(Error::Failed(1)),
            Ok(7),
            Err(Error::Failed(3))
        ]
    );
    // The grace timer was polled while children cleaned up, never fired.
    assert!(switch.polls.get() > 0);
    assert_eq!(kids.drops(), [1, 1, 1, 1]);
}

#[test]
fn fail_fast_reports_the_failures_of_the_grace_period_but_not_the_stopped_children() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![
        kids.listening(0, Outcome::Stopped),
        kids.finishing(1, Outcome::Failed(1)),
        kids.listening(2, Outcome::Ok(7)),
        kids.listening(1, Outcome::Failed(3)),
    ];
    let (switch, made) = (Switch::default(), Cell::new(0));
    let error = run(gather(children)
        .graceful(&signal, grace(&switch, &made))
        .fail_fast())
    .unwrap_err();
    assert_eq!(
        error.iter().collect::<Vec<_>>(),
        [(1, &Error::Failed(1)), (3, &Error::Failed(3))]
    );
    assert_eq!(error.total(), 4);
    assert_eq!(kids.drops(), [1, 1, 1, 1]);
}

#[test]
fn fail_fast_without_a_failure_returns_every_success() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = [
        kids.finishing(3, Outcome::Ok(1)),
        kids.finishing(1, Outcome::Ok(2)),
    ];
    let (switch, made) = (Switch::default(), Cell::new(0));
    let all = run(gather(children)
        .graceful(&signal, grace(&switch, &made))
        .fail_fast());
    assert_eq!(all, Ok([1, 2]));
    assert!(!signal.is_raised());
}

#[test]
fn children_that_ignore_the_signal_are_cut_off_as_stopped_when_the_grace_timer_fires() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![
        kids.ignoring(),
        kids.failing(1),
        kids.listening(3, Outcome::Ok(2)),
    ];
    let (switch, made) = (Switch::default(), Cell::new(0));
    let mut gathered = pin!(gather(children).graceful(&signal, grace(&switch, &made)));
    // The failure, the pass that shows the others the signal, the clean-up: then only
    // the child that ignores it is left, waiting for the grace timer.
    assert!(settle(gathered.as_mut()).0.is_pending());
    assert_eq!(kids.drops(), [0, 1, 1]);
    // (Swept with the gather's waker: polled at each pass of the grace period.)
    assert!(kids.polls_after_raise()[0] >= 1);
    let polls_before = kids.polls();
    switch.fire();
    let Poll::Ready(gathered) = settle(gathered.as_mut()).0 else {
        panic!("the grace timer fired: the gather is done");
    };
    // Cut off without another poll, dropped once.
    assert_eq!(kids.polls(), polls_before);
    assert_eq!(kids.drops(), [1, 1, 1]);
    assert_eq!(
        gathered.into_results(),
        [Err(Error::Stopped), Err(Error::Failed(1)), Ok(2)]
    );
}

#[test]
fn a_grace_timer_that_fires_at_once_still_lets_every_running_child_see_the_signal() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![
        kids.listening(0, Outcome::Stopped),
        kids.listening(2, Outcome::Ok(1)),
        kids.failing(2),
    ];
    let gathered = run(gather(children).graceful(&signal, || std::future::ready(())));
    // The one that finishes on its first poll after the raise does; the one that needed
    // two more polls is cut off.
    assert_eq!(kids.polls_after_raise(), [1, 1, 0]);
    assert_eq!(
        gathered.into_results(),
        [
            Err(Error::Stopped),
            Err(Error::Stopped),
            Err(Error::Failed(2))
        ]
    );
}

#[test]
fn children_that_take_several_polls_to_clean_up_finish_before_a_later_grace_timer() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![kids.listening(5, Outcome::Stopped), kids.failing(1)];
    let (switch, made) = (Switch::default(), Cell::new(0));
    let mut gathered = pin!(gather(children).graceful(&signal, grace(&switch, &made)));
    let Poll::Ready(gathered) = settle(gathered.as_mut()).0 else {
        panic!("every child finished in the grace period");
    };
    assert_eq!(kids.polls_after_raise(), [6, 0]);
    // Polled after each pass of the grace period, never fired.
    assert!(switch.polls.get() >= 5);
    assert_eq!(
        gathered.into_results(),
        [Err(Error::Stopped), Err(Error::Failed(1))]
    );
}

#[test]
fn every_running_child_is_polled_once_more_after_the_raise_with_per_child_wakers() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let mut children: Vec<_> = (0..64)
        .map(|_| kids.listening(0, Outcome::Stopped))
        .collect();
    children.push(kids.finishing(1, Outcome::Failed(64)));
    let gathered = run(gather(children).graceful(&signal, std::future::pending::<()>));
    let polls = kids.polls();
    // Each listener: its first poll, then the one after the raise; no other.
    assert!(polls[..64].iter().all(|&p| p == 2), "{polls:?}");
    assert_eq!(gathered.stopped().count(), 64);
    assert_eq!(gathered.failures().count(), 1);
}

#[test]
fn every_running_child_is_polled_once_more_after_the_raise_in_an_array() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = [
        kids.listening(0, Outcome::Stopped),
        kids.listening(1, Outcome::Ok(5)),
        kids.finishing(2, Outcome::Failed(2)),
    ];
    let gathered = run(gather(children).graceful(&signal, std::future::pending::<()>));
    assert_eq!(kids.polls_after_raise(), [1, 2, 0]);
    assert_eq!(
        gathered.into_results(),
        [Err(Error::Stopped), Ok(5), Err(Error::Failed(2))]
    );
}

#[test]
fn a_tuple_stops_gracefully_too() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = (
        kids.listening(0, Outcome::Stopped),
        kids.failing(1),
        async { Ok::<&str, Error>("done") },
    );
    let (a, b, c) =
        run(gather(children).graceful(&signal, std::future::pending::<()>)).into_results();
    assert_eq!(
        (a, b, c),
        (Err(Error::Stopped), Err(Error::Failed(1)), Ok("done"))
    );
}

#[test]
fn under_a_limit_the_children_waiting_for_a_place_never_start() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let mut children = vec![
        kids.finishing(1, Outcome::Failed(0)),
        kids.listening(1, Outcome::Stopped),
        kids.listening(0, Outcome::Ok(2)),
    ];
    children.extend((3..10).map(|_| kids.listening(0, Outcome::Ok(9))));
    let gathered = run(gather(children)
        .limit(3)
        .graceful(&signal, std::future::pending::<()>));
    let polls = kids.polls();
    assert!(polls[3..].iter().all(|&p| p == 0), "{polls:?}");
    assert_eq!(kids.drops(), [1; 10]);
    let results = gathered.into_results();
    assert_eq!(
        results[..3],
        [Err(Error::Failed(0)), Err(Error::Stopped), Ok(2)]
    );
    // Never started: stopped, not failed.
    assert!(results[3..].iter().all(|r| *r == Err(Error::Stopped)));
}

#[test]
fn a_lazy_input_takes_no_child_out_to_run_after_the_stop() {
    let signal = StopSignal::new();
    let made = Cell::new(0);
    let mut kids = Kids::new(&signal);
    let mut pool: Vec<_> = vec![kids.failing(0), kids.listening(2, Outcome::Stopped)];
    pool.extend((2..8).map(|_| kids.listening(0, Outcome::Ok(1))));
    let children = pool.into_iter().inspect(|_| made.set(made.get() + 1));
    let gathered = run(gather_iter(children)
        .limit(2)
        .graceful(&signal, std::future::pending::<()>));
    let polls = kids.polls();
    assert!(polls[2..].iter().all(|&p| p == 0), "{polls:?}");
    // Every child has an outcome: those never taken out to run are stopped.
    let results = gathered.into_results().into_vec();
    assert_eq!(results.len(), 8);
    assert_eq!(results[..2], [Err(Error::Failed(0)), Err(Error::Stopped)]);
    assert!(results[2..].iter().all(|r| *r == Err(Error::Stopped)));
    assert_eq!(kids.drops(), [1; 8]);
}

#[test]
fn the_deadline_begins_a_stop_and_the_children_left_at_its_end_time_out() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![
        kids.finishing(0, Outcome::Ok(1)),
        kids.listening(1, Outcome::Stopped),
        kids.ignoring(),
        kids.listening(0, Outcome::Ok(4)),
    ];
    let (deadline, switch, made) = (Switch::default(), Switch::default(), Cell::new(0));
    let mut gathered = pin!(gather(children)
        .deadline(deadline.timer())
        .graceful(&signal, grace(&switch, &made)));
    assert!(settle(gathered.as_mut()).0.is_pending());
    assert!(!signal.is_raised());
    deadline.fire();
    assert!(settle(gathered.as_mut()).0.is_pending());
    assert!(signal.is_raised());
    assert_eq!(made.get(), 1);
    let deadline_polls = deadline.polls.get();
    switch.fire();
    let Poll::Ready(gathered) = settle(gathered.as_mut()).0 else {
        panic!("the grace timer fired");
    };
    // The deadline is not polled once it fired.
    assert_eq!(deadline.polls.get(), deadline_polls);
    assert_eq!(
        gathered.into_results(),
        [Ok(1), Err(Error::Stopped), Err(Error::TimedOut(2)), Ok(4)]
    );
    assert_eq!(kids.drops(), [1; 4]);
}

#[test]
fn fail_fast_under_a_deadline_is_ok_when_every_child_left_succeeds_in_the_grace_period() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![
        kids.listening(1, Outcome::Ok(1)),
        kids.listening(0, Outcome::Ok(2)),
    ];
    let all = run(gather(children)
        .deadline(std::future::ready(()))
        .graceful(&signal, std::future::pending::<()>)
        .fail_fast());
    assert!(signal.is_raised());
    assert_eq!(all.unwrap(), [1, 2]);
}

#[test]
fn fail_fast_under_a_deadline_reports_the_timeouts_and_failures_not_the_stopped() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![
        kids.listening(0, Outcome::Stopped),
        kids.ignoring(),
        kids.listening(0, Outcome::Failed(2)),
    ];
    let error = run(gather(children)
        .deadline(std::future::ready(()))
        .graceful(&signal, || std::future::ready(()))
        .fail_fast())
    .unwrap_err();
    assert_eq!(
        error.iter().collect::<Vec<_>>(),
        [(1, &Error::TimedOut(1)), (2, &Error::Failed(2))]
    );
}

#[test]
fn fail_fast_reports_the_stopped_children_when_nothing_else_failed() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    // A child that says "stopped" with no stop under way (the signal was raised before,
    // say): a failure all the same, the only one.
    let children = vec![
        kids.listening(0, Outcome::Ok(1)),
        kids.finishing(0, Outcome::Stopped),
    ];
    let error = run(gather(children)
        .graceful(&signal, std::future::pending::<()>)
        .fail_fast())
    .unwrap_err();
    assert_eq!(error.iter().collect::<Vec<_>>(), [(1, &Error::Stopped)]);
}

#[test]
fn as_completed_hands_out_the_stopped_children_as_they_come_then_the_cut_off_ones() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![
        kids.ignoring(),
        kids.listening(2, Outcome::Stopped),
        kids.failing(2),
        kids.listening(0, Outcome::Ok(3)),
        kids.ignoring(),
    ];
    let (switch, made) = (Switch::default(), Cell::new(0));
    let mut stream = gather(children)
        .graceful(&signal, grace(&switch, &made))
        .as_completed();
    let mut items = ready_items(&mut stream);
    assert_eq!(
        items,
        [
            (2, Err(Error::Failed(2))),
            (3, Ok(3)),
            (1, Err(Error::Stopped))
        ]
    );
    switch.fire();
    items.extend(ready_items(&mut stream));
    assert_eq!(
        items[3..],
        [(0, Err(Error::Stopped)), (4, Err(Error::Stopped))]
    );
    assert!(matches!(poll_next(&mut stream), Poll::Ready(None)));
    drop(stream);
    assert_eq!(kids.drops(), [1; 5]);
}

#[test]
fn dropping_the_gather_during_the_grace_period_drops_every_child_at_once() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![
        kids.ignoring(),
        kids.failing(1),
        kids.listening(100, Outcome::Ok(1)),
    ];
    let (switch, made) = (Switch::default(), Cell::new(0));
    let mut gathered = Box::pin(gather(children).graceful(&signal, grace(&switch, &made)));
    let (_, waker) = CountingWaker::new();
    for _ in 0..3 {
        assert!(poll_with(gathered.as_mut(), &waker).is_pending());
    }
    assert!(signal.is_raised());
    assert_eq!(kids.drops(), [0, 1, 0]);
    drop(gathered);
    assert_eq!(kids.drops(), [1, 1, 1]);
}

#[test]
fn a_caught_panic_begins_the_stop_and_one_in_the_grace_period_joins_the_failures() {
    quiet();
    let signal = StopSignal::new();
    let flag = &signal;
    type Child<'a> = Pin<Box<dyn Future<Output = Result<u32, Error>> + 'a>>;
    let children: Vec<Child<'_>> = vec![
        Box::pin(async { panic!("boom: first") }),
        Box::pin(std::future::poll_fn(move |_| {
            if flag.is_raised() {
                panic!("boom: while stopping")
            }
            Poll::Pending
        })),
        Box::pin(std::future::poll_fn(move |_| {
            if flag.is_raised() {
                Poll::Ready(Err(Error::Stopped))
            } else {
                Poll::Pending
            }
        })),
    ];
    let error = run(gather(children)
        .catch_panics()
        .graceful(&signal, std::future::pending::<()>)
        .fail_fast())
    .unwrap_err();
    assert_eq!(
        error.iter().collect::<Vec<_>>(),
        [(0, &Error::Panicked(0)), (1, &Error::Panicked(1))]
    );
}

#[test]
fn a_grace_closure_that_panics_poisons_the_gather_and_every_child_is_dropped_once() {
    quiet();
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![kids.ignoring(), kids.failing(1)];
    let mut gathered = Box::pin(
        gather(children).graceful(&signal, || -> SwitchTimer { panic!("boom: no timer") }),
    );
    let (_, waker) = CountingWaker::new();
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = poll_with(gathered.as_mut(), &waker);
    }));
    assert!(first.is_err());
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = poll_with(gathered.as_mut(), &waker);
    }));
    let message = again.unwrap_err();
    assert!(message
        .downcast_ref::<&str>()
        .is_some_and(|m| m.contains("panicked")));
    drop(gathered);
    assert_eq!(kids.drops(), [1, 1]);
}

#[test]
fn the_grace_timer_is_made_once_however_many_children_fail() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![
        kids.failing(0),
        kids.failing(1),
        kids.listening(0, Outcome::Failed(2)),
        kids.finishing(3, Outcome::Failed(3)),
    ];
    let (switch, made) = (Switch::default(), Cell::new(0));
    let gathered = run(gather(children).graceful(&signal, grace(&switch, &made)));
    assert_eq!(made.get(), 1);
    assert_eq!(gathered.failures().count(), 4);
}

#[test]
fn layers_may_come_in_any_order_around_graceful() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let children = vec![kids.failing(0), kids.listening(0, Outcome::Stopped)];
    let gathered = run(gather(children)
        .graceful(&signal, std::future::pending::<()>)
        .catch_panics()
        .deadline(std::future::pending::<()>()));
    assert_eq!(
        gathered.into_results(),
        [Err(Error::Failed(0)), Err(Error::Stopped)]
    );
}

#[test]
fn raised_is_pending_until_the_signal_is_raised() {
    let signal = StopSignal::new();
    let (_, waker) = CountingWaker::new();
    let mut raised = pin!(signal.raised());
    assert!(poll_with(raised.as_mut(), &waker).is_pending());
    let children = [async { Err::<(), Stopped>(Stopped) }];
    let _ = run(gather(children).graceful(&signal, std::future::pending::<()>));
    // No child was left to stop: the signal is raised only for a stop under way.
    assert!(!signal.is_raised());
    let mut kids = Kids::new(&signal);
    let children = vec![kids.failing(0), kids.listening(0, Outcome::Stopped)];
    let _ = run(gather(children).graceful(&signal, std::future::pending::<()>));
    assert_eq!(poll_with(raised.as_mut(), &waker), Poll::Ready(Stopped));
}

#[test]
fn boxed_errors_say_whether_they_are_a_stop() {
    type Boxed = Box<dyn std::error::Error + Send + Sync>;
    let stopped: Boxed = Stopped.into();
    let other: Boxed = "refused".into();
    assert!(stopped.is_stopped());
    assert!(!other.is_stopped());
}

#[test]
fn a_stream_item_not_taken_in_before_the_failure_never_runs() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let pool: Vec<_> = vec![
        kids.failing(1),
        kids.listening(0, Outcome::Ok(1)),
        kids.listening(0, Outcome::Ok(2)),
    ];
    let gathered = run(gather::gather_stream(futures::stream::iter(pool))
        .graceful(&signal, std::future::pending::<()>));
    // The pass that saw the failure ended there: the items after it were taken out of
    // the stream only to be cut off, unpolled.
    assert_eq!(kids.polls(), [1, 0, 0]);
    assert_eq!(
        gathered.into_results().into_vec(),
        [
            Err(Error::Failed(1)),
            Err(Error::Stopped),
            Err(Error::Stopped)
        ]
    );
}

#[test]
fn a_signal_is_small_and_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<StopSignal>();
    shared::<gather::Raised<'static>>();
    assert_eq!(std::mem::size_of::<StopSignal>(), 1);
}

#[test]
fn a_gather_stream_stops_gracefully() {
    let signal = StopSignal::new();
    let mut kids = Kids::new(&signal);
    let pool: Vec<_> = vec![
        kids.finishing(1, Outcome::Failed(1)),
        kids.listening(0, Outcome::Stopped),
        kids.listening(0, Outcome::Ok(2)),
    ];
    let gathered = run(gather::gather_stream(futures::stream::iter(pool))
        .graceful(&signal, std::future::pending::<()>));
    let results = gathered.into_results().into_vec();
    assert_eq!(results, [Err(Error::Failed(1)), Err(Error::Stopped), Ok(2)]);
    // Every child was taken in before the stop (a stream without a limit runs up to 64
    // at once) and saw the signal.
    assert!(kids.polls_after_raise()[1..].iter().all(|&p| p == 1));
}

#[test]
fn a_failing_last_child_stops_every_waiting_sibling() {
    for n in [8, 40, 300] {
        let signal = StopSignal::new();
        let mut kids = Kids::new(&signal);
        let mut children: Vec<_> = (1..n)
            .map(|_| kids.listening(0, Outcome::Stopped))
            .collect();
        children.push(kids.failing(0));
        let error = run(gather(children)
            .graceful(&signal, std::future::pending::<()>)
            .fail_fast())
        .unwrap_err();
        assert_eq!(
            error.iter().map(|(i, _)| i).collect::<Vec<_>>(),
            [n - 1],
            "{n}"
        );
        assert!(
            kids.polls()[..n - 1].iter().all(|&p| p == 2),
            "{n}: {:?}",
            kids.polls()
        );
    }
}
