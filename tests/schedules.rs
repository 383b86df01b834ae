//! Seeded schedules: arbitrary children (ready at once, or after k wakes; `Ok` or `Err`;
//! woken during their own poll, later by reference or by value, spuriously, or after they
//! finished) driven through every mode by an environment that fires one pending wake at a
//! time in a seeded order. Each run is checked against a model:
//!
//! - outcomes equal the model's, in input order (settle all), or as a permutation
//!   (as completed);
//! - no child is polled after it finished (the child asserts it);
//! - every child and every output is dropped exactly once, whatever the mode and wherever
//!   the caller stops;
//! - no lost wake: the gather is polled only when its waker was woken, and a gather left
//!   pending with no wake to come fails the run;
//! - fail-fast has dropped every child by the time it returns.
mod common;

use std::cell::RefCell;
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use common::CountingWaker;
use futures_core::Stream;
use gather::gather;
use smallvec::SmallVec;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % n.max(1)
    }
}

/// How a pending child arranges to be woken.
#[derive(Clone, Copy, Debug)]
enum WakeStyle {
    /// `wake_by_ref` during its own poll.
    DuringPoll,
    /// Keeps a clone; the environment wakes it by reference later.
    LaterByRef,
    /// Keeps a clone; the environment wakes it by value later.
    LaterByValue,
}

/// Everything one run shares: drop counts, polls, the wakes waiting to fire.
#[derive(Default)]
struct World {
    child_drops: Vec<u32>,
    output_drops: Vec<u32>,
    finished: Vec<bool>,
    /// Wakes the environment will fire, one per step: (waker, by value).
    pending_wakes: Vec<(Waker, bool)>,
    /// Wakers kept to fire again after the child finished (stray wakes).
    strays: Vec<Waker>,
}

type Shared = Rc<RefCell<World>>;

/// An output that counts its drop.
struct Token {
    id: usize,
    world: Shared,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({})", self.id)
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.world.borrow_mut().output_drops[self.id] += 1;
    }
}

struct Child {
    id: usize,
    /// Polls that return `Pending` before it is ready.
    pending_polls: u32,
    fails: bool,
    style: WakeStyle,
    spurious: bool,
    stray: bool,
    world: Shared,
}

impl Future for Child {
    type Output = Result<Token, Token>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let shared = self.world.clone();
        let mut world = shared.borrow_mut();
        assert!(
            !world.finished[self.id],
            "child {} polled after it finished",
            self.id
        );
        if self.spurious {
            // A spurious wake of itself, whatever happens next.
            cx.waker().wake_by_ref();
        }
        if self.pending_polls == 0 {
            world.finished[self.id] = true;
            if self.stray {
                world.strays.push(cx.waker().clone());
            }
            let token = Token {
                id: self.id,
                world: self.world.clone(),
            };
            return Poll::Ready(if self.fails { Err(token) } else { Ok(token) });
        }
        self.pending_polls -= 1;
        match self.style {
            WakeStyle::DuringPoll => cx.waker().wake_by_ref(),
            WakeStyle::LaterByRef => world.pending_wakes.push((cx.waker().clone(), false)),
            WakeStyle::LaterByValue => world.pending_wakes.push((cx.waker().clone(), true)),
        }
        Poll::Pending
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.world.borrow_mut().child_drops[self.id] += 1;
    }
}

/// What a child will do, and so what the model expects of it.
#[derive(Clone, Copy, Debug)]
struct Plan {
    pending_polls: u32,
    fails: bool,
    style: WakeStyle,
    spurious: bool,
    stray: bool,
}

fn plans(rng: &mut Rng, n: usize) -> Vec<Plan> {
    (0..n)
        .map(|_| Plan {
            pending_polls: rng.below(4) as u32,
            fails: rng.below(4) == 0,
            style: match rng.below(3) {
                0 => WakeStyle::DuringPoll,
                1 => WakeStyle::LaterByRef,
                _ => WakeStyle::LaterByValue,
            },
            spurious: rng.below(8) == 0,
            stray: rng.below(8) == 0,
        })
        .collect()
}

