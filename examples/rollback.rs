//! A batch of simulated bank transfers, run at once under a graceful stop: one fails,
//! the others see the stop signal and roll back what they had done (printing each step
//! they undo), and the result lists the failure with its index and the rolled-back
//! transfers marked as stopped. `asyncio.TaskGroup`'s cancel-and-wait, in Rust.
//!
//! Run it with `cargo run --example rollback`.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use gather::{gather, StopError, StopSignal, Stopped};
use tokio::time::sleep;

/// Why a transfer did not go through.
#[derive(Debug)]
enum TransferError {
    /// The bank refused it.
    Declined {
        from: &'static str,
        reason: &'static str,
    },
    /// It was asked to stop, and rolled back what it had done.
    RolledBack,
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::Declined { from, reason } => write!(f, "{from}: {reason}"),
            TransferError::RolledBack => f.write_str("rolled back"),
        }
    }
}

impl std::error::Error for TransferError {}

impl From<Stopped> for TransferError {
    fn from(_: Stopped) -> Self {
        TransferError::RolledBack
    }
}

impl StopError for TransferError {
    fn is_stopped(&self) -> bool {
        matches!(self, TransferError::RolledBack)
    }
}

/// A transfer in four steps (debit, hold, credit, commit), each taking `step_ms`. Between
/// steps it looks at the signal; once it is raised, it undoes the steps it did, in reverse
/// order, and says it stopped. A transfer from `declined` fails at its second step.
async fn transfer(
    stop: &StopSignal,
    log: &RefCell<Vec<String>>,
    from: &'static str,
    amount: u32,
    step_ms: u64,
    declined: bool,
) -> Result<u32, TransferError> {
    const STEPS: [&str; 4] = ["debit", "hold", "credit", "commit"];
    let mut done = Vec::new();
    for step in STEPS {
        if stop.is_raised() {
            for undone in done.iter().rev() {
                // Undoing takes time too: the grace period lets it finish.
                sleep(Duration::from_millis(2)).await;
                log.borrow_mut()
                    .push(format!("  {from}: undid {undone} of {amount}"));
            }
            return Err(Stopped.into());
        }
        if declined && step == "hold" {
            return Err(TransferError::Declined {
                from,
                reason: "insufficient funds",
            });
        }
        sleep(Duration::from_millis(step_ms)).await;
        done.push(step);
    }
    Ok(amount)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let stop = StopSignal::new();
    let log = RefCell::new(Vec::new());
    let batch = [
        ("alice", 120, 15, false),
        ("bob", 75, 12, false),
        ("carol", 300, 20, true),
        ("dave", 40, 15, false),
        ("erin", 5, 1, false),
    ];
    let transfers = batch.map(|(from, amount, step_ms, declined)| {
        transfer(&stop, &log, from, amount, step_ms, declined)
    });

    // When a transfer fails, the others get up to 200 ms to roll back before they are
    // dropped.
    let gathered = gather(transfers)
        .graceful(&stop, || sleep(Duration::from_millis(200)))
        .await;

    println!("what the stopped transfers undid:");
    for line in log.borrow().iter() {
        println!("{line}");
    }
    println!("\nresult:");
    for (index, outcome) in gathered.results().iter().enumerate() {
        let from = batch[index].0;
        match outcome {
            Ok(amount) => println!("  [{index}] {from}: committed {amount}"),
            Err(error) if error.is_stopped() => println!("  [{index}] {from}: stopped ({error})"),
            Err(error) => println!("  [{index}] {from}: FAILED ({error})"),
        }
    }
    let stopped: Vec<usize> = gathered.stopped().collect();
    let committed = gathered.success_count();
    let failures = gathered
        .into_failures()
        .expect("carol's transfer was declined");
    println!("\n{failures}");
    println!("stopped: {stopped:?}, committed: {committed}");

    // What the run must show (the example doubles as a check in CI).
    assert_eq!(failures.len(), 1);
    assert_eq!(failures.first().0, 2);
    assert_eq!(stopped, [0, 1, 3]);
    assert_eq!(
        committed, 1,
        "erin's transfer committed before carol's failed"
    );
}
