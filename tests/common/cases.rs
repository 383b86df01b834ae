//! Behaviour cases that every runtime runs (see `runtime_cases!`). Each is a `Send +
//! 'static` future so that the multi-threaded runtime can run it on a worker thread; the
//! children finish through `delay` (woken from a timer thread) and `yield_now` (woken
//! during their own poll), so no case depends on a particular runtime's timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gather::{gather, gather_iter, GatherExt};

use super::{delay_ms, delay_ms_logged, yield_now, DropLog, Tracked, WakeLog};

pub async fn settle_all_keeps_input_order_whatever_order_children_finish() {
    // Child i finishes after (4 - i) * 15 ms: the last one first.
    let children = [0u64, 1, 2, 3].map(|i| async move {
        delay_ms((4 - i) * 15).await;
        i * 10
    });
    let gathered = gather(children).await;
    assert_eq!(gathered.into_results(), [0, 10, 20, 30]);
}

pub async fn settle_all_keeps_every_error_with_its_index() {
    let children = [0u64, 1, 2, 3, 4].map(|i| async move {
        delay_ms(5 * (i % 3)).await;
        if i % 2 == 1 {
            Err(format!("child {i} failed"))
        } else {
            Ok(i)
        }
    });
    let gathered = gather(children).await;
    assert_eq!(gathered.successes().copied().collect::<Vec<_>>(), [0, 2, 4]);
    let errors: Vec<_> = gathered.errors().map(|(i, e)| (i, e.clone())).collect();
    assert_eq!(
        errors,
        [
            (1, "child 1 failed".to_string()),
            (3, "child 3 failed".to_string())
        ]
    );
    let error = gathered.into_result().unwrap_err();
    assert_eq!(
        error.to_string(),
        "2 of 5 futures failed: [1] child 1 failed; [3] child 3 failed"
    );
}

pub async fn settle_all_of_a_tuple_keeps_each_output_type() {
    let gathered = gather((
        async {
            delay_ms(20).await;
            Ok::<_, String>(7u8)
        },
        async {
            yield_now(3).await;
            Ok("seven")
        },
        async { Ok(vec![7]) },
    ))
    .await;
    assert_eq!(gathered.into_result(), Ok((7u8, "seven", vec![7])));
}

pub async fn settle_all_of_a_vec_and_an_iterator() {
    let children: Vec<_> = (0..50u32)
        .map(|i| async move {
            yield_now((i % 7) as usize).await;
            i
        })
        .collect();
    assert_eq!(
        gather(children).await.into_results(),
        (0..50).collect::<Vec<_>>()
    );

    let gathered = gather_iter((0..10u32).map(|i| async move {
        delay_ms(u64::from(10 - i)).await;
        if i == 4 {
            Err(i)
        } else {
            Ok(i)
        }
    }))
    .await;
    assert_eq!(gathered.error_count(), 1);
    assert_eq!(gathered.errors().next(), Some((4, &4)));
}

pub async fn fail_fast_returns_the_failing_index_and_drops_pending_siblings() {
    type Child = Pin<Box<dyn Future<Output = Result<Tracked, &'static str>> + Send>>;
    let log = DropLog::new();
    let slow = |label: &str| -> Child {
        let value = log.value(format!("{label}-output"));
        Box::pin(log.future(label, async move {
            delay_ms(10_000).await;
            Ok(value)
        }))
    };
    let quick_output = log.value("quick-output");
    let children: Vec<Child> = vec![
        Box::pin(log.future("quick", async move { Ok(quick_output) })),
        slow("slow-1"),
        Box::pin(log.future("failing", async {
            delay_ms(10).await;
            Err("refused")
        })),
        slow("slow-3"),
    ];
    let started = Instant::now();
    let result = children.gather().fail_fast().await;
    let elapsed = started.elapsed();

    let error = result.unwrap_err();
    assert_eq!(error.first(), (2, &"refused"));
    assert_eq!(error.len(), 1);
    assert!(
        elapsed < Duration::from_secs(5),
        "fail_fast waited for its siblings: {elapsed:?}"
    );
    // Every sibling, pending or finished, and every stored output, was dropped exactly
    // once before fail_fast returned.
    for label in [
        "quick",
        "quick-output",
        "slow-1",
        "slow-1-output",
        "failing",
        "slow-3",
    ] {
        assert_eq!(
            log.count(label),
            1,
            "{label} dropped once before return: {log:?}"
        );
    }
}