fn children(plans: &[Plan], world: &Shared) -> Vec<Child> {
    {
        let mut w = world.borrow_mut();
        w.child_drops = vec![0; plans.len()];
        w.output_drops = vec![0; plans.len()];
        w.finished = vec![false; plans.len()];
    }
    plans
        .iter()
        .enumerate()
        .map(|(id, p)| Child {
            id,
            pending_polls: p.pending_polls,
            fails: p.fails,
            style: p.style,
            spurious: p.spurious,
            stray: p.stray,
            world: world.clone(),
        })
        .collect()
}

/// Fires one pending wake (seeded choice) and, now and then, a stray one. Returns false
/// when no wake was left to fire.
fn fire_one(world: &Shared, rng: &mut Rng) -> bool {
    let (wake, stray) = {
        let mut w = world.borrow_mut();
        let wake = if w.pending_wakes.is_empty() {
            None
        } else {
            let at = rng.below(w.pending_wakes.len() as u64) as usize;
            Some(w.pending_wakes.swap_remove(at))
        };
        let stray = if !w.strays.is_empty() && rng.below(2) == 0 {
            w.strays.pop()
        } else {
            None
        };
        (wake, stray)
    };
    if let Some(stray) = stray {
        stray.wake();
    }
    match wake {
        Some((waker, true)) => waker.wake(),
        Some((waker, false)) => waker.wake_by_ref(),
        None => return false,
    }
    true
}

/// Drives `poll` (one poll of the gather under test) until it is ready: polls only after
/// a wake of its waker, fires one environment wake between polls. Fails on a lost wake.
fn drive<T>(world: &Shared, rng: &mut Rng, mut poll: impl FnMut(&Waker) -> Poll<T>) -> T {
    let (wakes, waker) = CountingWaker::new();
    for _ in 0..10_000 {
        let before = wakes.wakes();
        if let Poll::Ready(out) = poll(&waker) {
            return out;
        }
        while wakes.wakes() == before {
            assert!(
                fire_one(world, rng),
                "lost wake: pending, not woken, and no wake to come"
            );
        }
    }
    panic!("no progress in 10,000 polls");
}

/// Every child and every output dropped exactly once (outputs: those that were made).
fn assert_dropped_once(world: &Shared, plans: &[Plan], outputs_made: &[bool]) {
    let w = world.borrow();
    for (id, _) in plans.iter().enumerate() {
        assert_eq!(w.child_drops[id], 1, "child {id} drops");
        let expected = u32::from(outputs_made[id]);
        assert_eq!(w.output_drops[id], expected, "output {id} drops");
    }
}

fn seeds() -> std::ops::Range<u64> {
    if cfg!(miri) {
        1..12
    } else {
        1..3000
    }
}

#[test]
fn settle_all_matches_the_model_for_every_schedule() {
    for seed in seeds() {
        let mut rng = Rng(seed);
        let n = rng.below(12) as usize;
        let plans = plans(&mut rng, n);
        let world: Shared = Rc::default();
        let mut gather = Box::pin(gather(children(&plans, &world)));
        let gathered = drive(&world, &mut rng, |w| {
            gather.as_mut().poll(&mut Context::from_waker(w))
        });
        let results = gathered.into_results();
        for (id, (plan, result)) in plans.iter().zip(&results).enumerate() {
            assert_eq!(result.is_err(), plan.fails, "seed {seed}, child {id}");
            let token = result.as_ref().unwrap_or_else(|e| e);
            assert_eq!(token.id, id, "seed {seed}: input order");
        }
        drop(results);
        drop(gather);
        assert_dropped_once(&world, &plans, &vec![true; n]);
    }
}

#[test]
fn settle_all_over_arrays_and_small_vectors_matches_the_model() {
    for seed in seeds() {
        let mut rng = Rng(seed);
        let plans = plans(&mut rng, 6);
        let world: Shared = Rc::default();
        let array: [Child; 6] = children(&plans, &world).try_into().ok().unwrap();
        let mut gather_array = pin!(gather(array));
        let results = drive(&world, &mut rng, |w| {
            gather_array.as_mut().poll(&mut Context::from_waker(w))
        });
        assert_eq!(
            results.error_count(),
            plans.iter().filter(|p| p.fails).count(),
            "seed {seed}"
        );
        drop(results);
        assert_dropped_once(&world, &plans, &[true; 6]);

        // Three children stay inline (sweep); six spill (per-child wakers).
        for n in [3, 6] {
            let world: Shared = Rc::default();
            let small: SmallVec<[Child; 4]> = children(&plans[..n], &world).into_iter().collect();
            let mut gather_small = pin!(gather(small));
            let results = drive(&world, &mut rng, |w| {
                gather_small.as_mut().poll(&mut Context::from_waker(w))
            });
            assert_eq!(results.len(), n);
            drop(results);
            assert_dropped_once(&world, &plans[..n], &vec![true; n]);
        }
    }
}

#[test]
fn fail_fast_matches_the_model_for_every_schedule() {
    for seed in seeds() {
        let mut rng = Rng(seed);
        let n = rng.below(12) as usize;
        let plans = plans(&mut rng, n);
        let world: Shared = Rc::default();
        let mut fail_fast = Box::pin(gather(children(&plans, &world)).fail_fast());
        let result = drive(&world, &mut rng, |w| {
            fail_fast.as_mut().poll(&mut Context::from_waker(w))
        });
        // Every child is gone once fail_fast returns.
        assert!(
            world.borrow().child_drops.iter().all(|d| *d == 1),
            "seed {seed}"
        );
        let made: Vec<bool> = world.borrow().finished.clone();
        match result {
            Ok(values) => {
                assert!(
                    plans.iter().all(|p| !p.fails),
                    "seed {seed}: Ok despite an error"
                );
                let ids: Vec<usize> = values.iter().map(|t| t.id).collect();
                assert_eq!(ids, (0..n).collect::<Vec<_>>(), "seed {seed}: input order");
            }
            Err(error) => {
                for (id, token) in &error {
                    assert!(
                        plans[id].fails,
                        "seed {seed}: child {id} reported but did not fail"
                    );
                    assert_eq!(token.id, id);
                }
            }
        }
        drop(fail_fast);
        assert_dropped_once(&world, &plans, &made);
    }
}

#[test]
fn as_completed_matches_the_model_and_drops_everything_when_left_part_way() {
    for seed in seeds() {
        let mut rng = Rng(seed);
        let n = rng.below(12) as usize;
        let plans = plans(&mut rng, n);
        let world: Shared = Rc::default();
        let stop_after = rng.below(n as u64 + 1) as usize;
        let mut stream = Box::pin(gather(children(&plans, &world)).as_completed());
        let mut seen = vec![false; n];
        for _ in 0..stop_after {
            let item = drive(&world, &mut rng, |w| {
                stream.as_mut().poll_next(&mut Context::from_waker(w))
            });
            let (index, result) = item.expect("one item per child");
            assert!(!seen[index], "seed {seed}: child {index} yielded twice");
            seen[index] = true;
            assert_eq!(result.is_err(), plans[index].fails, "seed {seed}");
            assert_eq!(result.unwrap_or_else(|e| e).id, index);
            assert_eq!(
                stream.size_hint(),
                (
                    n - seen.iter().filter(|s| **s).count(),
                    Some(n - seen.iter().filter(|s| **s).count())
                )
            );
        }
        if stop_after == n {
            let end = drive(&world, &mut rng, |w| {
                stream.as_mut().poll_next(&mut Context::from_waker(w))
            });
            assert!(end.is_none(), "seed {seed}: more items than children");
        }
        drop(stream);
        let made: Vec<bool> = world.borrow().finished.clone();
        assert_dropped_once(&world, &plans, &made);
    }
}