pub async fn fail_fast_returns_every_success_in_input_order() {
    let children = [3u64, 1, 2].map(|i| async move {
        delay_ms(i * 10).await;
        Ok::<_, ()>(i)
    });
    assert_eq!(gather(children).fail_fast().await, Ok([3, 1, 2]));
}

pub async fn empty_inputs_resolve_at_once() {
    let none: [std::future::Ready<Result<u8, ()>>; 0] = [];
    assert!(gather(none).await.is_empty());
    let none: [std::future::Ready<Result<u8, ()>>; 0] = [];
    assert_eq!(gather(none).fail_fast().await, Ok([]));
    let none: Vec<std::future::Ready<Result<u8, ()>>> = Vec::new();
    assert!(gather(none).await.is_all_ok());
    let gathered = gather_iter(std::iter::empty::<std::future::Ready<u8>>()).await;
    assert!(gathered.into_results().is_empty());
}

pub async fn children_may_borrow_local_data() {
    let words = ["alpha".to_string(), "beta".to_string()];
    let lengths = gather([0, 1].map(|i| {
        let word = &words[i];
        async move {
            yield_now(i).await;
            word.len()
        }
    }))
    .await;
    assert_eq!(lengths.into_results(), [5, 4]);
}

pub async fn many_children_woken_from_other_threads() {
    let children: Vec<_> = (0..300u64)
        .map(|i| async move {
            delay_ms(i % 13).await;
            Ok::<_, u64>(i)
        })
        .collect();
    let successes = gather(children).fail_fast().await.unwrap();
    assert_eq!(successes, (0..300).collect::<Vec<_>>());
}

pub async fn as_completed_yields_in_completion_order() {
    // Child i is timed to finish after (3 - i) * 30 ms, the last one first; the timers
    // log the order in which they really woke the children, and that is the order the
    // stream must keep.
    let woken = WakeLog::default();
    let children: Vec<_> = (0..4u64)
        .map(|i| {
            let woken = woken.clone();
            async move {
                delay_ms_logged((3 - i) * 30, i as usize, woken).await;
                i * 10
            }
        })
        .collect();
    // Per-child wakers: children are yielded in the order they woke, even if a loaded
    // machine polls the gather only after several have finished (a sweep would then
    // yield them in input order, from where it left off).
    let mut stream = std::pin::pin!(gather(children).per_child_wakers().as_completed());
    let mut order = Vec::new();
    while let Some((index, value)) = stream.as_mut().next_completed().await {
        assert_eq!(value, index as u64 * 10);
        order.push(index);
    }
    let woken = woken.lock().unwrap().clone();
    assert_eq!(order, woken);
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 1, 2, 3], "every child once");
}

/// With the runtime's own timer as the deadline (made inside the runtime, by `sleep`):
/// the quick children finish, the slow one is cut off long before its 10 s.
pub async fn deadline_cuts_off_slow_children<T: std::future::Future>(
    sleep: impl FnOnce(Duration) -> T,
) {
    let timer = sleep(Duration::from_millis(150));
    #[derive(Debug, PartialEq)]
    enum Error {
        TimedOut(usize),
    }
    impl From<gather::TimedOut> for Error {
        fn from(timed_out: gather::TimedOut) -> Self {
            Error::TimedOut(timed_out.index)
        }
    }
    let started = Instant::now();
    let children: Vec<_> = [5u64, 10_000, 10]
        .into_iter()
        .map(|ms| async move {
            delay_ms(ms).await;
            Ok::<u64, Error>(ms)
        })
        .collect();
    let gathered = gather(children).deadline(timer).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the deadline did not cut it off"
    );
    assert_eq!(
        gathered.into_results(),
        [Ok(5), Err(Error::TimedOut(1)), Ok(10)]
    );
}

pub async fn catch_panics_keeps_siblings_going() {
    type Child = Pin<Box<dyn Future<Output = Result<u64, gather::Panicked>> + Send>>;
    let children: Vec<Child> = vec![
        Box::pin(async {
            delay_ms(10).await;
            Ok(1)
        }),
        Box::pin(async {
            delay_ms(5).await;
            panic!("child 1 gave up")
        }),
        Box::pin(async {
            yield_now(2).await;
            Ok(3)
        }),
    ];
    let gathered = gather(children).catch_panics().await;
    let results = gathered.into_results();
    assert_eq!(results[0].as_ref().ok(), Some(&1));
    assert_eq!(
        results[1].as_ref().unwrap_err().message(),
        Some("child 1 gave up")
    );
    assert_eq!(results[2].as_ref().ok(), Some(&3));
}

pub async fn limit_caps_running_children() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let children: Vec<_> = (0..24u64)
        .map(|i| {
            let (running, most) = (running.clone(), most.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                delay_ms(1 + i % 3).await;
                running.fetch_sub(1, Ordering::SeqCst);
                i
            }
        })
        .collect();
    let gathered = gather(children).limit(4).await;
    assert_eq!(gathered.into_results(), (0..24).collect::<Vec<_>>());
    assert_eq!(most.load(Ordering::SeqCst), 4);
}

/// The children's error in the graceful cases.
#[derive(Debug, PartialEq)]
pub enum TxError {
    Conflict(u64),
    RolledBack,
    TimedOut(usize),
    Panicked(usize),
}

impl From<gather::Panicked> for TxError {
    fn from(panicked: gather::Panicked) -> Self {
        TxError::Panicked(panicked.index)
    }
}

impl From<gather::Stopped> for TxError {
    fn from(_: gather::Stopped) -> Self {
        TxError::RolledBack
    }
}

impl gather::StopError for TxError {
    fn is_stopped(&self) -> bool {
        *self == TxError::RolledBack
    }
}

impl From<gather::TimedOut> for TxError {
    fn from(timed_out: gather::TimedOut) -> Self {
        TxError::TimedOut(timed_out.index)
    }
}

/// A transaction that works for a long time unless asked to stop; then it takes a few
/// milliseconds to roll back, and says so.
async fn transaction(
    id: u64,
    stop: &gather::StopSignal,
    undone: &Mutex<Vec<u64>>,
) -> Result<u64, TxError> {
    use futures::future::{select, Either};
    match select(Box::pin(delay_ms(10_000)), stop.raised()).await {
        Either::Left(_) => Ok(id),
        Either::Right((stopped, _)) => {
            delay_ms(2).await;
            undone.lock().unwrap().push(id);
            Err(stopped.into())
        }
    }
}

/// Fail-fast under `graceful`, with the runtime's timer as the grace: a failure raises
/// the signal, the transactions still running roll back, the one that ignores the
/// signal is dropped when the grace timer fires, and the error holds the failure alone.
pub async fn graceful_fail_fast_lets_the_others_roll_back<T: Future>(
    sleep: impl Fn(Duration) -> T,
) {
    let stop = gather::StopSignal::new();
    let undone = Mutex::new(Vec::new());
    let started = Instant::now();
    type Tx<'a> = Pin<Box<dyn Future<Output = Result<u64, TxError>> + Send + 'a>>;
    let children: Vec<Tx<'_>> = vec![
        Box::pin(transaction(0, &stop, &undone)),
        Box::pin(async {
            delay_ms(5).await;
            Err(TxError::Conflict(1))
        }),
        Box::pin(transaction(2, &stop, &undone)),
        Box::pin(async {
            delay_ms(10_000).await; // deaf to the signal
            Ok(3)
        }),
    ];
    let error = gather(children)
        .graceful(&stop, || sleep(Duration::from_millis(200)))
        .fail_fast()
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the grace timer did not end it"
    );
    assert_eq!(
        error.iter().collect::<Vec<_>>(),
        [(1, &TxError::Conflict(1))]
    );
    let mut undone = undone.into_inner().unwrap();
    undone.sort_unstable();
    assert_eq!(undone, [0, 2]);
}

/// Settle-all with a deadline under `graceful`: the deadline raises the signal, the
/// children it would have cut off wind down, the deaf one times out.
pub async fn graceful_deadline_lets_the_cut_off_children_wind_down<T: Future>(
    sleep: impl Fn(Duration) -> T,
) {
    let stop = gather::StopSignal::new();
    let undone = Mutex::new(Vec::new());
    type Tx<'a> = Pin<Box<dyn Future<Output = Result<u64, TxError>> + Send + 'a>>;
    let children: Vec<Tx<'_>> = vec![
        Box::pin(async {
            delay_ms(5).await;
            Ok(0)
        }),
        Box::pin(transaction(1, &stop, &undone)),
        Box::pin(async {
            delay_ms(10_000).await;
            Ok(2)
        }),
    ];
    let gathered = gather(children)
        .deadline(sleep(Duration::from_millis(100)))
        .graceful(&stop, || sleep(Duration::from_millis(200)))
        .await;
    assert_eq!(gathered.stopped().collect::<Vec<_>>(), [1]);
    assert_eq!(
        gathered.into_results(),
        [Ok(0), Err(TxError::RolledBack), Err(TxError::TimedOut(2))]
    );
    assert_eq!(*undone.lock().unwrap(), [1]);
}

/// As completed under `graceful`: the failure first, then the transactions that rolled
/// back as they finish, then (once the grace timer fires) the deaf one, cut off.
pub async fn graceful_as_completed_hands_out_the_stops_as_they_come<T: Future>(
    sleep: impl Fn(Duration) -> T,
) {
    use futures::StreamExt;
    let stop = gather::StopSignal::new();
    let undone = Mutex::new(Vec::new());
    type Tx<'a> = Pin<Box<dyn Future<Output = Result<u64, TxError>> + Send + 'a>>;
    let children: Vec<Tx<'_>> = vec![
        Box::pin(async {
            delay_ms(10_000).await;
            Ok(0)
        }),
        Box::pin(transaction(1, &stop, &undone)),
        Box::pin(async {
            delay_ms(5).await;
            Err(TxError::Conflict(2))
        }),
        Box::pin(transaction(3, &stop, &undone)),
    ];
    let items: Vec<_> = gather(children)
        .graceful(&stop, || sleep(Duration::from_millis(100)))
        .as_completed()
        .collect()
        .await;
    assert_eq!(items.len(), 4);
    assert_eq!(items[0], (2, Err(TxError::Conflict(2))));
    let mut middle: Vec<_> = items[1..3].iter().map(|(index, _)| *index).collect();
    middle.sort_unstable();
    assert_eq!(middle, [1, 3]);
    assert!(items[1..3]
        .iter()
        .all(|(_, outcome)| *outcome == Err(TxError::RolledBack)));
    // Cut off when the grace ended: stopped, not failed.
    assert_eq!(items[3], (0, Err(TxError::RolledBack)));
}

/// A caught panic begins the stop under a limit: the transactions running roll back, the
/// ones waiting for a place never start, and dropping the gather during a grace period
/// drops what is left at once.
pub async fn graceful_under_a_limit_with_a_caught_panic<T: Future>(sleep: impl Fn(Duration) -> T) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let stop = gather::StopSignal::new();
    let undone = Mutex::new(Vec::new());
    let started = AtomicUsize::new(0);
    type Tx<'a> = Pin<Box<dyn Future<Output = Result<u64, TxError>> + Send + 'a>>;
    let children: Vec<Tx<'_>> = (0..12u64)
        .map(|i| -> Tx<'_> {
            let (stop, undone, started) = (&stop, &undone, &started);
            Box::pin(async move {
                started.fetch_add(1, Ordering::SeqCst);
                if i == 1 {
                    delay_ms(5).await;
                    panic!("boom: transaction 1");
                }
                transaction(i, stop, undone).await
            })
        })
        .collect();
    super::quiet();
    let error = gather(children)
        .limit(3)
        .catch_panics()
        .graceful(&stop, || sleep(Duration::from_millis(10_000)))
        .fail_fast()
        .await
        .unwrap_err();
    assert_eq!(
        error.iter().collect::<Vec<_>>(),
        [(1, &TxError::Panicked(1))]
    );
    assert_eq!(started.load(Ordering::SeqCst), 3);
    let mut undone = undone.into_inner().unwrap();
    undone.sort_unstable();
    assert_eq!(undone, [0, 2]);

    // Dropped during the grace period (the caller gave up first): at once.
    let stop = gather::StopSignal::new();
    let log = DropLog::default();
    let children: Vec<Tx<'_>> = vec![
        Box::pin(async {
            delay_ms(5).await;
            Err(TxError::Conflict(0))
        }),
        Box::pin(log.future("deaf", async {
            delay_ms(10_000).await;
            Ok(1)
        })),
    ];
    let stopping = gather(children)
        .graceful(&stop, || sleep(Duration::from_millis(10_000)))
        .fail_fast();
    let started = Instant::now();
    let gave_up = futures::future::select(
        Box::pin(stopping),
        Box::pin(sleep(Duration::from_millis(50))),
    );
    assert!(matches!(gave_up.await, futures::future::Either::Right(_)));
    assert!(stop.is_raised());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(log.count("deaf"), 1);
}
